"""deploy/: valid Kubernetes, and RBAC that covers exactly what the daemon does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from reconciler import render
from reconciler.web.server import CHECK_TIMEOUT_S

ROOT = Path(__file__).resolve().parents[2]
# Plural resource names of the kinds the example ops repo renders.
PLURALS = {
    "ConfigMap": ("", "configmaps"),
    "Service": ("", "services"),
    "Deployment": ("apps", "deployments"),
    "StatefulSet": ("apps", "statefulsets"),
    "Ingress": ("networking.k8s.io", "ingresses"),
    "HorizontalPodAutoscaler": ("autoscaling", "horizontalpodautoscalers"),
    "ServiceAccount": ("", "serviceaccounts"),
    "Namespace": ("", "namespaces"),
}


def _documents(name: str) -> list[dict[str, Any]]:
    text = (ROOT / "deploy" / name).read_text()
    return [d for d in yaml.safe_load_all(text) if d]


@pytest.mark.parametrize("name", ["rbac.yaml", "reconciler.yaml", "rbac-per-team.yaml"])
def test_deploy_manifests_are_valid(name: str) -> None:
    """Every object under deploy/ validates against the Kubernetes 1.32 schema."""
    for document in _documents(name):
        kubernetes_validate.validate(document, "1.32.0", strict=True)


def _granted() -> set[tuple[str, str, str]]:
    [role] = [d for d in _documents("rbac.yaml") if d["kind"] == "ClusterRole"]
    return {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def test_rbac_covers_what_the_example_repo_renders() -> None:
    """get + patch for every kind ops_repos_example renders, plus the daemon's own needs."""
    granted = _granted()
    needed = {
        ("", "namespaces", "get"),
        ("", "namespaces", "patch"),
        ("", "pods", "list"),
        ("apps", "deployments/scale", "patch"),
        ("apps", "statefulsets/scale", "patch"),
    }
    for project in ("web", "worker"):
        for environment in ("staging", "prod"):
            sources = render.load_project(
                checkout=ROOT / "ops_repos_example",
                path="",
                project=project,
                environment=environment,
            )
            rendered = render.render(
                sources,
                project=project,
                environment=environment,
                namespace=f"{project}-{environment}",
                image_ref="r/i:1",
                values_override={},
            )
            for obj in rendered.objects:
                group, plural = PLURALS[obj["kind"]]
                needed |= {(group, plural, "get"), (group, plural, "patch")}
    assert needed <= granted, sorted(needed - granted)


def test_rbac_grants_no_destructive_or_broad_verbs() -> None:
    """The daemon's role never deletes, watches, or uses wildcards."""
    for group, resource, verb in _granted():
        assert verb in {"get", "list", "patch"}, (group, resource, verb)
        assert "*" not in (group, resource, verb)
    assert ("", "secrets", "get") not in _granted()


def _daemon_container() -> dict[str, Any]:
    [deployment] = [d for d in _documents("reconciler.yaml") if d["kind"] == "Deployment"]
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    return dict(container)


def test_the_daemon_is_probed_on_the_port_it_serves() -> None:
    """Liveness and startup probe /livez, readiness /readyz, on the port the env var binds."""
    container = _daemon_container()
    env = {e["name"]: e.get("value") for e in container["env"]}
    port = int(env["RECONCILER_HTTP_ADDRESS"].rpartition(":")[2])
    [declared] = container["ports"]
    assert declared["containerPort"] == port
    probes = {
        name: container[name]["httpGet"]
        for name in ("startupProbe", "livenessProbe", "readinessProbe")
    }
    assert {name: get["path"] for name, get in probes.items()} == {
        "startupProbe": "/livez",
        "livenessProbe": "/livez",
        "readinessProbe": "/readyz",
    }
    assert all(get["port"] == declared["name"] for get in probes.values())


def test_probe_timeouts_leave_room_for_the_checks() -> None:
    """A probe waits longer than the server's own check timeout, so a slow check answers 503
    instead of timing out the probe."""
    container = _daemon_container()
    assert container["readinessProbe"]["timeoutSeconds"] > CHECK_TIMEOUT_S
