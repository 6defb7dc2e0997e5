"""The apiserver's request semantics: create, update, patch, apply, delete, get, list.

Everything here is synchronous and runs on the event loop, so each request is atomic.  Controllers
call the same methods as HTTP handlers, so their writes get resourceVersions, managedFields and
watch events exactly like a client's.

The Registry composes the pieces, one concept each: ``storage`` (finding, finalizing and
committing objects), ``reads`` (get, list), ``writes`` (create, update, patch), ``apply``
(server-side apply), ``scale`` (the scale subresource) and ``deletion``; the served types are in
``served_types``.  What is left here are the shortcuts controllers write through.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .api_errors import ApiError
from .apply import Applier
from .defaults import Allocator
from .deletion import Deletion
from .managed import decode_managers
from .reads import Reads
from .resource_types import ResourceType, custom_resource_types
from .scale import ScaleWrites, scale_of
from .served_types import TypeRegistry
from .storage import DeletionHook, ObjectStorage
from .store import ResourceKey, Store
from .writes import Writes


class Registry:
    """The in-memory apiserver."""

    def __init__(self) -> None:
        self.store = Store()
        self.types = TypeRegistry()
        self.allocator = Allocator()
        #: Called when a delete removed an object or marked it for deletion (garbage collection
        #: and the namespace controller hook in here).
        self.deletion_hooks: list[DeletionHook] = []
        objects = ObjectStorage(self.store, self.types, self.allocator, self.deletion_hooks)
        reads = Reads(objects)
        applier = Applier(objects)
        self._writes = Writes(objects, applier=applier, scales=ScaleWrites(objects))
        deletion = Deletion(objects, reads=reads)
        self.find = objects.find
        self.present = objects.present
        self.get = reads.get
        self.list_objects = reads.list_objects
        self.selectors = reads.selectors
        self.create = self._writes.create
        self.update = self._writes.update
        self.patch = self._writes.patch
        self.apply = applier.apply
        self.delete = deletion.delete
        self.remove_finalizer = deletion.remove_finalizer
        self.delete_collection = deletion.delete_collection
        self.scale_of = scale_of

    # ------------------------------------------------------------------ controllers' shortcuts

    def write_status(
        self,
        resource: ResourceType,
        obj: dict[str, Any],
        status: dict[str, Any],
        *,
        manager: str = "kube-controller-manager",
    ) -> dict[str, Any] | None:
        """A controller's status update (no-op when the status is unchanged)."""
        if obj.get("status") == status:
            return obj
        return self._controller_write(
            resource, obj, {"status": status}, manager=manager, subresource="status"
        )

    def write_object(
        self,
        resource: ResourceType,
        obj: dict[str, Any],
        *,
        manager: str = "kube-controller-manager",
    ) -> dict[str, Any] | None:
        """A controller's update of the main resource."""
        return self._controller_write(resource, obj, obj, manager=manager, subresource="")

    def _controller_write(
        self,
        resource: ResourceType,
        obj: dict[str, Any],
        body: dict[str, Any],
        *,
        manager: str,
        subresource: str,
    ) -> dict[str, Any] | None:
        """Write ``body`` over the live copy of ``obj``; None when it is gone."""
        meta = obj["metadata"]
        live = self.find(resource, meta.get("namespace", ""), meta["name"])
        if live is None:
            return None
        return self._writes.write(
            resource,
            live,
            body,
            manager=manager,
            subresource=subresource,
            dry_run=False,
            managers=decode_managers(live),
        )

    def create_object(
        self,
        resource: ResourceType,
        obj: dict[str, Any],
        *,
        manager: str = "kube-controller-manager",
    ) -> dict[str, Any] | None:
        """A controller's create; None when the namespace is gone or terminating."""
        namespace = obj["metadata"].get("namespace", "")
        try:
            created, _ = self.create(resource, namespace, obj, manager=manager)
        except ApiError as exc:
            if exc.code in (403, 404, 409):
                return None
            raise
        return created

    def resource(self, api_version: str, kind: str) -> ResourceType:
        """A built-in type controllers rely on."""
        found = self.types.by_kind(api_version, kind)
        if found is None:
            raise KeyError(f"{api_version} {kind} is not served")
        return found

    def install_crd(self, crd: dict[str, Any]) -> list[ResourceType]:
        """Starts serving a CRD's resources."""
        types = custom_resource_types(crd)
        self.types.install(crd["metadata"]["name"], types)
        return types

    def objects_in_namespace(self, namespace: str) -> Iterable[tuple[ResourceType, dict[str, Any]]]:
        """Everything stored in ``namespace``."""
        seen: set[ResourceKey] = set()
        for resource in self.types.all():
            key = self.types.storage_key(resource)
            if not resource.namespaced or key in seen:
                continue
            seen.add(key)
            for obj in list(self.store.objects(key, namespace)):
                yield resource, obj
