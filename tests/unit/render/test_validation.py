"""Rendered objects against the Kubernetes schema: what is refused, how it is named, what passes."""

from __future__ import annotations

import copy
import hashlib
import json
import pickle
from pathlib import Path
from typing import Any

import pytest

from reconciler.errors import ConfigError, RenderError
from reconciler.render import load_project, render
from reconciler.render.validation import (
    SchemaError,
    check_version,
    field_path,
    supported_versions,
    validate_objects,
)

EXAMPLE_REPO = Path(__file__).resolve().parents[3] / "ops_repos_example"
VERSION = "1.32"


def deployment(**spec: Any) -> dict[str, Any]:
    labels = {"app": "web"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "web-prod"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "app", "image": "reg/web:1"}]},
            },
        }
        | spec,
    }


def with_container_field(name: str, value: Any) -> dict[str, Any]:
    obj = deployment()
    obj["spec"]["template"]["spec"]["containers"][0][name] = value
    return obj


WIDGET = {
    "apiVersion": "example.com/v1",
    "kind": "Widget",
    "metadata": {"name": "w", "namespace": "web-prod"},
    "spec": {"replicas": "three", "anything": {"goes": True}},
}
LOOKALIKE = {
    "apiVersion": "apps.example.com/v1",
    "kind": "Deployment",
    "metadata": {"name": "web", "namespace": "web-prod"},
    "spec": {"replicas": "three"},
}
CONFIGMAP = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {}}

REFUSED = [
    pytest.param(
        deployment(replicas="three"),
        "Deployment web-prod/web: spec.replicas: 'three' is not of type 'integer'",
        id="string-for-integer",
    ),
    pytest.param(
        deployment(replica=3),
        "Deployment web-prod/web: spec.replica: unknown field",
        id="unknown-field",
    ),
    pytest.param(
        with_container_field("imagePullPolicy", 3),
        "Deployment web-prod/web: spec.template.spec.containers[0].imagePullPolicy:"
        " 3 is not of type 'string'",
        id="nested-type",
    ),
    pytest.param(
        with_container_field("bogus", True),
        "Deployment web-prod/web: spec.template.spec.containers[0].bogus: unknown field",
        id="nested-unknown-field",
    ),
    pytest.param(
        CONFIGMAP | {"datas": {}},
        "ConfigMap c: datas: unknown field",
        id="unknown-top-level-field",
    ),
]


@pytest.mark.parametrize(("obj", "expected"), REFUSED)
def test_schema_violations_are_refused_naming_file_document_and_field(
    obj: dict[str, Any], expected: str
) -> None:
    """A violation is refused naming its template, its document and the field, with the message."""
    objects = (CONFIGMAP, obj)
    sources = (("configmap.yaml", 1), ("deployment.yaml.j2", 2))
    with pytest.raises(SchemaError) as caught:
        validate_objects(objects, sources=sources, kubernetes_version=VERSION)
    message = str(caught.value)
    assert "the Kubernetes 1.32 schema" in message
    assert f"deployment.yaml.j2, document 2: {expected}" in message
    assert "configmap.yaml" not in message
    assert isinstance(caught.value, RenderError) and caught.value.permanent


@pytest.mark.parametrize(
    "obj",
    [
        pytest.param(WIDGET, id="custom-resource"),
        pytest.param(LOOKALIKE, id="custom-group-with-a-builtin-kind-name"),
        pytest.param(deployment(), id="valid-deployment"),
        pytest.param(CONFIGMAP, id="valid-configmap"),
    ],
)
def test_valid_objects_and_unknown_kinds_pass(obj: dict[str, Any]) -> None:
    """Valid objects pass; kinds the bundled schema does not know (custom resources) are skipped."""
    validate_objects((obj,), sources=(("x.yaml", 1),), kubernetes_version=VERSION)


def test_every_invalid_object_is_named_once() -> None:
    """Several invalid objects are each named; without sources, by their position."""
    objects = (deployment(replicas="three"), CONFIGMAP, CONFIGMAP | {"datas": {}})
    with pytest.raises(SchemaError) as caught:
        validate_objects(objects, kubernetes_version=VERSION)
    message = str(caught.value)
    assert "object 1: Deployment web-prod/web: spec.replicas" in message
    assert "object 3: ConfigMap c: datas: unknown field" in message
    assert "object 2" not in message


def test_the_objects_are_not_changed() -> None:
    """Checking leaves the objects exactly as rendered."""
    obj = deployment(replicas="three")
    before = copy.deepcopy(obj)
    with pytest.raises(SchemaError):
        validate_objects((obj,), kubernetes_version=VERSION)
    assert obj == before


@pytest.mark.parametrize("environment", ["staging", "prod"])
@pytest.mark.parametrize("project", ["web", "worker"])
def test_the_example_ops_repo_passes(project: str, environment: str) -> None:
    """Every project and environment of ops_repos_example passes, with a source per object."""
    sources = load_project(checkout=EXAMPLE_REPO, path="", project=project, environment=environment)
    rendered = render(
        sources,
        project=project,
        environment=environment,
        namespace=f"{project}-{environment}",
        image_ref=f"registry.example.com/shop/{project}:sha-1234abc",
        values_override={},
    )
    assert len(rendered.sources) == len(rendered.objects) > 0
    assert all(name.endswith(".j2") and index >= 1 for name, index in rendered.sources)
    validate_objects(rendered.objects, sources=rendered.sources, kubernetes_version=VERSION)


def test_sources_stay_out_of_the_digest_and_survive_pickling() -> None:
    """Provenance does not change the digest, and Rendered still crosses the worker pipe."""
    sources = load_project(checkout=EXAMPLE_REPO, path="", project="web", environment="prod")
    rendered = render(
        sources,
        project="web",
        environment="prod",
        namespace="web-prod",
        image_ref="reg/web:1",
        values_override={},
    )
    copied = pickle.loads(pickle.dumps(rendered))
    assert copied == rendered
    assert copied.sources == rendered.sources
    canonical = json.dumps(list(rendered.objects), sort_keys=True, separators=(",", ":"))
    assert rendered.digest == hashlib.sha256(canonical.encode()).hexdigest()


def test_versions_outside_the_bundle_are_refused() -> None:
    """A Kubernetes version kubernetes-validate has no schema for is a configuration error."""
    assert VERSION in supported_versions()
    check_version(VERSION)
    with pytest.raises(ConfigError, match=r"1\.9 has no bundled schema"):
        check_version("1.9")


def test_field_paths_read_like_kubectl_explain() -> None:
    """Keys join with dots, list indexes in brackets."""
    assert field_path(["spec", "template", "containers", 0, "image"]) == (
        "spec.template.containers[0].image"
    )
    assert field_path([]) == ""
