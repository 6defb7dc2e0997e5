"""Discovery and OpenAPI: what kubectl and the clients read to learn what the server serves.

``/version``, ``/api``, ``/apis``, the group and group-version documents with each resource's
verbs, scope, short names, categories and subresources, and the OpenAPI v3 index and documents.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

from . import openapi
from .api_errors import ApiError
from .http_io import JSON, json_response
from .resource_types import ResourceType
from .schema import KUBERNETES_VERSION
from .served_types import TypeRegistry
from .store import Store

_CRDS = ("apiextensions.k8s.io", "customresourcedefinitions")


class Discovery:
    """The discovery documents of the served types (which change as CRDs come and go)."""

    def __init__(self, types: TypeRegistry, store: Store, *, host_port: Callable[[], str]) -> None:
        self.types = types
        self.store = store
        self._host_port = host_port
        self._openapi = openapi.OpenApiCache()

    def root_paths(self) -> list[str]:
        """The paths ``GET /`` lists."""
        paths = [
            "/api",
            "/api/v1",
            "/apis",
            "/healthz",
            "/livez",
            "/readyz",
            "/version",
            "/openapi/v3",
        ]
        for group, version in self.types.group_versions():
            if group:
                paths += [f"/apis/{group}", f"/apis/{group}/{version}"]
        return sorted(set(paths))

    def core_versions(self) -> dict[str, Any]:
        """``GET /api``."""
        return {
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [
                {"clientCIDR": "0.0.0.0/0", "serverAddress": self._host_port()}
            ],
        }

    def group_versions_of(self, group: str) -> list[str]:
        """The versions served for ``group`` (empty when it is not served)."""
        return [v for g, v in self.types.group_versions() if g == group]

    def group(self, group: str, versions: list[str]) -> dict[str, Any]:
        """``GET /apis/{group}``."""
        listed = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
        return {
            "kind": "APIGroup",
            "apiVersion": "v1",
            "name": group,
            "versions": listed,
            "preferredVersion": listed[0],
        }

    def group_list(self) -> dict[str, Any]:
        """``GET /apis``."""
        groups: dict[str, list[str]] = {}
        for group, version in self.types.group_versions():
            if group:
                groups.setdefault(group, []).append(version)
        result = []
        for group, versions in groups.items():
            entry = self.group(group, self._ordered_versions(group, versions))
            del entry["kind"], entry["apiVersion"]
            result.append(entry)
        return {"kind": "APIGroupList", "apiVersion": "v1", "groups": result}

    def _ordered_versions(self, group: str, versions: list[str]) -> list[str]:
        custom = next((r for r in self.types.all() if r.custom and r.group == group), None)
        if custom is None:
            return versions
        order = list(custom.served_versions)
        return sorted(versions, key=lambda v: order.index(v) if v in order else len(order))

    def resource_list(self, group: str, version: str) -> dict[str, Any]:
        """``GET /api/v1`` or ``GET /apis/{group}/{version}``."""
        resources: list[dict[str, Any]] = []
        for resource in self.types.in_group_version(group, version):
            resources.extend(_resource_entries(resource))
        return {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": f"{group}/{version}" if group else version,
            "resources": resources,
        }

    def openapi_response(self, parts: list[str]) -> web.Response:
        """``GET /openapi/v3`` (the index) or ``/openapi/v3/{group-version path}``."""
        if not parts or parts[0] != "v3":
            raise ApiError(
                404,
                "NotFound",
                "fakekube serves OpenAPI v3 only (/openapi/v3); /openapi/v2 would be protobuf",
            )
        if len(parts) == 1:
            index: dict[str, Any] = {}
            for group, version in self.types.group_versions():
                _, digest = self._document(group, version)
                path = openapi.group_version_path(group, version)
                index[path] = {"serverRelativeURL": f"/openapi/v3/{path}?hash={digest}"}
            return json_response({"paths": index})
        wanted = "/".join(parts[1:])
        for group, version in self.types.group_versions():
            if openapi.group_version_path(group, version) == wanted:
                body, _ = self._document(group, version)
                return web.Response(body=body, content_type=JSON)
        raise ApiError(404, "NotFound", f"no OpenAPI v3 document for {wanted}")

    def _document(self, group: str, version: str) -> tuple[bytes, str]:
        types = self.types
        return self._openapi.get(
            group,
            version,
            generation=types.generation,
            resources=types.in_group_version(group, version),
            crds={obj["metadata"]["name"]: obj for obj in self.store.objects(_CRDS)},
        )


def version() -> dict[str, Any]:
    """``GET /version``."""
    major, minor, _ = KUBERNETES_VERSION.split(".")
    return {
        "major": major,
        "minor": minor,
        "gitVersion": f"v{KUBERNETES_VERSION}",
        "gitCommit": "fakekube",
        "gitTreeState": "clean",
        "buildDate": "2024-12-11T00:00:00Z",
        "goVersion": "go1.23.4",
        "compiler": "gc",
        "platform": "linux/amd64",
    }


def _resource_entries(resource: ResourceType) -> list[dict[str, Any]]:
    """The APIResourceList entries of ``resource`` and of its subresources."""
    entry: dict[str, Any] = {
        "name": resource.plural,
        "singularName": resource.singular,
        "namespaced": resource.namespaced,
        "kind": resource.kind,
        "verbs": list(resource.verbs),
    }
    if resource.short_names:
        entry["shortNames"] = list(resource.short_names)
    if resource.categories:
        entry["categories"] = list(resource.categories)
    entry["storageVersionHash"] = resource.storage_version_hash()
    entries = [entry]
    if resource.has_status:
        entries.append(
            {
                "name": f"{resource.plural}/status",
                "singularName": "",
                "namespaced": resource.namespaced,
                "kind": resource.kind,
                "verbs": ["get", "patch", "update"],
            }
        )
    if resource.scale is not None:
        entries.append(
            {
                "name": f"{resource.plural}/scale",
                "singularName": "",
                "namespaced": resource.namespaced,
                "group": "autoscaling",
                "version": "v1",
                "kind": "Scale",
                "verbs": ["get", "patch", "update"],
            }
        )
    return entries
