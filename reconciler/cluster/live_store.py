"""The objects a :class:`reconciler.cluster.live.LiveCache` holds, indexed for its readers.

Objects are keyed by (API group, kind, namespace, name): ``apps/v1`` and ``apps/v1beta2``
Deployments are one object.  Per kind they are grouped by namespace, so the pods of one
namespace are found without looking at every pod of the cluster.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from reconciler.model import ObjectRef

GroupKind = tuple[str, str]
"""(API group, kind): ``("apps", "Deployment")``; the core group is ``""``."""

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
"""kubectl's copy of the whole manifest: as big as the object and needed by nobody here."""


@dataclass(frozen=True)
class Change:
    """One change to a cached object: ``type`` is ADDED, MODIFIED or DELETED; ``obj`` the new
    state (None when deleted) and ``old`` the previous one (None when added)."""

    type: str
    ref: ObjectRef
    obj: dict[str, Any] | None
    old: dict[str, Any] | None


def group_of(api_version: str) -> str:
    """The API group of an apiVersion: ``apps/v1`` -> ``apps``, ``v1`` -> ``""``."""
    group, _, _ = api_version.rpartition("/")
    return group


def slim(obj: dict[str, Any]) -> dict[str, Any]:
    """``obj`` without kubectl's last-applied annotation (managedFields stay: drift needs them).

    Copies only the levels it changes, so the caller's dict is left alone.
    """
    metadata = obj.get("metadata")
    if not isinstance(metadata, dict):
        return obj
    annotations = metadata.get("annotations")
    if not isinstance(annotations, dict) or LAST_APPLIED not in annotations:
        return obj
    kept = {key: value for key, value in annotations.items() if key != LAST_APPLIED}
    slimmed_metadata = {key: value for key, value in metadata.items() if key != "annotations"}
    if kept:
        slimmed_metadata["annotations"] = kept
    return {**obj, "metadata": slimmed_metadata}


def identity(obj: Mapping[str, Any]) -> tuple[str, str] | None:
    """(namespace, name) of a live object; None when it has no name (nothing to key it by)."""
    metadata = obj.get("metadata")
    if not isinstance(metadata, Mapping):
        return None
    name = metadata.get("name")
    namespace = metadata.get("namespace") or ""
    if not isinstance(name, str) or not name or not isinstance(namespace, str):
        return None
    return namespace, name


def resource_version(obj: Mapping[str, Any]) -> str:
    """``metadata.resourceVersion``, or "" when absent."""
    metadata = obj.get("metadata")
    version = metadata.get("resourceVersion") if isinstance(metadata, Mapping) else None
    return version if isinstance(version, str) else ""


class ObjectTable:
    """The cached objects of every tracked kind."""

    def __init__(self) -> None:
        self._kinds: dict[GroupKind, dict[str, dict[str, dict[str, Any]]]] = {}
        self._api_versions: dict[GroupKind, str] = {}
        self.size = 0
        """How many objects are cached (of every kind)."""

    def add_kind(self, group_kind: GroupKind, api_version: str) -> None:
        """Start holding ``group_kind`` (read as ``api_version``)."""
        self._kinds.setdefault(group_kind, {})
        self._api_versions.setdefault(group_kind, api_version)

    def holds(self, group_kind: GroupKind) -> bool:
        """Whether ``group_kind`` is tracked."""
        return group_kind in self._kinds

    def get(self, group_kind: GroupKind, namespace: str, name: str) -> dict[str, Any] | None:
        """The cached object, or None."""
        return self._kinds.get(group_kind, {}).get(namespace, {}).get(name)

    def in_namespace(self, group_kind: GroupKind, namespace: str) -> Iterator[dict[str, Any]]:
        """The cached objects of one kind in one namespace."""
        yield from list(self._kinds.get(group_kind, {}).get(namespace, {}).values())

    def all_of(self, group_kind: GroupKind) -> dict[tuple[str, str], dict[str, Any]]:
        """Every cached object of one kind by (namespace, name)."""
        namespaces = self._kinds.get(group_kind, {})
        return {
            (namespace, name): obj
            for namespace, objects in namespaces.items()
            for name, obj in objects.items()
        }

    def put(self, group_kind: GroupKind, obj: dict[str, Any]) -> Change | None:
        """Store ``obj``; the change it is (None when nothing changed, or it has no name)."""
        where = identity(obj)
        if where is None:
            return None
        namespace, name = where
        objects = self._kinds.setdefault(group_kind, {}).setdefault(namespace, {})
        old = objects.get(name)
        if old is not None and resource_version(old) == resource_version(obj) != "":
            return None  # a replay of what is cached already
        objects[name] = obj
        if old is None:
            self.size += 1
        return Change(
            "ADDED" if old is None else "MODIFIED", self._ref(group_kind, where), obj, old
        )

    def remove(self, group_kind: GroupKind, obj: Mapping[str, Any]) -> Change | None:
        """Forget ``obj``; the DELETED change, or None when it was not cached."""
        where = identity(obj)
        if where is None:
            return None
        namespace, name = where
        objects = self._kinds.get(group_kind, {}).get(namespace)
        old = objects.pop(name, None) if objects is not None else None
        if old is None:
            return None
        if objects is not None and not objects:
            del self._kinds[group_kind][namespace]
        self.size -= 1
        return Change("DELETED", self._ref(group_kind, where), None, old)

    def replace(self, group_kind: GroupKind, items: list[dict[str, Any]]) -> list[Change]:
        """Make ``items`` the whole of ``group_kind`` (after a list); the changes that made."""
        before = self.all_of(group_kind)
        changes: list[Change] = []
        seen: set[tuple[str, str]] = set()
        for item in items:
            where = identity(item)
            if where is None:
                continue
            seen.add(where)
            change = self.put(group_kind, item)
            if change is not None:
                changes.append(change)
        for where, gone in before.items():
            if where not in seen:
                change = self.remove(group_kind, gone)
                if change is not None:
                    changes.append(change)
        return changes

    def _ref(self, group_kind: GroupKind, where: tuple[str, str]) -> ObjectRef:
        namespace, name = where
        api_version = self._api_versions.get(group_kind, group_kind[0])
        return ObjectRef(
            api_version=api_version, kind=group_kind[1], name=name, namespace=namespace or None
        )
