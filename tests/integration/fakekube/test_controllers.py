"""Controllers: rollouts over time, their conditions, failures, and the other workload kinds."""

from __future__ import annotations

from typing import Any

from reconciler.testing.fakekube import FakeKube
from tests.support.kubeapi import Api
from tests.support.manifests import DEPLOYMENTS, deployment
from tests.support.waiting import eventually

WEB = f"{DEPLOYMENTS}/web"
PODS = "/api/v1/namespaces/default/pods"


def _condition(obj: dict[str, Any], kind: str) -> dict[str, Any]:
    for entry in (obj.get("status") or {}).get("conditions") or ():
        if entry["type"] == kind:
            return dict(entry)
    return {}


async def _wait_status(api: Api, path: str, check: Any, within: float = 10.0) -> dict[str, Any]:
    latest: dict[str, Any] = {}

    async def holds() -> bool:
        nonlocal latest
        latest = (await api.get(path)).body
        return bool(check(latest))

    await eventually(holds, within=within, message=f"{path} never reached the state")
    return latest


def _rolled_out(obj: dict[str, Any]) -> bool:
    status = obj.get("status") or {}
    desired = obj["spec"]["replicas"]
    return (
        status.get("observedGeneration") == obj["metadata"]["generation"]
        and status.get("updatedReplicas", 0) == desired
        and status.get("availableReplicas", 0) == desired
        and status.get("replicas", 0) == desired
        and _condition(obj, "Progressing").get("reason") == "NewReplicaSetAvailable"
    )


async def test_deployment_rolls_out_with_replica_sets_and_pods(api: Api) -> None:
    """A Deployment gets a ReplicaSet and Ready Pods, then Available and NewReplicaSetAvailable."""
    await api.apply(WEB, deployment(replicas=3))
    rolled = await _wait_status(api, WEB, _rolled_out)
    assert _condition(rolled, "Available")["status"] == "True"
    assert rolled["status"]["readyReplicas"] == 3
    assert rolled["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"
    replica_sets = (await api.get("/apis/apps/v1/namespaces/default/replicasets")).body["items"]
    assert len(replica_sets) == 1
    rs = replica_sets[0]
    assert rs["metadata"]["ownerReferences"][0]["kind"] == "Deployment"
    template_hash = rs["metadata"]["labels"]["pod-template-hash"]
    assert rs["metadata"]["name"] == f"web-{template_hash}"
    pods = (await api.get(PODS, labelSelector="app=web")).body["items"]
    assert len(pods) == 3
    for pod in pods:
        assert pod["status"]["phase"] == "Running"
        assert pod["metadata"]["name"].startswith(f"web-{template_hash}-")
        assert pod["spec"]["nodeName"] == "fakekube-node"
        assert _condition(pod, "Ready")["status"] == "True"


async def test_new_image_rolls_through_a_second_replica_set(api: Api) -> None:
    """Changing the image makes a new ReplicaSet take over and the old one scale to zero."""
    await api.apply(WEB, deployment(replicas=2, image="nginx:1"))
    await _wait_status(api, WEB, _rolled_out)
    await api.apply(WEB, deployment(replicas=2, image="nginx:2"))
    rolled = await _wait_status(api, WEB, _rolled_out)
    assert rolled["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"
    replica_sets = (await api.get("/apis/apps/v1/namespaces/default/replicasets")).body["items"]
    by_image = {
        rs["spec"]["template"]["spec"]["containers"][0]["image"]: rs["spec"]["replicas"]
        for rs in replica_sets
    }
    assert by_image == {"nginx:1": 0, "nginx:2": 2}

    async def old_pods_gone() -> bool:
        pods = (await api.get(PODS, labelSelector="app=web")).body["items"]
        images = {p["spec"]["containers"][0]["image"] for p in pods}
        return images == {"nginx:2"} and len(pods) == 2

    await eventually(old_pods_gone, message="old pods were never replaced")


async def test_crashlooping_image_exceeds_the_progress_deadline(
    api: Api, fakekube: FakeKube
) -> None:
    """A crashlooping image leaves pods in CrashLoopBackOff and ends in ProgressDeadlineExceeded."""
    fakekube.time_factor = 0.01
    fakekube.faults.crashloop_images = ["*:broken"]
    await api.apply(WEB, deployment(replicas=1, image="app:good"))
    await _wait_status(api, WEB, _rolled_out)
    await api.apply(WEB, deployment(replicas=1, image="app:broken", progressDeadlineSeconds=60))

    async def crashing() -> bool:
        pods = (await api.get(PODS, labelSelector="app=web")).body["items"]
        for pod in pods:
            for status in pod.get("status", {}).get("containerStatuses", []):
                waiting = status.get("state", {}).get("waiting", {})
                if waiting.get("reason") == "CrashLoopBackOff" and status["restartCount"] >= 1:
                    return True
        return False

    await eventually(crashing, message="no pod reached CrashLoopBackOff")
    failed = await _wait_status(
        api,
        WEB,
        lambda d: _condition(d, "Progressing").get("reason") == "ProgressDeadlineExceeded",
    )
    progressing = _condition(failed, "Progressing")
    assert progressing["status"] == "False"
    assert "has timed out progressing" in progressing["message"]
    # The old ReplicaSet keeps serving: the Deployment stays Available.
    assert _condition(failed, "Available")["status"] == "True"


async def test_missing_image_is_an_image_pull_back_off(api: Api, fakekube: FakeKube) -> None:
    """An image that does not exist leaves its pod Pending in ErrImagePull/ImagePullBackOff."""
    fakekube.faults.missing_images = ["registry.example/ghost:*"]
    await api.apply(WEB, deployment(replicas=1, image="registry.example/ghost:1"))
    reasons: set[str] = set()

    async def pulled_back_off() -> bool:
        for pod in (await api.get(PODS, labelSelector="app=web")).body["items"]:
            assert pod["status"]["phase"] == "Pending"
            for status in pod["status"].get("containerStatuses", []):
                reasons.add(status["state"].get("waiting", {}).get("reason", ""))
        return "ImagePullBackOff" in reasons

    await eventually(pulled_back_off, message="the pod never reached ImagePullBackOff")
    assert "ErrImagePull" in reasons
    current = (await api.get(WEB)).body
    assert current["status"].get("availableReplicas", 0) == 0
    assert _condition(current, "Available")["status"] == "False"


async def test_fault_removed_lets_the_rollout_finish(api: Api, fakekube: FakeKube) -> None:
    """Faults are read on every step: clearing crashloop_images lets the pods become Ready."""
    fakekube.faults.crashloop_images = ["app:flaky"]
    await api.apply(WEB, deployment(replicas=1, image="app:flaky"))
    await eventually(lambda: bool(fakekube.registry.store.count()), message="nothing stored")

    async def crashing() -> bool:
        pods = (await api.get(PODS, labelSelector="app=web")).body["items"]
        return any(
            s.get("state", {}).get("waiting", {}).get("reason") == "CrashLoopBackOff"
            for p in pods
            for s in p.get("status", {}).get("containerStatuses", [])
        )

    await eventually(crashing, message="no crash loop")
    fakekube.faults.crashloop_images = []
    fakekube.time_factor = 0.001
    await _wait_status(api, WEB, _rolled_out)


async def test_recreate_strategy(api: Api) -> None:
    """Recreate scales the old ReplicaSet to zero before the new one comes up."""
    await api.apply(WEB, deployment(replicas=2, image="a:1", strategy={"type": "Recreate"}))
    await _wait_status(api, WEB, _rolled_out)
    await api.apply(WEB, deployment(replicas=2, image="a:2", strategy={"type": "Recreate"}))
    rolled = await _wait_status(
        api,
        WEB,
        lambda d: (
            _rolled_out(d)
            and d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"
        ),
    )
    assert rolled["status"]["replicas"] == 2


async def test_scaling_a_deployment(api: Api) -> None:
    """Scaling through the scale subresource changes the pod count."""
    await api.apply(WEB, deployment(replicas=1))
    await _wait_status(api, WEB, _rolled_out)
    await api.patch(f"{WEB}/scale", {"spec": {"replicas": 4}}, "application/merge-patch+json")
    await _wait_status(api, WEB, lambda d: _rolled_out(d) and d["status"]["replicas"] == 4)
    pods = (await api.get(PODS, labelSelector="app=web")).body["items"]
    assert len(pods) == 4


async def test_deleting_a_deployment_collects_its_replica_sets_and_pods(api: Api) -> None:
    """Garbage collection removes the ReplicaSets and Pods a deleted Deployment owned."""
    await api.apply(WEB, deployment(replicas=2))
    await _wait_status(api, WEB, _rolled_out)
    await api.delete(WEB)

    async def collected() -> bool:
        pods = (await api.get(PODS)).body["items"]
        sets = (await api.get("/apis/apps/v1/namespaces/default/replicasets")).body["items"]
        return not pods and not sets

    await eventually(collected, message="dependents were not collected")


async def test_foreground_deletion_waits_for_dependents(api: Api) -> None:
    """Foreground deletion keeps the owner (with a finalizer) until its dependents are gone."""
    await api.apply(WEB, deployment(replicas=1))
    await _wait_status(api, WEB, _rolled_out)
    answer = await api.delete(WEB, propagationPolicy="Foreground")
    assert answer.status == 202
    assert "foregroundDeletion" in answer.body["metadata"]["finalizers"]

    async def gone() -> bool:
        return (await api.get(WEB)).status == 404

    await eventually(gone, message="the owner was never released")
    assert not (await api.get(PODS)).body["items"]


STATEFULSETS = "/apis/apps/v1/namespaces/default/statefulsets"


def statefulset(image: str, replicas: int = 3, partition: int | None = None) -> dict[str, Any]:
    """A StatefulSet with a volume claim template."""
    body: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "db"},
        "spec": {
            "replicas": replicas,
            "serviceName": "db",
            "selector": {"matchLabels": {"app": "db"}},
            "template": {
                "metadata": {"labels": {"app": "db"}},
                "spec": {"containers": [{"name": "db", "image": image}]},
            },
            "volumeClaimTemplates": [
                {
                    "metadata": {"name": "data"},
                    "spec": {
                        "accessModes": ["ReadWriteOnce"],
                        "resources": {"requests": {"storage": "1Gi"}},
                    },
                }
            ],
        },
    }
    if partition is not None:
        body["spec"]["updateStrategy"] = {
            "type": "RollingUpdate",
            "rollingUpdate": {"partition": partition},
        }
    return body


async def test_statefulset_ordered_pods_claims_and_partitioned_update(api: Api) -> None:
    """Pods db-0..2 come up in order with bound claims; a partition limits the update."""
    path = f"{STATEFULSETS}/db"
    await api.apply(path, statefulset("pg:15"))
    ready = await _wait_status(api, path, lambda s: s.get("status", {}).get("readyReplicas") == 3)
    assert ready["status"]["currentRevision"] == ready["status"]["updateRevision"]
    pods = (await api.get(PODS, labelSelector="app=db")).body["items"]
    assert sorted(p["metadata"]["name"] for p in pods) == ["db-0", "db-1", "db-2"]
    claims = (await api.get("/api/v1/namespaces/default/persistentvolumeclaims")).body["items"]
    assert sorted(c["metadata"]["name"] for c in claims) == ["data-db-0", "data-db-1", "data-db-2"]
    await _wait_status(
        api,
        "/api/v1/namespaces/default/persistentvolumeclaims/data-db-0",
        lambda c: c.get("status", {}).get("phase") == "Bound",
    )
    await api.apply(path, statefulset("pg:16", partition=2))
    partitioned = await _wait_status(
        api,
        path,
        lambda s: (
            s.get("status", {}).get("updatedReplicas") == 1
            and s["status"].get("readyReplicas") == 3
        ),
    )
    assert partitioned["status"]["currentRevision"] != partitioned["status"]["updateRevision"]
    images = {
        p["metadata"]["name"]: p["spec"]["containers"][0]["image"]
        for p in (await api.get(PODS, labelSelector="app=db")).body["items"]
    }
    assert images == {"db-0": "pg:15", "db-1": "pg:15", "db-2": "pg:16"}
    await api.apply(path, statefulset("pg:16", partition=0))
    done = await _wait_status(
        api,
        path,
        lambda s: (
            s.get("status", {}).get("updatedReplicas") == 3
            and s["status"].get("readyReplicas") == 3
            and s["status"].get("currentRevision") == s["status"].get("updateRevision")
        ),
    )
    assert done["status"]["currentReplicas"] == 3


async def test_persistent_volume_claims_bind(api: Api) -> None:
    """A claim becomes Bound to a provisioned PersistentVolume of the default class."""
    path = "/api/v1/namespaces/default/persistentvolumeclaims/data"
    claim = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "2Gi"}}},
    }
    await api.apply(path, claim)
    bound = await _wait_status(api, path, lambda c: c.get("status", {}).get("phase") == "Bound")
    assert bound["spec"]["storageClassName"] == "standard"
    assert bound["status"]["capacity"] == {"storage": "2Gi"}
    volume = (await api.get(f"/api/v1/persistentvolumes/{bound['spec']['volumeName']}")).body
    assert volume["spec"]["claimRef"]["name"] == "data"
    assert volume["status"]["phase"] == "Bound"


async def test_load_balancer_gets_an_address(api: Api) -> None:
    """A LoadBalancer Service gets status.loadBalancer.ingress after the rollout delay."""
    path = "/api/v1/namespaces/default/services/lb"
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "lb"},
        "spec": {"type": "LoadBalancer", "selector": {"app": "x"}, "ports": [{"port": 443}]},
    }
    await api.apply(path, service)
    ready = await _wait_status(
        api, path, lambda s: s.get("status", {}).get("loadBalancer", {}).get("ingress")
    )
    assert ready["status"]["loadBalancer"]["ingress"][0]["ip"].startswith("172.18.255.")


async def test_daemonset_runs_one_pod_per_node(api: Api) -> None:
    """A DaemonSet runs on the single node and reports itself rolled out."""
    path = "/apis/apps/v1/namespaces/default/daemonsets/agent"
    daemonset = {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": "agent"},
        "spec": {
            "selector": {"matchLabels": {"app": "agent"}},
            "template": {
                "metadata": {"labels": {"app": "agent"}},
                "spec": {"containers": [{"name": "agent", "image": "agent:1"}]},
            },
        },
    }
    await api.apply(path, daemonset)
    done = await _wait_status(api, path, lambda d: d.get("status", {}).get("numberAvailable") == 1)
    assert done["status"]["desiredNumberScheduled"] == 1
    assert done["status"]["updatedNumberScheduled"] == 1


def job(image: str, **spec: Any) -> dict[str, Any]:
    """A Job manifest."""
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "migrate"},
        "spec": {
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "migrate", "image": image}],
                }
            },
            **spec,
        },
    }


async def test_job_completes(api: Api) -> None:
    """A Job runs its pod to completion and gets a Complete condition."""
    path = "/apis/batch/v1/namespaces/default/jobs/migrate"
    created = await api.apply(path, job("migrate:1", completions=2, parallelism=2))
    assert created.body["spec"]["selector"]["matchLabels"]
    done = await _wait_status(
        api, path, lambda j: _condition(j, "Complete").get("status") == "True"
    )
    assert done["status"]["succeeded"] == 2
    assert done["status"]["completionTime"]


async def test_failing_job_hits_its_backoff_limit(api: Api, fakekube: FakeKube) -> None:
    """A Job whose pods fail gets Failed with reason BackoffLimitExceeded."""
    fakekube.faults.crashloop_images = ["migrate:bad"]
    path = "/apis/batch/v1/namespaces/default/jobs/migrate"
    await api.apply(path, job("migrate:bad", backoffLimit=1))
    failed = await _wait_status(
        api, path, lambda j: _condition(j, "Failed").get("status") == "True"
    )
    assert _condition(failed, "Failed")["reason"] == "BackoffLimitExceeded"
    assert failed["status"]["failed"] == 2


async def test_ingress_gets_an_address(api: Api) -> None:
    """An Ingress gets status.loadBalancer.ingress, as if an ingress controller served it."""
    path = "/apis/networking.k8s.io/v1/namespaces/default/ingresses/web"
    ingress = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": "web"},
        "spec": {
            "rules": [
                {
                    "host": "web.example",
                    "http": {
                        "paths": [
                            {
                                "path": "/",
                                "pathType": "Prefix",
                                "backend": {"service": {"name": "web", "port": {"number": 80}}},
                            }
                        ]
                    },
                }
            ]
        },
    }
    await api.apply(path, ingress)
    ready = await _wait_status(
        api, path, lambda i: i.get("status", {}).get("loadBalancer", {}).get("ingress")
    )
    assert ready["status"]["loadBalancer"]["ingress"][0]["ip"]


def autoscaler(target: str, low: int, high: int) -> dict[str, Any]:
    """An autoscaling/v2 HPA on a Deployment's CPU."""
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web"},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
            "minReplicas": low,
            "maxReplicas": high,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": 70},
                    },
                }
            ],
        },
    }


async def test_autoscaler_clamps_its_target_and_reports_conditions(api: Api) -> None:
    """An HPA scales its target into [min, max] and reads healthy; a missing target fails."""
    path = "/apis/autoscaling/v2/namespaces/default/horizontalpodautoscalers/web"
    await api.apply(WEB, deployment(replicas=1))
    await api.apply(path, autoscaler("web", 3, 5))
    scaled = await _wait_status(api, WEB, lambda d: d["spec"]["replicas"] == 3)
    assert scaled["spec"]["replicas"] == 3
    settled = await _wait_status(
        api,
        path,
        lambda h: _condition(h, "ScalingLimited").get("reason") == "DesiredWithinRange",
    )
    assert settled["status"]["currentReplicas"] == 3
    assert settled["status"]["currentMetrics"][0]["resource"]["current"] == {
        "averageUtilization": 70
    }
    await api.apply(path, autoscaler("missing", 1, 2))
    broken = await _wait_status(
        api, path, lambda h: _condition(h, "AbleToScale").get("reason") == "FailedGetScale"
    )
    assert _condition(broken, "AbleToScale")["status"] == "False"


async def test_scale_to_zero_and_back(api: Api) -> None:
    """Scaling to zero removes the pods and stays complete; scaling back rolls out again."""
    await api.apply(WEB, deployment(replicas=2))
    await _wait_status(api, WEB, _rolled_out)
    await api.patch(f"{WEB}/scale", {"spec": {"replicas": 0}}, "application/merge-patch+json")

    async def no_pods() -> bool:
        return not (await api.get(PODS, labelSelector="app=web")).body["items"]

    await eventually(no_pods, message="pods were not removed")
    stopped = await _wait_status(api, WEB, lambda d: d["spec"]["replicas"] == 0 and _rolled_out(d))
    assert _condition(stopped, "Available")["status"] == "True"
    assert "replicas" not in stopped["status"]
    await api.patch(f"{WEB}/scale", {"spec": {"replicas": 2}}, "application/merge-patch+json")
    back = await _wait_status(api, WEB, lambda d: d["spec"]["replicas"] == 2 and _rolled_out(d))
    assert back["status"]["availableReplicas"] == 2


async def test_a_bare_pod_is_scheduled_and_runs(api: Api) -> None:
    """A Pod created directly is bound to the node and becomes Running and Ready."""
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "solo"},
        "spec": {"containers": [{"name": "solo", "image": "busybox:1"}]},
    }
    created = await api.post(PODS, pod)
    assert created.body["status"]["phase"] == "Pending"
    assert created.body["spec"]["serviceAccountName"] == "default"
    running = await _wait_status(
        api, f"{PODS}/solo", lambda p: p.get("status", {}).get("phase") == "Running"
    )
    assert running["spec"]["nodeName"] == "fakekube-node"
    assert _condition(running, "Ready")["status"] == "True"
