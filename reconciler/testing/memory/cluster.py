"""An in-memory :class:`reconciler.ports.Cluster`."""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
import json
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from reconciler.cluster.label_selector import Selector
from reconciler.cluster.live_store import group_of
from reconciler.cluster.write_reports import WriteReports
from reconciler.errors import kubernetes_error
from reconciler.model import ObjectRef
from reconciler.ports import WriteObserver

CLUSTER_SCOPED = frozenset(
    {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "StorageClass"}
)


def _entry(manager: str, operation: str, subresource: str | None = None) -> dict[str, Any]:
    """A managedFields entry stamped now; fields are left out (the fakes do not track them)."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    entry = {"manager": manager, "operation": operation, "time": stamp}
    return entry | ({"subresource": subresource} if subresource else {})


class InMemoryCluster:
    """:class:`reconciler.ports.Cluster` over a dict.  ``rollout`` says how applied workloads
    behave: ``healthy`` at once, ``hold`` (progressing for ever) or ``deadline`` (degraded with
    ProgressDeadlineExceeded).  With ``namespaces_enforced`` a namespaced object needs its
    Namespace, as on a real cluster (off by default: most tests place objects anywhere)."""

    def __init__(self, *, rollout: str = "healthy", namespaces_enforced: bool = False) -> None:
        self.rollout = rollout
        self.namespaces_enforced = namespaces_enforced
        self.objects: dict[ObjectRef, dict[str, Any]] = {}
        self.applied: list[ObjectRef] = []
        self.scaled: list[tuple[ObjectRef, int]] = []
        self.restarted: list[ObjectRef] = []
        self.user: str | None = None
        self.applied_as: list[tuple[ObjectRef, str | None]] = []
        """Who each apply was made as (None: the daemon itself)."""
        self.dry_runs: list[ObjectRef] = []
        """Dry-run applies: answered, never stored."""
        self.deleted: list[ObjectRef] = []
        self.resource_version = 0
        """The last resourceVersion given to a write (each write gets the next one)."""
        self._watchers: list[asyncio.Queue[dict[str, Any]]] = []
        self.applies_open = asyncio.Event()
        """Applies wait until this is set (it is, unless a test clears it to hold them)."""
        self.applies_open.set()
        self.applying = 0
        """Applies waiting on :attr:`applies_open` now."""
        self.write_reports = WriteReports()

    def report_writes(self, observer: WriteObserver) -> None:
        self.write_reports.add(observer)

    async def apply(
        self, obj: Mapping[str, Any], *, field_manager: str, dry_run: bool = False
    ) -> dict[str, Any]:
        ref = ObjectRef.from_object(obj)
        self.applying += 1
        try:
            await self.applies_open.wait()
        finally:
            self.applying -= 1
        self._check_namespace(ref)
        live: dict[str, Any] = json.loads(json.dumps(obj))
        live.setdefault("metadata", {})["generation"] = 1
        if obj.get("kind") == "Deployment":
            live["status"] = self._deployment_status(live)
        if dry_run:
            self.dry_runs.append(ref)
            return live
        self.write_reports.writing(ref)
        existed = ref in self.objects
        live["metadata"]["managedFields"] = [_entry(field_manager, "Apply")]
        self.objects[ref] = live
        self._changed("MODIFIED" if existed else "ADDED", live)
        self.applied.append(ref)
        self.applied_as.append((ref, self.user))
        self.write_reports.written(ref, live)
        return live

    def _check_namespace(self, ref: ObjectRef) -> None:
        """404 NotFound for an object of a namespace that does not exist, as the apiserver's
        NamespaceLifecycle admission answers (``namespaces "X" not found``)."""
        if not self.namespaces_enforced or ref.kind in CLUSTER_SCOPED or not ref.namespace:
            return
        if ObjectRef("v1", "Namespace", ref.namespace, None) not in self.objects:
            raise kubernetes_error(
                f'apply {ref}: 404 NotFound: namespaces "{ref.namespace}" not found',
                status=404,
                reason="NotFound",
            )

    def _deployment_status(self, live: Mapping[str, Any]) -> dict[str, Any]:
        replicas = int((live.get("spec") or {}).get("replicas", 1))
        if self.rollout == "healthy":
            counts = ("replicas", "updatedReplicas", "readyReplicas", "availableReplicas")
            return {"observedGeneration": 1} | dict.fromkeys(counts, replicas)
        condition = {"type": "Progressing", "status": "Unknown", "reason": "ReplicaSetUpdated"}
        if self.rollout == "deadline":
            condition = {"type": "Progressing", "status": "False"}
            condition["reason"] = "ProgressDeadlineExceeded"
        return {
            "observedGeneration": 1,
            "replicas": replicas,
            "updatedReplicas": 0,
            "conditions": [condition],
        }

    def write_as(
        self,
        ref: ObjectRef,
        change: Callable[[dict[str, Any]], None],
        *,
        manager: str,
        subresource: str | None = None,
    ) -> None:
        """Another client's update (``kubectl edit``, a controller's status write): ``change``
        edits the stored object, recorded in managedFields as ``manager``'s Update."""
        live = self.objects[ref]
        change(live)
        entries = [e for e in live["metadata"].get("managedFields", []) if e["manager"] != manager]
        live["metadata"]["managedFields"] = [*entries, _entry(manager, "Update", subresource)]
        self._changed("MODIFIED", live)

    async def get(self, ref: ObjectRef) -> dict[str, Any] | None:
        return self.objects.get(ref)

    async def list_pods(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        return []

    async def scale(
        self, ref: ObjectRef, *, replicas: int, field_manager: str | None = None
    ) -> None:
        self.write_reports.writing(ref)
        self.objects[ref].setdefault("spec", {})["replicas"] = replicas
        self._changed("MODIFIED", self.objects[ref])
        self.scaled.append((ref, replicas))
        self.write_reports.written(ref, self.objects[ref])

    async def restart(self, ref: ObjectRef, *, at: str, field_manager: str | None = None) -> None:
        template = self.objects[ref].setdefault("spec", {}).setdefault("template", {})
        annotations = template.setdefault("metadata", {}).setdefault("annotations", {})
        self.write_reports.writing(ref)
        annotations["kubectl.kubernetes.io/restartedAt"] = at
        self._changed("MODIFIED", self.objects[ref])
        self.restarted.append(ref)
        self.write_reports.written(ref, self.objects[ref])

    async def delete(self, ref: ObjectRef, *, propagation: str = "Background") -> bool:
        self.write_reports.writing(ref)
        live = self.objects.pop(ref, None)
        self.write_reports.written(ref, None)
        if live is None:
            return False
        self.deleted.append(ref)
        self._changed("DELETED", live)
        if ref.kind == "Namespace":
            # Its content goes with it (at once: no terminating phase here).
            for inside in [r for r in self.objects if r.namespace == ref.name]:
                self._changed("DELETED", self.objects.pop(inside))
        return True

    async def list_objects(
        self, *, api_version: str, kind: str, label_selector: str
    ) -> tuple[list[dict[str, Any]], str]:
        """The stored objects of the kind (any version of its group) the selector matches."""
        selector = Selector.parse(label_selector)
        items = [
            copy.deepcopy(obj)
            for ref, obj in self.objects.items()
            if _same_kind(ref.api_version, ref.kind, api_version, kind)
            and selector.matches_object(obj)
        ]
        return items, str(self.resource_version)

    async def watch_objects(
        self,
        *,
        api_version: str,
        kind: str,
        label_selector: str,
        resource_version: str,
        timeout_s: float,
    ) -> AsyncIterator[dict[str, Any]]:
        """The writes made from now on (``resource_version`` is not replayed: keep it simple),
        for ``timeout_s``."""
        selector = Selector.parse(label_selector)
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._watchers.append(queue)
        # A deadline per get, not one timeout around the loop: that would cancel whatever the
        # consumer does while this generator waits at its yield.
        deadline = asyncio.get_running_loop().time() + timeout_s
        try:
            while True:
                remaining = deadline - asyncio.get_running_loop().time()
                try:
                    event = await asyncio.wait_for(queue.get(), max(remaining, 0.0))
                except TimeoutError:
                    return
                obj = event["object"]
                if _same_kind(
                    obj.get("apiVersion", ""), obj.get("kind", ""), api_version, kind
                ) and selector.matches_object(obj):
                    yield event
        finally:
            self._watchers.remove(queue)

    @property
    def open_watches(self) -> int:
        """How many watches are open."""
        return len(self._watchers)

    def _changed(self, event_type: str, live: dict[str, Any]) -> None:
        """Stamp the next resourceVersion on ``live`` and tell the open watches."""
        self.resource_version += 1
        live.setdefault("metadata", {})["resourceVersion"] = str(self.resource_version)
        for queue in self._watchers:
            queue.put_nowait({"type": event_type, "object": copy.deepcopy(live)})

    async def is_namespaced(self, api_version: str, kind: str) -> bool | None:
        return kind not in CLUSTER_SCOPED

    def impersonating(self, user: str) -> InMemoryCluster:
        view = copy.copy(self)  # shares the objects and the logs
        view.user = user
        return view

    async def refresh_discovery(self) -> None:
        return None

    async def version(self) -> str:
        return "v1.32.0-memory"


def _same_kind(api_version: str, kind: str, wanted_version: str, wanted_kind: str) -> bool:
    """Same group and kind (``apps/v1`` and ``apps/v1beta2`` Deployments are one object)."""
    return kind == wanted_kind and group_of(api_version) == group_of(wanted_version)
