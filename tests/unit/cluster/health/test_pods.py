"""assess on Pods: waiting containers, phases and how a failed pod failed.

Rules pinned here: gitops-engine ``pkg/health/health_pod.go`` and its fixtures
(``pod-crashloop.yaml``, ``pod-imagepullbackoff.yaml``, ``pod-error.yaml``, ``pod-failed.yaml``,
``pod-running-restart-{always,never,onfailure}.yaml``, ``pod-running-not-ready.yaml``,
``pod-running-restart-never-*-ignore-annotation*.yaml``).  Phases and container states are
Kubernetes' (https://kubernetes.io/docs/concepts/workloads/pods/pod-lifecycle/).
"""

from __future__ import annotations

import pytest

from reconciler.cluster.health import assess
from tests.unit.cluster.health.cases import DEGRADED, HEALTHY, PROGRESSING, Case
from tests.unit.cluster.health.objects import Obj, merged, pod

IGNORE_RESTART_POLICY = "argocd.argoproj.io/ignore-restart-policy"


def opted_in(obj: Obj) -> Obj:
    """``obj`` carrying Argo's ignore-restart-policy annotation."""
    return merged(obj, {"metadata": {"annotations": {IGNORE_RESTART_POLICY: "true"}}})


CASES: dict[str, Case] = {
    # Pod
    "pod running and ready": Case(pod(), HEALTHY),
    "pod pending": Case(
        pod(phase="Pending", ready=False, waiting=("ContainerCreating", "")), PROGRESSING
    ),
    "pod running, not ready yet": Case(pod(ready=False), PROGRESSING, says="not ready"),
    "pod running, not ready after a restart": Case(
        pod(ready=False, last_terminated={"reason": "Error", "exitCode": 1}),
        DEGRADED,
        reason="Error",
        says="exit code 1",
    ),
    "pod crash looping": Case(
        pod(
            waiting=("CrashLoopBackOff", "back-off 40s restarting failed container"),
            last_terminated={"reason": "OOMKilled", "exitCode": 137},
        ),
        DEGRADED,
        reason="CrashLoopBackOff",
        says="last exit: OOMKilled (exit code 137)",
    ),
    "pod image pull back-off": Case(
        pod(
            phase="Pending",
            waiting=("ImagePullBackOff", 'Back-off pulling image "reg/web:sha-new"'),
        ),
        DEGRADED,
        reason="ImagePullBackOff",
        says="image reg/web:sha-new",
    ),
    "pod image pull error": Case(
        pod(phase="Pending", waiting=("ErrImagePull", "manifest unknown")),
        DEGRADED,
        reason="ErrImagePull",
    ),
    "pod config error": Case(
        pod(phase="Pending", waiting=("CreateContainerConfigError", 'secret "db" not found')),
        DEGRADED,
        reason="CreateContainerConfigError",
        says='secret "db" not found',
    ),
    "pod invalid image name": Case(
        pod(phase="Pending", waiting=("InvalidImageName", 'couldn\'t parse image "reg/Web"')),
        DEGRADED,
        reason="InvalidImageName",
    ),
    "pod run container error (Argo's suffix rule)": Case(
        pod(waiting=("RunContainerError", "exec: not found")), DEGRADED, reason="RunContainerError"
    ),
    # gitops-engine reads the waiting reasons of status.containerStatuses only: a pod stuck
    # on an init container is Pending, so Progressing.  (The fast verdict on a workload's pods,
    # test_workload_pods.py, does look at init containers.)
    "pod init container image pull back-off": Case(
        pod(phase="Pending", ready=False, init_waiting=("ImagePullBackOff", "Back-off")),
        PROGRESSING,
    ),
    "run-once pod waiting on an image is judged by its phase": Case(
        pod(phase="Pending", restart_policy="Never", waiting=("ImagePullBackOff", "Back-off")),
        PROGRESSING,
    ),
    "run-once pod running": Case(pod(restart_policy="OnFailure"), PROGRESSING),
    "run-once pod running, Never": Case(pod(restart_policy="Never"), PROGRESSING),
    # argocd.argoproj.io/ignore-restart-policy (argo-cd #28249): judge a Never/OnFailure pod
    # as if it restarted forever; ignored on Argo hook pods.
    "opted-in run-once pod running and ready": Case(opted_in(pod(restart_policy="Never")), HEALTHY),
    "opted-in run-once pod not ready": Case(
        opted_in(pod(restart_policy="OnFailure", ready=False)), PROGRESSING
    ),
    "opted-in run-once pod in image pull back-off": Case(
        opted_in(pod(restart_policy="Never", waiting=("ImagePullBackOff", "Back-off"))),
        DEGRADED,
        reason="ImagePullBackOff",
    ),
    "opted-in hook pod stays run-once": Case(
        merged(
            opted_in(pod(restart_policy="Never")),
            {"metadata": {"annotations": {"argocd.argoproj.io/hook": "PostSync"}}},
        ),
        PROGRESSING,
    ),
    "pod succeeded": Case(pod(phase="Succeeded", restart_policy="Never", ready=False), HEALTHY),
    "pod evicted": Case(
        pod(
            phase="Failed",
            ready=False,
            status_extra={"reason": "Evicted", "message": "The node was low on memory."},
        ),
        DEGRADED,
        reason="Evicted",
        says="low on memory",
    ),
    "pod failed, container exit code": Case(
        pod(
            phase="Failed",
            restart_policy="Never",
            ready=False,
            status_extra={
                "containerStatuses": [
                    {
                        "name": "web",
                        "state": {"terminated": {"reason": "Error", "exitCode": 2}},
                    }
                ]
            },
        ),
        DEGRADED,
        reason="Error",
        says="container web failed with exit code 2",
    ),
    "pod failed, termination message": Case(
        pod(
            phase="Failed",
            restart_policy="Never",
            ready=False,
            status_extra={
                "containerStatuses": [
                    {
                        "name": "web",
                        "state": {
                            "terminated": {
                                "reason": "Error",
                                "exitCode": 1,
                                "message": "migration 42 failed",
                            }
                        },
                    }
                ]
            },
        ),
        DEGRADED,
        reason="Error",
        says="migration 42 failed",
    ),
    "pod phase unknown": Case(pod(phase="Unknown", ready=False), PROGRESSING),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_assess(case: Case) -> None:
    """assess gives each kind's status, cluster reason and message by Argo CD's rules."""
    health = assess(case.obj)
    assert (health.status, health.reason) == (case.status, case.reason), health
    assert case.says in health.message
