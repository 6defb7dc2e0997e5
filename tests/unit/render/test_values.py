"""Tests for values: merging layers, precedence, the override, what templates see."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from reconciler.errors import InputError
from reconciler.render import merge_values
from tests.unit.render.helpers import (
    CONFIGMAP,
    configmap_with_data,
    render_failure,
    render_one,
    render_templates,
)

# --------------------------------------------------------------------------------------------
# merge_values


@pytest.mark.parametrize(
    ("layers", "expected"),
    [
        pytest.param((), {}, id="no-layers"),
        pytest.param(({"a": 1}, {"b": 2}), {"a": 1, "b": 2}, id="disjoint-keys"),
        pytest.param(({"a": 1}, {"a": 2}), {"a": 2}, id="later-scalar-wins"),
        pytest.param(
            ({"db": {"host": "h", "port": 1}}, {"db": {"port": 2}}),
            {"db": {"host": "h", "port": 2}},
            id="mappings-merge",
        ),
        pytest.param(
            ({"a": {"b": {"c": 1, "d": 2}}}, {"a": {"b": {"d": 3, "e": 4}}}),
            {"a": {"b": {"c": 1, "d": 3, "e": 4}}},
            id="deep-mappings-merge",
        ),
        pytest.param(({"hosts": [1, 2, 3]}, {"hosts": [9]}), {"hosts": [9]}, id="lists-replace"),
        pytest.param(({"a": {"b": 1}}, {"a": "flat"}), {"a": "flat"}, id="scalar-replaces-map"),
        pytest.param(({"a": "flat"}, {"a": {"b": 1}}), {"a": {"b": 1}}, id="map-replaces-scalar"),
        pytest.param(({"a": 1}, {"a": None}), {"a": None}, id="null-replaces"),
        pytest.param(
            ({"a": 1, "b": 1, "c": 1}, {"b": 2, "c": 2}, {"c": 3}),
            {"a": 1, "b": 2, "c": 3},
            id="three-layers-later-wins",
        ),
    ],
)
def test_merge_values(layers: Sequence[Mapping[str, Any]], expected: dict[str, Any]) -> None:
    """Mappings merge deeply, lists and scalars replace, and the later layer wins."""
    assert merge_values(*layers) == expected


def test_merge_values_leaves_inputs_alone_and_shares_nothing() -> None:
    """Merging mutates no input, and mutating the result cannot reach an input."""
    base = {"db": {"host": "h", "ports": [1]}, "tags": ["a"]}
    env = {"db": {"user": "u"}, "extra": {"k": [1, 2]}}
    snapshot = json.dumps([base, env], sort_keys=True)

    merged = merge_values(base, env)
    merged["db"]["ports"].append(2)
    merged["tags"].append("b")
    merged["extra"]["k"].append(3)

    assert json.dumps([base, env], sort_keys=True) == snapshot


# --------------------------------------------------------------------------------------------
# Context and values


def test_template_context_variables() -> None:
    """Templates see image_ref, project, environment, namespace and the merged values."""
    objects = render_one(
        configmap_with_data(
            "  image: {{ image_ref }}\n"
            "  project: {{ project }}\n"
            "  environment: {{ environment }}\n"
            "  namespace: {{ namespace }}\n"
            "  greeting: {{ values.greeting }}\n"
        ),
        values_base="greeting: hello\n",
        namespace="shop",
        image_ref="reg/web:sha-9",
    )
    assert objects[0]["data"] == {
        "image": "reg/web:sha-9",
        "project": "web",
        "environment": "prod",
        "namespace": "shop",
        "greeting": "hello",
    }


@pytest.mark.parametrize(
    ("key", "expected"),
    [("only_base", "base"), ("base_and_env", "env"), ("everywhere", "override")],
)
def test_values_precedence(key: str, expected: str) -> None:
    """values.yaml < values-<environment>.yaml < values_override."""
    objects = render_one(
        configmap_with_data(f"  value: {{{{ values.{key} }}}}\n"),
        values_base="only_base: base\nbase_and_env: base\neverywhere: base\n",
        values_env="base_and_env: env\neverywhere: env\n",
        values_override={"everywhere": "override"},
    )
    assert objects[0]["data"]["value"] == expected


def test_values_files_merge_deeply() -> None:
    """A nested key set in the environment file keeps its siblings from values.yaml."""
    objects = render_one(
        configmap_with_data("  db: '{{ values.db.host }}:{{ values.db.port }}'\n"),
        values_base="db:\n  host: db.internal\n  port: 5432\n",
        values_env="db:\n  port: 6432\n",
    )
    assert objects[0]["data"]["db"] == "db.internal:6432"


def test_values_override_is_used_as_given() -> None:
    """The override is data, not YAML: strings stay strings and nested keys merge in."""
    objects = render_one(
        configmap_with_data(
            "  flag: {{ values.flag | tojson }}\n"
            "  version: {{ values.version | tojson }}\n"
            "  db: {{ values.db | tojson }}\n"
        ),
        values_base="flag: true\ndb:\n  host: h\n  port: 1\n",
        values_override={"flag": "yes", "version": "1.10", "db": {"port": 2}},
    )
    assert objects[0]["data"] == {"flag": "yes", "version": "1.10", "db": {"host": "h", "port": 2}}


def test_values_override_not_mutated() -> None:
    """Rendering leaves the caller's values_override untouched."""
    override = {"db": {"port": 2}, "hosts": ["a"]}
    render_one(CONFIGMAP, values_base="db:\n  host: h\n", values_override=override)
    assert override == {"db": {"port": 2}, "hosts": ["a"]}


@pytest.mark.parametrize("override", [["a"], "text", 3])
def test_values_override_must_be_a_mapping(override: Any) -> None:
    """A values_override that is not a JSON object is an input error."""
    with pytest.raises(InputError, match="values_override must be a JSON object"):
        render_one(CONFIGMAP, values_override=override)


@pytest.mark.parametrize("text", [None, "", "# only a comment\n", "null\n"])
def test_missing_or_empty_values_files_are_empty_mappings(text: str | None) -> None:
    """An absent or empty values file contributes nothing."""
    objects = render_one(
        configmap_with_data("  n: '{{ values | length }}'\n"), values_base=text, values_env=text
    )
    assert objects[0]["data"]["n"] == "0"


def test_templates_cannot_mutate_values() -> None:
    """The sandbox is immutable: a template cannot change values for later templates."""
    error = render_failure(configmap_with_data("  x: '{{ values.update({\"a\": 1}) }}'\n"))
    assert error.location == "t.yaml.j2:6"
    assert "the template sandbox refused this" in error.message


def test_values_parsed_once_are_not_changed_by_a_render() -> None:
    """Renders sharing a values file each start from the file, whatever the last one merged."""
    template = CONFIGMAP + "data:\n  size: {{ values.db.size }}\n  extra: '{{ values.db.extra }}'\n"
    base = "db:\n  size: small\n  extra: none\n"
    first = render_templates(
        {"t.yaml.j2": template}, values_base=base, values_override={"db": {"size": "big"}}
    )
    second = render_templates({"t.yaml.j2": template}, values_base=base)
    assert first.objects[0]["data"] == {"size": "big", "extra": "none"}
    assert second.objects[0]["data"] == {"size": "small", "extra": "none"}


def test_a_broken_values_file_is_refused_every_time() -> None:
    """A values file that does not parse fails each render that uses it, not only the first."""
    for _ in range(2):
        failure = render_failure(CONFIGMAP, values_base="a: [unclosed\n")
        assert "values.yaml" in str(failure)
