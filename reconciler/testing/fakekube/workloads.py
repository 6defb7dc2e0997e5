"""Workload controllers: a kubelet for Pods, and ReplicaSets, Deployments, StatefulSets,
DaemonSets and Jobs, following the algorithms of kube-controller-manager closely enough that
``kubectl rollout status`` and a health checker see what they would see on a real cluster.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable, Sequence
from typing import Any

from .api_errors import ApiError
from .controllers import ControllerManager, condition, controller_owner, controller_ref
from .defaults import NODE_NAME
from .objects import clone, now_iso, random_suffix
from .registry import Registry
from .resource_types import ResourceType
from .store import LabelSelector, WatchEvent

_HASH_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_TEMPLATE_HASH = "pod-template-hash"
_REVISION = "deployment.kubernetes.io/revision"
_REVISION_HASH = "controller-revision-hash"


def template_hash(template: Any, collisions: int = 0) -> str:
    """A short, stable hash of a pod template (the pod-template-hash label)."""
    text = json.dumps(template, sort_keys=True, separators=(",", ":")) + f"/{collisions}"
    number = int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big")
    return "".join(_HASH_ALPHABET[ord(char) % len(_HASH_ALPHABET)] for char in str(number))


def is_ready(pod: dict[str, Any]) -> bool:
    """True when the Pod's Ready condition is True."""
    for cond in (pod.get("status") or {}).get("conditions") or ():
        if cond.get("type") == "Ready":
            return bool(cond.get("status") == "True")
    return False


def _terminated(pod: dict[str, Any]) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def _int_or_percent(value: Any, total: int, *, round_up: bool) -> int:
    if isinstance(value, int):
        return value
    text = str(value or "0")
    if text.endswith("%"):
        share = total * int(text[:-1]) / 100
        return math.ceil(share) if round_up else math.floor(share)
    return int(text) if re.fullmatch(r"\d+", text) else 0


class Workloads:
    """The workload controllers, sharing the manager's queue and memory."""

    def __init__(self, manager: ControllerManager) -> None:
        self.manager = manager
        self.registry: Registry = manager.registry
        reg = self.registry
        self.pods = reg.resource("v1", "Pod")
        self.replica_sets = reg.resource("apps/v1", "ReplicaSet")
        self.deployments = reg.resource("apps/v1", "Deployment")
        self.stateful_sets = reg.resource("apps/v1", "StatefulSet")
        self.daemon_sets = reg.resource("apps/v1", "DaemonSet")
        self.jobs = reg.resource("batch/v1", "Job")
        self.pvcs = reg.resource("v1", "PersistentVolumeClaim")
        self.revisions = reg.resource("apps/v1", "ControllerRevision")
        self.nodes = reg.resource("v1", "Node")
        self._next_pod_ip = 2
        manager.register("pod", self.sync_pod)
        manager.register("replicaset", self.sync_replica_set)
        manager.register("deployment", self.sync_deployment)
        manager.register("statefulset", self.sync_stateful_set)
        manager.register("daemonset", self.sync_daemon_set)
        manager.register("job", self.sync_job)
        owner_controllers = {
            "ReplicaSet": "replicaset",
            "Deployment": "deployment",
            "StatefulSet": "statefulset",
            "DaemonSet": "daemonset",
            "Job": "job",
        }
        manager.route(("", "pods"), self._router("pod", owner_controllers))
        manager.route(("apps", "replicasets"), self._router("replicaset", owner_controllers))
        manager.route(("apps", "deployments"), self._router("deployment", owner_controllers))
        manager.route(("apps", "statefulsets"), self._router("statefulset", owner_controllers))
        manager.route(("apps", "daemonsets"), self._router("daemonset", owner_controllers))
        manager.route(("batch", "jobs"), self._router("job", owner_controllers))

    def _router(self, controller: str, owners: dict[str, str]) -> Callable[[WatchEvent], None]:
        def callback(event: WatchEvent) -> None:
            meta = event.object["metadata"]
            namespace = meta.get("namespace", "")
            if event.type == "DELETED":
                self.manager.forget(meta["uid"])
            else:
                self.manager.enqueue(controller, namespace, meta["name"])
            owner = controller_owner(event.object)
            if owner is not None and owner.get("kind") in owners:
                self.manager.enqueue(owners[owner["kind"]], namespace, owner["name"])

        return callback

    # ------------------------------------------------------------------ helpers

    def _owned(self, owner: dict[str, Any], resource: ResourceType) -> list[dict[str, Any]]:
        store = self.registry.store
        key = self.registry.types.storage_key(resource)
        result = []
        for resource_key, (namespace, name) in store.dependents(owner["metadata"]["uid"]):
            if resource_key != key:
                continue
            obj = store.get(resource_key, namespace, name)
            if obj is None:
                continue
            ref = controller_owner(obj)
            if ref is not None and ref.get("uid") == owner["metadata"]["uid"]:
                result.append(obj)
        return result

    def _available(self, pod: dict[str, Any], min_ready_seconds: int) -> tuple[bool, float]:
        """(available now, seconds until it will be) for a Pod under ``minReadySeconds``."""
        if not is_ready(pod):
            return False, 0.0
        if min_ready_seconds <= 0:
            return True, 0.0
        ready_at = self.manager.remember(pod["metadata"]["uid"]).get("ready_at")
        if ready_at is None:
            return True, 0.0
        wait = ready_at + self.manager.scaled(min_ready_seconds) - self.manager.now()
        return wait <= 0, max(0.0, wait)

    def _delete(self, resource: ResourceType, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        try:
            self.registry.delete(resource, meta.get("namespace", ""), meta["name"])
        except ApiError as exc:
            if exc.code != 404:
                raise

    def _new_pod(
        self,
        owner: dict[str, Any],
        template: dict[str, Any],
        *,
        name: str,
        extra_labels: dict[str, str] | None = None,
        extra_annotations: dict[str, str] | None = None,
        spec_updates: dict[str, Any] | None = None,
    ) -> dict[str, Any] | None:
        template_meta = template.get("metadata") or {}
        labels = dict(template_meta.get("labels") or {})
        labels.update(extra_labels or {})
        meta: dict[str, Any] = {
            "name": name,
            "namespace": owner["metadata"]["namespace"],
            "labels": labels,
            "ownerReferences": [controller_ref(owner)],
        }
        annotations = dict(template_meta.get("annotations") or {})
        annotations.update(extra_annotations or {})
        if annotations:
            meta["annotations"] = annotations
        spec = clone(template.get("spec") or {})
        spec["nodeName"] = NODE_NAME
        spec.update(spec_updates or {})
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}
        return self.registry.create_object(self.pods, pod)

    # ------------------------------------------------------------------ kubelet

    def sync_pod(self, namespace: str, name: str) -> None:
        """Moves a Pod through its life: Pending, then Running and Ready (or a back-off)."""
        pod = self.registry.find(self.pods, namespace, name)
        if pod is None or pod["metadata"].get("deletionTimestamp") or _terminated(pod):
            return
        if not (pod.get("spec") or {}).get("nodeName"):
            # The scheduler's part: bind the Pod to the one node.
            bound = clone(pod)
            bound.setdefault("spec", {})["nodeName"] = NODE_NAME
            pod = self.registry.write_object(self.pods, bound, manager="kube-scheduler") or pod
        manager = self.manager
        memory = manager.remember(pod["metadata"]["uid"])
        now = manager.now()
        started = memory.setdefault("created", now)
        spec = pod.get("spec") or {}
        containers = [c for c in spec.get("containers") or () if isinstance(c, dict)]
        status = dict(pod.get("status") or {})
        delay = manager.settings.rollout_delay_s
        if now < started + delay:
            if "startTime" not in status:
                self.registry.write_status(
                    self.pods, pod, self._pending_status(pod), manager="kubelet"
                )
            manager.enqueue("pod", namespace, name, started + delay - now)
            return
        faults = manager.settings.faults
        failing = [(c, faults.image_fault(str(c.get("image", "")))) for c in containers]
        restart_policy = spec.get("restartPolicy", "Always")
        step = int(memory.get("step", 0))
        if any(fault for _, fault in failing):
            memory.pop("ready_at", None)
            next_step = float(memory.get("next_step_at", now))
            if now >= next_step:
                # One more failed start (or pull): the back-off doubles, as the kubelet's does.
                memory["step"] = step + 1
                new_status = self._failing_status(pod, failing, step, restart_policy)
                self.registry.write_status(self.pods, pod, new_status, manager="kubelet")
                if new_status.get("phase") == "Failed":
                    return
                missing = any(fault == "missing" for _, fault in failing)
                if missing and step % 2 == 0:
                    # ErrImagePull shows briefly; ImagePullBackOff lasts the back-off.
                    backoff = delay
                else:
                    retries = step // 2 if missing else step
                    backoff = max(delay, manager.scaled(min(300.0, 10.0 * 2**retries)))
                next_step = now + backoff
                memory["next_step_at"] = next_step
            # Look again soon: the fault may be lifted before the back-off ends.
            manager.enqueue("pod", namespace, name, min(next_step - now, max(delay, 0.05)))
            return
        if restart_policy != "Always" and is_ready(pod):
            finished_at = memory.setdefault("finish_at", now + delay)
            if now < finished_at:
                manager.enqueue("pod", namespace, name, finished_at - now)
                return
            self.registry.write_status(
                self.pods, pod, self._succeeded_status(pod), manager="kubelet"
            )
            return
        if is_ready(pod):
            return
        memory["ready_at"] = now
        self.registry.write_status(self.pods, pod, self._running_status(pod), manager="kubelet")
        if restart_policy != "Always":
            memory["finish_at"] = now + delay
            manager.enqueue("pod", namespace, name, delay)

    def _pod_ip(self, pod: dict[str, Any]) -> str:
        current = (pod.get("status") or {}).get("podIP")
        if current:
            return str(current)
        address = f"10.244.{self._next_pod_ip // 250}.{self._next_pod_ip % 250 + 2}"
        self._next_pod_ip += 1
        return address

    def _base_status(self, pod: dict[str, Any]) -> dict[str, Any]:
        status = pod.get("status") or {}
        return {
            "hostIP": "172.18.0.2",
            "hostIPs": [{"ip": "172.18.0.2"}],
            "qosClass": status.get("qosClass", "BestEffort"),
            "startTime": status.get("startTime", now_iso()),
        }

    def _conditions(
        self, pod: dict[str, Any], *, ready: bool, scheduled: bool = True, reason: str | None = None
    ) -> list[dict[str, Any]]:
        previous = (pod.get("status") or {}).get("conditions")
        not_ready_reason = reason or "ContainersNotReady"
        names = ",".join(c.get("name", "") for c in (pod.get("spec") or {}).get("containers") or ())
        message = f"containers with unready status: [{names}]"
        result = [
            condition(previous, "PodReadyToStartContainers", "True", "", ""),
            condition(previous, "Initialized", "True", "", ""),
            condition(
                previous,
                "Ready",
                "True" if ready else "False",
                "" if ready else not_ready_reason,
                "" if ready else message,
            ),
            condition(
                previous,
                "ContainersReady",
                "True" if ready else "False",
                "" if ready else not_ready_reason,
                "" if ready else message,
            ),
            condition(previous, "PodScheduled", "True" if scheduled else "False", "", ""),
        ]
        for item in result:
            if not item["reason"]:
                del item["reason"]
            if not item["message"]:
                del item["message"]
            item["lastProbeTime"] = None
        return result

    def _pending_status(self, pod: dict[str, Any]) -> dict[str, Any]:
        status = self._base_status(pod)
        status["phase"] = "Pending"
        status["conditions"] = self._conditions(pod, ready=False)
        status["containerStatuses"] = [
            {
                "name": c.get("name"),
                "image": c.get("image"),
                "imageID": "",
                "ready": False,
                "restartCount": 0,
                "started": False,
                "state": {"waiting": {"reason": "ContainerCreating"}},
            }
            for c in (pod.get("spec") or {}).get("containers") or ()
        ]
        return status

    def _container_id(self, pod: dict[str, Any], name: str, restarts: int = 0) -> str:
        digest = hashlib.sha256(f"{pod['metadata']['uid']}/{name}/{restarts}".encode()).hexdigest()
        return f"containerd://{digest}"

    def _image_id(self, image: str) -> str:
        digest = hashlib.sha256(image.encode()).hexdigest()
        repository = (
            image.split("@", 1)[0].rsplit(":", 1)[0] if ":" in image.rsplit("/", 1)[-1] else image
        )
        return f"{repository}@sha256:{digest}"

    def _running_status(self, pod: dict[str, Any]) -> dict[str, Any]:
        status = self._base_status(pod)
        now = now_iso()
        pod_ip = self._pod_ip(pod)
        status.update(phase="Running", podIP=pod_ip, podIPs=[{"ip": pod_ip}])
        status["conditions"] = self._conditions(pod, ready=True)
        previous = {
            s.get("name"): s for s in (pod.get("status") or {}).get("containerStatuses") or ()
        }
        statuses = []
        for container in (pod.get("spec") or {}).get("containers") or ():
            name = container.get("name", "")
            restarts = int(previous.get(name, {}).get("restartCount", 0))
            entry: dict[str, Any] = {
                "name": name,
                "image": container.get("image"),
                "imageID": self._image_id(str(container.get("image", ""))),
                "containerID": self._container_id(pod, name, restarts),
                "ready": True,
                "restartCount": restarts,
                "started": True,
                "state": {"running": {"startedAt": now}},
            }
            last = previous.get(name, {}).get("lastState")
            if last:
                entry["lastState"] = last
            statuses.append(entry)
        status["containerStatuses"] = statuses
        return status

    def _succeeded_status(self, pod: dict[str, Any]) -> dict[str, Any]:
        status = self._running_status(pod)
        now = now_iso()
        status["phase"] = "Succeeded"
        status["conditions"] = self._conditions(pod, ready=False, reason="PodCompleted")
        for entry in status["containerStatuses"]:
            started = entry["state"]["running"]["startedAt"]
            entry.update(ready=False, started=False)
            entry["state"] = {
                "terminated": {
                    "exitCode": 0,
                    "reason": "Completed",
                    "startedAt": started,
                    "finishedAt": now,
                    "containerID": entry["containerID"],
                }
            }
        return status

    def _failing_status(
        self,
        pod: dict[str, Any],
        failing: Sequence[tuple[dict[str, Any], str | None]],
        step: int,
        restart_policy: str,
    ) -> dict[str, Any]:
        status = self._base_status(pod)
        now = now_iso()
        pod_name = pod["metadata"]["name"]
        missing = any(fault == "missing" for _, fault in failing)
        statuses = []
        phase = "Pending" if missing else "Running"
        for container, fault in failing:
            name = container.get("name", "")
            image = str(container.get("image", ""))
            entry: dict[str, Any] = {
                "name": name,
                "image": image,
                "imageID": "",
                "ready": False,
                "restartCount": 0,
                "started": False,
            }
            if fault == "missing":
                reason = "ErrImagePull" if step % 2 == 0 else "ImagePullBackOff"
                message = (
                    f'failed to pull and unpack image "{image}": failed to resolve reference '
                    f'"{image}": {image}: not found'
                    if reason == "ErrImagePull"
                    else f'Back-off pulling image "{image}"'
                )
                entry["state"] = {"waiting": {"reason": reason, "message": message}}
            elif fault == "crashloop":
                restarts = step + 1
                entry["imageID"] = self._image_id(image)
                entry["containerID"] = self._container_id(pod, name, restarts)
                entry["restartCount"] = restarts
                terminated = {
                    "exitCode": 1,
                    "reason": "Error",
                    "startedAt": now,
                    "finishedAt": now,
                    "containerID": entry["containerID"],
                }
                if restart_policy == "Never":
                    entry["restartCount"] = 0
                    entry["state"] = {"terminated": terminated}
                    phase = "Failed"
                else:
                    backoff = min(300, 10 * 2**step)
                    entry["lastState"] = {"terminated": terminated}
                    entry["state"] = {
                        "waiting": {
                            "reason": "CrashLoopBackOff",
                            "message": f"back-off {backoff}s restarting failed container={name} "
                            f"pod={pod_name}_{pod['metadata']['namespace']}"
                            f"({pod['metadata']['uid']})",
                        }
                    }
            elif missing:
                entry["state"] = {"waiting": {"reason": "PodInitializing"}}
            else:
                entry.update(
                    ready=False,
                    started=True,
                    imageID=self._image_id(image),
                    containerID=self._container_id(pod, name),
                    state={"running": {"startedAt": now}},
                )
            statuses.append(entry)
        status["phase"] = phase
        if phase == "Running":
            pod_ip = self._pod_ip(pod)
            status.update(podIP=pod_ip, podIPs=[{"ip": pod_ip}])
        status["conditions"] = self._conditions(pod, ready=False)
        status["containerStatuses"] = statuses
        return status

    # ------------------------------------------------------------------ ReplicaSet

    def sync_replica_set(self, namespace: str, name: str) -> None:
        """Keeps ``spec.replicas`` Pods and reports how many are ready and available."""
        rs = self.registry.find(self.replica_sets, namespace, name)
        if rs is None or rs["metadata"].get("deletionTimestamp"):
            return
        spec = rs.get("spec") or {}
        wanted = int(spec.get("replicas", 1))
        pods = [
            p
            for p in self._owned(rs, self.pods)
            if not p["metadata"].get("deletionTimestamp") and not _terminated(p)
        ]
        template = spec.get("template") or {}
        if len(pods) < wanted:
            for _ in range(wanted - len(pods)):
                created = self._new_pod(rs, template, name=f"{name}-{random_suffix()}")
                if created is None:
                    return
                pods.append(created)
        elif len(pods) > wanted:

            def rank(pod: dict[str, Any]) -> tuple[int, str]:
                phase = (pod.get("status") or {}).get("phase")
                order = 0 if phase == "Pending" else 1 if not is_ready(pod) else 2
                return (order, "~" + pod["metadata"].get("creationTimestamp", ""))

            doomed = sorted(pods, key=rank)[: len(pods) - wanted]
            for pod in doomed:
                self._delete(self.pods, pod)
            pods = [p for p in pods if p not in doomed]
        self._write_replica_set_status(rs, pods)

    def _write_replica_set_status(self, rs: dict[str, Any], pods: list[dict[str, Any]]) -> None:
        min_ready = int((rs.get("spec") or {}).get("minReadySeconds", 0))
        ready = sum(1 for p in pods if is_ready(p))
        available = 0
        wait_for = None
        for pod in pods:
            now_available, wait = self._available(pod, min_ready)
            if now_available:
                available += 1
            elif wait > 0:
                wait_for = wait if wait_for is None else min(wait_for, wait)
        selector = LabelSelector.from_label_selector((rs.get("spec") or {}).get("selector"))
        status: dict[str, Any] = {
            "replicas": len(pods),
            "fullyLabeledReplicas": sum(
                1 for p in pods if selector.matches(p["metadata"].get("labels") or {})
            ),
            "readyReplicas": ready,
            "availableReplicas": available,
            "observedGeneration": rs["metadata"].get("generation", 1),
        }
        for key in ("readyReplicas", "availableReplicas", "fullyLabeledReplicas"):
            if status[key] == 0:
                del status[key]
        self.registry.write_status(self.replica_sets, rs, status)
        if wait_for is not None:
            meta = rs["metadata"]
            self.manager.enqueue("replicaset", meta["namespace"], meta["name"], wait_for + 0.001)

    # ------------------------------------------------------------------ Deployment

    def sync_deployment(self, namespace: str, name: str) -> None:
        """One step of a rollout, then the status that describes it."""
        deployment = self.registry.find(self.deployments, namespace, name)
        if deployment is None or deployment["metadata"].get("deletionTimestamp"):
            return
        spec = deployment.get("spec") or {}
        desired = int(spec.get("replicas", 1))
        template = spec.get("template") or {}
        replica_sets = sorted(
            self._owned(deployment, self.replica_sets),
            key=lambda r: (r["metadata"].get("creationTimestamp", ""), r["metadata"]["name"]),
        )
        new_rs = next((r for r in replica_sets if self._same_template(r, template)), None)
        old = [r for r in replica_sets if r is not new_rs]
        memory = self.manager.remember(deployment["metadata"]["uid"])
        event: tuple[str, str] | None = None
        paused = bool(spec.get("paused"))
        max_revision = max((self._revision(r) for r in old), default=0)
        if new_rs is None and not paused:
            new_rs = self._create_replica_set(deployment, template, desired, old, max_revision + 1)
            if new_rs is None:
                return
            event = (
                "NewReplicaSetCreated",
                f'Created new replica set "{new_rs["metadata"]["name"]}"',
            )
        elif new_rs is not None and self._revision(new_rs) <= max_revision:
            new_rs = self._set_revision(new_rs, max_revision + 1)
            event = ("FoundNewReplicaSet", f'Found new replica set "{new_rs["metadata"]["name"]}"')
        if new_rs is not None:
            revision = str(self._revision(new_rs))
            annotations = deployment["metadata"].get("annotations") or {}
            if annotations.get(_REVISION) != revision:
                candidate = clone(deployment)
                candidate["metadata"].setdefault("annotations", {})[_REVISION] = revision
                updated = self.registry.write_object(self.deployments, candidate)
                if updated is None:
                    return
                deployment = updated
        if not paused and new_rs is not None:
            strategy = (spec.get("strategy") or {}).get("type", "RollingUpdate")
            if strategy == "Recreate":
                self._recreate(deployment, new_rs, old, desired)
            else:
                self._rolling_update(deployment, new_rs, old, desired)
            replica_sets = [
                r
                for r in (
                    self.registry.find(self.replica_sets, namespace, rs["metadata"]["name"])
                    for rs in [*old, new_rs]
                )
                if r is not None
            ]
            new_rs = next((r for r in replica_sets if self._same_template(r, template)), new_rs)
            self._clean_history(deployment, [r for r in replica_sets if r is not new_rs])
        self._deployment_status(deployment, new_rs, replica_sets, memory, event, paused)

    def _same_template(self, rs: dict[str, Any], template: dict[str, Any]) -> bool:
        rs_template = clone((rs.get("spec") or {}).get("template") or {})
        labels = (rs_template.get("metadata") or {}).get("labels")
        if isinstance(labels, dict):
            labels.pop(_TEMPLATE_HASH, None)
        return bool(rs_template == template)

    @staticmethod
    def _revision(rs: dict[str, Any]) -> int:
        value = (rs["metadata"].get("annotations") or {}).get(_REVISION, "0")
        return int(value) if str(value).isdigit() else 0

    def _set_revision(self, rs: dict[str, Any], revision: int) -> dict[str, Any]:
        candidate = clone(rs)
        candidate["metadata"].setdefault("annotations", {})[_REVISION] = str(revision)
        return self.registry.write_object(self.replica_sets, candidate) or rs

    def _surge_and_unavailable(self, deployment: dict[str, Any], desired: int) -> tuple[int, int]:
        rolling = ((deployment.get("spec") or {}).get("strategy") or {}).get("rollingUpdate") or {}
        surge = _int_or_percent(rolling.get("maxSurge", "25%"), desired, round_up=True)
        unavailable = _int_or_percent(rolling.get("maxUnavailable", "25%"), desired, round_up=False)
        if surge == 0 and unavailable == 0:
            unavailable = 1
        return surge, min(unavailable, desired)

    def _create_replica_set(
        self,
        deployment: dict[str, Any],
        template: dict[str, Any],
        desired: int,
        old: list[dict[str, Any]],
        revision: int,
    ) -> dict[str, Any] | None:
        meta = deployment["metadata"]
        spec = deployment.get("spec") or {}
        collisions = int((deployment.get("status") or {}).get("collisionCount", 0))
        hash_value = template_hash(template, collisions)
        rs_template = clone(template)
        rs_template.setdefault("metadata", {}).setdefault("labels", {})[_TEMPLATE_HASH] = hash_value
        selector = clone(spec.get("selector") or {})
        selector.setdefault("matchLabels", {})[_TEMPLATE_HASH] = hash_value
        surge, _ = self._surge_and_unavailable(deployment, desired)
        old_pods = sum(int((r.get("spec") or {}).get("replicas", 0)) for r in old)
        strategy = (spec.get("strategy") or {}).get("type", "RollingUpdate")
        if old_pods == 0 and strategy != "Recreate":
            replicas = desired
        elif strategy == "Recreate":
            replicas = 0
        else:
            replicas = max(0, min(desired, desired + surge - old_pods))
        labels = dict(rs_template["metadata"]["labels"])
        rs: dict[str, Any] = {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": f"{meta['name']}-{hash_value}",
                "namespace": meta["namespace"],
                "labels": labels,
                "annotations": {
                    "deployment.kubernetes.io/desired-replicas": str(desired),
                    "deployment.kubernetes.io/max-replicas": str(desired + surge),
                    _REVISION: str(revision),
                },
                "ownerReferences": [controller_ref(deployment)],
            },
            "spec": {
                "replicas": replicas,
                "selector": selector,
                "template": rs_template,
            },
        }
        if spec.get("minReadySeconds"):
            rs["spec"]["minReadySeconds"] = spec["minReadySeconds"]
        return self.registry.create_object(self.replica_sets, rs)

    def _scale(self, rs: dict[str, Any], replicas: int, desired: int, surge: int) -> dict[str, Any]:
        if int((rs.get("spec") or {}).get("replicas", 0)) == replicas:
            return rs
        candidate = clone(rs)
        candidate["spec"]["replicas"] = replicas
        annotations = candidate["metadata"].setdefault("annotations", {})
        annotations["deployment.kubernetes.io/desired-replicas"] = str(desired)
        annotations["deployment.kubernetes.io/max-replicas"] = str(desired + surge)
        return self.registry.write_object(self.replica_sets, candidate) or rs

    def _rolling_update(
        self,
        deployment: dict[str, Any],
        new_rs: dict[str, Any],
        old: list[dict[str, Any]],
        desired: int,
    ) -> None:
        surge, max_unavailable = self._surge_and_unavailable(deployment, desired)

        def replicas_of(rs: dict[str, Any]) -> int:
            return int((rs.get("spec") or {}).get("replicas", 0))

        def available_of(rs: dict[str, Any]) -> int:
            return int((rs.get("status") or {}).get("availableReplicas", 0))

        new_replicas = replicas_of(new_rs)
        all_rs = [*old, new_rs]
        if new_replicas > desired:
            self._scale(new_rs, desired, desired, surge)
            return
        if new_replicas < desired:
            current = sum(replicas_of(r) for r in all_rs)
            room = desired + surge - current
            if room > 0:
                target = new_replicas + min(room, desired - new_replicas)
                self._scale(new_rs, target, desired, surge)
                return
        if sum(replicas_of(r) for r in old) == 0:
            return
        min_available = desired - max_unavailable
        new_unavailable = new_replicas - available_of(new_rs)
        all_pods = sum(replicas_of(r) for r in all_rs)
        max_scaled_down = all_pods - min_available - new_unavailable
        if max_scaled_down <= 0:
            return
        # Unhealthy old replicas go first, as they do not count towards availability.
        cleaned = 0
        refreshed: list[dict[str, Any]] = []
        for rs in old:
            unhealthy = replicas_of(rs) - available_of(rs)
            if replicas_of(rs) == 0 or unhealthy <= 0 or cleaned >= max_scaled_down:
                refreshed.append(rs)
                continue
            count = min(max_scaled_down - cleaned, unhealthy)
            cleaned += count
            refreshed.append(self._scale(rs, replicas_of(rs) - count, desired, surge))
        available = sum(available_of(r) for r in [*refreshed, new_rs])
        budget = available - min_available
        for rs in refreshed:
            if budget <= 0:
                break
            count = min(replicas_of(rs), budget)
            if count > 0:
                self._scale(rs, replicas_of(rs) - count, desired, surge)
                budget -= count

    def _recreate(
        self,
        deployment: dict[str, Any],
        new_rs: dict[str, Any],
        old: list[dict[str, Any]],
        desired: int,
    ) -> None:
        for rs in old:
            self._scale(rs, 0, desired, 0)
        if any(int((rs.get("status") or {}).get("replicas", 0)) for rs in old):
            return
        self._scale(new_rs, desired, desired, 0)

    def _clean_history(self, deployment: dict[str, Any], old: list[dict[str, Any]]) -> None:
        limit = int((deployment.get("spec") or {}).get("revisionHistoryLimit", 10))
        idle = [
            r
            for r in old
            if int((r.get("spec") or {}).get("replicas", 0)) == 0
            and int((r.get("status") or {}).get("replicas", 0)) == 0
        ]
        idle.sort(key=self._revision)
        for rs in idle[: max(0, len(idle) - limit)]:
            self._delete(self.replica_sets, rs)

    def _deployment_status(
        self,
        deployment: dict[str, Any],
        new_rs: dict[str, Any] | None,
        replica_sets: list[dict[str, Any]],
        memory: dict[str, Any],
        event: tuple[str, str] | None,
        paused: bool,
    ) -> None:
        spec = deployment.get("spec") or {}
        desired = int(spec.get("replicas", 1))
        previous = deployment.get("status") or {}

        def total(field: str, items: list[dict[str, Any]]) -> int:
            return sum(int((r.get("status") or {}).get(field, 0)) for r in items)

        replicas = total("replicas", replica_sets)
        updated = int((new_rs.get("status") or {}).get("replicas", 0)) if new_rs else 0
        ready = total("readyReplicas", replica_sets)
        available = total("availableReplicas", replica_sets)
        spec_total = sum(int((r.get("spec") or {}).get("replicas", 0)) for r in replica_sets)
        generation = int(deployment["metadata"].get("generation", 1))
        status: dict[str, Any] = {
            "observedGeneration": generation,
            "replicas": replicas,
            "updatedReplicas": updated,
            "readyReplicas": ready,
            "availableReplicas": available,
            "unavailableReplicas": max(0, spec_total - available),
        }
        for key in (
            "replicas",
            "updatedReplicas",
            "readyReplicas",
            "availableReplicas",
            "unavailableReplicas",
        ):
            if status[key] == 0:
                del status[key]
        if previous.get("collisionCount"):
            status["collisionCount"] = previous["collisionCount"]
        conditions = previous.get("conditions") or []
        _, max_unavailable = self._surge_and_unavailable(deployment, desired)
        if available >= desired - max_unavailable:
            available_condition = condition(
                conditions,
                "Available",
                "True",
                "MinimumReplicasAvailable",
                "Deployment has minimum availability.",
                update_time=True,
            )
        else:
            available_condition = condition(
                conditions,
                "Available",
                "False",
                "MinimumReplicasUnavailable",
                "Deployment does not have minimum availability.",
                update_time=True,
            )
        now = self.manager.now()
        progressed = (
            updated > int(previous.get("updatedReplicas", 0))
            or (replicas - updated)
            < (int(previous.get("replicas", 0)) - int(previous.get("updatedReplicas", 0)))
            or ready > int(previous.get("readyReplicas", 0))
            or available > int(previous.get("availableReplicas", 0))
        )
        complete = (
            new_rs is not None
            and updated == desired
            and replicas == desired
            and available == desired
        )
        rs_name = new_rs["metadata"]["name"] if new_rs is not None else ""
        deadline = self.manager.scaled(float(spec.get("progressDeadlineSeconds", 600)))
        old_progressing = next((c for c in conditions if c.get("type") == "Progressing"), None)
        if paused:
            progressing = condition(
                conditions,
                "Progressing",
                "Unknown",
                "DeploymentPaused",
                "Deployment is paused",
                update_time=True,
            )
            memory.pop("progress_at", None)
        elif event is not None:
            memory["progress_at"] = now
            progressing = condition(
                conditions, "Progressing", "True", event[0], event[1], update_time=True, touch=True
            )
        elif complete:
            memory.pop("progress_at", None)
            progressing = condition(
                conditions,
                "Progressing",
                "True",
                "NewReplicaSetAvailable",
                f'ReplicaSet "{rs_name}" has successfully progressed.',
                update_time=True,
            )
        elif (
            progressed
            or old_progressing is None
            or (old_progressing.get("reason") == "NewReplicaSetAvailable")
        ):
            memory["progress_at"] = now
            progressing = condition(
                conditions,
                "Progressing",
                "True",
                "ReplicaSetUpdated",
                f'ReplicaSet "{rs_name}" is progressing.',
                update_time=True,
                touch=True,
            )
        else:
            progress_at = memory.setdefault("progress_at", now)
            if now - progress_at >= deadline:
                progressing = condition(
                    conditions,
                    "Progressing",
                    "False",
                    "ProgressDeadlineExceeded",
                    f'ReplicaSet "{rs_name}" has timed out progressing.',
                    update_time=True,
                )
            else:
                progressing = dict(old_progressing)
        if not complete and not paused and progressing.get("reason") != "ProgressDeadlineExceeded":
            wait = memory.get("progress_at", now) + deadline - now
            meta = deployment["metadata"]
            self.manager.enqueue(
                "deployment", meta["namespace"], meta["name"], max(0.0, wait) + 0.001
            )
        status["conditions"] = [available_condition, progressing]
        self.registry.write_status(self.deployments, deployment, status)

    # ------------------------------------------------------------------ StatefulSet

    def sync_stateful_set(self, namespace: str, name: str) -> None:
        """Ordered (or parallel) Pods name-0..n-1 with claims, rolled from the top ordinal down."""
        sts = self.registry.find(self.stateful_sets, namespace, name)
        if sts is None or sts["metadata"].get("deletionTimestamp"):
            return
        spec = sts.get("spec") or {}
        replicas = int(spec.get("replicas", 1))
        template = spec.get("template") or {}
        update_revision = f"{name}-{template_hash(template)}"
        status = sts.get("status") or {}
        current_revision = status.get("currentRevision") or update_revision
        self._ensure_revision(sts, update_revision, template)
        strategy = spec.get("updateStrategy") or {}
        rolling = strategy.get("type", "RollingUpdate") == "RollingUpdate"
        partition = int((strategy.get("rollingUpdate") or {}).get("partition", 0)) if rolling else 0
        ordered = spec.get("podManagementPolicy", "OrderedReady") == "OrderedReady"
        pods: dict[int, dict[str, Any]] = {}
        for pod in self._owned(sts, self.pods):
            match = re.fullmatch(re.escape(name) + r"-(\d+)", pod["metadata"]["name"])
            if match and not pod["metadata"].get("deletionTimestamp"):
                pods[int(match.group(1))] = pod
        acted = False
        for ordinal in range(replicas):
            existing = pods.get(ordinal)
            if existing is None:
                revision = current_revision if ordinal < partition else update_revision
                if not rolling:
                    revision = current_revision
                created = self._stateful_pod(sts, ordinal, revision, template, update_revision)
                if created is None:
                    return
                pods[ordinal] = created
                acted = True
                if ordered:
                    break
            elif ordered and not is_ready(existing):
                acted = True
                break
        if not acted:
            for ordinal in sorted((o for o in pods if o >= replicas), reverse=True):
                self._delete(self.pods, pods.pop(ordinal))
                acted = True
                if ordered:
                    break
        if not acted and rolling and all(is_ready(p) for p in pods.values()):
            for ordinal in range(replicas - 1, partition - 1, -1):
                candidate = pods.get(ordinal)
                if (
                    candidate is not None
                    and candidate["metadata"]["labels"].get(_REVISION_HASH) != update_revision
                ):
                    self._delete(self.pods, pods.pop(ordinal))
                    break
        live_pods = list(pods.values())
        ready = sum(1 for p in live_pods if is_ready(p))
        min_ready = int(spec.get("minReadySeconds", 0))
        available = sum(1 for p in live_pods if self._available(p, min_ready)[0])
        current = sum(
            1 for p in live_pods if p["metadata"]["labels"].get(_REVISION_HASH) == current_revision
        )
        updated = sum(
            1 for p in live_pods if p["metadata"]["labels"].get(_REVISION_HASH) == update_revision
        )
        new_status: dict[str, Any] = {
            "observedGeneration": sts["metadata"].get("generation", 1),
            "replicas": len(live_pods),
            "readyReplicas": ready,
            "currentReplicas": current,
            "updatedReplicas": updated,
            "availableReplicas": available,
            "currentRevision": current_revision,
            "updateRevision": update_revision,
            "collisionCount": 0,
        }
        if rolling and updated == len(live_pods) and ready == len(live_pods) == replicas:
            new_status["currentRevision"] = update_revision
            new_status["currentReplicas"] = updated
        for key in ("readyReplicas", "currentReplicas", "updatedReplicas", "availableReplicas"):
            if new_status[key] == 0:
                del new_status[key]
        self.registry.write_status(self.stateful_sets, sts, new_status)

    def _ensure_revision(
        self, owner: dict[str, Any], revision_name: str, template: dict[str, Any]
    ) -> None:
        namespace = owner["metadata"]["namespace"]
        if self.registry.find(self.revisions, namespace, revision_name) is not None:
            return
        existing = self._owned(owner, self.revisions)
        number = 1 + max((int(r.get("revision", 0)) for r in existing), default=0)
        patch_template = clone(template)
        patch_template["$patch"] = "replace"
        self.registry.create_object(
            self.revisions,
            {
                "apiVersion": "apps/v1",
                "kind": "ControllerRevision",
                "metadata": {
                    "name": revision_name,
                    "namespace": namespace,
                    "labels": dict((template.get("metadata") or {}).get("labels") or {})
                    | {_REVISION_HASH: revision_name.rsplit("-", 1)[-1]},
                    "ownerReferences": [controller_ref(owner)],
                },
                "data": {"spec": {"template": patch_template}},
                "revision": number,
            },
        )

    def _stateful_pod(
        self,
        sts: dict[str, Any],
        ordinal: int,
        revision: str,
        update_template: dict[str, Any],
        update_revision: str,
    ) -> dict[str, Any] | None:
        name = sts["metadata"]["name"]
        namespace = sts["metadata"]["namespace"]
        spec = sts.get("spec") or {}
        template = update_template
        if revision != update_revision:
            stored = self.registry.find(self.revisions, namespace, revision)
            if stored is not None:
                template = clone(stored["data"]["spec"]["template"])
                template.pop("$patch", None)
        pod_name = f"{name}-{ordinal}"
        volumes = []
        for claim_template in spec.get("volumeClaimTemplates") or ():
            claim_name = claim_template["metadata"]["name"]
            pvc_name = f"{claim_name}-{pod_name}"
            if self.registry.find(self.pvcs, namespace, pvc_name) is None:
                claim_spec = clone(claim_template.get("spec") or {})
                claim = {
                    "apiVersion": "v1",
                    "kind": "PersistentVolumeClaim",
                    "metadata": {
                        "name": pvc_name,
                        "namespace": namespace,
                        "labels": dict((spec.get("selector") or {}).get("matchLabels") or {}),
                    },
                    "spec": claim_spec,
                }
                policy = spec.get("persistentVolumeClaimRetentionPolicy") or {}
                if policy.get("whenDeleted") == "Delete":
                    claim["metadata"]["ownerReferences"] = [
                        controller_ref(sts) | {"controller": False}
                    ]
                self.registry.create_object(self.pvcs, claim)
            volumes.append({"name": claim_name, "persistentVolumeClaim": {"claimName": pvc_name}})
        pod_spec = clone(template.get("spec") or {})
        declared = {v.get("name") for v in pod_spec.get("volumes") or ()}
        extra_volumes = [v for v in volumes if v["name"] not in declared]
        updates: dict[str, Any] = {"hostname": pod_name}
        if spec.get("serviceName"):
            updates["subdomain"] = spec["serviceName"]
        if extra_volumes:
            updates["volumes"] = [*(pod_spec.get("volumes") or []), *extra_volumes]
        return self._new_pod(
            sts,
            {"metadata": template.get("metadata") or {}, "spec": pod_spec},
            name=pod_name,
            extra_labels={
                _REVISION_HASH: revision,
                "statefulset.kubernetes.io/pod-name": pod_name,
                "apps.kubernetes.io/pod-index": str(ordinal),
            },
            spec_updates=updates,
        )

    # ------------------------------------------------------------------ DaemonSet

    def sync_daemon_set(self, namespace: str, name: str) -> None:
        """One Pod on the one node (when its nodeSelector allows), replaced on template changes."""
        ds = self.registry.find(self.daemon_sets, namespace, name)
        if ds is None or ds["metadata"].get("deletionTimestamp"):
            return
        spec = ds.get("spec") or {}
        template = spec.get("template") or {}
        revision_hash = template_hash(template)
        self._ensure_revision(ds, f"{name}-{revision_hash}", template)
        node = self.registry.find(self.nodes, "", NODE_NAME)
        node_labels = (node or {}).get("metadata", {}).get("labels") or {}
        selector = (template.get("spec") or {}).get("nodeSelector") or {}
        desired = 1 if all(node_labels.get(k) == v for k, v in selector.items()) else 0
        pods = [p for p in self._owned(ds, self.pods) if not p["metadata"].get("deletionTimestamp")]
        if desired == 0:
            for pod in pods:
                self._delete(self.pods, pod)
            pods = []
        else:
            stale = [
                p for p in pods if p["metadata"]["labels"].get(_REVISION_HASH) != revision_hash
            ]
            for pod in stale:
                self._delete(self.pods, pod)
            pods = [p for p in pods if p not in stale]
            if not pods:
                created = self._new_pod(
                    ds,
                    template,
                    name=f"{name}-{random_suffix()}",
                    extra_labels={
                        _REVISION_HASH: revision_hash,
                        "pod-template-generation": str(ds["metadata"].get("generation", 1)),
                    },
                )
                if created is None:
                    return
                pods = [created]
        ready = sum(1 for p in pods if is_ready(p))
        min_ready = int(spec.get("minReadySeconds", 0))
        available = sum(1 for p in pods if self._available(p, min_ready)[0])
        updated = sum(
            1 for p in pods if p["metadata"]["labels"].get(_REVISION_HASH) == revision_hash
        )
        status: dict[str, Any] = {
            "currentNumberScheduled": len(pods),
            "desiredNumberScheduled": desired,
            "numberMisscheduled": 0,
            "numberReady": ready,
            "observedGeneration": ds["metadata"].get("generation", 1),
            "updatedNumberScheduled": updated,
            "numberAvailable": available,
        }
        if desired - available > 0:
            status["numberUnavailable"] = desired - available
        if not available:
            del status["numberAvailable"]
        if not updated:
            del status["updatedNumberScheduled"]
        self.registry.write_status(self.daemon_sets, ds, status)

    # ------------------------------------------------------------------ Job

    def sync_job(self, namespace: str, name: str) -> None:
        """Runs Pods to completion; Complete or Failed (backoff limit, deadline)."""
        job = self.registry.find(self.jobs, namespace, name)
        if job is None or job["metadata"].get("deletionTimestamp"):
            return
        spec = job.get("spec") or {}
        status = dict(job.get("status") or {})
        conditions = status.get("conditions") or []
        memory = self.manager.remember(job["metadata"]["uid"])
        now = self.manager.now()
        if any(
            c.get("type") in ("Complete", "Failed") and c.get("status") == "True"
            for c in conditions
        ):
            self._expire_job(job, memory, now)
            return
        pods = [
            p for p in self._owned(job, self.pods) if not p["metadata"].get("deletionTimestamp")
        ]
        succeeded_pods = [p for p in pods if (p.get("status") or {}).get("phase") == "Succeeded"]
        failed_pods = [p for p in pods if (p.get("status") or {}).get("phase") == "Failed"]
        active = [p for p in pods if not _terminated(p)]
        restarts = sum(
            int(s.get("restartCount", 0))
            for p in active
            for s in (p.get("status") or {}).get("containerStatuses") or ()
        )
        succeeded = len(succeeded_pods)
        failed = len(failed_pods) + (
            restarts
            if spec.get("template", {}).get("spec", {}).get("restartPolicy") == "OnFailure"
            else 0
        )
        completions = spec.get("completions")
        parallelism = int(spec.get("parallelism", 1))
        backoff_limit = int(spec.get("backoffLimit", 6))
        started = memory.setdefault("started", now)
        status.setdefault("startTime", now_iso())
        deadline = spec.get("activeDeadlineSeconds")
        terminal: tuple[str, str, str] | None = None
        if spec.get("suspend"):
            for pod in active:
                self._delete(self.pods, pod)
            active = []
        elif failed > backoff_limit:
            terminal = (
                "Failed",
                "BackoffLimitExceeded",
                "Job has reached the specified backoff limit",
            )
        elif deadline is not None and now - started >= self.manager.scaled(float(deadline)):
            terminal = (
                "Failed",
                "DeadlineExceeded",
                "Job was active longer than specified deadline",
            )
        elif (completions is not None and succeeded >= int(completions)) or (
            completions is None and succeeded >= 1 and not active
        ):
            terminal = (
                "Complete",
                "CompletionsReached",
                "Reached expected number of succeeded pods",
            )
        else:
            remaining = int(completions) - succeeded if completions is not None else parallelism
            wanted = min(parallelism, remaining) - len(active)
            indexed = spec.get("completionMode") == "Indexed"
            taken = {
                (p["metadata"].get("annotations") or {}).get(
                    "batch.kubernetes.io/job-completion-index"
                )
                for p in [*active, *succeeded_pods]
            }
            next_index = 0
            for _ in range(max(0, wanted)):
                extra_labels: dict[str, str] = {}
                annotations: dict[str, str] = {}
                updates: dict[str, Any] = {}
                pod_name = f"{name}-{random_suffix()}"
                if indexed:
                    while str(next_index) in taken:
                        next_index += 1
                    taken.add(str(next_index))
                    annotations["batch.kubernetes.io/job-completion-index"] = str(next_index)
                    extra_labels["batch.kubernetes.io/job-completion-index"] = str(next_index)
                    updates["hostname"] = f"{name}-{next_index}"
                    pod_name = f"{name}-{next_index}-{random_suffix()}"
                created = self._new_pod(
                    job,
                    spec.get("template") or {},
                    name=pod_name,
                    extra_labels=extra_labels,
                    extra_annotations=annotations,
                    spec_updates=updates,
                )
                if created is None:
                    return
                active.append(created)
            if deadline is not None:
                wait = started + self.manager.scaled(float(deadline)) - now
                self.manager.enqueue("job", namespace, name, max(0.0, wait) + 0.001)
        status["active"] = len(active)
        status["succeeded"] = succeeded
        status["failed"] = len(failed_pods)
        status["ready"] = sum(1 for p in active if is_ready(p))
        status["terminating"] = 0
        status["uncountedTerminatedPods"] = {}
        if spec.get("completionMode") == "Indexed":
            done = sorted(
                int(idx)
                for p in succeeded_pods
                if (
                    idx := (p["metadata"].get("annotations") or {}).get(
                        "batch.kubernetes.io/job-completion-index"
                    )
                )
                is not None
            )
            if done:
                status["completedIndexes"] = _ranges(done)
        for key in ("active", "succeeded", "failed"):
            if status[key] == 0:
                del status[key]
        if terminal is not None:
            kind, reason, message = terminal
            for pod in active:
                self._delete(self.pods, pod)
            status.pop("active", None)
            status["ready"] = 0
            interim = "SuccessCriteriaMet" if kind == "Complete" else "FailureTarget"
            status["conditions"] = [
                *(c for c in conditions if c.get("type") not in (interim, kind)),
                {
                    **condition(conditions, interim, "True", reason, message),
                    "lastProbeTime": now_iso(),
                },
                {
                    **condition(conditions, kind, "True", reason, message),
                    "lastProbeTime": now_iso(),
                },
            ]
            if kind == "Complete":
                status["completionTime"] = now_iso()
            memory["finished"] = now
        elif spec.get("suspend"):
            status["conditions"] = [
                *(c for c in conditions if c.get("type") != "Suspended"),
                condition(conditions, "Suspended", "True", "JobSuspended", "Job suspended"),
            ]
        self.registry.write_status(self.jobs, job, status)
        if terminal is not None:
            self._expire_job(job, memory, now)

    def _expire_job(self, job: dict[str, Any], memory: dict[str, Any], now: float) -> None:
        ttl = (job.get("spec") or {}).get("ttlSecondsAfterFinished")
        if ttl is None:
            return
        finished = memory.setdefault("finished", now)
        wait = finished + self.manager.scaled(float(ttl)) - now
        meta = job["metadata"]
        if wait > 0:
            self.manager.enqueue("job", meta["namespace"], meta["name"], wait)
            return
        self._delete(self.jobs, job)


def _ranges(numbers: list[int]) -> str:
    parts: list[str] = []
    start = previous = numbers[0]
    for number in numbers[1:]:
        if number == previous + 1:
            previous = number
            continue
        parts.append(f"{start}-{previous}" if start != previous else str(start))
        start = previous = number
    parts.append(f"{start}-{previous}" if start != previous else str(start))
    return ",".join(parts)
