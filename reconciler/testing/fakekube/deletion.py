"""DELETE, of one object or a collection, and the finalizers that hold a deletion up.

An object with finalizers (or one that foreground or orphan propagation adds) is only marked:
it gets a deletionTimestamp and stays until its finalizers are removed.  The deletion hooks tell
the garbage collector and the namespace controller either way.
"""

from __future__ import annotations

from typing import Any

from .api_errors import ApiError, bad_request, status_details
from .objects import clone, now_iso
from .reads import Reads
from .resource_types import ResourceType
from .storage import ObjectStorage, ns_finalizers


class Deletion:
    """Deletes objects; controllers finish deletions by removing finalizers."""

    def __init__(self, objects: ObjectStorage, *, reads: Reads) -> None:
        self.objects = objects
        self.reads = reads

    def delete(
        self,
        resource: ResourceType,
        namespace: str,
        name: str,
        *,
        propagation: str | None = None,
        preconditions: dict[str, Any] | None = None,
        dry_run: bool = False,
    ) -> tuple[dict[str, Any], bool]:
        """DELETE: returns (what to answer, whether the object is gone already)."""
        objects = self.objects
        live = objects.live(resource, namespace, name)
        _check_preconditions(resource, name, live, preconditions or {})
        if dry_run:
            return objects.present(resource, live), False
        meta = live["metadata"]
        if meta.get("deletionTimestamp"):
            return objects.present(resource, live), False
        policy = propagation or "Background"
        if policy not in ("Background", "Foreground", "Orphan"):
            raise bad_request(f'unsupported propagationPolicy "{policy}"')
        finalizers = list(meta.get("finalizers") or ())
        if policy == "Foreground" and objects.store.dependents(meta["uid"]):
            finalizers.append("foregroundDeletion")
        if policy == "Orphan":
            finalizers.append("orphan")
        if finalizers or ns_finalizers(live):
            return objects.present(resource, self._mark(resource, live, finalizers)), False
        # Stored objects are never changed in place, so the final state shares all but its
        # metadata with the live one.
        version = str(objects.store.next_version())
        final = {**live, "metadata": {**meta, "resourceVersion": version}}
        objects.remove(resource, final)
        if resource.returns_deleted_object:
            return objects.present(resource, final), True
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success",
            "details": status_details(resource, name, uid=meta["uid"]),
        }, True

    def _mark(
        self, resource: ResourceType, live: dict[str, Any], finalizers: list[str]
    ) -> dict[str, Any]:
        """Marks ``live`` for deletion; it stays until ``finalizers`` are gone."""
        candidate: dict[str, Any] = clone(live)
        candidate_meta = candidate["metadata"]
        candidate_meta["deletionTimestamp"] = now_iso()
        candidate_meta["deletionGracePeriodSeconds"] = 0
        candidate_meta["finalizers"] = finalizers
        if not finalizers:
            del candidate_meta["finalizers"]
        if resource.tracks_generation:
            candidate_meta["generation"] = int(live["metadata"].get("generation", 1)) + 1
        if resource.kind == "Namespace" and not resource.custom:
            candidate["status"] = dict(candidate.get("status") or {}, phase="Terminating")
        objects = self.objects
        candidate_meta["resourceVersion"] = str(objects.store.next_version())
        objects.store.put(objects.types.storage_key(resource), candidate, live)
        for hook in objects.deletion_hooks:
            hook(resource, candidate)
        return candidate

    def remove_finalizer(self, resource: ResourceType, obj: dict[str, Any], finalizer: str) -> None:
        """Drops one finalizer (a controller finishing its part of a deletion)."""
        objects = self.objects
        live = objects.find(resource, obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
        if live is None:
            return
        finalizers = [f for f in live["metadata"].get("finalizers") or () if f != finalizer]
        candidate = clone(live)
        if finalizers:
            candidate["metadata"]["finalizers"] = finalizers
        else:
            candidate["metadata"].pop("finalizers", None)
        if candidate == live:
            return
        candidate["metadata"]["resourceVersion"] = str(objects.store.next_version())
        objects.settle(resource, live, candidate)

    def delete_collection(
        self,
        resource: ResourceType,
        namespace: str | None,
        *,
        label_selector: str | None,
        field_selector: str | None,
        propagation: str | None,
        dry_run: bool,
    ) -> dict[str, Any]:
        """DELETE on a collection: deletes what the selectors match; answers the list."""
        listed = self.reads.list_objects(
            resource, namespace, label_selector=label_selector, field_selector=field_selector
        )
        for item in listed["items"]:
            meta = item["metadata"]
            try:
                self.delete(
                    resource,
                    meta.get("namespace", ""),
                    meta["name"],
                    propagation=propagation,
                    dry_run=dry_run,
                )
            except ApiError as exc:
                if exc.code != 404:
                    raise
        return listed


def _check_preconditions(
    resource: ResourceType, name: str, live: dict[str, Any], preconditions: dict[str, Any]
) -> None:
    """409 when the DeleteOptions' uid or resourceVersion precondition fails."""
    for key in ("uid", "resourceVersion"):
        wanted = preconditions.get(key)
        if wanted and wanted != live["metadata"].get(key):
            raise ApiError(
                409,
                "Conflict",
                f'Operation cannot be fulfilled on {resource.qualified_plural} "{name}": '
                f"Precondition failed: {key}: {wanted}, {key} in object meta: "
                f"{live['metadata'].get(key)}",
                details=status_details(resource, name),
            )
