"""The plain data every stage shares: rows, checkouts, object references, and their statuses.

Nothing here does I/O or imports a library that does; every other module may import it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from reconciler.errors import RenderError


class DesiredStatus(StrEnum):
    """``deployments.desired_status``: what a pipeline asks for."""

    ACTIVE = "active"
    STOPPED = "stopped"
    ROLLBACK = "rollback"
    DELETED = "deleted"
    """Remove every object the deployment owns (its history is kept)."""


class CurrentStatus(StrEnum):
    """``deployments.current_status``: what the daemon last saw."""

    PENDING = "pending"
    SYNCING = "syncing"
    HEALTHY = "healthy"
    FAILED = "failed"
    STOPPED = "stopped"
    DEGRADED = "degraded"
    """Healthy once, then one of its objects failed (a pod crash-looping an hour later)."""
    DRIFTED = "drifted"
    """Someone else changed a managed object and healing is off for the deployment."""
    DELETED = "deleted"
    """Every object it owned is gone from the cluster."""


class AttemptStatus(StrEnum):
    """``deployment_history.status``: how one attempt ended."""

    HEALTHY = "healthy"
    FAILED = "failed"
    STOPPED = "stopped"
    SUPERSEDED = "superseded"
    INTERRUPTED = "interrupted"
    CANCELLED = "cancelled"
    DEGRADED = "degraded"
    DRIFTED = "drifted"
    DELETED = "deleted"


class Verb(StrEnum):
    """What the desired state asks of the cluster (also the history row's ``action``)."""

    DEPLOY = "deploy"
    ROLLBACK = "rollback"
    STOP = "stop"
    REDEPLOY = "redeploy"
    """A deploy asked for by ``reconciler redeploy``: applies even when nothing changed."""
    HEAL = "heal"
    """Re-apply what someone else changed or deleted (drift the watch saw)."""
    DELETE = "delete"
    """Remove every object in the deployment's inventory."""
    HEALTH = "health"
    """Not an attempt: a history row for a health change seen after the rollout."""


@dataclass(frozen=True, kw_only=True)
class OpsRepo:
    """A row of ``ops_repos``."""

    id: int
    name: str
    repo_url: str
    branch: str
    path: str
    sync_interval_s: int
    last_synced_at: dt.datetime | None
    last_sha: str | None
    last_error: str | None


@dataclass(frozen=True, kw_only=True)
class Deployment:
    """A row of ``deployments``: desired state, current state and the daemon's bookkeeping."""

    id: int
    project: str
    environment: str
    namespace: str
    ops_repo_id: int
    image_ref: str
    values_override: Any
    desired_status: str
    current_status: str
    current_image_ref: str | None
    current_sha: str | None
    current_values: Any
    deployed_at: dt.datetime | None
    status_message: str
    generation: int
    observed_generation: int
    claimed_by: str | None
    lease_expires_at: dt.datetime | None
    attempt_started_at: dt.datetime | None
    attempt_action: str | None
    attempt_image_ref: str | None
    attempt_generation: int | None
    attempts: int
    next_attempt_at: dt.datetime | None
    applied_digest: str | None
    attempt_values: Any = None
    """The values the open attempt renders with (None when no attempt is open)."""
    rendered_sha: str | None = None
    """The ops repo commit a finished attempt or a converge last rendered this deployment at;
    a repo whose last synced commit differs has something new for it."""
    paused: bool = False
    """Left alone by the daemon (``reconciler pause``) until resumed."""
    cancel_requested_generation: int | None = None
    """The generation whose in-flight rollout an admin cancelled (``reconciler cancel``)."""
    redeploy_requested_at: dt.datetime | None = None
    """Set by ``reconciler redeploy``: apply again even when the render is applied already."""
    redeploy_restart: bool = False
    """With the redeploy: restart the workloads' pods (``kubectl rollout restart``)."""
    self_heal: bool | None = None
    """Re-apply drifted objects; None follows the daemon's setting (``RECONCILER_SELF_HEAL``)."""
    prune_all_allowed: bool = False
    """Allow a render that would prune every object the deployment owns."""
    heal_requested_at: dt.datetime | None = None
    """Set by the daemon when the watch saw a managed object changed or deleted by another."""
    rollback_to: int | None = None
    """With desired_status 'rollback': the history row to return to (None: the newest healthy
    deploy of another image)."""
    last_writer: str | None = None
    """On a claimed row: the daemon whose attempt wrote the deployment's objects last (None:
    unknown).  Only a daemon that did may trust its watch cache's view of them (another's
    writes may not have reached it yet)."""


@dataclass(frozen=True, kw_only=True)
class HistoryEntry:
    """A row of ``deployment_history``: one attempt."""

    id: int
    deployment_id: int
    generation: int
    action: str
    status: str
    image_ref: str
    sha: str | None
    values_override: Any
    digest: str | None
    message: str
    daemon: str | None
    started_at: dt.datetime
    finished_at: dt.datetime
    duration_ms: int
    rolled_back_to: int | None = None
    """A rollback's row: the history row it returned to."""


@dataclass(frozen=True, kw_only=True)
class AttemptResult:
    """What one attempt ended in: the row transition the database records in one transaction."""

    action: str
    """'deploy', 'rollback' or 'stop'."""
    status: str
    """'healthy', 'failed', 'stopped', 'superseded' or 'interrupted'."""
    image_ref: str
    values_override: Any
    sha: str | None
    digest: str | None
    message: str
    attempts: int
    """The deployment's consecutive failed attempts after this one (0 on success)."""
    retry_in_s: float | None
    """How long after now (the database's clock) to retry a failure automatically; None: not
    before the desired state changes."""
    applied: bool = True
    """Whether the attempt reached the cluster; False (it failed before applying anything)
    leaves the current_* columns describing what the cluster still holds."""
    restore_desired: bool = False
    """A successful rollback: image_ref and values_override take the values rolled back to and
    desired_status returns to 'active'."""
    rolled_back_to: int | None = None
    """A rollback: the history row it returned to."""
    rendered_sha: str | None = None
    """The commit to count the deployment as rendered at, when not :attr:`sha`: a rollback to
    an older commit stays there until the ops repo moves on."""
    applied_objects: tuple[ObjectRef, ...] = ()
    """The inventory objects the attempt applied (their ``applied_at`` is set with it)."""


@dataclass(frozen=True, kw_only=True)
class Checkout:
    """Where an ops repo can be rendered from (the last good checkout), or why it cannot."""

    name: str
    path: Path | None
    """The working tree; None when the repo was never fetched successfully."""
    subdir: str
    """``ops_repos.path``: where the projects live inside the repo."""
    sha: str | None
    error: str | None
    immutable: bool = False
    """``path`` is a verified read-only snapshot of ``sha`` (:mod:`reconciler.repos.snapshots`):
    what is read from it may be kept."""


@dataclass(frozen=True)
class ObjectRef:
    """Which object: enough to read it back from the API server."""

    api_version: str
    kind: str
    name: str
    namespace: str | None

    @classmethod
    def from_object(cls, obj: Mapping[str, Any]) -> ObjectRef:
        """The reference to a manifest or live object; RenderError if it lacks its identity."""
        metadata = obj.get("metadata")
        metadata = metadata if isinstance(metadata, Mapping) else {}
        api_version = _text(obj.get("apiVersion"))
        kind = _text(obj.get("kind"))
        name = _text(metadata.get("name"))
        if not (api_version and kind and name):
            raise RenderError(
                "a document lacks apiVersion, kind or metadata.name "
                f"(apiVersion={api_version!r}, kind={kind!r}, name={name!r})"
            )
        namespace = _text(metadata.get("namespace")) or None
        return cls(api_version=api_version, kind=kind, name=name, namespace=namespace)

    def __str__(self) -> str:
        if self.namespace:
            return f"{self.kind} {self.namespace}/{self.name}"
        return f"{self.kind} {self.name}"


@dataclass(frozen=True)
class ObjectHealth:
    """What the watch last saw of one owned object's health (``deployment_objects``)."""

    ref: ObjectRef
    health: str
    message: str


@dataclass(frozen=True, kw_only=True)
class WatchedDeployment:
    """A deployment whose objects should be on the cluster as last applied."""

    id: int
    project: str
    environment: str
    current_status: str
    desired_status: str
    paused: bool
    self_heal: bool | None


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


DEFAULT_DENIED_KINDS = (
    "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
    "ClusterRole",
    "ClusterRoleBinding",
)
"""Kinds no deployment may apply anywhere unless its ops repo's policy says otherwise: each can
take over the cluster (intercept every write, or grant any permission)."""


@dataclass(frozen=True, kw_only=True)
class RepoPolicy:
    """``ops_repo_policies``: what the deployments of one ops repo may touch, set by whoever
    administers the database (never by the ops repo's editors nor by pipelines)."""

    namespaces: tuple[str, ...] = ()
    """Namespaces beyond each deployment's own that its objects (and its ``namespace`` column)
    may name; an entry ending in ``*`` is a prefix."""
    cluster_kinds: tuple[str, ...] = ()
    """Cluster-scoped kinds its deployments may apply (their own Namespace is always allowed)."""
    denied_kinds: tuple[str, ...] = DEFAULT_DENIED_KINDS
    """Kinds refused everywhere, even when ``cluster_kinds`` names them."""
    service_account: str | None = None
    """``namespace/name`` of the ServiceAccount the daemon impersonates for this repo's
    objects (defence in depth: the cluster's RBAC then bounds what its templates can do);
    None: the daemon's own identity."""

    @property
    def impersonated_user(self) -> str | None:
        """The Kubernetes user name of :attr:`service_account`."""
        if self.service_account is None:
            return None
        namespace, _, name = self.service_account.partition("/")
        return f"system:serviceaccount:{namespace}:{name}"


@dataclass(frozen=True, kw_only=True)
class Webhook:
    """An ``event_webhooks`` row, without its secret (``signed`` says whether it has one)."""

    id: int
    name: str
    url: str
    project: str | None
    environment: str | None
    format: str
    statuses: tuple[str, ...] | None
    enabled: bool
    signed: bool
    created_at: dt.datetime


@dataclass(frozen=True, kw_only=True)
class DueDelivery:
    """A claimed ``event_deliveries`` row with what posting it needs from its webhook."""

    id: int
    webhook: str
    url: str
    format: str
    secret: str | None = field(repr=False)
    event: Mapping[str, Any]
    attempts: int
    """Attempts so far, this one included."""


@dataclass(frozen=True, kw_only=True)
class StartedAttempt:
    """What starting an attempt together with claiming its objects came to."""

    started_at: dt.datetime | None
    """The attempt's start; None when nothing was written (the claim lost, or ``taken``)."""
    taken: tuple[tuple[ObjectRef, str], ...] = ()
    """Objects another deployment owns, with that deployment (``project/environment``): the
    attempt was not started and nothing was claimed."""
