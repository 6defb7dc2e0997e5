"""Objects at rest: finding them, the object a write stores, and committing it.

Committing is where generations and resourceVersions move and managedFields are written; a write
that changes nothing is not committed, so it moves nothing.  Every write path (create, update,
patch, apply, scale, delete, controllers) ends here, so their writes get watch events alike.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .api_errors import invalid, not_found
from .defaults import Allocator, Context, apply_defaults, initial_status
from .managed import ManagerEntry, ManagerKey, decode_managers
from .objects import clone, now_iso
from .resource_types import ResourceType
from .served_types import TypeRegistry
from .store import Store
from .validation import validate

#: Called when a delete removed an object or marked it for deletion.
DeletionHook = Callable[[ResourceType, dict[str, Any]], None]

# Metadata the apiserver keeps from the stored object, whatever a write's body says.
_KEPT_METADATA = (
    "name",
    "namespace",
    "uid",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "generation",
    "resourceVersion",
    "generateName",
)


class ObjectStorage:
    """The store, the served types and the deletion hooks that every write path shares."""

    def __init__(
        self,
        store: Store,
        types: TypeRegistry,
        allocator: Allocator,
        deletion_hooks: list[DeletionHook],
    ) -> None:
        self.store = store
        self.types = types
        self.allocator = allocator
        self.deletion_hooks = deletion_hooks

    def find(self, resource: ResourceType, namespace: str, name: str) -> dict[str, Any] | None:
        """The stored object, or None."""
        return self.store.get(self.types.storage_key(resource), namespace, name)

    def live(self, resource: ResourceType, namespace: str, name: str) -> dict[str, Any]:
        """The stored object (``namespace`` ignored for cluster-scoped kinds), or 404."""
        live = self.find(resource, namespace if resource.namespaced else "", name)
        if live is None:
            raise not_found(resource, name)
        return live

    def present(self, resource: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
        """``obj`` as ``resource``'s version shows it (custom resources share storage)."""
        if resource.custom and obj.get("apiVersion") != resource.api_version:
            return obj | {"apiVersion": resource.api_version}
        return obj

    def finalize(
        self,
        resource: ResourceType,
        live: dict[str, Any] | None,
        candidate: dict[str, Any],
        subresource: str,
    ) -> dict[str, Any]:
        """The object to store: system metadata, reset status, defaults, validation."""
        new: dict[str, Any] = (
            _status_update(candidate)
            if subresource == "status" and live is not None
            else clone(candidate)
        )
        new["apiVersion"] = (
            resource.api_version
            if not resource.custom
            else f"{resource.group}/{resource.served_versions[0]}"
        )
        new["kind"] = resource.kind
        meta = new.setdefault("metadata", {})
        if live is not None:
            live_meta = live["metadata"]
            for key in _KEPT_METADATA:
                if key in live_meta:
                    meta[key] = live_meta[key]
                else:
                    meta.pop(key, None)
        if resource.has_status and subresource == "":
            _keep_status(resource, live, new)
        apply_defaults(
            resource, new, Context(creating=live is None, live=live, allocator=self.allocator)
        )
        if subresource != "status":
            name = new["metadata"].get("name", "")
            errors = validate(resource, new, live)
            if errors:
                raise invalid(resource, name, errors)
        return new

    def commit(
        self,
        resource: ResourceType,
        live: dict[str, Any] | None,
        new: dict[str, Any],
        managers: list[ManagerEntry],
        writer: ManagerKey | None,
        *,
        dry_run: bool,
        subresource: str,
    ) -> dict[str, Any]:
        """Stores ``new`` unless it changes nothing; returns what the client sees."""
        meta = new["metadata"]
        if resource.tracks_generation:
            meta["generation"] = _generation(live, new, subresource)
        encoded = _encode_managers(live, managers, writer)
        if encoded:
            meta["managedFields"] = encoded
        else:
            meta.pop("managedFields", None)
        if live is not None:
            meta["resourceVersion"] = live["metadata"]["resourceVersion"]
            if new == live:
                return self.present(resource, live)
        stamp = now_iso()
        for entry, raw in zip(managers, encoded, strict=True):
            if entry.key == writer:
                raw["time"] = stamp
        if dry_run:
            if live is None:
                meta.pop("resourceVersion", None)
            return self.present(resource, new)
        meta["resourceVersion"] = str(self.store.next_version())
        self.settle(resource, live, new)
        return self.present(resource, new)

    def settle(
        self, resource: ResourceType, live: dict[str, Any] | None, new: dict[str, Any]
    ) -> None:
        """Stores ``new``, or removes it when its deletion has nothing left to wait for."""
        meta = new["metadata"]
        if meta.get("deletionTimestamp") and not meta.get("finalizers") and not ns_finalizers(new):
            self.remove(resource, new)
        else:
            self.store.put(self.types.storage_key(resource), new, live)

    def remove(self, resource: ResourceType, final: dict[str, Any]) -> None:
        """Removes an object for good and tells the garbage collector."""
        self.store.remove(self.types.storage_key(resource), final)
        for hook in self.deletion_hooks:
            hook(resource, final)


def ns_finalizers(obj: dict[str, Any]) -> list[Any]:
    """A Namespace's ``spec.finalizers`` (empty for every other kind)."""
    if obj.get("kind") != "Namespace" or obj.get("apiVersion") != "v1":
        return []
    return list((obj.get("spec") or {}).get("finalizers") or ())


def _status_update(candidate: dict[str, Any]) -> dict[str, Any]:
    """A status write's object: its new status over the stored rest, which is shared, not
    copied.  Controllers write status a dozen times per rollout, and copying the whole object
    each time was most of their cost.  Sharing is safe because a stored object is never
    changed in place (every writer copies what it changes), a status write keeps everything
    but the status, and the metadata that commit sets is a copy of its own."""
    new = dict(candidate)
    new["metadata"] = dict(candidate["metadata"])
    if "status" in candidate:
        new["status"] = clone(candidate["status"])
    return new


def _keep_status(resource: ResourceType, live: dict[str, Any] | None, new: dict[str, Any]) -> None:
    """A write to the main resource keeps the stored status (a new object gets its initial one)."""
    if live is not None:
        if "status" in live:
            new["status"] = clone(live["status"])
        else:
            new.pop("status", None)
    else:
        new.pop("status", None)
        status = initial_status(resource)
        if status is not None:
            new["status"] = status


def _generation(live: dict[str, Any] | None, new: dict[str, Any], subresource: str) -> int:
    if live is None:
        return 1
    generation = int(live["metadata"].get("generation", 1))
    if subresource != "status" and _spec_changed(live, new):
        generation += 1
    return generation


def _spec_changed(live: dict[str, Any], new: dict[str, Any]) -> bool:
    for key in live.keys() | new.keys():
        if key in ("metadata", "status", "apiVersion", "kind"):
            continue
        if live.get(key) != new.get(key):
            return True
    return False


def _encode_managers(
    live: dict[str, Any] | None, managers: list[ManagerEntry], writer: ManagerKey | None
) -> list[dict[str, Any]]:
    """The managedFields entries; the writer's keeps its old time until the write is real."""
    previous_time = {entry.key: entry.time for entry in decode_managers(live)}
    for entry in managers:
        if entry.key == writer:
            entry.time = previous_time.get(entry.key, entry.time)
    return [entry.encode() for entry in managers]
