"""Request bodies and query parameters: declared once, checked here, described in the OpenAPI
document from the same declarations (``openapi.py``), so the two cannot disagree.

Pure but for :class:`ApiError`: a bad value is a 400 naming the field.  Strings are checked
for what PostgreSQL would refuse less clearly (NUL characters, lone surrogates).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from reconciler.web.api.errors import ApiError, bad_request

MAX_BODY_BYTES = 256 * 1024
"""The largest request body (values_override alone may be 64 KiB of JSON)."""

VALUES_DEPTH_LIMIT = 32
"""As the trigger's (migration 0002): how deeply values_override may nest."""

Kind = Literal["string", "integer", "boolean", "object"]


@dataclass(frozen=True, kw_only=True)
class Field:
    """One field of a body (or a query parameter): its JSON type and its bounds."""

    kind: Kind
    description: str
    pattern: str | None = None
    min_length: int | None = None
    max_length: int | None = None
    enum: tuple[str, ...] | None = None
    minimum: int | None = None
    maximum: int | None = None
    nullable: bool = False


@dataclass(frozen=True, kw_only=True)
class Body:
    """A request body: a JSON object of these fields, no others."""

    name: str
    description: str
    fields: Mapping[str, Field]
    required: tuple[str, ...] = ()
    min_properties: int = 0


def parse_json(raw: bytes) -> Any:
    """The body as JSON; 400 when it is not (an empty body is an empty object).  NaN and
    Infinity are no JSON numbers (PostgreSQL's jsonb refuses them too)."""
    if not raw.strip():
        return {}
    try:
        return json.loads(raw.decode("utf-8"), parse_constant=_no_constant)
    except UnicodeDecodeError as exc:
        raise bad_request(f"the body is not UTF-8: {exc.reason} at byte {exc.start}") from None
    except json.JSONDecodeError as exc:
        raise bad_request(f"the body is not valid JSON: {exc.msg} at character {exc.pos}") from None
    except ValueError as exc:  # what _no_constant raised
        raise bad_request(f"the body is not valid JSON: {exc}") from None
    except RecursionError:
        raise bad_request("the body is not valid JSON: nested too deeply") from None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def validate_body(body: Body, value: Any) -> dict[str, Any]:
    """``value`` checked against ``body``: the object itself, or a 400 naming the field."""
    if not isinstance(value, dict):
        raise bad_request(
            f"the body must be a JSON object ({body.description}), not {_kind(value)}"
        )
    unknown = sorted(set(value) - set(body.fields))
    if unknown:
        known = ", ".join(body.fields)
        raise bad_request(f"unknown field {unknown[0]!r} (known: {known})", field=unknown[0])
    missing = [name for name in body.required if name not in value]
    if missing:
        raise bad_request(f"{missing[0]} is required", field=missing[0])
    if len(value) < body.min_properties:
        raise bad_request(f"nothing to change: give at least one of {', '.join(body.fields)}")
    for name, item in value.items():
        check_value(name, body.fields[name], item)
    return value


def check_value(name: str, spec: Field, value: Any) -> None:
    """One field's value, or a 400 naming ``name``."""
    if value is None:
        if spec.nullable:
            return
        raise bad_request(f"{name} must not be null", field=name)
    if spec.kind == "string":
        _check_string(name, spec, value)
    elif spec.kind == "integer":
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad_request(f"{name} must be an integer, not {_kind(value)}", field=name)
        if spec.minimum is not None and value < spec.minimum:
            raise bad_request(f"{name} must be at least {spec.minimum}", field=name)
        if spec.maximum is not None and value > spec.maximum:
            raise bad_request(f"{name} must be at most {spec.maximum}", field=name)
    elif spec.kind == "boolean":
        if not isinstance(value, bool):
            raise bad_request(f"{name} must be true or false, not {_kind(value)}", field=name)
    elif not isinstance(value, dict):
        raise bad_request(f"{name} must be a JSON object, not {_kind(value)}", field=name)
    elif nesting_depth(value) > VALUES_DEPTH_LIMIT:
        raise bad_request(
            f"{name} is nested {nesting_depth(value)} levels deep; the limit is "
            f"{VALUES_DEPTH_LIMIT}",
            field=name,
        )


def _check_string(name: str, spec: Field, value: Any) -> None:
    if not isinstance(value, str):
        raise bad_request(f"{name} must be a string, not {_kind(value)}", field=name)
    if "\x00" in value:
        raise bad_request(f"{name} must not contain NUL characters", field=name)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise bad_request(
            f"{name} must be valid Unicode (no lone surrogates)", field=name
        ) from None
    if spec.enum is not None and value not in spec.enum:
        raise bad_request(f"{name} must be one of {', '.join(spec.enum)}", field=name)
    if spec.min_length is not None and len(value) < spec.min_length:
        raise bad_request(f"{name} must be at least {spec.min_length} characters", field=name)
    if spec.max_length is not None and len(value) > spec.max_length:
        raise bad_request(f"{name} must be at most {spec.max_length} characters", field=name)
    if spec.pattern is not None and not re.search(spec.pattern, value):
        raise bad_request(f"{name} must match {spec.pattern}", field=name)


def query_value(query: Mapping[str, str], name: str, spec: Field) -> Any:
    """A query parameter checked against ``spec`` (integers parsed); None when absent."""
    text = query.get(name)
    if text is None:
        return None
    if spec.kind == "integer":
        if not re.fullmatch(r"-?[0-9]{1,19}", text):
            raise bad_request(f"{name} must be an integer, got {text[:40]!r}", field=name)
        number = int(text)
        check_value(name, spec, number)
        return number
    check_value(name, spec, text)
    return text


def unknown_query(query: Mapping[str, str], known: tuple[str, ...]) -> None:
    """A 400 naming the first query parameter that is not one of ``known``."""
    for name in query:
        if name not in known:
            listed = ", ".join(known) or "none"
            raise ApiError(400, f"unknown query parameter {name!r} (known: {listed})", field=name)


def nesting_depth(value: Any) -> int:
    """How many lists and mappings deep ``value`` nests, counted without recursing."""
    deepest = 0
    pending: list[tuple[Any, int]] = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, depth + 1)
            children = item.values() if isinstance(item, dict) else item
            pending.extend((child, depth + 1) for child in children)
    return deepest


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"
