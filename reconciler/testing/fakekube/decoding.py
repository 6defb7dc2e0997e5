"""Decoding a request body against its schema, as the apiserver's decoder does.

Undeclared fields are dropped (and reported, for ``fieldValidation``), JSON types and enums are
checked, and resource quantities are put in canonical form.
"""

from __future__ import annotations

import json
from typing import Any

from .fields import FieldError
from .quantity import canonical_quantity
from .schema import SchemaNode

_JSON_TYPE_NAMES = {
    str: "string",
    bool: "boolean",
    int: "integer",
    float: "number",
    dict: "object",
    list: "array",
}


def _type_ok(types: frozenset[str], value: Any) -> bool:
    if not types:
        return True
    if isinstance(value, bool):
        return "boolean" in types
    if isinstance(value, int):
        return "integer" in types or "number" in types
    if isinstance(value, float):
        return "number" in types or ("integer" in types and value.is_integer())
    if isinstance(value, str):
        return "string" in types
    if isinstance(value, dict):
        return "object" in types
    if isinstance(value, list):
        return "array" in types
    return False


class Decoded:
    """What decoding found besides the cleaned value."""

    __slots__ = ("invalid", "type_errors", "unknown")

    def __init__(self) -> None:
        self.unknown: list[str] = []
        self.type_errors: list[FieldError] = []
        self.invalid: list[FieldError] = []


def decode(value: Any, node: SchemaNode, report: Decoded, path: str = "") -> Any:
    """``value`` with undeclared fields dropped (listed in ``report``) and types checked."""
    if value is None:
        return None
    kind = node.kind
    if kind == "struct":
        return _decode_struct(value, node, report, path)
    if kind == "map":
        return _decode_map(value, node, report, path)
    if kind == "list":
        return _decode_list(value, node, report, path)
    if node.quantity:
        return _quantity(value, path, report)
    if kind == "scalar":
        _check_scalar(value, node, report, path)
    return value


def _decode_struct(value: Any, node: SchemaNode, report: Decoded, path: str) -> Any:
    if not isinstance(value, dict):
        report.type_errors.append(_type_error(path, "object", value))
        return value
    out: dict[str, Any] | None = None
    for key, child in value.items():
        sub = node.field(key)
        child_path = f"{path}.{key}" if path else key
        if sub is None:
            if node.preserve_unknown:
                continue
            report.unknown.append(child_path)
            out = dict(value) if out is None else out
            del out[key]
            continue
        cleaned = decode(child, sub, report, child_path)
        if cleaned is not child:
            out = dict(value) if out is None else out
            out[key] = cleaned
    return value if out is None else out


def _decode_map(value: Any, node: SchemaNode, report: Decoded, path: str) -> Any:
    if not isinstance(value, dict):
        report.type_errors.append(_type_error(path, "object", value))
        return value
    element = node.element
    if element.quantity:
        return {key: _quantity(child, f"{path}.{key}", report) for key, child in value.items()}
    if element.kind == "scalar" and not element.enum:
        for key, child in value.items():
            if child is not None and not _type_ok(element.types, child):
                report.type_errors.append(
                    _type_error(f"{path}.{key}", "/".join(sorted(element.types)), child)
                )
        return value
    changed = {key: decode(child, element, report, f"{path}.{key}") for key, child in value.items()}
    return changed


def _decode_list(value: Any, node: SchemaNode, report: Decoded, path: str) -> Any:
    if not isinstance(value, list):
        report.type_errors.append(_type_error(path, "array", value))
        return value
    element = node.element
    if element.kind == "scalar":
        for index, item in enumerate(value):
            if item is not None and not _type_ok(element.types, item):
                report.type_errors.append(
                    _type_error(f"{path}[{index}]", "/".join(sorted(element.types)), item)
                )
        return value
    return [decode(item, element, report, f"{path}[{index}]") for index, item in enumerate(value)]


def _check_scalar(value: Any, node: SchemaNode, report: Decoded, path: str) -> None:
    if not _type_ok(node.types, value):
        report.type_errors.append(_type_error(path, "/".join(sorted(node.types)), value))
    elif node.enum is not None and value not in node.enum:
        supported = ", ".join(json.dumps(v) for v in node.enum)
        report.invalid.append(
            FieldError(
                path,
                f"Unsupported value: {json.dumps(value)}: supported values: {supported}",
                reason="FieldValueNotSupported",
            )
        )


def _quantity(value: Any, path: str, report: Decoded) -> Any:
    """A quantity in canonical form (strings and numbers are accepted, as the apiserver does)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        report.type_errors.append(_type_error(path, "quantity", value))
        return value
    try:
        return canonical_quantity(value)
    except ValueError as exc:
        report.type_errors.append(FieldError(path, str(exc), reason="FieldValueTypeInvalid"))
        return value


def _type_error(path: str, expected: str, value: Any) -> FieldError:
    got = _JSON_TYPE_NAMES.get(type(value), type(value).__name__)
    return FieldError(path, f"expected {expected}, got {got}", reason="FieldValueTypeInvalid")
