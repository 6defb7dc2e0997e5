"""Field sets in the FieldsV1 format, and the schema-aware walks server-side apply is built on.

A field set is a trie written exactly as Kubernetes writes ``managedFields[].fieldsV1``: keys are
path elements (``f:name``, ``k:{"name":"web"}``, ``v:"value"``, ``i:3``); a node is ``{}`` when it
is a member without children, and carries ``".": {}`` when it is a member with children.  The
functions here take and return the *children* of the root (the root itself is never a member) and
never mutate their arguments, so tries may share subtrees.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from typing import Any

from .schema import SchemaNode, builtin_factory, key_field_default

FieldSet = dict[str, Any]


class _Missing:
    """Marks an absent value (distinct from JSON null)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


class FieldError(Exception):
    """A value does not fit its schema; ``path`` is dotted (``spec.template...``)."""

    def __init__(self, path: str, message: str, *, reason: str = "FieldValueInvalid") -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path
        self.detail = message
        self.reason = reason


def _untyped() -> SchemaNode:
    return builtin_factory().untyped


# ---------------------------------------------------------------------------------------------
# Set algebra on FieldsV1 tries


def _member(node: FieldSet) -> bool:
    return not node or "." in node


def _children(node: FieldSet) -> FieldSet:
    if "." not in node:
        return node
    return {key: value for key, value in node.items() if key != "."}


def _make(member: bool, children: FieldSet) -> FieldSet | None:
    if not children:
        return {} if member else None
    if member and "." not in children:
        return {".": {}, **children}
    return children


def union(a: FieldSet, b: FieldSet) -> FieldSet:
    """Every path in ``a`` or ``b``."""
    if not b:
        return a
    if not a:
        return b
    out = dict(a)
    for key, right in b.items():
        left = out.get(key)
        if left is None:
            out[key] = right
        elif left is not right:
            node = _make(_member(left) or _member(right), union(_children(left), _children(right)))
            out[key] = node if node is not None else {}
    return out


def difference(a: FieldSet, b: FieldSet) -> FieldSet:
    """The paths of ``a`` that are not in ``b``."""
    if not b or not a:
        return a
    out: FieldSet = {}
    for key, left in a.items():
        right = b.get(key)
        if right is None:
            out[key] = left
            continue
        if left is right:
            continue
        node = _make(
            _member(left) and not _member(right), difference(_children(left), _children(right))
        )
        if node is not None:
            out[key] = node
    return out


def intersection(a: FieldSet, b: FieldSet) -> FieldSet:
    """The paths in both ``a`` and ``b``."""
    if not a or not b:
        return {}
    out: FieldSet = {}
    for key, left in a.items():
        right = b.get(key)
        if right is None:
            continue
        node = _make(
            _member(left) and _member(right), intersection(_children(left), _children(right))
        )
        if node is not None:
            out[key] = node
    return out


def members(fields: FieldSet, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every member path, as a tuple of path elements, in sorted order."""
    for key in sorted(fields):
        if key == ".":
            continue
        node = fields[key]
        path = (*prefix, key)
        if _member(node):
            yield path
        yield from members(node, path)


def format_path(path: tuple[str, ...]) -> str:
    """``.spec.template.spec.containers[name="web"].image``, as conflict messages write paths."""
    out: list[str] = []
    for element in path:
        kind, _, text = element.partition(":")
        if kind == "f":
            out.append("." + text)
        elif kind == "k":
            keys = json.loads(text)
            out.append("[" + ",".join(f"{k}={json.dumps(keys[k])}" for k in sorted(keys)) + "]")
        elif kind == "v":
            out.append(f"[={text}]")
        else:
            out.append(f"[{text}]")
    return "".join(out)


# ---------------------------------------------------------------------------------------------
# Schema helpers


def child_node(node: SchemaNode, key: str) -> tuple[SchemaNode, bool]:
    """The schema of ``key`` under a map-like node, and whether it is a declared struct field."""
    if node.kind == "struct":
        declared = node.field(key)
        if declared is not None:
            return declared, True
        return _untyped(), False
    if node.kind == "map":
        return node.element, False
    return _untyped(), False


def is_leaf(node: SchemaNode, value: Any) -> bool:
    """True when ``value`` is owned and compared as one unit."""
    if node.atomic or node.kind == "scalar":
        return True
    if node.kind == "list":
        return not node.granular_list or not isinstance(value, list)
    return not isinstance(value, dict)


_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"))
_quoted = json.encoder.encode_basestring_ascii


def _dump(value: Any) -> str:
    """``value`` as ``json.dumps(value, sort_keys=True, separators=(",", ":"))`` writes it.

    Every write compares its lists item by item (a status' conditions, a pod's containers), so
    the common key, a dict of strings and integers, is written here without an encoder.
    """
    if type(value) is dict and all(type(v) is str or type(v) is int for v in value.values()):
        return (
            "{"
            + ",".join(
                f"{_quoted(k)}:{_quoted(v) if type(v) is str else v}"
                for k, v in sorted(value.items())
            )
            + "}"
        )
    return _ENCODER.encode(value)


def item_element(node: SchemaNode, item: Any, index: int, path: str = "") -> str:
    """The path element of list item ``item`` (``k:``, ``v:`` or ``i:``)."""
    if node.list_type == "map" and node.list_keys:
        if not isinstance(item, dict):
            raise FieldError(path, f"element {index}: associative list items must be objects")
        keys: dict[str, Any] = {}
        for name in node.list_keys:
            if name in item and item[name] is not None:
                keys[name] = item[name]
                continue
            default = key_field_default(name)
            if default is None:
                raise FieldError(
                    path,
                    f"element {index}: associative list with keys has an element that omits key "
                    f'field "{name}" (and doesn\'t have default value)',
                    reason="FieldValueRequired",
                )
            keys[name] = default
        return sys.intern("k:" + _dump(keys))
    if node.list_type == "set":
        return sys.intern("v:" + _dump(item))
    return f"i:{index}"


def _index_items(node: SchemaNode, items: list[Any], path: str) -> dict[str, tuple[int, Any]]:
    indexed: dict[str, tuple[int, Any]] = {}
    for index, item in enumerate(items):
        element = item_element(node, item, index, path)
        if element in indexed:
            what = "key" if element.startswith("k:") else "value"
            raise FieldError(
                path,
                f"duplicate entries for {what} {format_path((element,)).strip('[]=')}",
                reason="FieldValueDuplicate",
            )
        indexed[element] = (index, item)
    return indexed


# ---------------------------------------------------------------------------------------------
# Walks


def applied_fields(value: Any, node: SchemaNode, path: str = "") -> FieldSet:
    """The fields an apply configuration sets (the children of ``value``)."""
    if is_leaf(node, value):
        return {}
    out: FieldSet = {}
    if isinstance(value, dict):
        for key, child in value.items():
            sub, declared = child_node(node, key)
            child_fields = applied_fields(child, sub, f"{path}.{key}")
            member = (
                not declared
                or child is None
                or is_leaf(sub, child)
                or (isinstance(child, dict) and not child)
            )
            entry = _make(member, child_fields)
            if entry is not None:
                out[sys.intern("f:" + key)] = entry
        return out
    if isinstance(value, list):
        element_node = node.element
        for element, (_, item) in _index_items(node, value, path).items():
            item_fields = (
                applied_fields(item, element_node, path) if node.list_type == "map" else {}
            )
            entry = _make(True, item_fields)
            out[element] = entry if entry is not None else {}
    return out


class Comparison:
    """The fields added, modified and removed between two versions of an object."""

    __slots__ = ("added", "modified", "removed")

    def __init__(self) -> None:
        self.added: FieldSet = {}
        self.modified: FieldSet = {}
        self.removed: FieldSet = {}

    def changed(self) -> FieldSet:
        """Added or modified fields."""
        return union(self.added, self.modified)


def compare(old: Any, new: Any, node: SchemaNode) -> Comparison:
    """Field-level differences between ``old`` and ``new`` (both the root value of ``node``)."""
    result = Comparison()
    added, modified, removed = _compare(old, new, node, "")
    result.added, result.modified, result.removed = added, modified, removed
    return result


def _subtree(value: Any, node: SchemaNode, path: str) -> FieldSet:
    """Every path under ``value`` (used when a container appears or disappears)."""
    if is_leaf(node, value):
        return {}
    out: FieldSet = {}
    if isinstance(value, dict):
        for key, child in value.items():
            sub, _ = child_node(node, key)
            entry = _make(True, _subtree(child, sub, path))
            out[sys.intern("f:" + key)] = entry if entry is not None else {}
    elif isinstance(value, list):
        for element, (_, item) in _index_items(node, value, path).items():
            entry = _make(True, _subtree(item, node.element, path))
            out[element] = entry if entry is not None else {}
    return out


def _empty(value: Any) -> bool:
    return value is MISSING or value is None or (isinstance(value, dict) and not value)


def _compare(
    old: Any, new: Any, node: SchemaNode, path: str
) -> tuple[FieldSet, FieldSet, FieldSet]:
    """(added, modified, removed) children of the value at ``path``."""
    added: FieldSet = {}
    modified: FieldSet = {}
    removed: FieldSet = {}
    if isinstance(old, dict) and isinstance(new, dict) and not is_leaf(node, new):
        for key in old.keys() | new.keys():
            left = old.get(key, MISSING)
            right = new.get(key, MISSING)
            if left == right and left is not MISSING:
                continue
            sub, _ = child_node(node, key)
            _compare_child(
                sys.intern("f:" + key), left, right, sub, f"{path}.{key}", added, modified, removed
            )
        return added, modified, removed
    if isinstance(old, list) and isinstance(new, list) and not is_leaf(node, new):
        old_items = _index_items(node, old, path)
        new_items = _index_items(node, new, path)
        element_node = node.element
        for element in old_items.keys() | new_items.keys():
            left = old_items.get(element, (0, MISSING))[1]
            right = new_items.get(element, (0, MISSING))[1]
            if left == right and left is not MISSING:
                continue
            _compare_child(element, left, right, element_node, path, added, modified, removed)
    return added, modified, removed


def _compare_child(
    element: str,
    left: Any,
    right: Any,
    node: SchemaNode,
    path: str,
    added: FieldSet,
    modified: FieldSet,
    removed: FieldSet,
) -> None:
    if left is None:
        left = MISSING
    if right is None:
        right = MISSING
    if left is MISSING and right is MISSING:
        return
    leaf = is_leaf(node, right if right is not MISSING else left) or (
        _empty(left) and _empty(right)
    )
    if leaf:
        target = added if left is MISSING else removed if right is MISSING else modified
        target[element] = {}
        return
    if left is MISSING:
        entry = _make(True, _subtree(right, node, path))
        added[element] = entry if entry is not None else {}
        return
    if right is MISSING:
        entry = _make(True, _subtree(left, node, path))
        removed[element] = entry if entry is not None else {}
        return
    if type(left) is not type(right):
        modified[element] = {}
        return
    sub_added, sub_modified, sub_removed = _compare(left, right, node, path)
    if sub_added:
        added[element] = sub_added
    if sub_modified:
        modified[element] = sub_modified
    if sub_removed:
        removed[element] = sub_removed


def merge(live: Any, config: Any, node: SchemaNode, path: str = "") -> Any:
    """``config`` merged into ``live`` as server-side apply merges (never mutates either)."""
    if config is MISSING:
        return live
    if live is MISSING or live is None or is_leaf(node, config):
        return config
    if isinstance(config, dict) and isinstance(live, dict):
        out = dict(live)
        for key, value in config.items():
            if value is None:
                out.pop(key, None)
                continue
            sub, _ = child_node(node, key)
            out[key] = merge(live.get(key, MISSING), value, sub, f"{path}.{key}")
        return out
    if isinstance(config, list) and isinstance(live, list):
        live_items = _index_items(node, live, path)
        result = list(live)
        element_node = node.element
        for element, (_, item) in _index_items(node, config, path).items():
            found = live_items.get(element)
            if found is None:
                result.append(item)
            elif node.list_type == "map":
                result[found[0]] = merge(found[1], item, element_node, path)
        return result
    return config


def prune(value: Any, node: SchemaNode, remove: FieldSet, owned: FieldSet) -> Any:
    """``value`` without the fields in ``remove`` that no one in ``owned`` keeps.

    A removed path goes with everything beneath it, unless some manager owns the path or a field
    below it.  Struct fields count as members of ``remove`` whenever anything below them does, as
    the apiserver treats named fields, so a section left empty disappears with its last field.
    """
    if not remove:
        return value
    if isinstance(value, dict) and not is_leaf(node, value):
        out: dict[str, Any] | None = None
        for element, sub_remove in remove.items():
            if not element.startswith("f:"):
                continue
            key = element[2:]
            if key not in value:
                continue
            sub, declared = child_node(node, key)
            sub_owned = owned.get(element)
            if sub_owned is None:
                if _member(sub_remove) or declared:
                    out = dict(value) if out is None else out
                    del out[key]
                continue
            if _member(sub_owned):
                continue
            pruned = prune(value[key], sub, _children(sub_remove), sub_owned)
            if pruned is not value[key]:
                out = dict(value) if out is None else out
                out[key] = pruned
        return value if out is None else out
    if isinstance(value, list) and node.granular_list:
        by_element = {item_element(node, item, i): i for i, item in enumerate(value)}
        drop: set[int] = set()
        replaced: dict[int, Any] = {}
        for element, sub_remove in remove.items():
            index = by_element.get(element)
            if index is None:
                continue
            sub_owned = owned.get(element)
            if sub_owned is None:
                drop.add(index)
            elif not _member(sub_owned) and node.list_type == "map":
                pruned = prune(value[index], node.element, _children(sub_remove), sub_owned)
                if pruned is not value[index]:
                    replaced[index] = pruned
        if not drop and not replaced:
            return value
        return [replaced.get(i, item) for i, item in enumerate(value) if i not in drop]
    return value


def strip_nulls(value: Any) -> Any:
    """``value`` without null map entries (the apiserver never stores them)."""
    if isinstance(value, dict):
        if any(v is None or isinstance(v, dict | list) for v in value.values()):
            return {k: strip_nulls(v) for k, v in value.items() if v is not None}
        return value
    if isinstance(value, list):
        if any(isinstance(v, dict | list) for v in value):
            return [strip_nulls(v) for v in value]
        return value
    return value
