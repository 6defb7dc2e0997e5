"""The cluster-level controllers, wired to the manager: which events enqueue which keys."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..resource_types import ResourceType
from ..store import WatchEvent
from .autoscaler import AutoscalerController
from .crds import CrdController
from .garbage import GarbageCollector
from .load_balancers import IngressController, ServiceController
from .manager import ControllerManager
from .namespaces import NamespaceController
from .volumes import VolumeController


class ClusterControllers:
    """Garbage collection, namespaces, CRDs, volumes, load balancers, ingresses, autoscalers."""

    def __init__(self, manager: ControllerManager) -> None:
        self.manager = manager
        self.registry = manager.registry
        self.ingresses = IngressController(manager)
        self.autoscalers = AutoscalerController(manager)
        self.garbage = GarbageCollector(manager)
        self.namespaces = NamespaceController(manager)
        self.crds = CrdController(manager)
        self.volumes = VolumeController(manager)
        self.services = ServiceController(manager)
        manager.register("ingress", self.ingresses.sync)
        manager.register("hpa", self.autoscalers.sync)
        manager.route(("networking.k8s.io", "ingresses"), self._on_simple("ingress"))
        manager.route(("autoscaling", "horizontalpodautoscalers"), self._on_simple("hpa"))
        manager.register("gc", self.garbage.collect)
        manager.register("namespace", self.namespaces.sync)
        manager.register("crd", self.crds.sync)
        manager.register("pvc", self.volumes.sync)
        manager.register("service", self.services.sync)
        manager.route(("", "namespaces"), self._on_namespace)
        manager.route(("apiextensions.k8s.io", "customresourcedefinitions"), self._on_crd)
        manager.route(("", "persistentvolumeclaims"), self._on_simple("pvc"))
        manager.route(("", "services"), self._on_simple("service"))
        self.registry.deletion_hooks.append(self._on_deletion)

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
        if resource is self.volumes.pvcs:
            self.manager.enqueue(
                "pvc", obj["metadata"].get("namespace", ""), obj["metadata"]["name"]
            )
