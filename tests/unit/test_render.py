"""Tests for reconciler.render: loading a project, merging values, rendering, errors, limits."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from reconciler.errors import InputError, RenderError
from reconciler.render import (
    CLUSTER_SCOPED_KINDS,
    MAX_RENDERED_CHARS,
    MAX_SOURCE_BYTES,
    ProjectSources,
    Rendered,
    load_project,
    merge_values,
    render,
    to_yaml,
    validate_name,
)

CONFIGMAP = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n"


def make_sources(
    templates: Mapping[str, str],
    *,
    values_base: str | None = None,
    values_env: str | None = None,
) -> ProjectSources:
    return ProjectSources(
        project_dir="web",
        templates=tuple(sorted(templates.items())),
        values_base=values_base,
        values_env=values_env,
        values_env_name="values-prod.yaml",
    )


def render_templates(
    templates: Mapping[str, str],
    *,
    values_base: str | None = None,
    values_env: str | None = None,
    values_override: Mapping[str, Any] | None = None,
    namespace: str = "web-prod",
    image_ref: str = "registry.example.com/web:sha-1",
) -> Rendered:
    return render(
        make_sources(templates, values_base=values_base, values_env=values_env),
        project="web",
        environment="prod",
        namespace=namespace,
        image_ref=image_ref,
        values_override={} if values_override is None else values_override,
    )


def render_one(template: str, **kwargs: Any) -> tuple[dict[str, Any], ...]:
    return render_templates({"t.yaml.j2": template}, **kwargs).objects


def render_failure(templates: Mapping[str, str] | str, **kwargs: Any) -> RenderError:
    if isinstance(templates, str):
        templates = {"t.yaml.j2": templates}
    with pytest.raises(RenderError) as caught:
        render_templates(templates, **kwargs)
    return caught.value


def configmap_with_data(data_lines: str) -> str:
    return CONFIGMAP + "data:\n" + data_lines


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


# --------------------------------------------------------------------------------------------
# Objects: namespaces, order, documents


def test_namespaced_kind_gets_the_namespace() -> None:
    """An object of a namespaced kind without metadata.namespace gets the deployment's."""
    objects = render_one(CONFIGMAP, namespace="web-prod")
    assert objects[0]["metadata"]["namespace"] == "web-prod"


def test_explicit_namespace_is_kept() -> None:
    """An object that names its namespace keeps it."""
    objects = render_one(CONFIGMAP + "  namespace: monitoring\n", namespace="web-prod")
    assert objects[0]["metadata"]["namespace"] == "monitoring"


@pytest.mark.parametrize(
    ("api_version", "kind"),
    [
        ("v1", "Namespace"),
        ("v1", "PersistentVolume"),
        ("rbac.authorization.k8s.io/v1", "ClusterRole"),
        ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"),
        ("apiextensions.k8s.io/v1", "CustomResourceDefinition"),
        ("storage.k8s.io/v1", "StorageClass"),
        ("scheduling.k8s.io/v1", "PriorityClass"),
        ("networking.k8s.io/v1", "IngressClass"),
        ("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration"),
        ("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicyBinding"),
    ],
)
def test_cluster_scoped_kinds_get_no_namespace(api_version: str, kind: str) -> None:
    """Objects of cluster-scoped kinds are left exactly as rendered."""
    template = f"apiVersion: {api_version}\nkind: {kind}\nmetadata:\n  name: thing\n"
    objects = render_one(template)
    assert kind in CLUSTER_SCOPED_KINDS
    assert objects[0] == {"apiVersion": api_version, "kind": kind, "metadata": {"name": "thing"}}


def test_trailing_newline_is_kept() -> None:
    """The template's final newline survives, so a closing block scalar keeps its newline."""
    objects = render_one(configmap_with_data("  script: |\n    echo hello\n"))
    assert objects[0]["data"]["script"] == "echo hello\n"


def test_objects_follow_template_name_then_document_order() -> None:
    """Templates render in name order; documents keep their order within a template."""

    def configmap(name: str) -> str:
        return CONFIGMAP.replace("settings", name)

    rendered = render_templates(
        {
            "b.yaml": configmap("b1") + "---\n" + configmap("b2"),
            "a.yaml.j2": configmap("a1") + "---\n" + configmap("a2") + "---\n" + configmap("a3"),
            "c.yml": configmap("c1"),
        }
    )
    assert [obj["metadata"]["name"] for obj in rendered.objects] == [
        "a1",
        "a2",
        "a3",
        "b1",
        "b2",
        "c1",
    ]


def test_empty_documents_are_skipped() -> None:
    """Empty documents and comment-only documents produce no objects."""
    template = "---\n---\n# nothing here\n---\n" + CONFIGMAP + "---\n\n---\n# trailing comment\n"
    assert [obj["metadata"]["name"] for obj in render_one(template)] == ["settings"]


def test_template_may_render_to_nothing() -> None:
    """A template whose content is switched off adds no objects."""
    rendered = render_templates(
        {
            "a.yaml.j2": CONFIGMAP,
            "b.yaml.j2": "{% if values.enabled %}\n" + CONFIGMAP + "{% endif %}\n",
        },
        values_base="enabled: false\n",
    )
    assert len(rendered.objects) == 1


def test_a_sibling_template_can_be_imported() -> None:
    """Macros come from a sibling template, which itself renders to no objects."""
    rendered = render_templates(
        {
            "_macros.yaml.j2": "{% macro label() %}team-{{ project }}{% endmacro %}\n",
            "cm.yaml.j2": "{% from '_macros.yaml.j2' import label with context %}\n"
            + configmap_with_data("  owner: {{ label() }}\n"),
        }
    )
    assert [obj["data"]["owner"] for obj in rendered.objects] == ["team-web"]


def test_dates_stay_strings() -> None:
    """An unquoted date stays a string, since Kubernetes objects are JSON."""
    objects = render_one(configmap_with_data("  since: 2024-01-31\n"))
    assert objects[0]["data"]["since"] == "2024-01-31"


def test_rendering_is_deterministic() -> None:
    """The same sources and arguments give equal objects and digests."""
    first = render_one(configmap_with_data("  a: '{{ range(5) | list }}'\n"))
    second = render_one(configmap_with_data("  a: '{{ range(5) | list }}'\n"))
    assert first == second


@pytest.mark.parametrize(
    "template",
    ["{{ [1, 2, 3] | random }}", "{{ lipsum() }}"],
    ids=["random-filter", "lipsum"],
)
def test_nondeterministic_helpers_are_removed(template: str) -> None:
    """Helpers that would make the digest change between renders are not available."""
    render_failure(template)


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


# --------------------------------------------------------------------------------------------
# The sandbox


def test_sandbox_refuses_python_internals() -> None:
    """Reaching for Python internals fails with an error saying the sandbox refused it."""
    error = render_failure(configmap_with_data("  a: \"{{ ''.__class__.__mro__ }}\"\n"))
    assert error.location == "t.yaml.j2:6"
    assert error.message == (
        "t.yaml.j2:6: the template sandbox refused this:"
        " access to attribute '__class__' of 'str' object is unsafe."
    )


@pytest.mark.parametrize(
    "expression",
    [
        pytest.param("'a' * 100000000", id="string-repetition"),
        pytest.param("100000000 * 'ab'", id="reversed-repetition"),
        pytest.param("[0] * 2000000", id="list-repetition"),
        pytest.param("2 ** 100000", id="power"),
        pytest.param("'x'.ljust(100000000)", id="ljust"),
        pytest.param("'x'.center(width=100000000)", id="center-method"),
        pytest.param("'x' | center(100000000)", id="center-filter"),
        pytest.param("'a\\nb' | indent(100000000)", id="indent-filter"),
        pytest.param("'%0100000000d' % 1", id="percent-width"),
        pytest.param("'%.100000000f' | format(1)", id="format-filter"),
        pytest.param("'{:>100000000}'.format(1)", id="str-format"),
        pytest.param("('a' * 1000).replace('a', 'b' * 2000)", id="replace-method"),
        pytest.param("range(2000) | map('string') | join('x' * 1000)", id="join-filter"),
        pytest.param("('x' * 1000).join(range(2000) | map('string'))", id="join-method"),
        pytest.param("[1] | batch(100000000, 0) | list", id="batch-filter"),
    ],
)
def test_sandbox_refuses_huge_values(expression: str) -> None:
    """Operations that would build enormous strings, lists or numbers are refused."""
    error = render_failure(f"a: 1\nb: '{{{{ {expression} }}}}'\n")
    assert error.location == "t.yaml.j2:2"
    assert "the template sandbox refused this" in error.message
    assert "the limit is" in error.message


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("'-' * 3", "---"),
        ("(2 * 3) | string", "6"),
        ("(2 ** 10) | string", "1024"),
        ("'%05d' % 42", "00042"),
        ("'ab'.ljust(4, '.')", "ab.."),
        ("'{:>4}'.format(7)", "   7"),
        ("'ab' + 'cd'", "abcd"),
        ("'x' | center(3)", " x "),
        ("['a', 'b'] | join(',')", "a,b"),
        ("'a-b'.replace('-', '_')", "a_b"),
    ],
)
def test_sandbox_allows_ordinary_operations(expression: str, expected: str) -> None:
    """The size caps leave everyday expressions alone."""
    objects = render_one(configmap_with_data(f"  a: {{{{ ({expression}) | tojson }}}}\n"))
    assert objects[0]["data"]["a"] == expected


def test_rendered_output_is_capped() -> None:
    """A template whose output grows past the limit fails with a clear message."""
    chunk = 1000
    loops = MAX_RENDERED_CHARS // chunk + 10
    error = render_failure(
        f"{{% for i in range({loops}) %}}{{{{ 'x' * {chunk} }}}}{{% endfor %}}\n"
    )
    assert error.location == "t.yaml.j2"
    assert error.message == (
        f"t.yaml.j2: rendered output is larger than the limit of {MAX_RENDERED_CHARS}"
        " characters; is a loop running away?"
    )


# --------------------------------------------------------------------------------------------
# Digest and to_yaml


def test_digest_is_sha256_of_canonical_json() -> None:
    """The digest is sha256 over the sorted, compact JSON of the objects."""
    rendered = render_one_rendered(CONFIGMAP)
    canonical = json.dumps(list(rendered.objects), sort_keys=True, separators=(",", ":"))
    assert rendered.digest == hashlib.sha256(canonical.encode()).hexdigest()


def render_one_rendered(template: str, **kwargs: Any) -> Rendered:
    return render_templates({"t.yaml.j2": template}, **kwargs)


def test_digest_is_stable_under_key_order() -> None:
    """Reordering keys in a manifest does not change the digest."""
    first = render_one_rendered(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: s\n  labels: {a: '1', b: '2'}\n"
        "data:\n  x: '1'\n  y: '2'\n"
    )
    second = render_one_rendered(
        "data:\n  y: '2'\n  x: '1'\nmetadata:\n  labels: {b: '2', a: '1'}\n  name: s\n"
        "kind: ConfigMap\napiVersion: v1\n"
    )
    assert first.digest == second.digest


def test_digest_changes_with_a_value() -> None:
    """A changed value (here from values_override) changes the digest."""
    template = configmap_with_data("  replicas: '{{ values.replicas }}'\n")
    first = render_one_rendered(template, values_base="replicas: 2\n")
    second = render_one_rendered(
        template, values_base="replicas: 2\n", values_override={"replicas": 3}
    )
    assert first.digest != second.digest


def test_digest_changes_with_the_image() -> None:
    """A new image_ref changes the digest."""
    template = configmap_with_data("  image: {{ image_ref }}\n")
    first = render_one_rendered(template, image_ref="reg/web:1")
    second = render_one_rendered(template, image_ref="reg/web:2")
    assert first.digest != second.digest


def test_to_yaml_round_trips() -> None:
    """to_yaml writes one document per object that reads back to the same objects."""
    objects = render_templates(
        {
            "a.yaml": configmap_with_data(
                "  flag: 'yes'\n  date: '2024-01-31'\n  version: '1.10'\n  text: \"a\\nb\"\n"
            ),
            "b.yaml": "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ns\n",
        }
    ).objects
    text = to_yaml(objects)
    assert text.startswith("---\n")
    assert text.count("---\n") == 2
    assert list(yaml.safe_load_all(text)) == list(objects)


def test_to_yaml_keeps_key_order() -> None:
    """to_yaml keeps keys in the order of the manifest (apiVersion first, as written)."""
    text = to_yaml([{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}])
    assert text == "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n"


def test_to_yaml_of_nothing_is_empty() -> None:
    """No objects give an empty string."""
    assert to_yaml([]) == ""


# --------------------------------------------------------------------------------------------
# validate_name


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        pytest.param("", "it is empty", id="empty"),
        pytest.param(".", "it names a directory, not a project", id="dot"),
        pytest.param("..", "it names a directory, not a project", id="dot-dot"),
        pytest.param("/", "it is an absolute path", id="slash"),
        pytest.param("/etc", "it is an absolute path", id="absolute"),
        pytest.param("a/b", "it contains a path separator", id="nested"),
        pytest.param("../web", "it contains a path separator", id="parent-escape"),
        pytest.param("a\\b", "it contains a path separator", id="backslash"),
        pytest.param("\\\\server", "it is an absolute path", id="unc"),
        pytest.param("we\x00b", "it contains a NUL character", id="nul"),
        pytest.param("x" * 300, "it is longer than 253 characters", id="300-chars"),
        pytest.param("web prod", "only letters, digits, '.', '_' and '-' are allowed", id="space"),
        pytest.param("wéb", "only letters, digits, '.', '_' and '-' are allowed", id="non-ascii"),
        pytest.param("web\n", "only letters, digits, '.', '_' and '-' are allowed", id="newline"),
    ],
)
def test_validate_name_refuses(value: str, reason: str) -> None:
    """Names that are malformed or would leave the ops repo are input errors."""
    with pytest.raises(InputError) as caught:
        validate_name(field="project", value=value)
    assert caught.value.message.startswith("invalid project name ")
    assert caught.value.message.endswith(f": {reason}")


@pytest.mark.parametrize("value", ["web", "web-api", "a.b_c", "Prod2", "x" * 253, "..."])
def test_validate_name_accepts(value: str) -> None:
    """Ordinary names pass."""
    validate_name(field="environment", value=value)


def test_validate_name_message_shows_a_truncated_repr() -> None:
    """A long hostile value is shown as a truncated repr, and the field is named."""
    with pytest.raises(InputError) as caught:
        validate_name(field="environment", value="y" * 300)
    message = caught.value.message
    assert message.startswith("invalid environment name '" + "y" * 64 + "'... (300 characters)")
    assert len(message) < 160


# --------------------------------------------------------------------------------------------
# load_project


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_load_project_reads_templates_and_values(tmp_path: Path) -> None:
    """Templates are the matching files, sorted; values files are read separately."""
    project = tmp_path / "apps" / "web"
    for name in ("service.yaml", "deployment.yaml.j2", "a.yml", "z.yml.j2"):
        write(project / name, f"# {name}\n")
    for name in ("README.md", "notes.txt", ".hidden.yaml", "deploy.json", "x.j2"):
        write(project / name, "not a template\n")
    write(project / "nested" / "inner.yaml", "# not read: subdirectories are not templates\n")
    write(project / "values.yaml", "replicas: 1\n")
    write(project / "values-prod.yaml", "replicas: 3\n")
    write(project / "values-staging.yaml", "replicas: 2\n")
    write(project / "values.yml", "not a template either\n")

    sources = load_project(checkout=tmp_path, path="apps", project="web", environment="prod")

    assert sources == ProjectSources(
        project_dir="apps/web",
        templates=(
            ("a.yml", "# a.yml\n"),
            ("deployment.yaml.j2", "# deployment.yaml.j2\n"),
            ("service.yaml", "# service.yaml\n"),
            ("z.yml.j2", "# z.yml.j2\n"),
        ),
        values_base="replicas: 1\n",
        values_env="replicas: 3\n",
        values_env_name="values-prod.yaml",
    )


def test_load_project_without_values_files(tmp_path: Path) -> None:
    """Absent values files are None, and an empty path means projects at the root."""
    write(tmp_path / "web" / "cm.yaml", CONFIGMAP)
    sources = load_project(checkout=tmp_path, path="", project="web", environment="staging")
    assert sources.project_dir == "web"
    assert sources.values_base is None
    assert sources.values_env is None
    assert sources.values_env_name == "values-staging.yaml"


def test_load_then_render(tmp_path: Path) -> None:
    """What the loader reads renders with the environment's values."""
    write(tmp_path / "web" / "cm.yaml.j2", configmap_with_data("  level: {{ values.level }}\n"))
    write(tmp_path / "web" / "values.yaml", "level: info\n")
    write(tmp_path / "web" / "values-staging.yaml", "level: debug\n")
    sources = load_project(checkout=tmp_path, path="", project="web", environment="staging")
    rendered = render(
        sources,
        project="web",
        environment="staging",
        namespace="web-staging",
        image_ref="i",
        values_override={},
    )
    assert rendered.objects[0]["data"] == {"level": "debug"}


def test_missing_project_directory_is_named(tmp_path: Path) -> None:
    """A missing project directory is a RenderError naming it."""
    (tmp_path / "apps").mkdir()
    with pytest.raises(RenderError, match=r"project directory apps/web does not exist"):
        load_project(checkout=tmp_path, path="apps", project="web", environment="prod")


def test_missing_checkout_is_named(tmp_path: Path) -> None:
    """A checkout that does not exist is a RenderError naming it."""
    missing = tmp_path / "nowhere"
    with pytest.raises(RenderError, match=f"ops repo checkout {missing} does not exist"):
        load_project(checkout=missing, path="", project="web", environment="prod")


def test_project_without_templates_is_refused(tmp_path: Path) -> None:
    """A project directory holding only values files is an error, not an empty deployment."""
    write(tmp_path / "web" / "values.yaml", "a: 1\n")
    with pytest.raises(RenderError, match="project directory web holds no templates"):
        load_project(checkout=tmp_path, path="", project="web", environment="prod")


@pytest.mark.parametrize(
    ("path", "project", "environment"),
    [
        ("", "..", "prod"),
        ("", "web", "../../etc"),
        ("", "web/../..", "prod"),
        ("", "web", "prod\x00"),
    ],
)
def test_load_project_validates_names(
    tmp_path: Path, path: str, project: str, environment: str
) -> None:
    """Bad project or environment names are refused before anything is read."""
    with pytest.raises(InputError):
        load_project(checkout=tmp_path, path=path, project=project, environment=environment)


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/etc", "must be relative to the repo root"),
        ("../other", "must not contain '..'"),
        ("apps/../..", "must not contain '..'"),
        ("apps\x00", "contains a NUL character"),
    ],
)
def test_load_project_refuses_escaping_path(tmp_path: Path, path: str, message: str) -> None:
    """An ops repo path that is absolute or climbs out is an input error."""
    with pytest.raises(InputError, match=message):
        load_project(checkout=tmp_path, path=path, project="web", environment="prod")


def test_symlinked_template_outside_checkout_is_refused(tmp_path: Path) -> None:
    """A template symlinked to a file outside the checkout is not read."""
    checkout = tmp_path / "checkout"
    secret = write(tmp_path / "outside" / "secret.yaml", "password: hunter2\n")
    write(checkout / "web" / "cm.yaml", CONFIGMAP)
    (checkout / "web" / "leak.yaml").symlink_to(secret)
    with pytest.raises(RenderError) as caught:
        load_project(checkout=checkout, path="", project="web", environment="prod")
    assert caught.value.location == "leak.yaml"
    assert "resolves outside the ops repo checkout" in caught.value.message
    assert "hunter2" not in caught.value.message


def test_symlinked_values_file_outside_checkout_is_refused(tmp_path: Path) -> None:
    """A values file symlinked outside the checkout is not read."""
    checkout = tmp_path / "checkout"
    outside = write(tmp_path / "outside" / "values.yaml", "a: 1\n")
    write(checkout / "web" / "cm.yaml", CONFIGMAP)
    (checkout / "web" / "values-prod.yaml").symlink_to(outside)
    with pytest.raises(RenderError) as caught:
        load_project(checkout=checkout, path="", project="web", environment="prod")
    assert caught.value.location == "values-prod.yaml"


def test_symlinked_project_directory_outside_checkout_is_refused(tmp_path: Path) -> None:
    """A project directory that is a symlink out of the checkout is not read."""
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    write(tmp_path / "outside" / "cm.yaml", CONFIGMAP)
    (checkout / "web").symlink_to(tmp_path / "outside")
    with pytest.raises(RenderError, match="project directory web resolves outside"):
        load_project(checkout=checkout, path="", project="web", environment="prod")


def test_symlink_inside_checkout_is_followed(tmp_path: Path) -> None:
    """A symlink to another file of the same checkout is fine."""
    write(tmp_path / "shared" / "cm.yaml", CONFIGMAP)
    (tmp_path / "web").mkdir()
    (tmp_path / "web" / "cm.yaml").symlink_to(Path("..") / "shared" / "cm.yaml")
    sources = load_project(checkout=tmp_path, path="", project="web", environment="prod")
    assert sources.templates == (("cm.yaml", CONFIGMAP),)


def test_dangling_template_symlink_is_reported(tmp_path: Path) -> None:
    """A template symlink that leads nowhere is an error, not a silently missing template."""
    write(tmp_path / "web" / "cm.yaml", CONFIGMAP)
    (tmp_path / "web" / "gone.yaml").symlink_to(tmp_path / "web" / "nothing.yaml")
    with pytest.raises(RenderError) as caught:
        load_project(checkout=tmp_path, path="", project="web", environment="prod")
    assert caught.value.location == "gone.yaml"
    assert "is not a regular file" in caught.value.message


def test_oversized_file_is_refused(tmp_path: Path) -> None:
    """A file over the size limit is refused with a message naming it and the limit."""
    write(tmp_path / "web" / "big.yaml", "#" * (MAX_SOURCE_BYTES + 1))
    with pytest.raises(RenderError) as caught:
        load_project(checkout=tmp_path, path="", project="web", environment="prod")
    assert caught.value.location == "big.yaml"
    assert f"larger than the limit of {MAX_SOURCE_BYTES} bytes" in caught.value.message


def test_file_at_the_size_limit_is_read(tmp_path: Path) -> None:
    """A file of exactly the limit is accepted."""
    write(tmp_path / "web" / "big.yaml", "#" * MAX_SOURCE_BYTES)
    sources = load_project(checkout=tmp_path, path="", project="web", environment="prod")
    assert len(sources.templates[0][1]) == MAX_SOURCE_BYTES


def test_non_utf8_file_is_refused(tmp_path: Path) -> None:
    """A template that is not UTF-8 is refused, naming the file."""
    path = tmp_path / "web" / "cm.yaml"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"name: caf\xe9\n")
    with pytest.raises(RenderError) as caught:
        load_project(checkout=tmp_path, path="", project="web", environment="prod")
    assert caught.value.location == "cm.yaml"
    assert "is not valid UTF-8 (byte 9)" in caught.value.message


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_fifo_is_not_read(tmp_path: Path) -> None:
    """A FIFO named like a template is refused rather than blocking the reader."""
    write(tmp_path / "web" / "cm.yaml", CONFIGMAP)
    os.mkfifo(tmp_path / "web" / "pipe.yaml")
    with pytest.raises(RenderError, match="is not a regular file"):
        load_project(checkout=tmp_path, path="", project="web", environment="prod")


def test_undefined_name_inside_tojson_is_reported_as_undefined() -> None:
    """'{{ nope | tojson }}' says the name is undefined, not that JSON failed."""
    sources = ProjectSources(
        project_dir="app",
        templates=(
            (
                "cm.yaml.j2",
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n"
                "data:\n  a: {{ values.nope | tojson }}\n",
            ),
        ),
        values_base="replicas: 1\n",
        values_env=None,
        values_env_name="values-prod.yaml",
    )
    with pytest.raises(RenderError) as caught:
        render(
            sources,
            project="app",
            environment="prod",
            namespace="app-prod",
            image_ref="r/i:1",
            values_override={},
        )
    assert str(caught.value) == (
        "cm.yaml.j2:6: undefined name 'nope': no such key in the mapping (it has keys: replicas)"
    )
