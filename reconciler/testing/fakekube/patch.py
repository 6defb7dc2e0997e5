"""JSON merge patch (RFC 7386), JSON patch (RFC 6902) and strategic merge patch.

Strategic merge patch follows the apimachinery rules, reading each field's patch strategy and
merge key from the schema: lists with strategy ``merge`` merge their items by the merge key
(primitive lists as sets), and the directives clients send are interpreted, never stored:
``$patch`` (replace / delete / merge), ``$retainKeys``, ``$setElementOrder/<field>`` and
``$deleteFromPrimitiveList/<field>``.
"""

from __future__ import annotations

import copy
from typing import Any

from .schema import SchemaNode

_ORDER = "$setElementOrder/"
_DELETE_PRIMITIVE = "$deleteFromPrimitiveList/"


class PatchError(Exception):
    """A patch cannot be applied; ``status`` is the HTTP status to answer."""

    def __init__(self, message: str, *, status: int = 422) -> None:
        super().__init__(message)
        self.status = status


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: maps merge recursively, null deletes, everything else replaces."""
    if not isinstance(patch, dict):
        return patch
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def json_patch(target: Any, operations: Any) -> Any:
    """RFC 6902 operations applied to a copy of ``target``."""
    if not isinstance(operations, list):
        raise PatchError("a JSON patch must be a list of operations", status=400)
    document = copy.deepcopy(target)
    for number, operation in enumerate(operations):
        if not isinstance(operation, dict) or "op" not in operation or "path" not in operation:
            raise PatchError(f"operation {number}: needs 'op' and 'path'", status=400)
        op = operation["op"]
        path = _pointer(operation["path"])
        if op == "add":
            document = _add(document, path, _value(operation, number))
        elif op == "remove":
            document, _ = _remove(document, path)
        elif op == "replace":
            document, _ = _remove(document, path)
            document = _add(document, path, _value(operation, number))
        elif op == "move":
            source = _pointer(_from(operation, number))
            document, moved = _remove(document, source)
            document = _add(document, path, moved)
        elif op == "copy":
            source = _pointer(_from(operation, number))
            document = _add(document, path, copy.deepcopy(_get(document, source)))
        elif op == "test":
            if _get(document, path) != _value(operation, number):
                raise PatchError(f"testing value {operation['path']} failed: test failed")
        else:
            raise PatchError(f"operation {number}: unknown op {op!r}", status=400)
    return document


def _value(operation: dict[str, Any], number: int) -> Any:
    if "value" not in operation:
        raise PatchError(f"operation {number}: missing 'value'", status=400)
    return copy.deepcopy(operation["value"])


def _from(operation: dict[str, Any], number: int) -> str:
    source = operation.get("from")
    if not isinstance(source, str):
        raise PatchError(f"operation {number}: missing 'from'", status=400)
    return source


def _pointer(text: Any) -> list[str]:
    if not isinstance(text, str) or (text and not text.startswith("/")):
        raise PatchError(f"invalid JSON pointer {text!r}", status=400)
    if not text:
        return []
    return [part.replace("~1", "/").replace("~0", "~") for part in text[1:].split("/")]


def _container(document: Any, path: list[str]) -> Any:
    node = document
    for part in path[:-1]:
        node = _step(node, part, path)
    return node


def _step(node: Any, part: str, path: list[str]) -> Any:
    if isinstance(node, dict) and part in node:
        return node[part]
    if isinstance(node, list) and part.isdigit() and int(part) < len(node):
        return node[int(part)]
    raise PatchError(f"path /{'/'.join(path)} does not exist")


def _get(document: Any, path: list[str]) -> Any:
    node = document
    for part in path:
        node = _step(node, part, path)
    return node


def _add(document: Any, path: list[str], value: Any) -> Any:
    if not path:
        return value
    parent = _container(document, path)
    last = path[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        if last == "-":
            parent.append(value)
        elif last.isdigit() and int(last) <= len(parent):
            parent.insert(int(last), value)
        else:
            raise PatchError(f"index {last} is out of range at /{'/'.join(path)}")
    else:
        raise PatchError(f"path /{'/'.join(path)} does not exist")
    return document


def _remove(document: Any, path: list[str]) -> tuple[Any, Any]:
    if not path:
        return None, document
    parent = _container(document, path)
    last = path[-1]
    if isinstance(parent, dict) and last in parent:
        return document, parent.pop(last)
    if isinstance(parent, list) and last.isdigit() and int(last) < len(parent):
        return document, parent.pop(int(last))
    raise PatchError(f"unable to remove nonexistent key /{'/'.join(path)}")


def strategic_merge_patch(original: Any, patch: Any, node: SchemaNode) -> Any:
    """A strategic merge patch applied to ``original`` (neither is mutated)."""
    if not isinstance(patch, dict):
        raise PatchError("a strategic merge patch must be a JSON object", status=400)
    result = _merge_map(original if isinstance(original, dict) else {}, patch, node)
    return result if result is not None else {}


def _field_node(node: SchemaNode | None, key: str) -> SchemaNode | None:
    if node is None:
        return None
    if node.kind == "struct":
        return node.field(key)
    if node.kind == "map":
        return node.element
    return None


def _merge_map(
    original: dict[str, Any], patch: dict[str, Any], node: SchemaNode | None
) -> dict[str, Any] | None:
    directive = patch.get("$patch")
    if directive == "delete":
        return None
    if directive == "replace":
        replaced: dict[str, Any] = _strip_directives(patch, node)
        return replaced
    if directive not in (None, "merge"):
        raise PatchError(f"unknown patch directive $patch: {directive}", status=400)
    out = dict(original)
    orders: dict[str, list[Any]] = {}
    for key, value in patch.items():
        if key in ("$patch", "$retainKeys"):
            continue
        if key.startswith(_ORDER):
            orders[key.removeprefix(_ORDER)] = value if isinstance(value, list) else []
            continue
        if key.startswith(_DELETE_PRIMITIVE):
            field = key.removeprefix(_DELETE_PRIMITIVE)
            doomed = value if isinstance(value, list) else []
            if isinstance(out.get(field), list):
                out[field] = [item for item in out[field] if item not in doomed]
            continue
        if value is None:
            out.pop(key, None)
            continue
        sub = _field_node(node, key)
        current = out.get(key)
        if isinstance(value, dict):
            merged = _merge_map(current if isinstance(current, dict) else {}, value, sub)
            if merged is None:
                out.pop(key, None)
            else:
                out[key] = merged
        elif isinstance(value, list):
            out[key] = _merge_list(current if isinstance(current, list) else [], value, sub)
        else:
            out[key] = value
    for field, order in orders.items():
        if isinstance(out.get(field), list):
            out[field] = _apply_order(out[field], order, _field_node(node, field))
    retain = patch.get("$retainKeys")
    if isinstance(retain, list):
        out = {key: value for key, value in out.items() if key in retain}
    return out


def _merge_list(original: list[Any], patch: list[Any], node: SchemaNode | None) -> list[Any]:
    strategy = node.patch_strategy if node is not None else frozenset()
    merge_key = node.merge_key if node is not None else None
    if "merge" not in strategy:
        return [_strip_directives(item, node.element if node else None) for item in patch]
    if any(isinstance(item, dict) and item.get("$patch") == "replace" for item in patch):
        return [
            _strip_directives(item, node.element if node else None)
            for item in patch
            if not (isinstance(item, dict) and item.get("$patch") == "replace")
        ]
    if merge_key is None or not all(isinstance(item, dict) for item in patch):
        # A primitive list merges as a set, keeping the server's order.
        result = list(original)
        for item in patch:
            if item not in result:
                result.append(item)
        return result
    element = node.element if node is not None else None
    result = list(original)
    for item in patch:
        key_value = item.get(merge_key)
        position = next(
            (
                i
                for i, existing in enumerate(result)
                if isinstance(existing, dict) and existing.get(merge_key) == key_value
            ),
            None,
        )
        if item.get("$patch") == "delete":
            if position is not None:
                del result[position]
            continue
        if position is None:
            merged = _merge_map({}, item, element)
            if merged is not None:
                result.append(merged)
        else:
            merged = _merge_map(result[position], item, element)
            if merged is None:
                del result[position]
            else:
                result[position] = merged
    return result


def _apply_order(items: list[Any], order: list[Any], node: SchemaNode | None) -> list[Any]:
    merge_key = node.merge_key if node is not None else None

    def identity(item: Any) -> Any:
        if merge_key is not None and isinstance(item, dict):
            return item.get(merge_key)
        return item

    wanted = [identity(entry) for entry in order]
    ranked = {value: rank for rank, value in enumerate(wanted) if not isinstance(value, dict)}
    positioned = sorted(
        (item for item in items if identity(item) in ranked), key=lambda i: ranked[identity(i)]
    )
    rest = [item for item in items if identity(item) not in ranked]
    return positioned + rest


def _strip_directives(value: Any, node: SchemaNode | None) -> Any:
    if isinstance(value, dict):
        return {
            key: _strip_directives(item, _field_node(node, key))
            for key, item in value.items()
            if not key.startswith("$")
        }
    if isinstance(value, list):
        return [_strip_directives(item, node.element if node else None) for item in value]
    return value
