"""Server-side apply: merge, ownership, conflicts, removal of fields no longer applied.

An apply configuration is merged into the live object by the schema; the applier's Apply entry
becomes exactly the fields it applied, and fields it applied last time but not now are removed
unless another manager owns them.  Conflicts are in ``apply_conflicts``.
"""

from __future__ import annotations

import uuid
from typing import Any

from . import fields as fieldsets
from .admission import check_identity, check_name, check_namespace, decode_body
from .api_errors import bad_request, invalid, not_found, stale
from .apply_conflicts import (
    conflict_error,
    conflicts_allowed_by_last_applied,
    find_conflicts,
    keep_last_applied,
    last_applied,
    release_fields,
)
from .fields import FieldError, FieldSet
from .managed import ManagerEntry, ManagerKey, decode_managers, view
from .objects import now_iso
from .resource_types import ResourceType
from .scale import scale_apply_config, scale_of
from .storage import ObjectStorage


class Applier:
    """``PATCH`` with ``application/apply-patch+yaml``, on an object, its status or its scale."""

    def __init__(self, objects: ObjectStorage) -> None:
        self.objects = objects

    def apply(
        self,
        resource: ResourceType,
        namespace: str,
        name: str,
        body: Any,
        *,
        manager: str,
        subresource: str = "",
        force: bool = False,
        dry_run: bool = False,
        field_validation: str = "Strict",
    ) -> tuple[dict[str, Any], list[str]]:
        """Server-side apply: merge, ownership, conflicts, removal of fields no longer applied."""
        if not manager:
            raise bad_request(
                "PATCH, application/apply-patch+yaml requests require fieldManager to be set"
            )
        if subresource == "scale":
            return self._apply_config(
                resource,
                namespace,
                name,
                scale_apply_config(resource, body),
                manager=manager,
                subresource="scale",
                force=force,
                dry_run=dry_run,
                creating_allowed=False,
                present_scale=True,
            ), []
        meta = check_identity(resource, namespace, name, body)
        if meta.get("managedFields") is not None:
            raise bad_request("metadata.managedFields must be nil")
        cleaned, warnings = decode_body(
            resource, body, field_validation=field_validation, applying=True
        )
        live = self.objects.find(resource, namespace if resource.namespaced else "", name)
        if live is not None:
            for key in ("resourceVersion", "uid"):
                if meta.get(key) and meta[key] != live["metadata"].get(key):
                    raise stale(resource, name)
        config = view(cleaned, resource, "status" if subresource == "status" else "")
        applied = self._apply_config(
            resource,
            namespace,
            name,
            config,
            manager=manager,
            subresource=subresource,
            force=force,
            dry_run=dry_run,
            creating_allowed=subresource == "",
            present_scale=False,
            applied_body=cleaned,
        )
        return applied, warnings

    def _apply_config(
        self,
        resource: ResourceType,
        namespace: str,
        name: str,
        config: dict[str, Any],
        *,
        manager: str,
        subresource: str,
        force: bool,
        dry_run: bool,
        creating_allowed: bool,
        present_scale: bool,
        applied_body: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        live = self._target(resource, namespace, name, creating_allowed=creating_allowed)
        try:
            applied = fieldsets.applied_fields(config, resource.schema)
        except FieldError as exc:
            raise invalid(resource, name, [exc]) from exc
        managers = decode_managers(live)
        writer = (manager, "Apply", subresource)
        last = _record_apply(resource, managers, writer, applied)
        pruned = _merged(resource, namespace, name, live, config, managers, last)
        domain = "status" if subresource == "status" else ""
        new = self.objects.finalize(resource, live, pruned, domain)
        old_view = view(live, resource, domain, complete=True)
        comparison = fieldsets.compare(
            old_view, view(new, resource, domain, complete=True), resource.schema
        )
        conflicts = find_conflicts(managers, writer, comparison.changed())
        upgrading = manager == "kubectl" and subresource == "" and last_applied(live) is not None
        if (
            conflicts
            and not force
            and not (upgrading and conflicts_allowed_by_last_applied(resource, live, conflicts))
        ):
            raise conflict_error(resource, name, conflicts)
        if upgrading and applied_body is not None:
            # kubectl moving from client- to server-side apply: keep its annotation in step with
            # what it applies, outside of any field ownership, as the apiserver does.
            keep_last_applied(new, applied_body)
        kept = release_fields(managers, writer, conflicts, comparison.removed)
        result = self.objects.commit(
            resource, live, new, kept, writer, dry_run=dry_run, subresource=domain
        )
        if present_scale:
            return scale_of(resource, result)
        return result

    def _target(
        self, resource: ResourceType, namespace: str, name: str, *, creating_allowed: bool
    ) -> dict[str, Any] | None:
        """The live object; None when the apply creates it (after the checks a create makes)."""
        live = self.objects.find(resource, namespace if resource.namespaced else "", name)
        if live is None and not creating_allowed:
            raise not_found(resource, name)
        if live is None:
            check_name(resource, name)
            check_namespace(self.objects, resource, namespace, name)
        return live


def _record_apply(
    resource: ResourceType, managers: list[ManagerEntry], writer: ManagerKey, applied: FieldSet
) -> FieldSet:
    """Makes the writer's Apply entry exactly ``applied``; returns what it applied last time."""
    manager, _, subresource = writer
    previous = next((entry for entry in managers if entry.key == writer), None)
    last: FieldSet = previous.fields if previous is not None else {}
    if previous is not None:
        previous.fields = applied
    else:
        managers.append(
            ManagerEntry(manager, "Apply", resource.api_version, now_iso(), subresource, applied)
        )
    return last


def _merged(
    resource: ResourceType,
    namespace: str,
    name: str,
    live: dict[str, Any] | None,
    config: dict[str, Any],
    managers: list[ManagerEntry],
    last: FieldSet,
) -> dict[str, Any]:
    """``config`` merged into the live object (or a new one), less the fields no longer applied."""
    if live is None:
        base: dict[str, Any] = {"metadata": {"name": name}}
        if resource.namespaced:
            base["metadata"]["namespace"] = namespace
    else:
        base = live
    try:
        merged = fieldsets.merge(base, config, resource.schema)
        owned: FieldSet = {}
        for entry in managers:
            owned = fieldsets.union(owned, entry.fields)
        pruned = _prune_keeping_metadata(merged, resource, last, owned)
    except FieldError as exc:
        raise invalid(resource, name, [exc]) from exc
    if live is None:
        meta = dict(pruned.get("metadata") or {})
        meta.update(uid=str(uuid.uuid4()), creationTimestamp=now_iso())
        pruned = pruned | {"metadata": meta}
    return pruned


def _prune_keeping_metadata(
    merged: dict[str, Any], resource: ResourceType, last: FieldSet, owned: FieldSet
) -> dict[str, Any]:
    """Prunes fields no longer applied; ``metadata`` itself always stays."""
    top_remove = {k: v for k, v in last.items() if k != "f:metadata"}
    result = fieldsets.prune(merged, resource.schema, top_remove, owned)
    meta_remove = last.get("f:metadata")
    if meta_remove:
        meta_node = resource.schema.field("metadata")
        assert meta_node is not None
        meta = fieldsets.prune(
            merged.get("metadata") or {},
            meta_node,
            {k: v for k, v in meta_remove.items() if k != "."},
            owned.get("f:metadata") or {},
        )
        result = dict(result) | {"metadata": meta}
    pruned: dict[str, Any] = result
    return pruned
