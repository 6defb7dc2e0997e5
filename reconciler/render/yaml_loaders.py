"""Safe YAML loading, with the surprises of YAML 1.1 turned into errors."""

from __future__ import annotations

import math
from typing import Any

import yaml
from yaml.composer import ComposerError
from yaml.constructor import ConstructorError
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, Node, ScalarNode

from reconciler.errors import RenderError


class ValuesLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys and aliases and keeps dates as strings."""

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        # Aliases can expand exponentially ("billion laughs") once the data is serialised;
        # Jinja variables and macros do the same job safely.
        if self.check_event(AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise ComposerError(
                None,
                None,
                "aliases (*name) are not supported; use a Jinja variable or macro instead",
                event.start_mark,
            )
        return super().compose_node(parent, index)

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # '<<' merge keys are flattened by SafeLoader
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, str | int | float | bool):
                continue  # unhashable keys are refused by SafeLoader itself
            if key in seen:
                raise ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    f"found duplicate key {key!r}",
                    key_node.start_mark,
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


# Dates stay strings: Kubernetes objects are JSON, which has no date type.
ValuesLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


class ManifestLoader(ValuesLoader):
    """Loader for rendered manifests: additionally refuses what JSON cannot hold."""

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        for key_node, _value_node in node.value:
            if not (isinstance(key_node, ScalarNode) and key_node.tag == "tag:yaml.org,2002:str"):
                raise ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    "found a key that is not a string; quote it",
                    key_node.start_mark,
                )
        return super().construct_mapping(node, deep=deep)

    def construct_yaml_float(self, node: ScalarNode) -> float:
        value: float = super().construct_yaml_float(node)
        if not math.isfinite(value):
            raise ConstructorError(
                None, None, "found a number JSON cannot hold (inf or nan)", node.start_mark
            )
        return value

    def _refuse_non_json(self, node: Node) -> Any:
        raise ConstructorError(
            None, None, f"found tag {node.tag!r}, which JSON cannot hold", node.start_mark
        )


ManifestLoader.add_constructor("tag:yaml.org,2002:float", ManifestLoader.construct_yaml_float)
for _tag in ("binary", "set", "omap", "pairs", "timestamp"):
    ManifestLoader.add_constructor(f"tag:yaml.org,2002:{_tag}", ManifestLoader._refuse_non_json)


def yaml_error(exc: yaml.YAMLError, *, file_name: str) -> RenderError:
    """A RenderError at the line YAML complains about."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    location = f"{file_name}:{mark.line + 1}" if mark is not None else file_name
    problem = getattr(exc, "problem", None) or str(exc)
    return RenderError(f"YAML: {problem}", location=location)
