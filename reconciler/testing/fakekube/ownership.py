"""Field ownership after an Update (PUT, the non-apply patches, controllers' writes).

An Update takes the fields it changes silently: the writer owns them, every other manager loses
them.  (Server-side apply has its own rules, with conflicts: see ``apply``.)
"""

from __future__ import annotations

from typing import Any

from . import fields as fieldsets
from .fields import MISSING, FieldError
from .managed import ManagerEntry, ManagerKey, decode_managers, view
from .objects import now_iso
from .resource_types import ResourceType


def update_managers(
    resource: ResourceType,
    live: dict[str, Any] | None,
    new: dict[str, Any],
    managers: list[ManagerEntry],
    *,
    manager: str,
    subresource: str,
) -> tuple[list[ManagerEntry], ManagerKey]:
    """Ownership after an Update: the writer takes what it changed, others lose it."""
    domain = "status" if subresource == "status" else ""
    new_view = view(new, resource, domain, complete=True)
    if live is None:
        # As the zero value of the Go type: top-level structs exist, maps do not.
        old_view: dict[str, Any] = {
            key: {}
            for key, value in new_view.items()
            if isinstance(value, dict) and _is_struct(resource, key)
        }
    else:
        old_view = view(live, resource, domain, complete=True)
    writer = (manager, "Update", subresource)
    try:
        comparison = fieldsets.compare(old_view, new_view, resource.schema)
    except FieldError:
        # Duplicate list keys (possible through PUT): the apiserver still takes the write
        # and leaves managedFields as they were.
        return managers, writer
    changed = comparison.changed()
    removed = comparison.removed
    result: list[ManagerEntry] = []
    found = False
    for entry in managers:
        if entry.key == writer:
            found = True
            entry.fields = fieldsets.union(fieldsets.difference(entry.fields, removed), changed)
        else:
            entry.fields = fieldsets.difference(
                fieldsets.difference(entry.fields, changed), removed
            )
        if entry.fields:
            result.append(entry)
    if not found and changed:
        result.append(
            ManagerEntry(manager, "Update", resource.api_version, now_iso(), subresource, changed)
        )
    return result, writer


def managers_from_body(body: dict[str, Any], live: dict[str, Any]) -> list[ManagerEntry]:
    """Update semantics: managedFields in the body replace the stored ones when given."""
    given = (body.get("metadata") or {}).get("managedFields", MISSING)
    if given is MISSING or given is None:
        return decode_managers(live)
    if given == (live["metadata"].get("managedFields") or []):
        return decode_managers(live)
    if isinstance(given, list) and all(not entry for entry in given):
        return []
    return decode_managers(body)


def _is_struct(resource: ResourceType, key: str) -> bool:
    node = resource.schema.field(key)
    return node is not None and node.kind == "struct"
