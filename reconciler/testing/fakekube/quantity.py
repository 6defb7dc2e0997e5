"""Resource quantities (``cpu: 1``, ``memory: 1024Mi``) in the canonical form the apiserver
stores: ``1``, ``1Gi``, ``500m``.  Clients parse these as strings (the official client's models
refuse a bare number), and ``kubectl diff`` compares against them.
"""

from __future__ import annotations

import functools
import re
from decimal import ROUND_UP, Decimal, InvalidOperation, localcontext

_PATTERN = re.compile(r"^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$")
PATTERN_TEXT = "^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$"
_DECIMAL_SUFFIXES = {
    "n": -9,
    "u": -6,
    "m": -3,
    "": 0,
    "k": 3,
    "M": 6,
    "G": 9,
    "T": 12,
    "P": 15,
    "E": 18,
}
_SUFFIX_BY_EXPONENT = {exponent: suffix for suffix, exponent in _DECIMAL_SUFFIXES.items()}
_BINARY_SUFFIXES = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}
_BINARY_BY_POWER = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"]
_NANO = 10**9


# Every Pod a controller creates carries its template's few quantities again; a failure is not
# kept (it raises again).  typed: 1, 1.0 and True are different inputs.
@functools.lru_cache(maxsize=4096, typed=True)
def canonical_quantity(raw: str | int | float) -> str:
    """The canonical text of a quantity; ValueError when ``raw`` is not one.

    Values are rounded up to nano units.  Binary suffixes stay binary when the value is a whole
    number of bytes of at least 1 Ki; decimal forms use the largest suffix (or exponent, a
    multiple of 3) that keeps the number whole.
    """
    text = repr(raw) if isinstance(raw, float) else str(raw)
    match = _PATTERN.match(text.strip())
    if match is None or match.group(1).count(".") > 1 or match.group(1).strip("+-") == ".":
        raise ValueError(f"quantities must match the regular expression '{PATTERN_TEXT}'")
    number, suffix = match.groups()
    with localcontext() as context:
        context.prec = 120
        try:
            value = Decimal(number)
        except InvalidOperation as exc:
            raise ValueError(f"unable to parse quantity's number {number!r}") from exc
        style = "decimal"
        if suffix in _BINARY_SUFFIXES:
            value *= 1024 ** _BINARY_SUFFIXES[suffix]
            style = "binary"
        elif suffix in _DECIMAL_SUFFIXES:
            value *= Decimal(10) ** _DECIMAL_SUFFIXES[suffix]
        elif re.fullmatch(r"[eE][-+]?[0-9]+", suffix):
            value *= Decimal(10) ** int(suffix[1:])
            style = "exponent"
        else:
            raise ValueError(f"unable to parse quantity's suffix {suffix!r}")
        nanos = int((value * _NANO).to_integral_value(rounding=ROUND_UP))
    if nanos == 0:
        return "0"
    sign = "-" if nanos < 0 else ""
    magnitude = abs(nanos)
    if style == "binary" and magnitude >= 1024 * _NANO and magnitude % _NANO == 0:
        units = magnitude // _NANO
        power = 0
        while power < 6 and units % 1024 == 0:
            units //= 1024
            power += 1
        return f"{sign}{units}{_BINARY_BY_POWER[power]}"
    mantissa = magnitude
    exponent = -9
    while exponent < 18 and mantissa % 1000 == 0:
        mantissa //= 1000
        exponent += 3
    if style == "exponent":
        return f"{sign}{mantissa}" + (f"e{exponent}" if exponent else "")
    return f"{sign}{mantissa}{_SUFFIX_BY_EXPONENT[exponent]}"
