"""A live object against what an apply would make of it, as a unified diff people read (pure).

What the server keeps for itself (managed fields, resource version, generation, uid, creation
time) and status are left out: they change on every write and say nothing about the change.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

import yaml

VOLATILE_METADATA = ("managedFields", "resourceVersion", "generation", "uid", "creationTimestamp")
"""Metadata the server writes on every change; never part of a diff."""


def comparable(obj: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``obj`` without status and without :data:`VOLATILE_METADATA`."""
    kept = {key: value for key, value in obj.items() if key != "status"}
    metadata = obj.get("metadata")
    if isinstance(metadata, Mapping):
        kept["metadata"] = {k: v for k, v in metadata.items() if k not in VOLATILE_METADATA}
    return kept


def unified_diff(live: Mapping[str, Any] | None, applied: Mapping[str, Any], *, label: str) -> str:
    """``--- live/LABEL`` / ``+++ applied/LABEL`` and the changed lines, "" when none; an object
    that does not exist yet (``live`` None) is all added."""
    before = _lines(comparable(live)) if live is not None else []
    after = _lines(comparable(applied))
    return "".join(
        difflib.unified_diff(before, after, fromfile=f"live/{label}", tofile=f"applied/{label}")
    )


def _lines(obj: Mapping[str, Any]) -> list[str]:
    text = yaml.safe_dump(dict(obj), sort_keys=True, default_flow_style=False, allow_unicode=True)
    return text.splitlines(keepends=True)
