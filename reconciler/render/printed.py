"""Values are data, not code: what ``{{ ... }}`` prints can never change the YAML's structure.

Each printed string becomes an opaque placeholder (two private-use characters around an index,
nothing YAML gives a meaning to) and its real text is kept in a per-render table.  The YAML is
parsed with the placeholders in, so only the template's own text decides keys, documents and
objects; then the placeholders inside scalars (keys included) are replaced by their values.  A
plain, untagged scalar holding a placeholder is typed again from its final text by YAML's implicit
resolver, limited to null, bool, int, float and str, so ``replicas: {{ values.replicas }}`` with
"3" is still the number 3.  Numbers, booleans and None print as their text, as they cannot carry
structure.

Text a template *means* as YAML is a :class:`YamlText`: what ``tojson`` and ``toyaml`` make (we
serialised the data, so it is safe) and what a macro returns (its own prints are placeholders).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from yaml.events import ScalarEvent
from yaml.nodes import ScalarNode

from reconciler.errors import RenderError
from reconciler.render.messages import shown
from reconciler.render.yaml_loaders import ManifestLoader

PLACEHOLDER_OPEN = "\ue000"
PLACEHOLDER_CLOSE = "\ue001"
_RESERVED = re.compile(f"[{PLACEHOLDER_OPEN}{PLACEHOLDER_CLOSE}]")
_PLACEHOLDER = re.compile(f"{PLACEHOLDER_OPEN}([0-9]+){PLACEHOLDER_CLOSE}")

RETYPED_TAGS = frozenset(
    f"tag:yaml.org,2002:{name}" for name in ("null", "bool", "int", "float", "str")
)
"""Tags a printed value may be typed as: scalars only (never merge keys or '=')."""


class YamlText(str):
    """Text printed raw, as YAML: made by our serialising filters and by macro calls only."""

    __slots__ = ()


class OutputTooLarge(Exception):
    """Printed values (or their substitution) went past the output limit."""


class PrintedValues:
    """The per-render table of printed values, and the ``finalize`` that fills it."""

    def __init__(self, *, max_chars: int) -> None:
        self.max_chars = max_chars
        self.printed_chars = 0
        """Characters of every value printed so far (their placeholders are much shorter)."""
        self._values: list[str] = []

    def finalize(self, value: Any) -> Any:
        """Jinja's ``finalize``: a placeholder for a string, other scalars as they are."""
        if isinstance(value, YamlText) or value is None or isinstance(value, bool | int | float):
            return value
        # str() of a StrictUndefined raises the clear "undefined name" error
        text = value if isinstance(value, str) else str(value)
        if PLACEHOLDER_OPEN in text:
            # text built from earlier output (a macro result reworked by a filter): its
            # placeholders become their values, and the whole prints as one string
            text = self.substitute(text, limit=self.max_chars)
        self.printed_chars += len(text)
        self._values.append(text)
        return f"{PLACEHOLDER_OPEN}{len(self._values) - 1}{PLACEHOLDER_CLOSE}"

    def substitute(self, text: str, *, limit: int) -> str:
        """``text`` with each placeholder replaced by its value (at most ``limit`` characters).

        Placeholder characters a template wrote itself are left as they are: values never hold
        them (see :func:`refuse_reserved`), so they can only be the template's own text.
        """
        size = len(text)

        def value_of(match: re.Match[str]) -> str:
            nonlocal size
            index = int(match.group(1))
            if index >= len(self._values):
                return match.group(0)
            size += len(self._values[index])
            if size > limit:
                raise OutputTooLarge
            return self._values[index]

        return _PLACEHOLDER.sub(value_of, text)


def refuse_reserved(value: Any, *, name: str) -> None:
    """Refuse a value (or any key or item within) holding a placeholder character."""
    if isinstance(value, str):
        if _RESERVED.search(value):
            raise RenderError(
                f"{name} holds the character U+E000 or U+E001 ({shown(value)}), which is"
                " reserved for printing values into templates; remove it"
            )
    elif isinstance(value, Mapping):
        for key, item in value.items():
            key_name = f"{name}.{key}" if isinstance(key, str) and key.isidentifier() else None
            refuse_reserved(key, name=f"a key of {name}")
            refuse_reserved(item, name=key_name or f"{name}[{key!r}]")
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            refuse_reserved(item, name=f"{name}[{index}]")


class SubstitutingLoader(ManifestLoader):
    """ManifestLoader that puts printed values into the scalars holding their placeholders."""

    def __init__(self, text: str, *, printed: PrintedValues) -> None:
        super().__init__(text)
        self._printed = printed
        self._substituted_chars = 0

    def compose_scalar_node(self, anchor: Any) -> ScalarNode:
        event = self.peek_event()  # type: ignore[no-untyped-call]
        node: ScalarNode = super().compose_scalar_node(anchor)
        if PLACEHOLDER_OPEN not in node.value:
            return node
        limit = self._printed.max_chars - self._substituted_chars
        node.value = self._printed.substitute(node.value, limit=limit)
        self._substituted_chars += len(node.value)
        if isinstance(event, ScalarEvent) and event.tag is None and event.style is None:
            # plain and untagged: typed from the final text, as YAML would, scalars only
            tag = self.resolve(ScalarNode, node.value, (True, False))  # type: ignore[no-untyped-call]
            node.tag = tag if tag in RETYPED_TAGS else "tag:yaml.org,2002:str"
        return node
