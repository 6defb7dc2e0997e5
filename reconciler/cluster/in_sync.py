"""Whether applying a manifest again would change nothing (pure: no I/O).

A server-side apply of manifest M by field manager F sets every field of M and removes the
fields F owned before that M no longer sets.  So it changes nothing exactly when the live object
already holds every field of M at M's value and F's apply entry in ``managedFields`` owns
exactly M's fields.  Both are checked here against the watch cache's copy, so an attempt skips
the request (Argo CD's ApplyOutOfSyncOnly, Flux's "unchanged"), and every doubt answers "apply":
a value the server normalised, a list whose merge type is not known here, a null, a terminating
object, another manager that took a field over.

Identity fields (apiVersion, kind, metadata.name and metadata.namespace) are never in a field
set; ``"."`` in a field set only marks a member and is ignored.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from reconciler.cluster.drift import ItemKey, keyed_items

__all__ = ["in_sync"]

_MAX_DEPTH = 64  # deeper than any real object: not skipped (a hostile object)


def in_sync(*, rendered: Mapping[str, Any], live: Mapping[str, Any] | None, manager: str) -> bool:
    """Whether applying ``rendered`` as ``manager`` would leave ``live`` as it is."""
    if live is None:
        return False
    metadata = live.get("metadata")
    if not isinstance(metadata, Mapping) or metadata.get("deletionTimestamp"):
        return False
    owned = _apply_entry(metadata.get("managedFields"), manager)
    if owned is None:
        return False
    return _matches(owned, live, _without_identity(rendered), field="", depth=0)


def _apply_entry(entries: Any, manager: str) -> Mapping[str, Any] | None:
    """``manager``'s one Apply entry's fieldsV1 (not a subresource's); None when there is none
    or more than one."""
    if not isinstance(entries, list):
        return None
    found = [
        entry.get("fieldsV1")
        for entry in entries
        if isinstance(entry, Mapping)
        and entry.get("manager") == manager
        and entry.get("operation") == "Apply"
        and not entry.get("subresource")
    ]
    if len(found) != 1 or not isinstance(found[0], Mapping):
        return None
    return found[0]


def _without_identity(rendered: Mapping[str, Any]) -> dict[str, Any]:
    kept = {key: value for key, value in rendered.items() if key not in ("apiVersion", "kind")}
    metadata = rendered.get("metadata")
    if isinstance(metadata, Mapping):
        rest = {key: value for key, value in metadata.items() if key not in ("name", "namespace")}
        if rest:
            kept["metadata"] = rest
        else:
            del kept["metadata"]
    return kept


def _matches(owned: Mapping[str, Any], live: Any, wanted: Any, *, field: str, depth: int) -> bool:
    """Whether the fieldsV1 node ``owned`` holds exactly the fields ``wanted`` sets, and
    ``live`` has each at ``wanted``'s value (the server may have added defaults beside them)."""
    children = {key: child for key, child in owned.items() if key != "."}
    if wanted is None or depth >= _MAX_DEPTH:
        return False  # a null removes a field: left to the server
    if not children:
        # A scalar, an empty map or list, or a value owned whole (an atomic map or list): the
        # apply replaces it, so it must be exactly as applied.
        return _equal(live, wanted, depth=depth)
    if _is_map(wanted):
        if not _is_map(live) or children.keys() != {f"f:{key}" for key in wanted}:
            return False
        return all(
            key in live
            and _is_map(children[f"f:{key}"])
            and _matches(children[f"f:{key}"], live[key], value, field=str(key), depth=depth + 1)
            for key, value in wanted.items()
        )
    if isinstance(wanted, list) and isinstance(live, list):
        keyed_wanted = keyed_items(field, wanted)
        keyed_live = keyed_items(field, live) if keyed_wanted is not None else None
        if keyed_wanted is not None and keyed_live is not None:
            return _matches_items(children, keyed_live, keyed_wanted, depth=depth)
    return False


def _matches_items(
    children: Mapping[str, Any],
    live: Mapping[ItemKey, Any],
    wanted: Mapping[ItemKey, Any],
    *,
    depth: int,
) -> bool:
    """A keyed list: the items ``owned`` names are exactly ``wanted``'s, each matching."""
    owned: dict[ItemKey, Mapping[str, Any]] = {}
    for name, child in children.items():
        key = _item_key(name)
        if key is None or not _is_map(child):
            return False
        owned[key] = child
    by_sorted_key = {tuple(sorted(key)): key for key in wanted}
    if owned.keys() != by_sorted_key.keys():
        return False
    return all(
        key in live
        and _matches(owned[sorted_key], live[key], wanted[key], field="", depth=depth + 1)
        for sorted_key, key in by_sorted_key.items()
    )


def _is_map(value: Any) -> bool:
    # JSON decodes to dicts: testing the type first skips the Mapping ABC's slower check.
    return type(value) is dict or isinstance(value, Mapping)


def _item_key(name: str) -> ItemKey | None:
    """``k:{"name":"web"}`` as ``(("name", "web"),)``; None for anything else."""
    if not name.startswith("k:"):
        return None
    try:
        keys = json.loads(name[2:])
    except ValueError:
        return None
    if not isinstance(keys, dict) or not all(
        isinstance(v, str | int | float | bool) for v in keys.values()
    ):
        return None
    return tuple(sorted(keys.items()))


def _equal(live: Any, wanted: Any, *, depth: int) -> bool:
    """Deep equality that tells ``1`` from ``1.0`` and ``True``."""
    if depth >= _MAX_DEPTH:
        return False
    if _is_map(wanted):
        return (
            _is_map(live)
            and live.keys() == wanted.keys()
            and all(_equal(live[key], value, depth=depth + 1) for key, value in wanted.items())
        )
    if isinstance(wanted, list):
        return (
            isinstance(live, list)
            and len(live) == len(wanted)
            and all(
                _equal(have, item, depth=depth + 1) for have, item in zip(live, wanted, strict=True)
            )
        )
    return type(live) is type(wanted) and live == wanted
