"""The garbage collector: dependents of a deleted owner are deleted, or orphaned.

Background deletion deletes the dependents after the owner; foreground deletion keeps the owner
(finalizer ``foregroundDeletion``) until they are gone; orphan deletion (finalizer ``orphan``)
only drops the owner's references from them.  A dependent with another live owner stays.
"""

from __future__ import annotations

from typing import Any

from ..objects import clone
from ..resource_types import ResourceType
from .manager import ControllerManager
from .owners import delete_if_present


class GarbageCollector:
    """The ``gc`` controller, keyed by the uid of a deleted owner."""

    def __init__(self, manager: ControllerManager) -> None:
        self.manager = manager
        self.registry = manager.registry

    def collect(self, _namespace: str, owner_uid: str) -> None:
        """Deletes (or orphans) the dependents of a deleted owner, then releases the owner."""
        store = self.registry.store
        owner = store.by_uid(owner_uid)
        owner_obj = owner[1] if owner is not None else None
        finalizers = (owner_obj or {}).get("metadata", {}).get("finalizers") or ()
        if owner_obj is not None and not owner_obj["metadata"].get("deletionTimestamp"):
            return
        orphan = "orphan" in finalizers
        remaining = self._release_dependents(owner_uid, orphan=orphan)
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

    def _release_dependents(self, owner_uid: str, *, orphan: bool) -> int:
        """Orphans or deletes the dependents; returns how many are still there to wait for."""
        store = self.registry.store
        remaining = 0
        for resource_key, (namespace, name) in store.dependents(owner_uid):
            resource = self._type_of(resource_key)
            if resource is None:
                continue
            dependent = store.get(resource_key, namespace, name)
            if dependent is None:
                continue
            if orphan:
                self._orphan(resource, dependent, owner_uid)
                continue
            if self._has_live_owner(dependent, owner_uid):
                continue
            remaining += 1
            if dependent["metadata"].get("deletionTimestamp"):
                continue
            delete_if_present(self.registry, resource, namespace, name, propagation="Background")
        return remaining

    def _orphan(self, resource: ResourceType, dependent: dict[str, Any], owner_uid: str) -> None:
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
