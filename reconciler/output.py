"""Tables for humans: what ``reconciler status``, ``history`` and ``demo`` print."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any


def format_table(rows: Sequence[dict[str, Any]], *, wide: bool = False) -> str:
    """Rows as an aligned text table, like psql's; cells longer than 100 characters are cut
    unless ``wide``."""
    columns = list(rows[0])
    cells = [[_cell(row[c], wide=wide) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    lines = [
        " | ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip(),
        "-+-".join("-" * w for w in widths),
    ]
    lines += [
        " | ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in cells
    ]
    return "\n".join(lines)


def _cell(value: Any, *, wide: bool = False) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    text = printable(str(value).replace("\n", " "))
    return text if wide or len(text) <= 100 else text[:97] + "..."


def printable(text: str) -> str:
    """``text`` safe for a terminal: control characters (escape sequences that could move the
    cursor or rewrite the screen) shown as escapes, ``\x1b`` for ESC."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)
