"""Rendered manifests parsed by libyaml (PyYAML's C parser) when PyYAML has it: the same
objects as :class:`~reconciler.render.printed.SubstitutingLoader`, several times faster.

libyaml composes the node tree in C, so the checks the pure-Python loaders make while
composing are made on the finished tree instead: a node reached twice is an alias (refused),
and each scalar holding a placeholder gets its printed values, a plain untagged one typed again
from its final text (its tag was resolved while the placeholder was in it: :meth:`resolve`
marks those).  Everything else (duplicate keys, keys that are not strings, tags JSON cannot
hold) is the constructor's, shared with the pure-Python loader.

Anything unusual (a YAML error, an alias) is left to the pure-Python loader, which parses the
text again and words the error as it always has: only the fast path is libyaml's.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.resolver import Resolver

from reconciler.render.printed import (
    PLACEHOLDER_OPEN,
    RETYPED_TAGS,
    PrintedValues,
)
from reconciler.render.yaml_loaders import ManifestLoader

AVAILABLE: bool = bool(getattr(yaml, "__with_libyaml__", False))
"""Whether this PyYAML was built with libyaml."""

_PLAIN_WITH_PLACEHOLDER = "tag:reconciler.io,2026:plain-with-placeholder"
_STRING = "tag:yaml.org,2002:str"


class NotForTheFastPath(Exception):
    """The text needs the pure-Python loader (an error to word, an alias to refuse)."""


if AVAILABLE:
    from yaml.cyaml import CParser as _CParser  # type: ignore[attr-defined]
else:  # pragma: no cover - PyYAML without libyaml

    class _CParser:  # type: ignore[no-redef]
        def __init__(self, _text: str) -> None:
            raise NotForTheFastPath


class _Loader(_CParser, ManifestLoader):
    """libyaml's parser with the manifest loader's constructor and resolver."""

    def __init__(self, text: str) -> None:
        _CParser.__init__(self, text)
        SafeConstructor.__init__(self)
        Resolver.__init__(self)

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        # libyaml asks only for scalars without an explicit tag; implicit[0]: a plain one.
        if kind is ScalarNode and implicit[0] and PLACEHOLDER_OPEN in value:
            return _PLAIN_WITH_PLACEHOLDER
        return super().resolve(kind, value, implicit)  # type: ignore[no-untyped-call]


def documents(text: str, *, printed: PrintedValues | None) -> list[tuple[int, int, Any]]:
    """(1-based document index, 1-based first line, data) of each non-empty document, as
    :func:`reconciler.render.documents.parse_documents`; :class:`NotForTheFastPath` when the
    pure-Python loader must do it."""
    loader = _Loader(text)
    try:
        found: list[tuple[int, int, Any]] = []
        seen: set[int] = set()
        budget = [printed.max_chars if printed is not None else 0]
        index = 0
        while loader.check_node():
            node = loader.get_node()
            index += 1
            if node is None:
                continue
            _finish(loader, node, printed=printed, seen=seen, budget=budget)
            data = loader.construct_document(node)
            if data is not None:
                found.append((index, node.start_mark.line + 1, data))
        return found
    except yaml.YAMLError:
        raise NotForTheFastPath from None
    finally:
        loader.dispose()


def _finish(
    loader: _Loader,
    root: Node,
    *,
    printed: PrintedValues | None,
    seen: set[int],
    budget: list[int],
) -> None:
    """Refuse aliases; put the printed values into the scalars holding placeholders."""
    pending = [root]
    while pending:
        node = pending.pop()
        if id(node) in seen:
            raise NotForTheFastPath  # an alias: the pure-Python loader refuses it in words
        seen.add(id(node))
        if isinstance(node, ScalarNode):
            _substitute(loader, node, printed=printed, budget=budget)
        elif isinstance(node, SequenceNode):
            pending.extend(reversed(node.value))
        elif isinstance(node, MappingNode):
            for key, value in reversed(node.value):
                pending.extend((value, key))


def _substitute(
    loader: _Loader, node: ScalarNode, *, printed: PrintedValues | None, budget: list[int]
) -> None:
    if printed is not None and PLACEHOLDER_OPEN in node.value:
        node.value = printed.substitute(node.value, limit=budget[0])
        budget[0] -= len(node.value)
    if node.tag == _PLAIN_WITH_PLACEHOLDER:
        # plain and untagged: typed from the final text, as YAML would, scalars only
        tag = Resolver.resolve(loader, ScalarNode, node.value, (True, False))  # type: ignore[no-untyped-call]
        node.tag = tag if tag in RETYPED_TAGS else _STRING
