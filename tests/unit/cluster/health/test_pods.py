"""assess on Pods: waiting containers, phases and how a failed pod failed."""

from __future__ import annotations

import pytest

from reconciler.cluster.health import assess
from tests.unit.cluster.health.cases import DEGRADED, HEALTHY, PROGRESSING, Case
from tests.unit.cluster.health.objects import pod

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
    "pod init container image pull back-off": Case(
        pod(phase="Pending", ready=False, init_waiting=("ImagePullBackOff", "Back-off")),
        DEGRADED,
        reason="ImagePullBackOff",
        says="container init-db",
    ),
    "run-once pod waiting on an image is judged by its phase": Case(
        pod(phase="Pending", restart_policy="Never", waiting=("ImagePullBackOff", "Back-off")),
        PROGRESSING,
    ),
    "run-once pod running": Case(pod(restart_policy="OnFailure"), PROGRESSING),
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
