"""Conflicts between field managers in server-side apply, and what a forced apply takes.

An apply that changes a field another manager owns conflicts (409) unless it is forced; then
the applier takes the field over.  As on kube-apiserver, the manager ``kubectl`` may take over
without ``--force-conflicts`` the fields of its last client-side apply (the
``last-applied-configuration`` annotation), which it then keeps in step.
"""

from __future__ import annotations

import json
from typing import Any

from . import fields as fieldsets
from .api_errors import ApiError, status_details
from .fields import FieldError, FieldSet
from .managed import ManagerEntry, ManagerKey, view
from .resource_types import ResourceType

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"

Conflict = tuple[ManagerEntry, FieldSet]  # another manager, and the fields of it that clash


def find_conflicts(
    managers: list[ManagerEntry], writer: ManagerKey, changed: FieldSet
) -> list[Conflict]:
    """The other managers that own some of the fields the apply changes."""
    conflicts: list[Conflict] = []
    for entry in managers:
        if entry.key == writer:
            continue
        clash = fieldsets.intersection(entry.fields, changed)
        if clash:
            conflicts.append((entry, clash))
    return conflicts


def release_fields(
    managers: list[ManagerEntry],
    writer: ManagerKey,
    conflicts: list[Conflict],
    removed: FieldSet,
) -> list[ManagerEntry]:
    """The managers after the apply: others lose what it took or removed; empty ones go."""
    clashes = {id(entry): clash for entry, clash in conflicts}
    kept: list[ManagerEntry] = []
    for entry in managers:
        if entry.key != writer:
            if id(entry) in clashes:
                entry.fields = fieldsets.difference(entry.fields, clashes[id(entry)])
            entry.fields = fieldsets.difference(entry.fields, removed)
        if entry.fields or entry.key == writer:
            kept.append(entry)
    return kept


def last_applied(obj: dict[str, Any] | None) -> str | None:
    """kubectl's ``last-applied-configuration`` annotation, if any."""
    annotations = ((obj or {}).get("metadata") or {}).get("annotations") or {}
    value = annotations.get(LAST_APPLIED)
    return value if isinstance(value, str) else None


def keep_last_applied(new: dict[str, Any], applied_body: dict[str, Any]) -> None:
    """Sets the annotation on ``new`` to what kubectl now applies server-side."""
    annotation = json.dumps(_without_last_applied(applied_body), separators=(",", ":"))
    new["metadata"].setdefault("annotations", {})[LAST_APPLIED] = annotation


def _without_last_applied(body: dict[str, Any]) -> dict[str, Any]:
    meta = dict(body.get("metadata") or {})
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if k != LAST_APPLIED}
    if annotations:
        meta["annotations"] = annotations
    else:
        meta.pop("annotations", None)
    return body | {"metadata": meta}


def conflicts_allowed_by_last_applied(
    resource: ResourceType,
    live: dict[str, Any] | None,
    conflicts: list[Conflict],
) -> bool:
    """True when every conflict is on a field of kubectl's last client-side apply.

    The apiserver lets ``kubectl`` take over what it applied client-side without
    ``--force-conflicts``; other managers and other fields still conflict.
    """
    text = last_applied(live)
    if text is None:
        return False
    try:
        previous = json.loads(text)
        allowed = fieldsets.applied_fields(view(previous, resource, ""), resource.schema)
    except (ValueError, TypeError, AttributeError, FieldError):
        return False
    return all(not fieldsets.difference(clash, allowed) for _, clash in conflicts)


def conflict_error(resource: ResourceType, name: str, conflicts: list[Conflict]) -> ApiError:
    """409 Conflict naming each clashing field and its manager, as kube-apiserver words it."""
    causes: list[dict[str, str]] = []
    lines: list[str] = []
    total = 0
    for entry, clash in conflicts:
        paths = [fieldsets.format_path(p) for p in fieldsets.members(clash)]
        total += len(paths)
        for path in paths:
            causes.append(
                {
                    "reason": "FieldManagerConflict",
                    "message": f"conflict with {entry.describe()}",
                    "field": path,
                }
            )
        if len(paths) == 1:
            lines.append(f"conflict with {entry.describe()}: {paths[0]}")
        else:
            lines.append(
                f"conflicts with {entry.describe()}:\n" + "\n".join(f"- {p}" for p in paths)
            )
    plural = "conflict" if total == 1 else "conflicts"
    message = f"Apply failed with {total} {plural}: " + "\n".join(lines)
    return ApiError(409, "Conflict", message, details=status_details(resource, name, causes=causes))
