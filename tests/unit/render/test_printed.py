"""Values are data, not code: nothing a template prints with {{ ... }} changes the YAML."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from reconciler.render import Rendered, load_project, render
from tests.unit.render.helpers import (
    CONFIGMAP,
    configmap_with_data,
    render_failure,
    render_one,
)

EXAMPLE_REPO = Path(__file__).resolve().parents[3] / "ops_repos_example"

CLUSTER_ADMIN = """nginx
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: pwned
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: cluster-admin
subjects:
  - kind: ServiceAccount
    name: default
    namespace: web-prod
"""


def _render_web(class_name: Any) -> Rendered:
    sources = load_project(checkout=EXAMPLE_REPO, path="", project="web", environment="prod")
    return render(
        sources,
        project="web",
        environment="prod",
        namespace="web-prod",
        image_ref="registry.example.com/shop/web:sha-1234abc",
        values_override={"ingress": {"class_name": class_name}},
    )


def _without_class_name(rendered: Rendered) -> list[dict[str, Any]]:
    objects = [dict(obj) for obj in rendered.objects]
    for obj in objects:
        if obj["kind"] == "Ingress":
            obj["spec"] = {k: v for k, v in obj["spec"].items() if k != "ingressClassName"}
    return objects


@pytest.mark.parametrize(
    "hostile",
    [
        pytest.param(CLUSTER_ADMIN, id="new-document"),
        pytest.param("nginx\n  hostNetwork: true", id="new-key"),
        pytest.param("nginx\nextra: key", id="sibling-key"),
        pytest.param('nginx"\n  x: "y', id="quote-breaking"),
        pytest.param("{a: 1, b: [2]}", id="flow-mapping"),
        pytest.param("[nginx, other]", id="flow-sequence"),
        pytest.param("nginx # a comment", id="comment"),
        pytest.param("&anchor nginx", id="anchor"),
        pytest.param("*alias", id="alias"),
        pytest.param("!!python/object/apply:os.system ['true']", id="python-tag"),
        pytest.param("| \n  block", id="block-indicator"),
        pytest.param("- a\n- b", id="sequence"),
        pytest.param("{{ 7 * 7 }}", id="jinja-syntax"),
    ],
)
def test_hostile_value_stays_one_string_in_the_example_repo(hostile: str) -> None:
    """A hostile values_override gives the same objects, with the text as a plain string."""
    normal = _render_web("nginx")
    rendered = _render_web(hostile)
    kinds = [obj["kind"] for obj in rendered.objects]
    assert kinds == ["ConfigMap", "Deployment", "Ingress", "Service"]
    ingress = next(obj for obj in rendered.objects if obj["kind"] == "Ingress")
    assert ingress["spec"]["ingressClassName"] == hostile
    assert _without_class_name(rendered) == _without_class_name(normal)


def test_normal_values_render_the_example_repo_as_before() -> None:
    """The example's ordinary class name renders exactly as written in values.yaml."""
    ingress = next(obj for obj in _render_web("nginx").objects if obj["kind"] == "Ingress")
    assert ingress["spec"]["ingressClassName"] == "nginx"


HOSTILE = "x\n---\nkind: Secret\n  y: z # c\n'\"{[&a *b !!str"

PLACES = (
    "apiVersion: v1\n"
    "kind: ConfigMap\n"
    "metadata:\n"
    "  name: settings\n"
    "data:\n"
    "  plain: {{ values.x }}\n"
    "  single: '{{ values.x }}'\n"
    '  double: "{{ values.x }}"\n'
    "  mixed: before {{ values.x }} after\n"
    "  block: |\n"
    "    {{ values.x }}\n"
    "  folded: >\n"
    "    {{ values.x }}\n"
    "  {{ values.x }}: as-key\n"
    "  flow: [{{ values.x }}, {k: {{ values.x }}}]\n"
    "  # a comment {{ values.x }}\n"
)


def test_a_printed_value_cannot_change_the_structure_wherever_it_is_printed() -> None:
    """Plain, quoted, block and flow scalars, keys and comments all keep the text as a string."""
    [obj] = render_one(PLACES, values_override={"x": HOSTILE})
    assert obj["data"] == {
        "plain": HOSTILE,
        "single": HOSTILE,
        "double": HOSTILE,
        "mixed": f"before {HOSTILE} after",
        "block": HOSTILE + "\n",
        "folded": HOSTILE + "\n",
        HOSTILE: "as-key",
        "flow": [HOSTILE, {"k": HOSTILE}],
    }


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("3", 3, id="string-number"),
        pytest.param(3, 3, id="number"),
        pytest.param("1.5", 1.5, id="string-float"),
        pytest.param("true", True, id="string-bool"),
        pytest.param("null", None, id="string-null"),
        pytest.param("2024-01-31", "2024-01-31", id="date-stays-string"),
        pytest.param("<<", "<<", id="merge-key-stays-string"),
        pytest.param("=", "=", id="value-tag-stays-string"),
        pytest.param("a: b", "a: b", id="mapping-text-stays-string"),
    ],
)
def test_a_plain_printed_scalar_is_typed_as_yaml_would(value: Any, expected: Any) -> None:
    """Unquoted, a printed value gets YAML's scalar type (never a structure); quoted, a string."""
    [obj] = render_one(
        CONFIGMAP + "spec:\n  plain: {{ values.v }}\n  quoted: '{{ values.v }}'\n",
        values_override={"v": value},
    )
    assert obj["spec"] == {"plain": expected, "quoted": str(value)}


def test_a_printed_value_holding_a_placeholder_character_is_refused() -> None:
    """A value with the reserved characters is refused, naming where it is."""
    error = render_failure(
        configmap_with_data("  a: {{ values.x }}\n"),
        values_override={"db": {"hosts": ["ok", "a\ue000b"]}},
    )
    assert error.message == (
        "values.db.hosts[1] holds the character U+E000 or U+E001 ('a\\ue000b'), which is"
        " reserved for printing values into templates; remove it"
    )


def test_toyaml_and_tojson_print_structure_from_data() -> None:
    """toyaml (block YAML, with indent) and tojson insert the data's structure, safely."""
    [obj] = render_one(
        CONFIGMAP + "spec:\n"
        "  yaml:\n"
        "    {{ values.d | toyaml | indent(4) }}\n"
        "  json: {{ values.d | tojson }}\n"
        "  text: {{ values.s | toyaml }}\n",
        values_override={"d": {"a": "yes", "b": "x\n---\ny: z", "c": [1, {"n": None}]}, "s": "é"},
    )
    data = {"a": "yes", "b": "x\n---\ny: z", "c": [1, {"n": None}]}
    assert obj["spec"] == {"yaml": data, "json": data, "text": "é"}


def test_macro_output_is_yaml_and_its_prints_are_data() -> None:
    """A macro's result is YAML (also through indent), but the values it prints are not."""
    [obj] = render_one(
        "{% macro labels() %}app: {{ values.app }}\nteam: {{ values.team }}{% endmacro %}"
        + CONFIGMAP
        + "  labels:\n    {{ labels() | indent(4) }}\n",
        values_override={"app": "web\nevil: true", "team": "shop"},
    )
    assert obj["metadata"]["labels"] == {"app": "web\nevil: true", "team": "shop"}


def test_reworked_macro_output_prints_as_one_string() -> None:
    """A macro's result changed by another filter is data again: one string, values in."""
    [obj] = render_one(
        "{% macro m() %}a: {{ values.x }}{% endmacro %}"
        + configmap_with_data("  text: {{ m() | replace('a:', 'b:') }}\n"),
        values_override={"x": "1\nc: 2"},
    )
    assert obj["data"]["text"] == "b: 1\nc: 2"


def test_a_filter_block_with_a_value_argument_is_refused() -> None:
    """{% filter %} output skips finalize, so its arguments must be constants."""
    error = render_failure(
        "a: 1\n{% filter replace('x', values.x) %}\nb: x\n{% endfilter %}\n",
        values_override={"x": "1\nc: 2"},
    )
    assert error.message == (
        "t.yaml.j2:2: template syntax: a {% filter %} block takes constant arguments only"
        " (a value given to it would become YAML); filter a macro's result instead"
    )


def test_a_filter_block_with_constant_arguments_still_works() -> None:
    """{% filter indent(2) %} and friends keep working."""
    [obj] = render_one(
        CONFIGMAP + "data:\n  {% filter indent(2) %}a: {{ values.x }}\nb: 2{% endfilter %}\n",
        values_override={"x": "1\nc: 3"},
    )
    assert obj["data"] == {"a": "1\nc: 3", "b": 2}


def test_a_call_block_must_call_a_macro() -> None:
    """{% call %} of something that is not a macro is refused (its output would skip finalize)."""
    error = render_failure("{% call values.x.format() %}{% endcall %}\n", values_override={"x": ""})
    assert error.message == (
        "t.yaml.j2:1: the template sandbox refused this: {% call %} must call a macro"
    )


def test_printed_values_count_against_the_output_limit() -> None:
    """A macro result printed again and again is still capped, at its values' full length."""
    error = render_failure(
        "{% macro m() %}{{ values.x }}{% endmacro %}{% set big = m() %}"
        "a: '{% for i in range(5000) %}{{ big }}{% endfor %}'\n",
        values_override={"x": "x" * 1000},
    )
    assert error.message == (
        "t.yaml.j2: rendered output is larger than the limit of 4194304 characters;"
        " is a loop running away?"
    )


def test_yaml_error_lines_stay_right_with_multiline_values() -> None:
    """A YAML error after a multi-line value still points at the template's line."""
    error = render_failure(
        configmap_with_data("  a: {{ values.x }}\n  b: [1, 2\n"), values_override={"x": "1\n2\n3"}
    )
    assert error.message == "t.yaml.j2:8: YAML: expected ',' or ']', but got '<stream end>'"
