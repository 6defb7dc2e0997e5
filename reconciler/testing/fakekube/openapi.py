"""``/openapi/v3``: the index and one document per group-version.

kubectl reads these for two things: whether the server validates fields itself (a
``fieldValidation`` parameter on the PATCH operation of the kind, found by its
``x-kubernetes-group-version-kind``), and the patch strategies of built-in kinds.  The schemas
are the same kubernetes-validate definitions the server uses, converted to OpenAPI 3 shape.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .resource_types import ResourceType
from .schema import KUBERNETES_VERSION, builtin_definitions

_META = "io.k8s.apimachinery.pkg.apis.meta.v1."
_REF_PREFIX = "#/components/schemas/"
_INT_OR_STRING = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
_QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"


def group_version_path(group: str, version: str) -> str:
    """``api/v1`` or ``apis/{group}/{version}``: the key of a document in the index."""
    return f"apis/{group}/{version}" if group else f"api/{version}"


def _convert(schema: Any) -> Any:
    """A kubernetes-validate JSON schema fragment in OpenAPI 3 form."""
    if isinstance(schema, list):
        return [_convert(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "$ref":
            out["$ref"] = str(value).replace("#/$defs/", _REF_PREFIX)
        elif key == "type" and isinstance(value, list):
            types = [t for t in value if t != "null"]
            if len(types) == 1:
                out["type"] = types[0]
        else:
            out[key] = _convert(value)
    if "$ref" in out and len(out) > 1:
        out["allOf"] = [{"$ref": out.pop("$ref")}]
    return out


def _converted_definition(name: str, raw: dict[str, Any]) -> dict[str, Any]:
    if name == _INT_OR_STRING:
        return {
            "description": raw.get("description", ""),
            "type": "string",
            "format": "int-or-string",
        }
    if name == _QUANTITY:
        return {"description": raw.get("description", ""), "type": "string"}
    converted: dict[str, Any] = _convert(raw)
    return converted


def _references(schema: Any, found: set[str]) -> None:
    if isinstance(schema, dict):
        for key, value in schema.items():
            if key == "$ref" and isinstance(value, str) and value.startswith("#/$defs/"):
                found.add(value.removeprefix("#/$defs/"))
            else:
                _references(value, found)
    elif isinstance(schema, list):
        for item in schema:
            _references(item, found)


def _closure(names: Iterable[str]) -> list[str]:
    definitions = builtin_definitions()
    pending = list(names)
    seen: set[str] = set()
    while pending:
        name = pending.pop()
        if name in seen or name not in definitions:
            continue
        seen.add(name)
        refs: set[str] = set()
        _references(definitions[name], refs)
        pending.extend(refs - seen)
    return sorted(seen)


def _custom_schema_name(resource: ResourceType) -> str:
    reversed_group = ".".join(reversed(resource.group.split(".")))
    return f"{reversed_group}.{resource.version}.{resource.kind}"


def _custom_schema(resource: ResourceType, crd: dict[str, Any] | None) -> dict[str, Any]:
    raw: dict[str, Any] = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    for version in ((crd or {}).get("spec") or {}).get("versions") or ():
        if version.get("name") == resource.version:
            raw = ((version.get("schema") or {}).get("openAPIV3Schema")) or raw
    schema: dict[str, Any] = json.loads(json.dumps(raw))
    properties = schema.setdefault("properties", {})
    properties["apiVersion"] = {"type": "string"}
    properties["kind"] = {"type": "string"}
    properties["metadata"] = {"allOf": [{"$ref": f"{_REF_PREFIX}{_META}ObjectMeta"}]}
    schema["type"] = "object"
    schema["x-kubernetes-group-version-kind"] = [
        {"group": resource.group, "version": resource.version, "kind": resource.kind}
    ]
    return schema


def _parameter(name: str, where: str = "query", *, required: bool = False) -> dict[str, Any]:
    return {
        "name": name,
        "in": where,
        "required": required or where == "path",
        "schema": {"type": "string", "uniqueItems": True},
    }


def _operation(
    resource: ResourceType,
    action: str,
    operation_id: str,
    schema_ref: str,
    parameters: list[dict[str, Any]],
    *,
    body: dict[str, Any] | None = None,
) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": operation_id,
        "description": f"{action} {resource.kind}",
        "parameters": parameters,
        "responses": {
            "200": {
                "description": "OK",
                "content": {"application/json": {"schema": {"$ref": schema_ref}}},
            },
            "401": {"description": "Unauthorized"},
        },
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": {
            "group": resource.group,
            "version": resource.version,
            "kind": resource.kind,
        },
    }
    if body is not None:
        operation["requestBody"] = body
    return operation


_LIST_PARAMETERS = (
    "allowWatchBookmarks",
    "continue",
    "fieldSelector",
    "labelSelector",
    "limit",
    "resourceVersion",
    "resourceVersionMatch",
    "sendInitialEvents",
    "timeoutSeconds",
    "watch",
)
_PATCH_MEDIA_TYPES = (
    "application/apply-patch+yaml",
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
)


@dataclass(frozen=True)
class _PathParts:
    """What the operations on one resource's paths are built from."""

    resource: ResourceType
    schema_ref: str
    list_ref: str
    path_params: list[dict[str, Any]]
    collection_params: list[dict[str, Any]]
    write_params: list[dict[str, Any]]
    list_params: list[dict[str, Any]]
    json_body: dict[str, Any]
    patch_body: dict[str, Any]

    @classmethod
    def of(cls, resource: ResourceType, schema_ref: str) -> _PathParts:
        """The parts for ``resource``, whose schema is at ``schema_ref``."""
        return cls(
            resource=resource,
            schema_ref=schema_ref,
            list_ref=f"{schema_ref}List" if not resource.custom else schema_ref,
            path_params=[_parameter("name", "path")]
            + ([_parameter("namespace", "path")] if resource.namespaced else []),
            collection_params=[_parameter("namespace", "path")] if resource.namespaced else [],
            write_params=[_parameter(p) for p in ("dryRun", "fieldManager", "fieldValidation")],
            list_params=[_parameter(p) for p in _LIST_PARAMETERS],
            json_body={
                "required": True,
                "content": {"*/*": {"schema": {"$ref": schema_ref}}},
            },
            patch_body={
                "required": True,
                "content": {
                    media: {"schema": {"$ref": f"{_REF_PREFIX}{_META}Patch"}}
                    for media in _PATCH_MEDIA_TYPES
                },
            },
        )


def _paths(resource: ResourceType, schema_ref: str) -> dict[str, Any]:
    """The paths of one resource, with their operations."""
    parts = _PathParts.of(resource, schema_ref)
    prefix = f"/{group_version_path(resource.group, resource.version)}"
    namespace_part = "/namespaces/{namespace}" if resource.namespaced else ""
    collection = f"{prefix}{namespace_part}/{resource.plural}"
    item = f"{collection}/{{name}}"
    paths: dict[str, Any] = {
        collection: _collection_operations(parts),
        item: _item_operations(parts),
    }
    if resource.has_status:
        paths[f"{item}/status"] = {
            verb: dict(paths[item][verb], operationId=f"{paths[item][verb]['operationId']}Status")
            for verb in ("get", "put", "patch")
        }
    if resource.scale is not None:
        paths[f"{item}/scale"] = _scale_operations(parts)
    if resource.namespaced:
        paths[f"{prefix}/{resource.plural}"] = {
            "get": _operation(
                resource,
                "list",
                f"list{resource.kind}ForAllNamespaces",
                parts.list_ref,
                parts.list_params,
            )
        }
    return paths


def _collection_operations(parts: _PathParts) -> dict[str, Any]:
    resource, kind = parts.resource, parts.resource.kind
    return {
        "get": _operation(
            resource,
            "list",
            f"list{kind}",
            parts.list_ref,
            parts.collection_params + parts.list_params,
        ),
        "post": _operation(
            resource,
            "post",
            f"create{kind}",
            parts.schema_ref,
            parts.collection_params + parts.write_params,
            body=parts.json_body,
        ),
        "delete": _operation(
            resource,
            "deletecollection",
            f"deleteCollection{kind}",
            f"{_REF_PREFIX}{_META}Status",
            parts.collection_params
            + parts.list_params
            + [_parameter("dryRun"), _parameter("propagationPolicy")],
        ),
    }


def _item_operations(parts: _PathParts) -> dict[str, Any]:
    resource, kind = parts.resource, parts.resource.kind
    return {
        "get": _operation(resource, "get", f"read{kind}", parts.schema_ref, parts.path_params),
        "put": _operation(
            resource,
            "put",
            f"replace{kind}",
            parts.schema_ref,
            parts.path_params + parts.write_params,
            body=parts.json_body,
        ),
        "patch": _operation(
            resource,
            "patch",
            f"patch{kind}",
            parts.schema_ref,
            parts.path_params + parts.write_params + [_parameter("force")],
            body=parts.patch_body,
        ),
        "delete": _operation(
            resource,
            "delete",
            f"delete{kind}",
            f"{_REF_PREFIX}{_META}Status",
            [*parts.path_params, _parameter("dryRun"), _parameter("propagationPolicy")],
        ),
    }


def _scale_operations(parts: _PathParts) -> dict[str, Any]:
    resource, kind = parts.resource, parts.resource.kind
    scale_ref = f"{_REF_PREFIX}io.k8s.api.autoscaling.v1.Scale"
    operations = {
        "get": _operation(resource, "get", f"read{kind}Scale", scale_ref, parts.path_params),
        "put": _operation(
            resource,
            "put",
            f"replace{kind}Scale",
            scale_ref,
            parts.path_params + parts.write_params,
            body=parts.json_body,
        ),
        "patch": _operation(
            resource,
            "patch",
            f"patch{kind}Scale",
            scale_ref,
            parts.path_params + parts.write_params + [_parameter("force")],
            body=parts.patch_body,
        ),
    }
    for operation in operations.values():
        operation["x-kubernetes-group-version-kind"] = {
            "group": "autoscaling",
            "version": "v1",
            "kind": "Scale",
        }
    return operations


def document(
    group: str,
    version: str,
    resources: list[ResourceType],
    crds: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    """The OpenAPI v3 document of one group-version."""
    definitions = builtin_definitions()
    paths: dict[str, Any] = {}
    wanted: set[str] = {
        f"{_META}{name}"
        for name in ("Status", "Patch", "DeleteOptions", "ObjectMeta", "ListMeta", "WatchEvent")
    }
    custom: dict[str, Any] = {}
    for resource in resources:
        if resource.custom:
            name = _custom_schema_name(resource)
            crd = crds.get(f"{resource.plural}.{resource.group}")
            custom[name] = _custom_schema(resource, crd)
            paths.update(_paths(resource, f"{_REF_PREFIX}{name}"))
        else:
            assert resource.definition is not None
            wanted.add(resource.definition)
            if f"{resource.definition}List" in definitions:
                wanted.add(f"{resource.definition}List")
            if resource.scale is not None:
                wanted.add("io.k8s.api.autoscaling.v1.Scale")
            paths.update(_paths(resource, f"{_REF_PREFIX}{resource.definition}"))
    schemas = {name: _converted_definition(name, definitions[name]) for name in _closure(wanted)}
    schemas.update(custom)
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": f"v{KUBERNETES_VERSION}"},
        "paths": paths,
        "components": {"schemas": schemas},
    }


class OpenApiCache:
    """Documents and their hashes, rebuilt when the served types change."""

    def __init__(self) -> None:
        self._documents: dict[tuple[str, str], tuple[int, bytes, str]] = {}

    def get(
        self,
        group: str,
        version: str,
        *,
        generation: int,
        resources: list[ResourceType],
        crds: dict[str, dict[str, Any]],
    ) -> tuple[bytes, str]:
        """(JSON bytes, hash) of one group-version's document."""
        cached = self._documents.get((group, version))
        if cached is not None and cached[0] == generation:
            return cached[1], cached[2]
        encoded = json.dumps(
            document(group, version, resources, crds), separators=(",", ":")
        ).encode()
        digest = hashlib.sha512(encoded).hexdigest().upper()
        self._documents[(group, version)] = (generation, encoded, digest)
        return encoded, digest
