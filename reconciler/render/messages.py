"""How values from ops repos and the database appear in error messages."""

from __future__ import annotations

from collections.abc import Mapping

_SHOWN_VALUE_CHARS = 64


def shown(value: str) -> str:
    """repr of a possibly hostile value, truncated so a message stays readable."""
    if len(value) > _SHOWN_VALUE_CHARS:
        return f"{value[:_SHOWN_VALUE_CHARS]!r}... ({len(value)} characters)"
    return repr(value)


def type_name(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return f"a {type(value).__name__}"
