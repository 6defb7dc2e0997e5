"""The order objects are applied in, and what 'stop' scales."""

from __future__ import annotations

from typing import Any

from reconciler.cluster.apply import apply_phases, scalable_workloads


def _obj(kind: str, name: str, api_version: str = "v1") -> dict[str, Any]:
    return {"apiVersion": api_version, "kind": kind, "metadata": {"name": name, "namespace": "ns"}}


def test_dependencies_come_before_workloads() -> None:
    """Namespaces, then CRDs, then config and RBAC, then Services, workloads, the rest."""
    objects = [
        _obj("Ingress", "web", "networking.k8s.io/v1"),
        _obj("Deployment", "web", "apps/v1"),
        _obj("Service", "web"),
        _obj("ConfigMap", "cfg"),
        _obj("CustomResourceDefinition", "widgets.example.com", "apiextensions.k8s.io/v1"),
        _obj("Namespace", "ns"),
        _obj("RoleBinding", "rb", "rbac.authorization.k8s.io/v1"),
        _obj("Widget", "w", "example.com/v1"),
    ]
    order = [[o["kind"] for o in phase] for phase in apply_phases(objects)]
    assert order == [
        ["Namespace"],
        ["CustomResourceDefinition"],
        ["ConfigMap", "RoleBinding"],
        ["Service"],
        ["Deployment"],
        ["Ingress", "Widget"],
    ]


def test_scalable_workloads_are_apps_v1_deployments_and_statefulsets() -> None:
    """Stop scales Deployments and StatefulSets only."""
    objects = [
        _obj("Deployment", "web", "apps/v1"),
        _obj("StatefulSet", "db", "apps/v1"),
        _obj("DaemonSet", "agent", "apps/v1"),
        _obj("Service", "web"),
    ]
    assert [str(r) for r in scalable_workloads(objects)] == [
        "Deployment ns/web",
        "StatefulSet ns/db",
    ]
