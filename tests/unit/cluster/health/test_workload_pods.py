"""pod_selector and assess_workload_pods: failing fast on the pods of a workload."""

from __future__ import annotations

import pytest

from reconciler.cluster.health import Health, assess_workload_pods, pod_selector
from tests.unit.cluster.health.cases import DEGRADED
from tests.unit.cluster.health.objects import (
    NEW_TEMPLATE,
    OLD_TEMPLATE,
    Obj,
    daemonset,
    deployment,
    job,
    plain,
    pod,
    pod_template,
    replicaset,
    service,
    statefulset,
)

# ---------------------------------------------------------------------------------------------
# pod_selector


@pytest.mark.parametrize(
    ("workload", "expected"),
    [
        (deployment(), "app=web"),
        (statefulset(), "app=db"),
        (daemonset(), "app=agent"),
        (replicaset(), "app=web,pod-template-hash=5f8d7c9b6"),
        (job(), "batch.kubernetes.io/controller-uid=0f9c"),
        (
            deployment(
                spec={
                    "selector": {
                        "matchLabels": {"tier": "front", "app": "web"},
                        "matchExpressions": [
                            {"key": "env", "operator": "In", "values": ["prod", "stage"]},
                            {"key": "canary", "operator": "NotIn", "values": ["true"]},
                            {"key": "team", "operator": "Exists"},
                            {"key": "legacy", "operator": "DoesNotExist"},
                        ],
                    }
                }
            ),
            "app=web,tier=front,env in (prod,stage),canary notin (true),team,!legacy",
        ),
        (deployment() | {"spec": {"selector": {"matchLabels": {}}}}, None),
        (deployment(spec={"selector": None}), None),
        (service("ClusterIP"), None),
        (plain("v1", "ConfigMap"), None),
    ],
    ids=[
        "deployment",
        "statefulset",
        "daemonset",
        "replicaset",
        "job",
        "expressions",
        "empty selector",
        "no selector",
        "service",
        "configmap",
    ],
)
def test_pod_selector(workload: Obj, expected: str | None) -> None:
    """pod_selector turns a workload's spec.selector into a label selector string."""
    assert pod_selector(workload) == expected


# ---------------------------------------------------------------------------------------------
# assess_workload_pods


def test_workload_pods_image_pull_back_off_fails_fast() -> None:
    """A current pod that cannot pull its image degrades the workload, naming all the facts."""
    pods = [
        pod(name="web-new-1", template=NEW_TEMPLATE, ready=False),
        pod(
            name="web-new-2",
            template=NEW_TEMPLATE,
            phase="Pending",
            waiting=("ImagePullBackOff", 'Back-off pulling image "reg/web:sha-new"'),
        ),
    ]
    health = assess_workload_pods(deployment(), pods)
    assert health == Health(
        DEGRADED,
        "Deployment web: ImagePullBackOff: pod web-new-2: container web: image reg/web:sha-new: "
        'Back-off pulling image "reg/web:sha-new"',
        "ImagePullBackOff",
    )


@pytest.mark.parametrize(
    "reason",
    [
        "CrashLoopBackOff",
        "ImagePullBackOff",
        "ErrImagePull",
        "CreateContainerConfigError",
        "InvalidImageName",
    ],
)
def test_workload_pods_failing_reasons(reason: str) -> None:
    """Each waiting reason that will not clear by itself degrades the workload."""
    pods = [pod(template=NEW_TEMPLATE, waiting=(reason, "details"))]
    health = assess_workload_pods(deployment(), pods)
    assert health is not None
    assert (health.status, health.reason) == (DEGRADED, reason)


def test_workload_pods_of_an_old_template_are_ignored() -> None:
    """A crashing pod of the previous image does not fail a good rollout."""
    pods = [
        pod(name="web-old", template=OLD_TEMPLATE, waiting=("CrashLoopBackOff", "back-off")),
        pod(name="web-new", template=NEW_TEMPLATE, ready=False),
    ]
    assert assess_workload_pods(deployment(), pods) is None


def test_workload_pods_of_an_old_env_are_ignored() -> None:
    """A rollout that only fixes an environment variable is not failed by the old pods."""
    broken = pod(
        template=pod_template("reg/web:sha-new", env_value="broken"),
        waiting=("CrashLoopBackOff", "back-off"),
    )
    assert assess_workload_pods(deployment(), [broken]) is None


def test_workload_pods_with_injected_sidecar_still_count() -> None:
    """Containers and env added by admission webhooks do not hide a failing current pod."""
    injected = pod(template=NEW_TEMPLATE, waiting=("ErrImagePull", "not found"))
    injected["spec"]["containers"].append({"name": "istio-proxy", "image": "istio/proxyv2:1.22"})
    injected["spec"]["containers"][0]["env"].append({"name": "INJECTED", "value": "1"})
    health = assess_workload_pods(deployment(), [injected])
    assert health is not None and health.reason == "ErrImagePull"


def test_workload_pods_healthy_or_starting_give_no_verdict() -> None:
    """Pods that are running or still creating containers leave the verdict to the workload."""
    pods = [
        pod(template=NEW_TEMPLATE),
        pod(template=NEW_TEMPLATE, phase="Pending", waiting=("ContainerCreating", "")),
    ]
    assert assess_workload_pods(deployment(), pods) is None


def test_workload_pods_crash_loop_reports_the_last_exit() -> None:
    """A crash loop's message says how the container last died."""
    crashing = pod(
        template=NEW_TEMPLATE,
        waiting=("CrashLoopBackOff", "back-off 20s restarting failed container"),
        last_terminated={"reason": "Error", "exitCode": 3},
    )
    health = assess_workload_pods(deployment(), [crashing])
    assert health is not None
    assert health.message.endswith("last exit: Error (exit code 3)")


def test_workload_pods_init_container_failure() -> None:
    """A failing init container of a current pod degrades the workload."""
    workload = deployment()
    workload["spec"]["template"]["spec"]["initContainers"] = [
        {"name": "init-db", "image": "reg/init:1"}
    ]
    stuck = pod(template=NEW_TEMPLATE, phase="Pending", init_waiting=("ErrImagePull", "denied"))
    health = assess_workload_pods(workload, [stuck])
    assert health is not None
    assert "container init-db: image reg/init:1" in health.message


def test_workload_pods_of_a_run_once_job() -> None:
    """A Job's pod (restartPolicy Never) stuck on its image fails fast too."""
    template = pod_template("reg/migrate:7")
    stuck = pod(
        template=template, restart_policy="Never", phase="Pending", waiting=("ErrImagePull", "")
    )
    health = assess_workload_pods(job(), [stuck])
    assert health is not None and health.reason == "ErrImagePull"
