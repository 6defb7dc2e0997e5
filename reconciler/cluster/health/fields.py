"""Reading unstructured objects safely: a missing or wrongly typed field counts as absent."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def lookup(obj: Any, *keys: str) -> Any:
    """The value at ``obj[k1][k2]...``, or None when any step is absent or not a mapping."""
    value: Any = obj
    for key in keys:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def count(value: Any) -> int:
    """An integer count from a status field; absent (or malformed) counts as 0."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    return 0


def optional_int(value: Any) -> int | None:
    """An integer spec field that may be absent (e.g. ``spec.replicas`` before defaulting)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return None


def text(value: Any) -> str:
    """A string field; absent (or malformed) is the empty string."""
    return value if isinstance(value, str) else ""


def mappings(value: Any) -> list[Mapping[str, Any]]:
    """The mapping items of a list field, skipping anything malformed."""
    if not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, Mapping)]


def find_condition(obj: Mapping[str, Any], condition_type: str) -> Mapping[str, Any] | None:
    """The ``status.conditions`` entry of ``condition_type``, if the object reports one."""
    for condition in mappings(lookup(obj, "status", "conditions")):
        if condition.get("type") == condition_type:
            return condition
    return None


def condition_is_true(obj: Mapping[str, Any], condition_type: str) -> bool:
    """Whether the object reports ``condition_type`` with status ``True``."""
    condition = find_condition(obj, condition_type)
    return condition is not None and condition.get("status") == "True"


def api_group(api_version: str) -> str:
    """``apps/v1`` -> ``apps``; ``v1`` (the core group) -> ``""``."""
    group, slash, _version = api_version.rpartition("/")
    return group if slash else ""
