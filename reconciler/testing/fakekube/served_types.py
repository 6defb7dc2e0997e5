"""The resource types being served: built-in ones, and custom ones while their CRD stands."""

from __future__ import annotations

from .resource_types import (
    SERVED_GROUP_VERSIONS,
    ResourceType,
    builtin_resource_types,
)
from .store import ResourceKey


class TypeRegistry:
    """Resource types by URL and by kind; custom ones come and go with their CRDs."""

    def __init__(self) -> None:
        self._builtin = builtin_resource_types()
        self._custom: dict[str, list[ResourceType]] = {}
        self._by_path: dict[tuple[str, str, str], ResourceType] = {}
        self._by_kind: dict[tuple[str, str], ResourceType] = {}
        self.generation = 0
        self._reindex()

    def _reindex(self) -> None:
        self._by_path.clear()
        self._by_kind.clear()
        for resource in self.all():
            self._by_path[(resource.group, resource.version, resource.plural)] = resource
            self._by_kind.setdefault((resource.api_version, resource.kind), resource)
        self.generation += 1

    def all(self) -> list[ResourceType]:
        """Every served type, built-in first."""
        out = list(self._builtin)
        for types in self._custom.values():
            out.extend(types)
        return out

    def by_path(self, group: str, version: str, plural: str) -> ResourceType | None:
        """The type served at ``/apis/{group}/{version}/{plural}``."""
        return self._by_path.get((group, version, plural))

    def by_kind(self, api_version: str, kind: str) -> ResourceType | None:
        """The type of ``apiVersion``/``kind``."""
        return self._by_kind.get((api_version, kind))

    def group_versions(self) -> list[tuple[str, str]]:
        """Served group-versions, built-in in their fixed order, then custom ones."""
        seen = list(SERVED_GROUP_VERSIONS)
        for resource in self.all():
            if (resource.group, resource.version) not in seen:
                seen.append((resource.group, resource.version))
        return seen

    def in_group_version(self, group: str, version: str) -> list[ResourceType]:
        """The types of one group-version."""
        return [r for r in self.all() if r.group == group and r.version == version]

    def install(self, crd_name: str, types: list[ResourceType]) -> None:
        """Serves the types of an Established CRD (replacing older ones)."""
        self._custom[crd_name] = types
        self._reindex()

    def uninstall(self, crd_name: str) -> None:
        """Stops serving a CRD's types."""
        if self._custom.pop(crd_name, None) is not None:
            self._reindex()

    def storage_key(self, resource: ResourceType) -> ResourceKey:
        """Where objects of ``resource`` live (all versions of a CRD share it)."""
        return (resource.group, resource.plural)
