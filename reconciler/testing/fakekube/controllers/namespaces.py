"""The namespace controller: a default ServiceAccount; a terminating namespace is emptied."""

from __future__ import annotations

from ..objects import clone
from .manager import ControllerManager
from .owners import delete_if_present


class NamespaceController:
    """The ``namespace`` controller."""

    def __init__(self, manager: ControllerManager) -> None:
        self.manager = manager
        self.registry = manager.registry
        self.namespaces = self.registry.resource("v1", "Namespace")
        self.service_accounts = self.registry.resource("v1", "ServiceAccount")

    def sync(self, _namespace: str, name: str) -> None:
        """Gives a namespace its default ServiceAccount; empties a terminating one, then lets
        it go."""
        registry = self.registry
        ns = registry.find(self.namespaces, "", name)
        if ns is None:
            return
        if not ns["metadata"].get("deletionTimestamp"):
            if registry.find(self.service_accounts, name, "default") is None:
                registry.create_object(
                    self.service_accounts,
                    {
                        "apiVersion": "v1",
                        "kind": "ServiceAccount",
                        "metadata": {"name": "default", "namespace": name},
                    },
                )
            return
        pending = 0
        for resource, obj in list(registry.objects_in_namespace(name)):
            pending += 1
            if obj["metadata"].get("deletionTimestamp"):
                continue
            delete_if_present(
                registry, resource, name, obj["metadata"]["name"], propagation="Background"
            )
        remaining = sum(1 for _ in registry.objects_in_namespace(name))
        if remaining:
            self.manager.enqueue("namespace", "", name, 0.05 if pending else 0.0)
            return
        candidate = clone(ns)
        candidate["spec"]["finalizers"] = []
        registry.write_object(self.namespaces, candidate)
