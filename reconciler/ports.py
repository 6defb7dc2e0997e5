"""What the attempt and the daemon need from the outside world, as Protocols.

The real implementations are ``reconciler.db.Store``, ``reconciler.cluster.kube.Kube``, the render
pool and the git checkouts; ``reconciler.testing.memory`` has in-memory ones, so the decisions of
the attempt and the loop (converge, supersede, retry, record once, drain) have fast unit tests.
Nothing here does I/O.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from reconciler.errors import ReconcilerError
from reconciler.model import (
    AttemptResult,
    Checkout,
    Deployment,
    DueDelivery,
    HistoryEntry,
    ObjectHealth,
    ObjectRef,
    OpsRepo,
    RepoPolicy,
    StartedAttempt,
    WatchedDeployment,
)


class AttemptStore(Protocol):
    """The database, as one attempt uses it: each write is guarded by the claim."""

    async def mark_converged(
        self,
        *,
        deployment_id: int,
        daemon_id: str,
        generation: int,
        sha: str | None,
        heal_seen: dt.datetime | None = None,
    ) -> None: ...

    async def start_attempt(
        self,
        *,
        deployment_id: int,
        daemon_id: str,
        action: str,
        image_ref: str,
        values_override: Any,
        generation: int,
    ) -> dt.datetime | None: ...

    async def finish_attempt(
        self,
        *,
        deployment_id: int,
        daemon_id: str,
        started_at: dt.datetime,
        generation: int,
        result: AttemptResult,
    ) -> bool: ...

    async def recorded_status(
        self, *, deployment_id: int, started_at: dt.datetime, daemon_id: str
    ) -> str | None: ...

    async def last_healthy(
        self, *, deployment_id: int, other_than_image: str
    ) -> HistoryEntry | None: ...

    async def policy_for(self, ops_repo_id: int) -> RepoPolicy:
        """The ops repo's policy (the defaults when none is set)."""
        ...

    async def policy_and_inventory(
        self, *, ops_repo_id: int, deployment_id: int
    ) -> tuple[RepoPolicy, list[ObjectRef]]:
        """The ops repo's policy and the objects the deployment owns, read together."""
        ...

    async def start_claiming(
        self,
        *,
        deployment_id: int,
        daemon_id: str,
        action: str,
        image_ref: str,
        values_override: Any,
        generation: int,
        refs: Sequence[ObjectRef],
    ) -> StartedAttempt:
        """Start the attempt and claim ``refs`` as the deployment's objects, all or nothing:
        nothing is written when the claim was lost or another deployment owns some of them."""
        ...

    async def claim_objects(
        self, *, deployment_id: int, refs: Sequence[ObjectRef]
    ) -> list[tuple[ObjectRef, str]]:
        """Record ``refs`` as this deployment's objects; those another deployment owns are
        returned with their owner (``project/environment``) and nothing is recorded then."""
        ...

    async def inventory_of(self, deployment_id: int) -> list[ObjectRef]:
        """The objects the deployment owns."""
        ...

    async def forget_objects(self, *, deployment_id: int, refs: Sequence[ObjectRef]) -> None:
        """Drop ``refs`` from the deployment's inventory."""
        ...

    async def history_entry(self, history_id: int) -> HistoryEntry | None:
        """One history row by id."""
        ...


class ObserverStore(Protocol):
    """The database, as the observer (``reconciler.observer``) reads and writes it."""

    async def all_inventory(self) -> list[tuple[int, ObjectRef]]: ...

    async def watched_deployments(self) -> list[WatchedDeployment]: ...

    async def watched_among(self, ids: Sequence[int]) -> list[WatchedDeployment]: ...

    async def inventory_among(self, ids: Sequence[int]) -> list[tuple[int, ObjectRef]]: ...

    async def request_heal(self, ids: Sequence[int]) -> list[int]: ...

    async def record_health_change(
        self, *, deployment_id: int, from_status: str, to_status: str, message: str, daemon: str
    ) -> bool: ...

    async def record_object_health(self, healths: Sequence[ObjectHealth]) -> None: ...


class DaemonStore(AttemptStore, ObserverStore, Protocol):
    """The database, as the loop uses it: claims, leases and the ops repos' rows."""

    async def claim(
        self,
        *,
        daemon_id: str,
        limit: int,
        lease_s: float,
        in_flight: Sequence[int] = (),
    ) -> list[Deployment]: ...

    async def renew_leases(
        self, *, daemon_id: str, ids: Sequence[int], lease_s: float
    ) -> dict[int, int]: ...

    async def cancels_requested(self, *, daemon_id: str, ids: list[int]) -> set[int]: ...

    async def ops_repos_due_for_sync(self) -> list[OpsRepo]: ...

    async def ops_repos_in_use(self) -> list[OpsRepo]: ...

    async def list_ops_repos(self) -> list[OpsRepo]: ...

    async def ops_repos_by_id(self, ids: Sequence[int]) -> dict[int, OpsRepo]: ...

    async def record_repo_sync(
        self, *, repo_id: int, sha: str | None, error: str | None
    ) -> None: ...

    async def prune_history(self, *, keep_days: float, batch: int = 1000) -> int: ...

    # What /readyz and /metrics (reconciler.web) ask.

    async def ping(self, *, timeout_s: float) -> None: ...

    async def counts_by_status(self) -> dict[str, int]: ...


class DeliveryStore(Protocol):
    """The outbox of outgoing webhooks, as the daemon's deliverer uses it."""

    async def claim_deliveries(
        self, *, daemon_id: str, limit: int, lease_s: float
    ) -> list[DueDelivery]: ...

    async def finish_delivery(
        self,
        *,
        delivery_id: int,
        daemon_id: str,
        status: str,
        code: int | None,
        error: str | None,
        retry_in_s: float | None,
    ) -> bool: ...

    async def release_deliveries(
        self, *, daemon_id: str, ids: Sequence[int], error: str
    ) -> None: ...

    async def prune_deliveries(self, *, keep_days: float, batch: int = 1000) -> int: ...


class WriteObserver(Protocol):
    """Told of every write a :class:`Cluster` makes (the live cache, so it knows which of
    them it has not shown yet: ``reconciler.cluster.unseen_writes``)."""

    def writing(self, ref: ObjectRef) -> None: ...

    def written(self, ref: ObjectRef, resource_version: str | None) -> None:
        """The write answered: the object's new version, or None when it is gone."""
        ...


class Cluster(Protocol):
    """The Kubernetes API, as applying, health and stop use it."""

    def report_writes(self, observer: WriteObserver) -> None:
        """Tell ``observer`` of every write from now on, impersonated ones included."""
        ...

    async def apply(
        self, obj: Mapping[str, Any], *, field_manager: str, dry_run: bool = False
    ) -> dict[str, Any]:
        """Server-side apply (forced); with ``dry_run`` nothing is stored and the answer is the
        object as the apply would leave it."""
        ...

    async def get(self, ref: ObjectRef) -> dict[str, Any] | None: ...

    async def list_pods(self, namespace: str, selector: str) -> list[dict[str, Any]]: ...

    async def scale(
        self, ref: ObjectRef, *, replicas: int, field_manager: str | None = None
    ) -> None: ...

    async def list_objects(
        self, *, api_version: str, kind: str, label_selector: str
    ) -> tuple[list[dict[str, Any]], str]:
        """Every ``kind`` matching the selector in all namespaces (with apiVersion and kind),
        and the list's resourceVersion."""
        ...

    def watch_objects(
        self,
        *,
        api_version: str,
        kind: str,
        label_selector: str,
        resource_version: str,
        timeout_s: float,
    ) -> AsyncIterator[dict[str, Any]]:
        """Raw watch events (``{"type", "object"}``, bookmarks too) in all namespaces from
        ``resource_version``; 410 Expired raises KubernetesError with status 410."""
        ...

    async def delete(self, ref: ObjectRef, *, propagation: str = "Background") -> bool:
        """Delete with ``propagationPolicy``; False when the object was already gone."""
        ...

    async def restart(self, ref: ObjectRef, *, at: str, field_manager: str | None = None) -> None:
        """Roll a workload's pods (``kubectl rollout restart``): ``at`` is an RFC 3339 time."""
        ...

    async def is_namespaced(self, api_version: str, kind: str) -> bool | None:
        """Whether the server serves ``kind`` in namespaces; None when it does not serve it."""
        ...

    async def refresh_discovery(self) -> None: ...

    async def version(self) -> str:
        """The server's version: whether it answers at all (``/readyz``)."""
        ...

    def impersonating(self, user: str) -> Cluster:
        """The same cluster, every request made as ``user`` (Kubernetes impersonation)."""
        ...


class LiveView(Protocol):
    """The cluster as the watches last saw it (``reconciler.cluster.live.LiveCache``)."""

    def track(self, api_version: str, kind: str) -> None:
        """Watch this kind too (idempotent)."""
        ...

    def get(self, ref: ObjectRef, *, managed_fields: bool = True) -> dict[str, Any] | None:
        """The object as cached; without ``metadata.managedFields`` if not ``managed_fields``."""
        ...

    def pods(
        self, namespace: str, selector: str, *, managed_fields: bool = True
    ) -> list[dict[str, Any]]: ...

    def is_synced(self, api_version: str, kind: str) -> bool:
        """Whether ``kind`` is tracked and listed."""
        ...

    def caught_up(self, ref: ObjectRef) -> bool:
        """Whether the view shows every write of ``ref`` this process made."""
        ...

    async def wait_changed(
        self,
        refs: Collection[ObjectRef],
        namespaces: Collection[str] = (),
        *,
        timeout_s: float,
    ) -> bool:
        """True as soon as one of ``refs`` or a Pod in ``namespaces`` changes; False after
        ``timeout_s`` without."""
        ...


@dataclass(frozen=True, kw_only=True)
class RenderRequest:
    """One deployment's project, to render from a checkout."""

    checkout: Path
    subdir: str
    project: str
    environment: str
    namespace: str
    image_ref: str
    values_override: Any
    kubernetes_version: str | None = None
    """Also check the objects against this Kubernetes version's schema where they are
    rendered (a worker process): the result is :attr:`RenderedManifests.schema_checked`."""
    immutable: bool = False
    """``checkout`` never changes (a snapshot of one commit): a worker may keep what it read."""


class RenderedManifests(Protocol):
    """What a render produced: the objects in apply order's input order, and their digest."""

    @property
    def objects(self) -> tuple[dict[str, Any], ...]: ...

    @property
    def digest(self) -> str: ...

    @property
    def sources(self) -> tuple[tuple[str, int], ...]:
        """(template name, document index) per object, for messages; may be empty."""
        ...

    @property
    def schema_checked(self) -> tuple[str, ReconcilerError | None] | None:
        """(Kubernetes version, the schema error or None) when the renderer checked the
        objects against that version's schema; None when it did not."""
        ...


class Renderer(Protocol):
    """Renders a project; raises a ReconcilerError naming the file and line on bad input."""

    async def render(self, request: RenderRequest) -> RenderedManifests: ...

    async def close(self) -> None: ...


class Notifications(Protocol):
    """The LISTEN connection: calls back on each NOTIFY and on each (re)connection."""

    connected: asyncio.Event

    async def run(self, *, stop: asyncio.Event) -> None: ...


class RepoFetcher(Protocol):
    """git, as the daemon's checkouts use it."""

    async def fetch(self, repo: OpsRepo) -> Checkout:
        """Sync one repo; a failure returns the last good checkout with the error."""
        ...

    async def on_disk(self, repo: OpsRepo) -> Checkout | None:
        """The checkout already on disk, if any (without fetching)."""
        ...

    async def contains(self, checkout: Checkout, sha: str) -> bool:
        """Whether ``sha`` is in the history of ``checkout``."""
        ...

    async def present(self, checkout: Checkout) -> bool:
        """Whether the files of ``checkout`` are still on disk (someone may delete them)."""
        ...

    async def at_commit(self, repo: OpsRepo, sha: str) -> Checkout:
        """A checkout of commit ``sha`` of ``repo``'s history, without fetching nor moving what
        the repo serves (a rollback renders it); OpsRepoError when ``sha`` is not in that
        history."""
        ...

    async def remote_head(self, repo: OpsRepo) -> str | None:
        """The commit the remote's branch points at now, without fetching (None: no such
        branch); OpsRepoError when the remote does not answer."""
        ...
