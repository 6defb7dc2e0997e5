"""managedFields entries and the part of an object each kind of write may touch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .fields import FieldSet
from .resource_types import ResourceType

# Metadata the apiserver maintains itself; never part of any field set.
SYSTEM_METADATA = frozenset(
    {
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "managedFields",
        "selfLink",
        "generateName",
    }
)

ManagerKey = tuple[str, str, str]  # (manager, operation, subresource)


@dataclass
class ManagerEntry:
    """One ``metadata.managedFields`` entry, with its fields as a FieldsV1 trie."""

    manager: str
    operation: str
    api_version: str
    time: str
    subresource: str
    fields: FieldSet

    @property
    def key(self) -> ManagerKey:
        """What identifies the entry: the same manager may hold an Apply and an Update entry."""
        return (self.manager, self.operation, self.subresource)

    def describe(self) -> str:
        """How conflict messages name this manager."""
        where = f' with subresource "{self.subresource}"' if self.subresource else ""
        return f'"{self.manager}"{where} using {self.api_version}'

    def encode(self) -> dict[str, Any]:
        """The entry as the API shows it."""
        entry: dict[str, Any] = {
            "manager": self.manager,
            "operation": self.operation,
            "apiVersion": self.api_version,
            "time": self.time,
            "fieldsType": "FieldsV1",
            "fieldsV1": self.fields,
        }
        if self.subresource:
            entry["subresource"] = self.subresource
        return entry


def decode_managers(obj: dict[str, Any] | None) -> list[ManagerEntry]:
    """The entries of ``obj.metadata.managedFields`` (empty for None)."""
    if obj is None:
        return []
    entries = []
    for raw in (obj.get("metadata") or {}).get("managedFields") or ():
        if not isinstance(raw, dict):
            continue
        entries.append(
            ManagerEntry(
                manager=str(raw.get("manager", "")),
                operation=str(raw.get("operation", "Update")),
                api_version=str(raw.get("apiVersion", "")),
                time=str(raw.get("time", "")),
                subresource=str(raw.get("subresource", "")),
                fields=raw.get("fieldsV1") or {},
            )
        )
    return entries


def view(
    obj: dict[str, Any] | None,
    resource: ResourceType,
    subresource: str,
    *,
    complete: bool = False,
) -> dict[str, Any]:
    """The part of ``obj`` that a write to ``subresource`` ("" for the main resource) owns.

    ``complete`` keeps ``metadata`` (or ``status``) even when empty, as comparisons need: the
    apiserver compares typed objects in which those sections always exist, so they never count
    as added themselves.
    """
    if obj is None:
        return {}
    if subresource == "status":
        if "status" in obj:
            return {"status": obj["status"]}
        return {"status": {}} if complete else {}
    out = {
        key: value
        for key, value in obj.items()
        if key not in ("apiVersion", "kind", "metadata")
        and not (key == "status" and resource.has_status)
    }
    meta = obj.get("metadata") or {}
    user_meta = {key: value for key, value in meta.items() if key not in SYSTEM_METADATA}
    if user_meta or complete:
        out["metadata"] = user_meta
    return out
