"""Structural schemas: the OpenAPI definitions of Kubernetes, resolved node by node.

The definitions bundled by ``kubernetes-validate`` give each kind's schema with its list types,
list-map keys, map types and patch merge keys (what server-side apply and strategic merge patch
need); custom resources' schemas are read into the same nodes.  Which kinds are served, and how,
is ``resource_types``.
"""

from __future__ import annotations

import functools
import importlib.util
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

#: The Kubernetes minor version whose schemas fakekube serves (and reports in /version).
KUBERNETES_VERSION = "1.32.0"

# Defaults of list-map key fields, which server-side apply needs to key an item that omits them.
_KEY_FIELD_DEFAULTS: Mapping[str, Any] = {"protocol": "TCP"}

QUANTITY_DEFINITION = "io.k8s.apimachinery.pkg.api.resource.Quantity"

NodeKind = Literal["struct", "map", "list", "scalar", "untyped"]


class SchemaNode:
    """One node of a structural schema, resolved lazily from its JSON-schema source."""

    __slots__ = (
        "_element",
        "_factory",
        "_fields",
        "_raw",
        "_requires",
        "atomic",
        "default",
        "embedded",
        "enum",
        "kind",
        "list_keys",
        "list_type",
        "merge_key",
        "patch_strategy",
        "preserve_unknown",
        "quantity",
        "required",
        "types",
    )

    def __init__(self, factory: SchemaFactory, raw: Mapping[str, Any], local: Mapping[str, Any]):
        self._factory = factory
        self._raw = raw
        self._fields: dict[str, SchemaNode] | None = None
        self._element: SchemaNode | None = None
        self._requires: bool | None = None
        types = _json_types(raw)
        self.types: frozenset[str] = types
        self.preserve_unknown = bool(
            local.get("x-kubernetes-preserve-unknown-fields")
            or raw.get("x-kubernetes-preserve-unknown-fields")
        )
        self.embedded = bool(raw.get("x-kubernetes-embedded-resource"))
        kind: NodeKind
        if "properties" in raw:
            kind = "struct"
        elif "additionalProperties" in raw and isinstance(raw["additionalProperties"], Mapping):
            kind = "map"
        elif "items" in raw or types == {"array"}:
            kind = "list"
        elif types & {"object", "array"} or not types or raw.get("x-kubernetes-int-or-string"):
            kind = "untyped" if not raw.get("x-kubernetes-int-or-string") else "scalar"
        else:
            kind = "scalar"
        self.kind: NodeKind = kind
        list_type = local.get("x-kubernetes-list-type") or raw.get("x-kubernetes-list-type")
        self.list_type: str = str(list_type or "atomic")
        keys = local.get("x-kubernetes-list-map-keys") or raw.get("x-kubernetes-list-map-keys")
        self.list_keys: tuple[str, ...] = tuple(keys or ())
        map_type = local.get("x-kubernetes-map-type") or raw.get("x-kubernetes-map-type")
        self.atomic = map_type == "atomic" or (kind == "list" and self.list_type == "atomic")
        self.merge_key: str | None = local.get("x-kubernetes-patch-merge-key") or raw.get(
            "x-kubernetes-patch-merge-key"
        )
        strategy = local.get("x-kubernetes-patch-strategy") or raw.get(
            "x-kubernetes-patch-strategy"
        )
        self.patch_strategy: frozenset[str] = frozenset(str(strategy or "").split(",")) - {""}
        self.required: tuple[str, ...] = tuple(raw.get("required") or ())
        self.enum: tuple[Any, ...] | None = tuple(raw["enum"]) if "enum" in raw else None
        self.default: Any = local.get("default", raw.get("default"))
        #: A resource.Quantity, which is stored in canonical form.
        self.quantity = False

    def field(self, name: str) -> SchemaNode | None:
        """The schema of struct field ``name``, or None when it is not declared."""
        if self._fields is None:
            props = self._raw.get("properties") or {}
            self._fields = {key: self._factory.node(value) for key, value in props.items()}
        return self._fields.get(name)

    @property
    def fields(self) -> dict[str, SchemaNode]:
        """All declared struct fields."""
        self.field("")
        assert self._fields is not None
        return self._fields

    @property
    def element(self) -> SchemaNode:
        """The schema of map values or list items (untyped when the source says nothing)."""
        if self._element is None:
            if self.kind == "map":
                self._element = self._factory.node(self._raw["additionalProperties"])
            elif self.kind == "list" and isinstance(self._raw.get("items"), Mapping):
                self._element = self._factory.node(self._raw["items"])
            else:
                self._element = self._factory.untyped
        return self._element

    @property
    def requires_any(self) -> bool:
        """Whether this node or any below it lists ``required`` fields (a check of required
        fields need not walk a subtree without)."""
        if self._requires is None:
            self._requires = True  # while looking (a recursive schema): assume so, and walk
            if self.kind == "struct":
                found = bool(self.required) or any(f.requires_any for f in self.fields.values())
            elif self.kind in ("map", "list"):
                found = self.element.requires_any
            else:
                found = False
            self._requires = found
        return self._requires

    @property
    def granular_list(self) -> bool:
        """True for lists whose items are tracked one by one (map and set lists)."""
        return self.kind == "list" and self.list_type in ("map", "set")


def _json_types(raw: Mapping[str, Any]) -> frozenset[str]:
    declared = raw.get("type")
    types: set[str] = set()
    if isinstance(declared, str):
        types.add(declared)
    elif isinstance(declared, list):
        types.update(str(t) for t in declared)
    for option in raw.get("oneOf") or raw.get("anyOf") or ():
        types |= _json_types(option)
    if raw.get("x-kubernetes-int-or-string"):
        types |= {"integer", "string"}
    types.discard("null")
    return frozenset(types)


class SchemaFactory:
    """Builds and caches SchemaNodes for one set of JSON-schema definitions."""

    def __init__(self, definitions: Mapping[str, Any], ref_prefix: str = "#/$defs/"):
        self._definitions = definitions
        self._ref_prefix = ref_prefix
        # Keyed by id() of the source; the source is kept alongside so the id stays unique.
        self._cache: dict[int, tuple[Mapping[str, Any], SchemaNode]] = {}
        self.untyped = SchemaNode(self, {}, {})

    def node(self, raw: Mapping[str, Any]) -> SchemaNode:
        """The node for ``raw``: a definition reference, or an inline schema."""
        cached = self._cache.get(id(raw))
        if cached is not None:
            return cached[1]
        target = raw
        ref = raw.get("$ref")
        if ref is None and isinstance(raw.get("allOf"), list) and len(raw["allOf"]) == 1:
            ref = raw["allOf"][0].get("$ref")
        name = ref.removeprefix(self._ref_prefix) if isinstance(ref, str) else None
        if name is not None:
            target = self._definitions[name]
        node = SchemaNode(self, target, raw if target is not raw else {})
        node.quantity = name == QUANTITY_DEFINITION
        self._cache[id(raw)] = (raw, node)
        return node

    def definition(self, name: str) -> SchemaNode:
        """The node of a named definition."""
        return self.node(self._definitions[name])


def key_field_default(name: str) -> Any:
    """The default of a list-map key field, or None when it has none."""
    return _KEY_FIELD_DEFAULTS.get(name)


@functools.cache
def builtin_definitions() -> Mapping[str, Any]:
    """The OpenAPI definitions of Kubernetes ``KUBERNETES_VERSION``, from kubernetes-validate."""
    base = package_dir("kubernetes_validate") / "kubernetes-json-schema"
    path = base / f"v{KUBERNETES_VERSION}-local" / "_definitions.json"
    with path.open(encoding="utf-8") as handle:
        loaded: Mapping[str, Any] = json.load(handle)["$defs"]
    return loaded


@functools.cache
def builtin_factory() -> SchemaFactory:
    """The schema factory for the built-in definitions."""
    return SchemaFactory(builtin_definitions())


def package_dir(name: str) -> Path:
    """Where an installed package lives, found without importing it (both are heavy)."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            f"fakekube needs the {name.replace('_', '-')!r} package: "
            "pip install 'reconciler[fakekube]'"
        )
    return Path(next(iter(spec.submodule_search_locations)))
