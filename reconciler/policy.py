"""Whether a render stays inside what its ops repo's policy allows: pure, over plain data.

A deployment may write into its own namespace.  Anything else needs the ops repo's policy
(``ops_repo_policies``, set by whoever administers the database): other namespaces, cluster-scoped
kinds; and some kinds are refused everywhere by default because each can take over the cluster.
A render that breaks a rule is refused whole, before anything is applied.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from reconciler.model import ObjectRef, RepoPolicy

OWNER_LABELS = ("reconciler.io/project", "reconciler.io/environment")
"""The labels that name the deployment an applied object belongs to (``kubectl get -l``)."""


@dataclass(frozen=True, kw_only=True)
class Subject:
    """The deployment a render is checked for."""

    project: str
    environment: str
    namespace: str
    ops_repo: str

    @property
    def default_namespace(self) -> str:
        return f"{self.project}-{self.environment}"

    def __str__(self) -> str:
        return f"{self.project}/{self.environment}"


def namespace_allowed(namespace: str, *, subject: Subject, policy: RepoPolicy) -> bool:
    """The deployment's own namespace, or one its repo's policy names (``x-*``: a prefix)."""
    if namespace == subject.namespace:
        return True
    return any(_matches(namespace, entry) for entry in policy.namespaces)


def own_namespace_error(*, subject: Subject, policy: RepoPolicy) -> str | None:
    """Why the deployment's ``namespace`` column is refused (a pipeline wrote it), or None."""
    if subject.namespace == subject.default_namespace:
        return None
    if any(_matches(subject.namespace, entry) for entry in policy.namespaces):
        return None
    return (
        f"namespace {subject.namespace!r} is not allowed for ops repo {subject.ops_repo!r} "
        f"(allowed: the default {subject.default_namespace}{_listed(policy.namespaces)})"
    )


def violations(
    objects: Sequence[Mapping[str, Any]],
    *,
    subject: Subject,
    policy: RepoPolicy,
    namespaced: Mapping[tuple[str, str], bool],
) -> list[str]:
    """Every rule the render breaks, one message per object naming it and the rule.
    ``namespaced`` maps (apiVersion, kind) to the kind's scope."""
    found = []
    own = own_namespace_error(subject=subject, policy=policy)
    if own is not None:
        found.append(own)
    for obj in objects:
        message = _violation(obj, subject=subject, policy=policy, namespaced=namespaced)
        if message is not None:
            found.append(message)
    return found


def _violation(
    obj: Mapping[str, Any],
    *,
    subject: Subject,
    policy: RepoPolicy,
    namespaced: Mapping[tuple[str, str], bool],
) -> str | None:
    ref = ObjectRef.from_object(obj)
    repo = f"ops repo {subject.ops_repo!r}"
    if ref.kind in policy.denied_kinds:
        return f"{ref}: kind {ref.kind} is denied for {repo} (its policy's denied_kinds)"
    if not namespaced.get((ref.api_version, ref.kind), True):
        if ref.kind == "Namespace" and ref.name == subject.namespace:
            return None
        if ref.kind in policy.cluster_kinds:
            return None
        allowed = ", ".join(policy.cluster_kinds) or "none"
        return (
            f"{ref}: cluster-scoped kind {ref.kind} is not allowed for {repo} "
            f"(its policy's cluster_kinds: {allowed}; its own Namespace is always allowed)"
        )
    target = ref.namespace or subject.namespace
    if namespace_allowed(target, subject=subject, policy=policy):
        return None
    return (
        f"{ref}: namespace {target!r} is not allowed for deployment {subject} "
        f"(allowed: its own {subject.namespace}{_listed(policy.namespaces)})"
    )


POD_TEMPLATE_PATHS: dict[str, tuple[str, ...]] = {
    "Deployment": ("spec", "template"),
    "StatefulSet": ("spec", "template"),
    "DaemonSet": ("spec", "template"),
    "ReplicaSet": ("spec", "template"),
    "CronJob": ("spec", "jobTemplate", "spec", "template"),
}
"""Where a workload keeps the pod template whose labels its Pods get: labelled too, so the
daemon's watch (selected by the owner labels) sees the Pods health needs.  Not a Job's: its
template is immutable once created, so labelling an existing Job would be refused."""


def with_owner_labels(obj: Mapping[str, Any], *, subject: Subject) -> dict[str, Any]:
    """``obj`` with the labels naming its deployment, on its pod template too (a copy; the
    render is left as it is)."""
    owner = dict(zip(OWNER_LABELS, (subject.project, subject.environment), strict=True))
    labelled = _labelled(obj, owner)
    path = POD_TEMPLATE_PATHS.get(str(obj.get("kind")))
    if path is not None and str(obj.get("apiVersion", "")).startswith(("apps/", "batch/")):
        labelled = _labelled_at(labelled, path, owner)
    return labelled


def _labelled(obj: Mapping[str, Any], labels: Mapping[str, str]) -> dict[str, Any]:
    metadata = obj.get("metadata")
    metadata = dict(metadata) if isinstance(metadata, Mapping) else {}
    existing = metadata.get("labels")
    metadata["labels"] = {**(existing if isinstance(existing, Mapping) else {}), **labels}
    return {**obj, "metadata": metadata}


def _labelled_at(
    obj: Mapping[str, Any], path: Sequence[str], labels: Mapping[str, str]
) -> dict[str, Any]:
    """``obj`` with ``labels`` added to the object at ``path`` (copied along the way); left
    as it is when the path is not a chain of mappings (the schema check reports that)."""
    if not path:
        return _labelled(obj, labels)
    child = obj.get(path[0])
    if not isinstance(child, Mapping):
        return dict(obj)
    return {**obj, path[0]: _labelled_at(child, path[1:], labels)}


def _matches(namespace: str, entry: str) -> bool:
    if entry.endswith("*"):
        return namespace.startswith(entry[:-1])
    return namespace == entry


def _listed(entries: Sequence[str]) -> str:
    return f", and: {', '.join(entries)}" if entries else ""
