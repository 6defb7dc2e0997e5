"""Values files: parsing them, and merging them with the override from the database."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import yaml

from reconciler.errors import RenderError
from reconciler.render.messages import type_name
from reconciler.render.yaml_loaders import ValuesLoader, yaml_error


def merge_values(*layers: Mapping[str, Any]) -> dict[str, Any]:
    """Merge layers deeply, later wins: mappings merge, lists and scalars replace.

    The result shares nothing with the inputs, which are left untouched.
    """
    merged: dict[str, Any] = {}
    for layer in layers:
        _merge_into(merged, layer)
    return merged


def _merge_into(target: dict[str, Any], layer: Mapping[str, Any]) -> None:
    for key, value in layer.items():
        existing = target.get(key)
        if isinstance(value, Mapping) and isinstance(existing, dict):
            _merge_into(existing, value)
        elif isinstance(value, Mapping):
            target[key] = merge_values(value)
        else:
            target[key] = copy.deepcopy(value)


def parse_values(text: str | None, *, file_name: str) -> dict[str, Any]:
    if text is None:
        return {}
    try:
        loaded = yaml.load(text, Loader=ValuesLoader)
    except yaml.YAMLError as exc:
        raise yaml_error(exc, file_name=file_name) from exc
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise RenderError(
            f"values must be a mapping of names to values at the top level, not"
            f" {type_name(loaded)}",
            location=file_name,
        )
    return loaded
