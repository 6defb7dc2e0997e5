"""JSON for the hot paths (watch events, the live cache, API answers): orjson, and the
standard library for what orjson refuses.

orjson encodes and decodes Kubernetes objects four to ten times faster than :mod:`json`,
which took a quarter of the daemon's CPU in a bulk update.  Where the two differ, the standard
library's answer is the one given: text orjson will not decode (a lone surrogate escape) is
decoded by :func:`json.loads`, and objects it will not encode (integers beyond 64 bits, keys
that are not strings, lone surrogates, NaN and infinities, which orjson would write as null)
are encoded by :func:`json.dumps`.  Decoding is strict JSON: ``NaN`` and ``Infinity`` are
refused, as orjson and Kubernetes' own decoder refuse them, and so is a number too large for a
double (``1e400``), which the standard library would make an infinity.  One difference stays: orjson
decodes an integer beyond 64 bits as a float; Kubernetes never sends one (its integers are
int64, larger numbers travel as floats).
"""

from __future__ import annotations

import json
import math
from typing import Any

import orjson


def loads(data: bytes | str) -> Any:
    """The value of a JSON document; raises ValueError (a :class:`json.JSONDecodeError`) as
    :func:`json.loads` does, and for ``NaN``, ``Infinity`` and numbers beyond a double."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data, parse_constant=_refuse_constant, parse_float=_finite_float)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"number {text} is too large for a double")
    return number


def dumps_decoded(value: Any) -> bytes:
    """:func:`dumps` for a value :func:`loads` returned, or one made from such values: it holds
    no NaN or infinity, so there is none to look for."""
    try:
        return orjson.dumps(value)
    except TypeError:
        return _stdlib_dumps(value)


def dumps(value: Any) -> bytes:
    """``value`` as compact JSON in UTF-8; raises TypeError or ValueError as
    :func:`json.dumps` does for what JSON cannot hold."""
    try:
        encoded = orjson.dumps(value)
    except TypeError:
        return _stdlib_dumps(value)
    # orjson writes NaN and infinities as null: where a null is written (rare in Kubernetes
    # objects, and finding one costs little), look for them and give the standard library's
    # answer instead.
    if b"null" in encoded and has_non_finite(value):
        return _stdlib_dumps(value)
    return encoded


def _stdlib_dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode("ascii")


def has_non_finite(value: Any) -> bool:
    """Whether a float that is not finite is anywhere in ``value``."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
        elif isinstance(item, float) and not math.isfinite(item):
            return True
    return False
