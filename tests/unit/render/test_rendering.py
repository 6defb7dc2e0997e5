"""Tests for rendering: namespaces, object order, documents, the digest and to_yaml."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
import yaml

from reconciler.render import CLUSTER_SCOPED_KINDS, Rendered, to_yaml
from tests.unit.render.helpers import (
    CONFIGMAP,
    configmap_with_data,
    render_failure,
    render_one,
    render_templates,
)

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
