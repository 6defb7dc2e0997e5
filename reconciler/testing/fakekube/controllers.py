"""The controller manager: what makes fakekube behave like a cluster over time.

Controllers are functions of (namespace, name) keyed by a controller name.  Store events and
deletions enqueue keys; a controller may ask to run again after a delay (a Pod becoming Ready, a
progress deadline).  One task runs due keys in order, yielding to the event loop between
batches, so the HTTP server stays responsive while a thousand Deployments roll out.

This module holds the scheduling and the cluster-level controllers (garbage collection,
namespaces, CRDs, volumes, load balancers); ``workloads`` holds Pods and the workload kinds.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

from .api_errors import ApiError
from .defaults import DEFAULT_STORAGE_CLASS, NODE_NAME
from .faults import Faults
from .objects import clone, now_iso
from .registry import Registry
from .resource_types import ResourceType
from .store import WatchEvent

log = logging.getLogger(__name__)

Key = tuple[str, str, str]  # (controller, namespace, name)
Handler = Callable[[str, str], None]


class ClusterSettings(Protocol):
    """What controllers read on every step (FakeKube provides it)."""

    rollout_delay_s: float
    time_factor: float
    faults: Faults


class ControllerManager:
    """Schedules and runs controller keys."""

    def __init__(self, registry: Registry, settings: ClusterSettings) -> None:
        self.registry = registry
        self.settings = settings
        self.handlers: dict[str, Handler] = {}
        self.routes: dict[tuple[str, str], list[Callable[[WatchEvent], None]]] = {}
        self._heap: list[tuple[float, int, Key]] = []
        self._due: dict[Key, float] = {}
        self._counter = itertools.count()
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        #: Per-object controller memory (precise times the API only shows to the second).
        self.memory: dict[str, dict[str, Any]] = {}
        #: Unexpected exceptions (fakekube bugs), so tests can assert there were none.
        self.errors: list[str] = []
        registry.store.listeners.append(self._on_event)

    @staticmethod
    def now() -> float:
        """Monotonic seconds."""
        return time.monotonic()

    def scaled(self, seconds: float) -> float:
        """A Kubernetes duration (progressDeadlineSeconds ...) in real seconds."""
        return seconds * self.settings.time_factor

    def register(self, name: str, handler: Handler) -> None:
        """Adds a controller."""
        self.handlers[name] = handler

    def route(self, resource: tuple[str, str], callback: Callable[[WatchEvent], None]) -> None:
        """Calls ``callback`` on every event of ``resource`` (group, plural)."""
        self.routes.setdefault(resource, []).append(callback)

    def enqueue(self, controller: str, namespace: str, name: str, delay: float = 0.0) -> None:
        """Runs ``controller`` for (namespace, name) after ``delay`` seconds (earliest wins)."""
        key = (controller, namespace, name)
        due = self.now() + max(0.0, delay)
        current = self._due.get(key)
        if current is not None and current <= due:
            return
        self._due[key] = due
        heapq.heappush(self._heap, (due, next(self._counter), key))
        if self._wake is not None:
            self._wake.set()

    def _on_event(self, event: WatchEvent) -> None:
        for callback in self.routes.get(event.resource, ()):
            callback(event)

    def remember(self, uid: str) -> dict[str, Any]:
        """Mutable memory about one object."""
        return self.memory.setdefault(uid, {})

    def forget(self, uid: str) -> None:
        """Drops the memory of a deleted object."""
        self.memory.pop(uid, None)

    # -- running

    def start(self) -> None:
        """Starts running keys on the current event loop."""
        self._wake = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(
            self._run(), name="fakekube-controllers"
        )

    async def stop(self) -> None:
        """Stops running keys."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def run_due(self, limit: int = 200) -> int:
        """Runs up to ``limit`` due keys now; returns how many ran."""
        ran = 0
        now = self.now()
        while self._heap and self._heap[0][0] <= now and ran < limit:
            due, _, key = heapq.heappop(self._heap)
            if self._due.get(key) != due:
                continue
            del self._due[key]
            handler = self.handlers.get(key[0])
            if handler is None:
                continue
            ran += 1
            try:
                handler(key[1], key[2])
            except ApiError as exc:
                # Another writer won a race (or the object went away): try again shortly.
                log.debug("controller %s %s/%s: %s", key[0], key[1], key[2], exc.message)
                self.enqueue(key[0], key[1], key[2], 0.05)
            except Exception as exc:
                log.exception("controller %s failed for %s/%s", key[0], key[1], key[2])
                self.errors.append(f"controller {key[0]} {key[1]}/{key[2]}: {exc!r}")
        return ran

    async def _run(self) -> None:
        assert self._wake is not None
        while True:
            ran = self.run_due()
            if ran:
                await asyncio.sleep(0)
                continue
            self._wake.clear()
            timeout = None
            if self._heap:
                timeout = max(0.0, self._heap[0][0] - self.now())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)


# ---------------------------------------------------------------------------------------------
# Helpers shared with the workload controllers


def controller_ref(owner: dict[str, Any]) -> dict[str, Any]:
    """An ownerReference marking ``owner`` as the managing controller."""
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def controller_owner(obj: dict[str, Any]) -> dict[str, Any] | None:
    """The ownerReference with ``controller: true``, if any."""
    for ref in obj["metadata"].get("ownerReferences") or ():
        if ref.get("controller"):
            return dict(ref)
    return None


def condition(
    previous: list[dict[str, Any]] | None,
    kind: str,
    status: str,
    reason: str,
    message: str,
    *,
    update_time: bool = False,
    touch: bool = False,
) -> dict[str, Any]:
    """A condition that keeps lastTransitionTime unless its status flips.

    ``update_time`` adds lastUpdateTime (Deployment conditions have it), which moves when the
    reason or message changes, or when ``touch`` says progress happened.
    """
    now = now_iso()
    old = next((c for c in previous or () if c.get("type") == kind), None)
    result: dict[str, Any] = {"type": kind, "status": status}
    if update_time:
        same = (
            old is not None
            and old.get("status") == status
            and old.get("reason") == reason
            and old.get("message") == message
        )
        keep = same and not touch and old is not None and "lastUpdateTime" in old
        result["lastUpdateTime"] = old["lastUpdateTime"] if keep and old is not None else now
    if old is not None and old.get("status") == status and "lastTransitionTime" in old:
        result["lastTransitionTime"] = old["lastTransitionTime"]
    else:
        result["lastTransitionTime"] = now
    result["reason"] = reason
    result["message"] = message
    return result


# ---------------------------------------------------------------------------------------------
# Cluster-level controllers


class ClusterControllers:
    """Garbage collection, namespaces, CRDs, volumes and load balancers."""

    def __init__(self, manager: ControllerManager) -> None:
        self.manager = manager
        self.registry = manager.registry
        reg = self.registry
        self.namespaces = reg.resource("v1", "Namespace")
        self.crds = reg.resource("apiextensions.k8s.io/v1", "CustomResourceDefinition")
        self.pvcs = reg.resource("v1", "PersistentVolumeClaim")
        self.pvs = reg.resource("v1", "PersistentVolume")
        self.services = reg.resource("v1", "Service")
        self.service_accounts = reg.resource("v1", "ServiceAccount")
        self.ingresses = reg.resource("networking.k8s.io/v1", "Ingress")
        self.autoscalers = reg.resource("autoscaling/v2", "HorizontalPodAutoscaler")
        manager.register("ingress", self.sync_ingress)
        manager.register("hpa", self.sync_autoscaler)
        manager.route(("networking.k8s.io", "ingresses"), self._on_simple("ingress"))
        manager.route(("autoscaling", "horizontalpodautoscalers"), self._on_simple("hpa"))
        manager.register("gc", self.collect_garbage)
        manager.register("namespace", self.sync_namespace)
        manager.register("crd", self.sync_crd)
        manager.register("pvc", self.sync_pvc)
        manager.register("service", self.sync_service)
        manager.route(("", "namespaces"), self._on_namespace)
        manager.route(("apiextensions.k8s.io", "customresourcedefinitions"), self._on_crd)
        manager.route(("", "persistentvolumeclaims"), self._on_simple("pvc"))
        manager.route(("", "services"), self._on_simple("service"))
        reg.deletion_hooks.append(self._on_deletion)

    def _on_simple(self, controller: str) -> Callable[[WatchEvent], None]:
        def callback(event: WatchEvent) -> None:
            meta = event.object["metadata"]
            if event.type == "DELETED":
                self.manager.forget(meta["uid"])
            self.manager.enqueue(controller, meta.get("namespace", ""), meta["name"])

        return callback

    def _on_namespace(self, event: WatchEvent) -> None:
        meta = event.object["metadata"]
        if event.type == "ADDED":
            self.manager.enqueue("namespace", "", meta["name"])
        if meta.get("deletionTimestamp") and event.type != "DELETED":
            # A real namespace takes a moment to start terminating its content; clients that
            # delete a namespace and then its objects (kubectl delete -f) rely on that.
            self.manager.enqueue(
                "namespace", "", meta["name"], self.manager.settings.rollout_delay_s
            )

    def _on_crd(self, event: WatchEvent) -> None:
        self.manager.enqueue("crd", "", event.object["metadata"]["name"])

    def _on_deletion(self, resource: ResourceType, obj: dict[str, Any]) -> None:
        uid = obj["metadata"]["uid"]
        self.manager.enqueue("gc", "", uid)
        if resource is self.pvcs:
            self.manager.enqueue(
                "pvc", obj["metadata"].get("namespace", ""), obj["metadata"]["name"]
            )

    # -- garbage collection

    def collect_garbage(self, _namespace: str, owner_uid: str) -> None:
        """Deletes (or orphans) the dependents of a deleted owner, then releases the owner."""
        store = self.registry.store
        owner = store.by_uid(owner_uid)
        owner_obj = owner[1] if owner is not None else None
        finalizers = (owner_obj or {}).get("metadata", {}).get("finalizers") or ()
        if owner_obj is not None and not owner_obj["metadata"].get("deletionTimestamp"):
            return
        orphan = "orphan" in finalizers
        remaining = 0
        for resource_key, (namespace, name) in store.dependents(owner_uid):
            resource = self._type_of(resource_key)
            if resource is None:
                continue
            dependent = store.get(resource_key, namespace, name)
            if dependent is None:
                continue
            if orphan:
                candidate = clone(dependent)
                refs = [
                    r
                    for r in candidate["metadata"].get("ownerReferences") or ()
                    if r.get("uid") != owner_uid
                ]
                candidate["metadata"]["ownerReferences"] = refs
                if not refs:
                    del candidate["metadata"]["ownerReferences"]
                self.registry.write_object(resource, candidate, manager="kube-controller-manager")
                continue
            if self._has_live_owner(dependent, owner_uid):
                continue
            remaining += 1
            if dependent["metadata"].get("deletionTimestamp"):
                continue
            try:
                self.registry.delete(resource, namespace, name, propagation="Background")
            except ApiError as exc:
                if exc.code != 404:
                    raise
        if owner is None or owner_obj is None:
            return
        owner_type = self._type_of(owner[0])
        if owner_type is None:
            return
        if orphan:
            self.registry.remove_finalizer(owner_type, owner_obj, "orphan")
        elif "foregroundDeletion" in finalizers:
            if remaining:
                self.manager.enqueue("gc", "", owner_uid, 0.05)
            else:
                self.registry.remove_finalizer(owner_type, owner_obj, "foregroundDeletion")

    def _has_live_owner(self, dependent: dict[str, Any], gone_uid: str) -> bool:
        for ref in dependent["metadata"].get("ownerReferences") or ():
            uid = ref.get("uid")
            if uid == gone_uid:
                continue
            found = self.registry.store.by_uid(uid)
            if found is not None and not found[1]["metadata"].get("deletionTimestamp"):
                return True
        return False

    def _type_of(self, resource_key: tuple[str, str]) -> ResourceType | None:
        for resource in self.registry.types.all():
            if (resource.group, resource.plural) == resource_key:
                return resource
        return None

    # -- namespaces

    def sync_namespace(self, _namespace: str, name: str) -> None:
        """Gives a namespace its default ServiceAccount; empties a terminating one, then lets
        it go."""
        ns = self.registry.find(self.namespaces, "", name)
        if ns is None:
            return
        if not ns["metadata"].get("deletionTimestamp"):
            if self.registry.find(self.service_accounts, name, "default") is None:
                self.registry.create_object(
                    self.service_accounts,
                    {
                        "apiVersion": "v1",
                        "kind": "ServiceAccount",
                        "metadata": {"name": "default", "namespace": name},
                    },
                )
            return
        pending = 0
        for resource, obj in list(self.registry.objects_in_namespace(name)):
            pending += 1
            if obj["metadata"].get("deletionTimestamp"):
                continue
            try:
                self.registry.delete(
                    resource, name, obj["metadata"]["name"], propagation="Background"
                )
            except ApiError as exc:
                if exc.code != 404:
                    raise
        remaining = sum(1 for _ in self.registry.objects_in_namespace(name))
        if remaining:
            self.manager.enqueue("namespace", "", name, 0.05 if pending else 0.0)
            return
        candidate = clone(ns)
        candidate["spec"]["finalizers"] = []
        self.registry.write_object(self.namespaces, candidate)

    # -- CustomResourceDefinitions

    def sync_crd(self, _namespace: str, name: str) -> None:
        """Establishes a CRD (serving its resources) or cleans up after its deletion."""
        crd = self.registry.find(self.crds, "", name)
        if crd is None:
            self.registry.types.uninstall(name)
            return
        finalizer = "customresourcecleanup.apiextensions.k8s.io"
        if crd["metadata"].get("deletionTimestamp"):
            served = next(
                (
                    t
                    for t in self.registry.types.all()
                    if t.custom and f"{t.plural}.{t.group}" == name
                ),
                None,
            )
            if served is not None:
                key = self.registry.types.storage_key(served)
                for obj in list(self.registry.store.objects(key)):
                    if not obj["metadata"].get("deletionTimestamp"):
                        meta = obj["metadata"]
                        self.registry.delete(served, meta.get("namespace", ""), meta["name"])
                if any(True for _ in self.registry.store.objects(key)):
                    # Some objects wait for their own finalizers: look again shortly.
                    self.manager.enqueue("crd", "", name, 0.05)
                    return
            self.registry.types.uninstall(name)
            self.registry.remove_finalizer(self.crds, crd, finalizer)
            return
        if finalizer not in (crd["metadata"].get("finalizers") or ()):
            candidate = clone(crd)
            candidate["metadata"]["finalizers"] = [
                *(crd["metadata"].get("finalizers") or ()),
                finalizer,
            ]
            self.registry.write_object(self.crds, candidate, manager="kube-apiserver")
            return
        self.registry.install_crd(crd)
        spec = crd["spec"]
        names = dict(spec.get("names") or {})
        names.setdefault("singular", str(names.get("kind", "")).lower())
        names.setdefault("listKind", f"{names.get('kind', '')}List")
        conditions = (crd.get("status") or {}).get("conditions")
        storage = [v["name"] for v in spec.get("versions") or () if v.get("storage")]
        stored = list((crd.get("status") or {}).get("storedVersions") or ())
        for version in storage:
            if version not in stored:
                stored.append(version)
        status = {
            "acceptedNames": names,
            "conditions": [
                condition(conditions, "NamesAccepted", "True", "NoConflicts", "no conflicts found"),
                condition(
                    conditions,
                    "Established",
                    "True",
                    "InitialNamesAccepted",
                    "the initial names have been accepted",
                ),
            ],
            "storedVersions": stored,
        }
        self.registry.write_status(self.crds, crd, status, manager="kube-apiserver")

    # -- volumes

    def sync_pvc(self, namespace: str, name: str) -> None:
        """Binds a claim to a freshly provisioned volume after the rollout delay."""
        pvc = self.registry.find(self.pvcs, namespace, name)
        if pvc is None:
            self._release_volumes(namespace, name)
            return
        if (pvc.get("status") or {}).get("phase") == "Bound" or pvc["metadata"].get(
            "deletionTimestamp"
        ):
            return
        memory = self.manager.remember(pvc["metadata"]["uid"])
        first_seen = memory.setdefault("seen", self.manager.now())
        wait = first_seen + self.manager.settings.rollout_delay_s - self.manager.now()
        if wait > 0:
            self.manager.enqueue("pvc", namespace, name, wait)
            return
        spec = pvc.get("spec") or {}
        storage = ((spec.get("resources") or {}).get("requests") or {}).get("storage", "1Gi")
        volume_name = spec.get("volumeName") or f"pvc-{pvc['metadata']['uid']}"
        if self.registry.find(self.pvs, "", volume_name) is None:
            volume = {
                "apiVersion": "v1",
                "kind": "PersistentVolume",
                "metadata": {
                    "name": volume_name,
                    "annotations": {"pv.kubernetes.io/provisioned-by": "fakekube.io/local"},
                },
                "spec": {
                    "capacity": {"storage": storage},
                    "accessModes": list(spec.get("accessModes") or ["ReadWriteOnce"]),
                    "persistentVolumeReclaimPolicy": "Delete",
                    "storageClassName": spec.get("storageClassName", DEFAULT_STORAGE_CLASS),
                    "volumeMode": spec.get("volumeMode", "Filesystem"),
                    "hostPath": {
                        "path": f"/var/lib/fakekube/{volume_name}",
                        "type": "DirectoryOrCreate",
                    },
                    "claimRef": {
                        "apiVersion": "v1",
                        "kind": "PersistentVolumeClaim",
                        "name": name,
                        "namespace": namespace,
                        "uid": pvc["metadata"]["uid"],
                    },
                },
            }
            created = self.registry.create_object(self.pvs, volume, manager="fakekube-provisioner")
            if created is not None:
                self.registry.write_status(self.pvs, created, {"phase": "Bound"})
        if spec.get("volumeName") != volume_name:
            candidate = clone(pvc)
            candidate["spec"]["volumeName"] = volume_name
            annotations = candidate["metadata"].setdefault("annotations", {})
            annotations["pv.kubernetes.io/bind-completed"] = "yes"
            annotations["pv.kubernetes.io/bound-by-controller"] = "yes"
            annotations["volume.kubernetes.io/storage-provisioner"] = "fakekube.io/local"
            updated = self.registry.write_object(self.pvcs, candidate)
            if updated is None:
                return
            pvc = updated
        status = {
            "phase": "Bound",
            "accessModes": list(spec.get("accessModes") or ["ReadWriteOnce"]),
            "capacity": {"storage": storage},
        }
        self.registry.write_status(self.pvcs, pvc, status)

    def _release_volumes(self, namespace: str, name: str) -> None:
        for volume in list(self.registry.store.objects(("", "persistentvolumes"))):
            claim = (volume.get("spec") or {}).get("claimRef") or {}
            reclaim = (volume.get("spec") or {}).get("persistentVolumeReclaimPolicy")
            if (
                claim.get("namespace") == namespace
                and claim.get("name") == name
                and reclaim == "Delete"
            ):
                try:
                    self.registry.delete(self.pvs, "", volume["metadata"]["name"])
                except ApiError as exc:
                    if exc.code != 404:
                        raise

    # -- load balancers

    def sync_service(self, namespace: str, name: str) -> None:
        """Gives a LoadBalancer Service an ingress address after the rollout delay."""
        service = self.registry.find(self.services, namespace, name)
        if service is None:
            return
        spec = service.get("spec") or {}
        status = service.get("status") or {}
        ingress = (status.get("loadBalancer") or {}).get("ingress")
        if spec.get("type") != "LoadBalancer":
            if ingress:
                self.registry.write_status(self.services, service, {"loadBalancer": {}})
            return
        if ingress:
            return
        memory = self.manager.remember(service["metadata"]["uid"])
        first_seen = memory.setdefault("lb_seen", self.manager.now())
        wait = first_seen + self.manager.settings.rollout_delay_s - self.manager.now()
        if wait > 0:
            self.manager.enqueue("service", namespace, name, wait)
            return
        address = self.registry.allocator.load_balancer_ip()
        self.registry.write_status(
            self.services,
            service,
            {"loadBalancer": {"ingress": [{"ip": address, "ipMode": "VIP"}]}},
            manager="fakekube-cloud-controller",
        )

    # -- ingresses

    def sync_ingress(self, namespace: str, name: str) -> None:
        """Publishes an address for an Ingress after the rollout delay, as an ingress
        controller would (fakekube assumes one serves every class)."""
        ingress = self.registry.find(self.ingresses, namespace, name)
        if ingress is None or (ingress.get("status") or {}).get("loadBalancer", {}).get("ingress"):
            return
        memory = self.manager.remember(ingress["metadata"]["uid"])
        first_seen = memory.setdefault("seen", self.manager.now())
        wait = first_seen + self.manager.settings.rollout_delay_s - self.manager.now()
        if wait > 0:
            self.manager.enqueue("ingress", namespace, name, wait)
            return
        address = self.registry.allocator.load_balancer_ip()
        self.registry.write_status(
            self.ingresses,
            ingress,
            {"loadBalancer": {"ingress": [{"ip": address}]}},
            manager="fakekube-ingress-controller",
        )

    # -- horizontal pod autoscalers

    def sync_autoscaler(self, namespace: str, name: str) -> None:
        """Keeps the target's replicas within [minReplicas, maxReplicas].

        There is no metrics pipeline: every metric reads exactly at its target, so the
        recommendation is the current size (clamped), and the conditions read as a healthy
        autoscaler's do.  The controller looks again every 15 s (scaled by the time factor).
        """
        hpa = self.registry.find(self.autoscalers, namespace, name)
        if hpa is None:
            return
        spec = hpa.get("spec") or {}
        previous = (hpa.get("status") or {}).get("conditions")
        ref = spec.get("scaleTargetRef") or {}
        target_type = self.registry.types.by_kind(
            str(ref.get("apiVersion", "")), str(ref.get("kind", ""))
        )
        target = (
            self.registry.find(target_type, namespace, str(ref.get("name", "")))
            if target_type is not None and target_type.scale is not None
            else None
        )
        status: dict[str, Any] = {"currentReplicas": 0, "desiredReplicas": 0}
        if target is None or target_type is None:
            plural = target_type.qualified_plural if target_type else str(ref.get("kind", ""))
            message = (
                "the HPA controller was unable to get the target's current scale: "
                f'{plural}/scale "{ref.get("name", "")}" not found'
            )
            status["conditions"] = [
                condition(previous, "AbleToScale", "False", "FailedGetScale", message)
            ]
        else:
            scale = self.registry.scale_of(target_type, target)
            current = int(scale["spec"]["replicas"])
            low = int(spec.get("minReplicas", 1))
            high = int(spec.get("maxReplicas", max(low, current)))
            desired = min(max(current, low), high)
            if current == 0:
                conditions = [
                    condition(
                        previous,
                        "AbleToScale",
                        "True",
                        "SucceededGetScale",
                        "the HPA controller was able to get the target's current scale",
                    ),
                    condition(
                        previous,
                        "ScalingActive",
                        "False",
                        "ScalingDisabled",
                        "scaling is disabled since the replica count of the target is zero",
                    ),
                ]
                desired = 0
            else:
                if desired != current:
                    self.registry.patch(
                        target_type,
                        namespace,
                        target["metadata"]["name"],
                        "application/merge-patch+json",
                        {"spec": {"replicas": desired}},
                        manager="kube-controller-manager",
                        subresource="scale",
                    )
                    status["lastScaleTime"] = now_iso()
                    able = condition(
                        previous,
                        "AbleToScale",
                        "True",
                        "SucceededRescale",
                        f"the HPA controller was able to update the target scale to {desired}",
                    )
                    limit_reason = "TooFewReplicas" if current < low else "TooManyReplicas"
                    limit_message = (
                        "the desired replica count is less than the minimum replica count"
                        if current < low
                        else "the desired replica count is more than the maximum replica count"
                    )
                    limited = condition(
                        previous, "ScalingLimited", "True", limit_reason, limit_message
                    )
                else:
                    able = condition(
                        previous,
                        "AbleToScale",
                        "True",
                        "ReadyForNewScale",
                        "recommended size matches current size",
                    )
                    limited = condition(
                        previous,
                        "ScalingLimited",
                        "False",
                        "DesiredWithinRange",
                        "the desired count is within the acceptable range",
                    )
                active = condition(
                    previous,
                    "ScalingActive",
                    "True",
                    "ValidMetricFound",
                    "the HPA was able to successfully calculate a replica count from "
                    "the metrics at their targets",
                )
                conditions = [able, active, limited]
                status["currentMetrics"] = [
                    _metric_at_target(metric) for metric in spec.get("metrics") or ()
                ]
            status["currentReplicas"] = current
            status["desiredReplicas"] = desired
            status["conditions"] = conditions
        if "lastScaleTime" not in status and (hpa.get("status") or {}).get("lastScaleTime"):
            status["lastScaleTime"] = hpa["status"]["lastScaleTime"]
        status["observedGeneration"] = hpa["metadata"].get("generation", 1)
        self.registry.write_status(self.autoscalers, hpa, status)
        period = max(self.manager.settings.rollout_delay_s, self.manager.scaled(15.0))
        self.manager.enqueue("hpa", namespace, name, period)


def _metric_at_target(metric: dict[str, Any]) -> dict[str, Any]:
    """A metric's current value, reported as exactly its target."""
    kind = str(metric.get("type", "Resource"))
    source_key = kind[0].lower() + kind[1:]
    source = dict(metric.get(source_key) or {})
    target = source.pop("target", {}) or {}
    current = {
        key: target[key] for key in ("averageUtilization", "averageValue", "value") if key in target
    }
    return {"type": kind, source_key: {**source, "current": current}}


def bootstrap(registry: Registry) -> None:
    """What every cluster starts with: namespaces, a node, a storage class, the API Service."""
    for name in ("default", "kube-system", "kube-public", "kube-node-lease"):
        registry.create(
            registry.resource("v1", "Namespace"),
            "",
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}},
            manager="kube-apiserver",
        )
    nodes = registry.resource("v1", "Node")
    node, _ = registry.create(
        nodes,
        "",
        {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": NODE_NAME,
                "labels": {
                    "kubernetes.io/hostname": NODE_NAME,
                    "kubernetes.io/os": "linux",
                    "kubernetes.io/arch": "amd64",
                    "node-role.kubernetes.io/control-plane": "",
                },
            },
            "spec": {"podCIDR": "10.244.0.0/24", "podCIDRs": ["10.244.0.0/24"]},
        },
        manager="kubelet",
    )
    now = now_iso()
    registry.write_status(
        nodes,
        node,
        {
            "addresses": [
                {"type": "InternalIP", "address": "172.18.0.2"},
                {"type": "Hostname", "address": NODE_NAME},
            ],
            "allocatable": {
                "cpu": "8",
                "memory": "16Gi",
                "pods": "1000",
                "ephemeral-storage": "100Gi",
            },
            "capacity": {
                "cpu": "8",
                "memory": "16Gi",
                "pods": "1000",
                "ephemeral-storage": "100Gi",
            },
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "KubeletReady",
                    "message": "kubelet is posting ready status",
                    "lastHeartbeatTime": now,
                    "lastTransitionTime": now,
                }
            ],
            "nodeInfo": {
                "architecture": "amd64",
                "operatingSystem": "linux",
                "kubeletVersion": "v1.32.0",
                "kubeProxyVersion": "v1.32.0",
                "containerRuntimeVersion": "fakekube://1.0",
                "kernelVersion": "6.1.0",
                "osImage": "fakekube",
                "machineID": "fakekube",
                "systemUUID": "fakekube",
                "bootID": "fakekube",
            },
        },
        manager="kubelet",
    )
    registry.create(
        registry.resource("storage.k8s.io/v1", "StorageClass"),
        "",
        {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": {
                "name": DEFAULT_STORAGE_CLASS,
                "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
            },
            "provisioner": "fakekube.io/local",
            "reclaimPolicy": "Delete",
            "volumeBindingMode": "Immediate",
        },
        manager="kube-apiserver",
    )
    registry.create(
        registry.resource("v1", "Service"),
        "default",
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {
                "name": "kubernetes",
                "labels": {"component": "apiserver", "provider": "kubernetes"},
            },
            "spec": {
                "clusterIP": "10.96.0.1",
                "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}],
            },
        },
        manager="kube-apiserver",
    )
