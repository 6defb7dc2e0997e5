"""Helpers for objects as JSON data: copies, timestamps, generated names, dotted paths."""

from __future__ import annotations

import secrets
import sys
import time
from datetime import UTC, datetime
from typing import Any

import orjson

from .store import LabelSelector

_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"

_last_stamp: tuple[int, str] = (0, "")


def now_iso(moment: float | None = None) -> str:
    """An RFC 3339 timestamp with second precision, as the apiserver writes them."""
    global _last_stamp
    second = int(time.time() if moment is None else moment)
    if _last_stamp[0] != second:
        # Formatting is costly on hot paths; one second has one text.
        _last_stamp = (second, datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
    return _last_stamp[1]


def annotated(obj: dict[str, Any], annotations: dict[str, str]) -> dict[str, Any]:
    """A shallow copy of ``obj`` with ``annotations`` added: new dicts on the path to them, the
    rest shared.  For a candidate handed to a write, which copies what it stores."""
    meta = obj["metadata"]
    new_meta = {**meta, "annotations": {**(meta.get("annotations") or {}), **annotations}}
    return {**obj, "metadata": new_meta}


def clone(value: Any) -> Any:
    """A deep copy of JSON data.

    Every write copies the object it stores, so this is fakekube's hottest function: a round
    trip through orjson takes a third of the time of a walk in Python, and its key cache lets
    copies share their short key strings.  What orjson cannot carry exactly (integers beyond
    64 bits, keys that are not strings, datetimes a YAML body made) is walked instead.  It
    would write NaN and infinities as null, but none is stored: bodies that hold one are
    refused (see ``http_io``).
    """
    try:
        return orjson.loads(orjson.dumps(value, option=_EXACT))
    except TypeError:
        return _walk(value)


_EXACT = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_SUBCLASS


def _walk(value: Any) -> Any:
    kind = type(value)
    if kind is dict:
        return {sys.intern(key) if type(key) is str else key: _walk(v) for key, v in value.items()}
    if kind is list:
        return [_walk(item) for item in value]
    return value


def random_suffix(length: int = 5) -> str:
    """The random suffix generateName and controllers use."""
    return "".join(secrets.choice(_NAME_ALPHABET) for _ in range(length))


def selector_string(selector: Any) -> str:
    """A LabelSelector (matchLabels / matchExpressions) in query syntax."""
    if not isinstance(selector, dict):
        return ""
    return str(LabelSelector.from_label_selector(selector))


def get_path(obj: Any, dotted: str) -> Any:
    """The value at ``dotted`` (``spec.replicas``), or None."""
    for part in dotted.split("."):
        if not isinstance(obj, dict):
            return None
        obj = obj.get(part)
    return obj


def set_path(obj: dict[str, Any], dotted: str, value: Any) -> None:
    """Sets the value at ``dotted``, creating the maps on the way."""
    parts = dotted.split(".")
    for part in parts[:-1]:
        obj = obj.setdefault(part, {})
    obj[parts[-1]] = value


def nest(dotted: str, value: Any) -> dict[str, Any]:
    """A new object holding only ``value`` at ``dotted``."""
    out: dict[str, Any] = {}
    set_path(out, dotted, value)
    return out
