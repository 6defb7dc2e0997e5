"""Tests for render errors: each names the file, the line and the problem."""

from __future__ import annotations

import pytest

from tests.unit.render.helpers import CONFIGMAP, render_failure, render_templates

# --------------------------------------------------------------------------------------------
# Errors: location and message


@pytest.mark.parametrize(
    ("template", "location", "message"),
    [
        pytest.param(
            CONFIGMAP + "data:\n  a: '{{ replicas }}'\n",
            "t.yaml.j2:6",
            "undefined name 'replicas'",
            id="undefined-name",
        ),
        pytest.param(
            CONFIGMAP + "data:\n  a: x\n  b: '{{ values.replicas }}'\n",
            "t.yaml.j2:7",
            "undefined name 'replicas': no such key in the mapping (it has keys: port)",
            id="undefined-key",
        ),
        pytest.param(
            "a: 1\n\n{% if %}\n",
            "t.yaml.j2:3",
            "template syntax: Expected an expression, got 'end of statement block'",
            id="syntax-error",
        ),
        pytest.param(
            "a: 1\n{% for x in [1] %}\n{% endif %}\n",
            "t.yaml.j2:3",
            "template syntax: Encountered unknown tag 'endif'. Jinja was looking for the"
            " following tags: 'endfor' or 'else'. The innermost block that needs to be closed"
            " is 'for'.",
            id="mismatched-block",
        ),
        pytest.param(
            CONFIGMAP + "data:\n  a: b: c\n",
            "t.yaml.j2:6",
            "YAML: mapping values are not allowed here",
            id="yaml-mapping-values",
        ),
        pytest.param(
            CONFIGMAP + "data:\n  a: [1, 2\n",
            "t.yaml.j2:7",
            "YAML: expected ',' or ']', but got '<stream end>'",
            id="yaml-unclosed-flow",
        ),
        pytest.param(
            CONFIGMAP + "data:\n  a: x\n  a: y\n",
            "t.yaml.j2:7",
            "YAML: found duplicate key 'a'",
            id="duplicate-key",
        ),
        pytest.param(
            CONFIGMAP + "data:\n  a: &anchor x\n  b: *anchor\n",
            "t.yaml.j2:7",
            "YAML: aliases (*name) are not supported; use a Jinja variable or macro instead",
            id="alias",
        ),
        pytest.param(
            CONFIGMAP + "data:\n  80: http\n",
            "t.yaml.j2:6",
            "YAML: found a key that is not a string; quote it",
            id="int-key",
        ),
        pytest.param(
            CONFIGMAP + "data:\n  yes: x\n",
            "t.yaml.j2:6",
            "YAML: found a key that is not a string; quote it",
            id="bool-key",
        ),
        pytest.param(
            CONFIGMAP + "data:\n  a: !!binary aGVsbG8=\n",
            "t.yaml.j2:6",
            "YAML: found tag 'tag:yaml.org,2002:binary', which JSON cannot hold",
            id="binary",
        ),
        pytest.param(
            CONFIGMAP + "data:\n  a: .inf\n",
            "t.yaml.j2:6",
            "YAML: found a number JSON cannot hold (inf or nan)",
            id="infinity",
        ),
        pytest.param(
            "- a\n- b\n",
            "t.yaml.j2:1",
            "document 1 is a list, not a mapping; every document must be one Kubernetes object",
            id="list-document",
        ),
        pytest.param(
            CONFIGMAP + "---\njust a string\n",
            "t.yaml.j2:6",
            "document 2 is a string, not a mapping; every document must be one Kubernetes object",
            id="scalar-document",
        ),
        pytest.param(
            "kind: ConfigMap\nmetadata:\n  name: x\n",
            "t.yaml.j2:1",
            "document 1 has no apiVersion",
            id="missing-apiVersion",
        ),
        pytest.param(
            CONFIGMAP + "---\n---\napiVersion: v1\nmetadata:\n  name: x\n",
            "t.yaml.j2:7",
            "document 3 has no kind",
            id="missing-kind-third-document",
        ),
        pytest.param(
            "apiVersion: v1\nkind: ConfigMap\n",
            "t.yaml.j2:1",
            "document 1 has no metadata",
            id="missing-metadata",
        ),
        pytest.param(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  labels: {}\n",
            "t.yaml.j2:1",
            "document 1 has no metadata.name",
            id="missing-name",
        ),
        pytest.param(
            "apiVersion: v1\nkind: 5\nmetadata:\n  name: x\n",
            "t.yaml.j2:1",
            "document 1: kind must be a string, not a number",
            id="kind-not-string",
        ),
        pytest.param(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [x]\n",
            "t.yaml.j2:1",
            "document 1: metadata.name must be a string, not a list",
            id="name-not-string",
        ),
        pytest.param(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  namespace: 3\n",
            "t.yaml.j2:1",
            "document 1: metadata.namespace must be a string, not a number",
            id="namespace-not-string",
        ),
        pytest.param(
            "a: 1\nb: '{{ 1 // 0 }}'\n",
            "t.yaml.j2:2",
            "template error: ZeroDivisionError: integer division or modulo by zero",
            id="runtime-error",
        ),
        pytest.param(
            "{% include '../../etc/passwd' %}\n",
            "t.yaml.j2:1",
            "cannot include or import '../../etc/passwd': only this project's own templates"
            " (.yaml, .yml, .yaml.j2, .yml.j2) can be included",
            id="include-outside",
        ),
    ],
)
def test_template_errors_name_location_and_problem(
    template: str, location: str, message: str
) -> None:
    """Every template, YAML and document error says file:line and what is wrong."""
    error = render_failure(template, values_base="port: 80\n")
    assert error.location == location
    assert error.message == f"{location}: {message}"
    assert str(error) == f"{location}: {message}"
    assert error.permanent


def test_error_in_an_imported_template_names_that_template() -> None:
    """A failure inside an imported sibling points at the sibling's line."""
    error = render_failure(
        {
            "_macros.yaml.j2": "{% macro broken() %}\n{{ missing_thing }}\n{% endmacro %}\n",
            "cm.yaml.j2": "{% from '_macros.yaml.j2' import broken %}\n{{ broken() }}\n",
        }
    )
    assert error.location == "_macros.yaml.j2:2"
    assert "undefined name 'missing_thing'" in error.message


def test_duplicate_objects_name_both_files() -> None:
    """The same group/kind/namespace/name twice is refused, naming both places."""
    error = render_failure({"a.yaml": CONFIGMAP, "b.yaml": "# again\n" + CONFIGMAP})
    assert error.location == "b.yaml:2"
    assert error.message == (
        "b.yaml:2: duplicate object ConfigMap web-prod/settings (API group core):"
        " already defined in a.yaml document 1 (line 1)"
    )


def test_same_name_in_other_group_kind_or_namespace_is_no_duplicate() -> None:
    """Objects that differ in API group, kind or namespace may share a name."""
    rendered = render_templates(
        {
            "a.yaml": CONFIGMAP,
            "b.yaml": "apiVersion: v1\nkind: Secret\nmetadata:\n  name: settings\n",
            "c.yaml": CONFIGMAP + "  namespace: other\n",
            "d.yaml": "apiVersion: example.com/v1\nkind: ConfigMap\nmetadata:\n  name: settings\n",
        }
    )
    assert len(rendered.objects) == 4


def test_duplicate_across_explicit_and_defaulted_namespace() -> None:
    """An explicit namespace equal to the default collides with a defaulted one."""
    error = render_failure({"a.yaml": CONFIGMAP, "b.yaml": CONFIGMAP + "  namespace: web-prod\n"})
    assert "duplicate object ConfigMap web-prod/settings" in error.message


@pytest.mark.parametrize(
    ("values_base", "values_env", "location", "message"),
    [
        pytest.param(
            "- a\n- b\n",
            None,
            "values.yaml",
            "values must be a mapping of names to values at the top level, not a list",
            id="base-list",
        ),
        pytest.param(
            "a: 1\n",
            "just text\n",
            "values-prod.yaml",
            "values must be a mapping of names to values at the top level, not a string",
            id="env-scalar",
        ),
        pytest.param(
            "a: 1\n",
            "a: 1\nb: c: d\n",
            "values-prod.yaml:2",
            "YAML: mapping values are not allowed here",
            id="env-yaml-error",
        ),
        pytest.param(
            "a: 1\nb: 2\na: 3\n",
            None,
            "values.yaml:3",
            "YAML: found duplicate key 'a'",
            id="base-duplicate-key",
        ),
    ],
)
def test_values_file_errors(
    values_base: str, values_env: str | None, location: str, message: str
) -> None:
    """A values file that is not a mapping, or not valid YAML, is named in the error."""
    error = render_failure(CONFIGMAP, values_base=values_base, values_env=values_env)
    assert error.location == location
    assert error.message == f"{location}: {message}"
