"""The example ops repo renders, for every project and environment, into valid Kubernetes."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest

from reconciler.render import Rendered, load_project, render

EXAMPLE_REPO = Path(__file__).resolve().parents[2] / "ops_repos_example"
PROJECTS = ("web", "worker")
ENVIRONMENTS = ("staging", "prod")
KUBERNETES_VERSION = "1.32.0"


def render_example(
    project: str, environment: str, *, values_override: Mapping[str, Any] | None = None
) -> Rendered:
    sources = load_project(checkout=EXAMPLE_REPO, path="", project=project, environment=environment)
    return render(
        sources,
        project=project,
        environment=environment,
        namespace=f"{project}-{environment}",
        image_ref=f"registry.example.com/shop/{project}:sha-1234abc",
        values_override={} if values_override is None else values_override,
    )


def find(rendered: Rendered, kind: str) -> dict[str, Any]:
    matches = [obj for obj in rendered.objects if obj["kind"] == kind]
    assert len(matches) == 1, f"expected one {kind}, found {len(matches)}"
    return matches[0]


@pytest.mark.parametrize("environment", ENVIRONMENTS)
@pytest.mark.parametrize("project", PROJECTS)
def test_every_object_is_valid_kubernetes(project: str, environment: str) -> None:
    """Every rendered object passes strict schema validation for Kubernetes 1.32."""
    rendered = render_example(project, environment)
    assert rendered.objects
    for obj in rendered.objects:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


def test_validation_would_catch_a_bad_object() -> None:
    """The strict validator used above rejects an unknown field, so its passing means something."""
    deployment = find(render_example("web", "prod"), "Deployment")
    broken = {**deployment, "spec": {**deployment["spec"], "replica": 3}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize(
    ("project", "kinds"),
    [
        ("web", ["ConfigMap", "Deployment", "Ingress", "Service"]),
        ("worker", ["Deployment", "HorizontalPodAutoscaler"]),
    ],
)
def test_projects_render_the_expected_kinds(project: str, kinds: list[str]) -> None:
    """Each project renders its objects in template-name order; the macros file adds none."""
    assert [obj["kind"] for obj in render_example(project, "prod").objects] == kinds


@pytest.mark.parametrize("environment", ENVIRONMENTS)
@pytest.mark.parametrize("project", PROJECTS)
def test_objects_carry_namespace_and_standard_labels(project: str, environment: str) -> None:
    """Every object lands in the deployment namespace with the app.kubernetes.io labels."""
    for obj in render_example(project, environment).objects:
        metadata = obj["metadata"]
        assert metadata["namespace"] == f"{project}-{environment}"
        assert metadata["labels"]["app.kubernetes.io/name"] == project
        assert metadata["labels"]["app.kubernetes.io/instance"] == f"{project}-{environment}"
        assert metadata["labels"]["app.kubernetes.io/managed-by"] == "reconciler"


@pytest.mark.parametrize("project", PROJECTS)
def test_deployment_runs_the_given_image_and_selects_its_pods(project: str) -> None:
    """The Deployment runs image_ref and its selector matches its pod labels."""
    deployment = find(render_example(project, "prod"), "Deployment")
    pod = deployment["spec"]["template"]
    assert pod["spec"]["containers"][0]["image"] == (
        f"registry.example.com/shop/{project}:sha-1234abc"
    )
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector.items() <= pod["metadata"]["labels"].items()


@pytest.mark.parametrize(("environment", "replicas"), [("staging", 1), ("prod", 4)])
def test_web_replicas_differ_per_environment(environment: str, replicas: int) -> None:
    """web's replica count comes from the environment's values file."""
    deployment = find(render_example("web", environment), "Deployment")
    assert deployment["spec"]["replicas"] == replicas


@pytest.mark.parametrize(
    ("environment", "host", "log_level"),
    [("staging", "web.staging.example.com", "debug"), ("prod", "shop.example.com", "info")],
)
def test_web_host_and_config_per_environment(environment: str, host: str, log_level: str) -> None:
    """The Ingress host and the ConfigMap settings follow the environment."""
    rendered = render_example("web", environment)
    ingress = find(rendered, "Ingress")
    assert [rule["host"] for rule in ingress["spec"]["rules"]] == [host]
    assert ingress["spec"]["tls"][0]["hosts"] == [host]
    assert find(rendered, "ConfigMap")["data"]["LOG_LEVEL"] == log_level


def test_web_wiring_between_objects() -> None:
    """Service selects the pods, the Ingress routes to the Service, pods read the ConfigMap."""
    rendered = render_example("web", "prod")
    deployment = find(rendered, "Deployment")
    service = find(rendered, "Service")
    ingress = find(rendered, "Ingress")
    config_map = find(rendered, "ConfigMap")
    pod = deployment["spec"]["template"]
    container = pod["spec"]["containers"][0]

    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend["name"] == service["metadata"]["name"]
    assert container["envFrom"][0]["configMapRef"]["name"] == config_map["metadata"]["name"]
    assert container["readinessProbe"]["httpGet"]["port"] == container["ports"][0]["name"]
    assert all(isinstance(value, str) for value in config_map["data"].values())


def test_web_prod_resources_override_base() -> None:
    """prod's resources replace the base requests and keep the shape Kubernetes expects."""
    container = find(render_example("web", "prod"), "Deployment")["spec"]["template"]["spec"][
        "containers"
    ][0]
    assert container["resources"] == {
        "requests": {"cpu": "500m", "memory": "512Mi"},
        "limits": {"memory": "1Gi"},
    }


@pytest.mark.parametrize(
    ("environment", "min_replicas", "max_replicas", "concurrency"),
    [("staging", 1, 2, "2"), ("prod", 3, 20, "8")],
)
def test_worker_autoscaling_per_environment(
    environment: str, min_replicas: int, max_replicas: int, concurrency: str
) -> None:
    """The worker's HPA bounds and concurrency come from the environment's values."""
    rendered = render_example("worker", environment)
    hpa = find(rendered, "HorizontalPodAutoscaler")
    deployment = find(rendered, "Deployment")
    assert hpa["spec"]["minReplicas"] == min_replicas
    assert hpa["spec"]["maxReplicas"] == max_replicas
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": deployment["metadata"]["name"],
    }
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--concurrency") + 1] == concurrency


def test_worker_deployment_leaves_replicas_to_the_autoscaler() -> None:
    """The worker Deployment sets no replicas, so applies do not fight the HPA."""
    deployment = find(render_example("worker", "prod"), "Deployment")
    assert "replicas" not in deployment["spec"]


def test_values_override_wins_over_the_files() -> None:
    """A deployments.values_override changes the rendered objects and the digest."""
    plain = render_example("web", "prod")
    overridden = render_example("web", "prod", values_override={"replicas": 7})
    assert find(overridden, "Deployment")["spec"]["replicas"] == 7
    assert overridden.digest != plain.digest


def test_environments_render_different_digests() -> None:
    """staging and prod differ, and rendering twice gives the same digest."""
    assert render_example("web", "staging").digest != render_example("web", "prod").digest
    assert render_example("web", "prod").digest == render_example("web", "prod").digest
