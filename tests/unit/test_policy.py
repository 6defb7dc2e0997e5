"""Policy: what a render may apply, decided before anything is applied (pure rules)."""

from __future__ import annotations

from typing import Any

import pytest

from reconciler.model import RepoPolicy
from reconciler.policy import OWNER_LABELS, Subject, violations, with_owner_labels

SUBJECT = Subject(project="web", environment="prod", namespace="web-prod", ops_repo="platform")
SCOPES = {
    ("v1", "ConfigMap"): True,
    ("apps/v1", "Deployment"): True,
    ("v1", "Namespace"): False,
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): False,
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): True,
    ("apiextensions.k8s.io/v1", "CustomResourceDefinition"): False,
    ("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration"): False,
    ("storage.k8s.io/v1", "StorageClass"): False,
}


def obj(api_version: str, kind: str, name: str, namespace: str | None = None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name}
    if namespace:
        metadata["namespace"] = namespace
    return {"apiVersion": api_version, "kind": kind, "metadata": metadata}


CASES = [
    (
        "own namespace",
        obj("v1", "ConfigMap", "settings", "web-prod"),
        RepoPolicy(),
        None,
    ),
    (
        "namespace left to default",
        obj("apps/v1", "Deployment", "web"),
        RepoPolicy(),
        None,
    ),
    (
        "its own Namespace",
        obj("v1", "Namespace", "web-prod"),
        RepoPolicy(),
        None,
    ),
    (
        "kube-system",
        obj("v1", "ConfigMap", "pwn", "kube-system"),
        RepoPolicy(),
        "ConfigMap kube-system/pwn: namespace 'kube-system' is not allowed for deployment "
        "web/prod (allowed: its own web-prod)",
    ),
    (
        "another team's namespace",
        obj("apps/v1", "Deployment", "web", "shop-prod"),
        RepoPolicy(namespaces=("shared", "web-*")),
        "Deployment shop-prod/web: namespace 'shop-prod' is not allowed for deployment "
        "web/prod (allowed: its own web-prod, and: shared, web-*)",
    ),
    (
        "a namespace the policy names",
        obj("v1", "ConfigMap", "x", "shared"),
        RepoPolicy(namespaces=("shared",)),
        None,
    ),
    (
        "a namespace under a policy prefix",
        obj("v1", "ConfigMap", "x", "web-canary"),
        RepoPolicy(namespaces=("web-*",)),
        None,
    ),
    (
        "another Namespace",
        obj("v1", "Namespace", "kube-public"),
        RepoPolicy(),
        "Namespace kube-public: cluster-scoped kind Namespace is not allowed for ops repo "
        "'platform' (its policy's cluster_kinds: none; its own Namespace is always allowed)",
    ),
    (
        "cluster-admin binding",
        obj("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", "pwn"),
        RepoPolicy(cluster_kinds=("ClusterRoleBinding",)),
        "ClusterRoleBinding pwn: kind ClusterRoleBinding is denied for ops repo 'platform' "
        "(its policy's denied_kinds)",
    ),
    (
        "a webhook",
        obj("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration", "hook"),
        RepoPolicy(),
        "ValidatingWebhookConfiguration hook: kind ValidatingWebhookConfiguration is denied for "
        "ops repo 'platform' (its policy's denied_kinds)",
    ),
    (
        "a CRD by default",
        obj("apiextensions.k8s.io/v1", "CustomResourceDefinition", "widgets.example.com"),
        RepoPolicy(),
        "CustomResourceDefinition widgets.example.com: cluster-scoped kind "
        "CustomResourceDefinition is not allowed for ops repo 'platform' (its policy's "
        "cluster_kinds: none; its own Namespace is always allowed)",
    ),
    (
        "a CRD the policy allows",
        obj("apiextensions.k8s.io/v1", "CustomResourceDefinition", "widgets.example.com"),
        RepoPolicy(cluster_kinds=("CustomResourceDefinition",)),
        None,
    ),
    (
        "a RoleBinding in its own namespace",
        obj("rbac.authorization.k8s.io/v1", "RoleBinding", "admins", "web-prod"),
        RepoPolicy(),
        None,
    ),
    (
        "denied even when listed",
        obj("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", "x"),
        RepoPolicy(cluster_kinds=("ClusterRoleBinding",), denied_kinds=("ClusterRoleBinding",)),
        "ClusterRoleBinding x: kind ClusterRoleBinding is denied for ops repo 'platform' "
        "(its policy's denied_kinds)",
    ),
]


@pytest.mark.parametrize(
    ("document", "rules", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_policy_rule(document: dict[str, Any], rules: RepoPolicy, expected: str | None) -> None:
    """Each object is allowed or refused with a message naming it and the rule."""
    found = violations([document], subject=SUBJECT, policy=rules, namespaced=SCOPES)
    assert found == ([] if expected is None else [expected])


def test_a_pipeline_written_namespace_outside_the_policy_is_refused() -> None:
    """A deployment whose namespace column is neither its default nor allowed is refused."""
    subject = Subject(project="web", environment="prod", namespace="kube-system", ops_repo="p")
    found = violations([], subject=subject, policy=RepoPolicy(), namespaced=SCOPES)
    assert found == [
        "namespace 'kube-system' is not allowed for ops repo 'p' (allowed: the default web-prod)"
    ]


def test_every_violation_is_reported_at_once() -> None:
    """A render breaking several rules names each object."""
    documents = [
        obj("v1", "ConfigMap", "a", "kube-system"),
        obj("v1", "ConfigMap", "ok", "web-prod"),
        obj("storage.k8s.io/v1", "StorageClass", "fast"),
    ]
    found = violations(documents, subject=SUBJECT, policy=RepoPolicy(), namespaced=SCOPES)
    assert [f.split(":")[0] for f in found] == ["ConfigMap kube-system/a", "StorageClass fast"]


def test_owner_labels_name_the_deployment_and_leave_the_render_alone() -> None:
    """Applied objects carry labels naming their deployment; the rendered object is copied."""
    document = obj("v1", "ConfigMap", "a", "web-prod")
    document["metadata"]["labels"] = {"app": "web"}
    labelled = with_owner_labels(document, subject=SUBJECT)
    assert labelled["metadata"]["labels"] == {
        "app": "web",
        OWNER_LABELS[0]: "web",
        OWNER_LABELS[1]: "prod",
    }
    assert document["metadata"]["labels"] == {"app": "web"}
