"""An in-memory :class:`reconciler.ports.DaemonStore` with the real one's preconditions."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from reconciler.decide import row_transition
from reconciler.errors import DatabaseUnavailable
from reconciler.model import (
    AttemptResult,
    Deployment,
    HistoryEntry,
    ObjectHealth,
    ObjectRef,
    OpsRepo,
    RepoPolicy,
)
from reconciler.testing.memory.inventory import InventoryMemory, Key, key_of

_DESIRED = tuple(
    ["image_ref", "desired_status", "values_override", "namespace", "ops_repo_id", "rollback_to"]
)
_SETTINGS = ("self_heal", "prune_all_allowed")
"""Columns a pipeline writes that are not desired state: no new generation."""


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class LostAcknowledgement:
    """A scripted fault: the write commits, then its answer is lost."""

    error: BaseException = field(default_factory=lambda: DatabaseUnavailable("connection lost"))


class InMemoryStore(InventoryMemory):
    """:class:`reconciler.ports.DaemonStore` over dicts."""

    def __init__(self, *, clock: Callable[[], dt.datetime] = _utcnow) -> None:
        self.clock = clock
        self.deployments: dict[int, Deployment] = {}
        self.history: list[HistoryEntry] = []
        self.repos: dict[int, OpsRepo] = {}
        self.faults: dict[str, list[BaseException | LostAcknowledgement]] = {}
        self.policies: dict[int, RepoPolicy] = {}
        self.owners: dict[Key, int] = {}
        """The inventory: (API group, kind, namespace, name) -> deployment id."""
        self.objects: dict[Key, ObjectRef] = {}
        self.object_health: dict[Key, ObjectHealth] = {}
        self.calls: list[str] = []

    async def ping(self, *, timeout_s: float) -> None:
        self._fault("ping")

    async def counts_by_status(self) -> dict[str, int]:
        return dict(Counter(d.current_status for d in self.deployments.values()))

    # ------------------------------------------------------------ what writers do

    def add_repo(self, name: str = "ops") -> OpsRepo:
        repo = OpsRepo(
            id=len(self.repos) + 1,
            name=name,
            repo_url=f"https://git.example/{name}.git",
            branch="main",
            path="",
            sync_interval_s=60,
            last_synced_at=None,
            last_sha=None,
            last_error=None,
        )
        self.repos[repo.id] = repo
        return repo

    def add_deployment(self, *, project: str, environment: str, image_ref: str) -> Deployment:
        repo = next(iter(self.repos.values()), None) or self.add_repo()
        deployment = Deployment(
            id=len(self.deployments) + 1,
            project=project,
            environment=environment,
            namespace=f"{project}-{environment}",
            ops_repo_id=repo.id,
            image_ref=image_ref,
            values_override={},
            desired_status="active",
            current_status="pending",
            current_image_ref=None,
            current_sha=None,
            current_values=None,
            deployed_at=None,
            status_message="",
            generation=1,
            observed_generation=0,
            claimed_by=None,
            lease_expires_at=None,
            attempt_started_at=None,
            attempt_action=None,
            attempt_image_ref=None,
            attempt_generation=None,
            attempts=0,
            next_attempt_at=None,
            applied_digest=None,
        )
        self.deployments[deployment.id] = deployment
        return deployment

    def set_desired(self, deployment_id: int, **changes: Any) -> Deployment:
        """A pipeline's UPDATE: the trigger bumps the generation when desired state changes."""
        unknown = set(changes) - set(_DESIRED) - set(_SETTINGS)
        if unknown:
            raise ValueError(f"not a desired-state column: {sorted(unknown)}")
        row = self.deployments[deployment_id]
        bump = any(getattr(row, k) != v for k, v in changes.items() if k in _DESIRED)
        generation = row.generation + 1 if bump else row.generation
        return self._put(row, generation=generation, **changes)

    def history_of(self, deployment_id: int) -> list[HistoryEntry]:
        return [h for h in self.history if h.deployment_id == deployment_id]

    # ------------------------------------------------------------ plumbing

    def _put(self, row: Deployment, **changes: Any) -> Deployment:
        new = dataclasses.replace(row, **changes)
        self.deployments[row.id] = new
        return new

    def _fault(self, name: str) -> LostAcknowledgement | None:
        """Raise the next scripted fault of ``name``; a LostAcknowledgement is returned, for
        the caller to raise after its write."""
        self.calls.append(name)
        queue = self.faults.get(name)
        if not queue:
            return None
        fault = queue.pop(0)
        if isinstance(fault, LostAcknowledgement):
            return fault
        raise fault

    def _claimable(self, row: Deployment, *, daemon_id: str, now: dt.datetime) -> bool:
        return (
            row.lease_expires_at is None
            or row.lease_expires_at < now
            or row.claimed_by == daemon_id
        )

    def _needs_work(self, row: Deployment, now: dt.datetime) -> bool:
        new = row.generation != row.observed_generation
        if new or row.current_status == "syncing":
            return True
        if row.current_status == "failed" and row.next_attempt_at and row.next_attempt_at <= now:
            return True
        if row.heal_requested_at is not None:
            return True
        repo = self.repos.get(row.ops_repo_id)
        sha = repo.last_sha if repo is not None else None
        return (
            sha is not None
            and row.desired_status in ("active", "rollback")
            and row.current_status in ("healthy", "failed", "degraded", "drifted")
            and row.rendered_sha != sha
        )

    # ------------------------------------------------------------ the daemon's side

    async def claim(
        self,
        *,
        daemon_id: str,
        limit: int,
        lease_s: float,
        in_flight: Sequence[int] = (),
    ) -> list[Deployment]:
        self._fault("claim")
        now = self.clock()
        claimed: list[Deployment] = []
        for row in sorted(self.deployments.values(), key=lambda d: d.id):
            if len(claimed) >= limit:
                break
            if row.id in in_flight or not self._claimable(row, daemon_id=daemon_id, now=now):
                continue
            if row.paused or not self._needs_work(row, now):
                continue
            if row.attempt_started_at is not None:
                self._close_interrupted(row, message="the daemon running this attempt stopped")
                row = self.deployments[row.id]
            lease = now + dt.timedelta(seconds=lease_s)
            writer = next(
                (h.daemon for h in reversed(self.history) if h.deployment_id == row.id), None
            )
            claimed.append(
                self._put(row, claimed_by=daemon_id, lease_expires_at=lease, last_writer=writer)
            )
        return claimed

    def _close_interrupted(self, row: Deployment, *, message: str) -> None:
        assert row.attempt_started_at is not None
        self._append_history(
            row,
            generation=row.attempt_generation or row.generation,
            action=row.attempt_action or "deploy",
            status="interrupted",
            image_ref=row.attempt_image_ref or row.image_ref,
            values=row.values_override if row.attempt_values is None else row.attempt_values,
            sha=None,
            digest=None,
            message=message,
            daemon=row.claimed_by,
            started_at=row.attempt_started_at,
        )
        self._put(
            row,
            attempt_started_at=None,
            attempt_action=None,
            attempt_image_ref=None,
            attempt_generation=None,
            attempt_values=None,
        )

    async def renew_leases(
        self, *, daemon_id: str, ids: Sequence[int], lease_s: float
    ) -> dict[int, int]:
        self._fault("renew_leases")
        lease = self.clock() + dt.timedelta(seconds=lease_s)
        renewed = {}
        for deployment_id in ids:
            row = self.deployments.get(deployment_id)
            if row is not None and row.claimed_by == daemon_id:
                renewed[row.id] = self._put(row, lease_expires_at=lease).generation
        return renewed

    async def mark_converged(
        self,
        *,
        deployment_id: int,
        daemon_id: str,
        generation: int,
        sha: str | None,
        heal_seen: dt.datetime | None = None,
    ) -> None:
        self._fault("mark_converged")
        row = self.deployments[deployment_id]
        if row.claimed_by == daemon_id:
            healed = (
                heal_seen is not None
                and row.heal_requested_at is not None
                and row.heal_requested_at <= heal_seen
            )
            self._put(
                row,
                observed_generation=generation,
                current_sha=sha,
                rendered_sha=sha if sha is not None else row.rendered_sha,
                heal_requested_at=None if healed else row.heal_requested_at,
                claimed_by=None,
                lease_expires_at=None,
            )

    async def start_attempt(
        self,
        *,
        deployment_id: int,
        daemon_id: str,
        action: str,
        image_ref: str,
        values_override: Any,
        generation: int,
    ) -> dt.datetime | None:
        self._fault("start_attempt")
        row = self.deployments[deployment_id]
        if row.claimed_by != daemon_id:
            return None
        started = self.clock()
        self._put(
            row,
            current_status="syncing",
            attempt_started_at=started,
            attempt_action=action,
            attempt_image_ref=image_ref,
            attempt_generation=generation,
            attempt_values=values_override,
        )
        return started

    async def finish_attempt(
        self,
        *,
        deployment_id: int,
        daemon_id: str,
        started_at: dt.datetime,
        generation: int,
        result: AttemptResult,
    ) -> bool:
        lost = self._fault("finish_attempt")
        row = self.deployments[deployment_id]
        if row.claimed_by != daemon_id or row.attempt_started_at != started_at:
            return False
        self._apply_transition(row, generation=generation, result=result)
        self._append_history(
            row,
            generation=generation,
            action=result.action,
            status=result.status,
            image_ref=result.image_ref,
            values=result.values_override,
            sha=result.sha,
            digest=result.digest,
            message=result.message,
            daemon=daemon_id,
            started_at=started_at,
            rolled_back_to=result.rolled_back_to,
        )
        if lost is not None:
            raise lost.error
        return True

    def _apply_transition(self, row: Deployment, *, generation: int, result: AttemptResult) -> None:
        t = row_transition(result, generation=generation)
        # As finish_attempt's SQL: a restore only while no newer desired state was written.
        restores = t.restores_desired and row.generation == generation
        retry_at = None
        if result.retry_in_s is not None:
            retry_at = self.clock() + dt.timedelta(seconds=result.retry_in_s)
        changes: dict[str, Any] = {
            "current_status": t.current_status,
            "status_message": result.message,
            "attempt_started_at": None,
            "attempt_action": None,
            "attempt_image_ref": None,
            "attempt_generation": None,
            "attempt_values": None,
            "claimed_by": None,
            "lease_expires_at": None,
            "attempts": result.attempts,
            "next_attempt_at": retry_at,
        }
        if t.observes:
            if restores or not t.restores_desired:
                changes["observed_generation"] = t.observed_generation
            repo = self.repos.get(row.ops_repo_id)
            changes["rendered_sha"] = (
                result.rendered_sha or result.sha or (repo and repo.last_sha) or row.rendered_sha
            )
            heal = row.heal_requested_at
            if heal is not None and row.attempt_started_at and heal <= row.attempt_started_at:
                changes["heal_requested_at"] = None
            if row.generation == generation:
                # As finish_attempt's SQL: a redeploy request is done with once observed.
                changes.update(redeploy_requested_at=None, redeploy_restart=False)
        if t.records_current:
            changes.update(
                current_image_ref=result.image_ref,
                current_values=result.values_override,
                current_sha=result.sha,
                applied_digest=t.applied_digest,
            )
        if t.deployed:
            changes["deployed_at"] = self.clock()
        if restores:
            changes.update(
                image_ref=result.image_ref,
                values_override=result.values_override,
                desired_status="active",
                rollback_to=None,
                generation=row.generation + 1,
            )
        self._put(row, **changes)

    def _append_history(
        self,
        row: Deployment,
        *,
        generation: int,
        action: str,
        status: str,
        image_ref: str,
        values: Any,
        sha: str | None,
        digest: str | None,
        message: str,
        daemon: str | None,
        started_at: dt.datetime,
        rolled_back_to: int | None = None,
    ) -> None:
        finished = self.clock()
        self.history.append(
            HistoryEntry(
                id=len(self.history) + 1,
                deployment_id=row.id,
                generation=generation,
                action=action,
                status=status,
                image_ref=image_ref,
                sha=sha,
                values_override=values,
                digest=digest,
                message=message,
                daemon=daemon,
                started_at=started_at,
                finished_at=finished,
                duration_ms=int((finished - started_at).total_seconds() * 1000),
                rolled_back_to=rolled_back_to,
            )
        )

    async def recorded_status(
        self, *, deployment_id: int, started_at: dt.datetime, daemon_id: str
    ) -> str | None:
        self._fault("recorded_status")
        for entry in self.history:
            if (entry.deployment_id, entry.started_at, entry.daemon) == (
                deployment_id,
                started_at,
                daemon_id,
            ):
                return entry.status
        return None

    async def last_healthy(
        self, *, deployment_id: int, other_than_image: str
    ) -> HistoryEntry | None:
        for entry in reversed(self.history):
            if (
                entry.deployment_id == deployment_id
                and entry.status == "healthy"
                and entry.action in ("deploy", "rollback", "redeploy")
                and entry.image_ref != other_than_image
            ):
                return entry
        return None

    async def ops_repos_due_for_sync(self) -> list[OpsRepo]:
        self._fault("ops_repos_due_for_sync")
        used = {d.ops_repo_id for d in self.deployments.values()}
        return [r for r in self.repos.values() if r.id in used and r.last_synced_at is None]

    async def ops_repos_in_use(self) -> list[OpsRepo]:
        self._fault("ops_repos_in_use")
        used = {d.ops_repo_id for d in self.deployments.values()}
        return [r for r in self.repos.values() if r.id in used]

    async def list_ops_repos(self) -> list[OpsRepo]:
        return sorted(self.repos.values(), key=lambda r: r.name)

    async def ops_repos_by_id(self, ids: Sequence[int]) -> dict[int, OpsRepo]:
        return {i: self.repos[i] for i in ids if i in self.repos}

    async def record_repo_sync(self, *, repo_id: int, sha: str | None, error: str | None) -> None:
        repo = self.repos[repo_id]
        sha = sha if sha is not None else repo.last_sha
        self.repos[repo_id] = dataclasses.replace(
            repo, last_synced_at=self.clock(), last_sha=sha, last_error=error
        )

    async def policy_for(self, ops_repo_id: int) -> RepoPolicy:
        return self.policies.get(ops_repo_id, RepoPolicy())

    async def claim_objects(
        self, *, deployment_id: int, refs: Sequence[ObjectRef]
    ) -> list[tuple[ObjectRef, str]]:
        self._fault("claim_objects")
        keys = [key_of(r) for r in refs]
        taken = []
        for ref, key in zip(refs, keys, strict=True):
            owner = self.owners.get(key, deployment_id)
            if owner != deployment_id:
                row = self.deployments[owner]
                taken.append((ref, f"{row.project}/{row.environment}"))
        if not taken:
            self.owners.update(dict.fromkeys(keys, deployment_id))
            self.objects.update(zip(keys, refs, strict=True))
        return taken

    async def prune_history(self, *, keep_days: float, batch: int = 1000) -> int:
        """Deletes rows finished longer ago than ``keep_days`` (the real one also keeps what a
        rollback needs; the loop's tests only need that it is called)."""
        self._fault("prune_history")
        cutoff = self.clock() - dt.timedelta(days=keep_days)
        old = [h for h in self.history if h.finished_at < cutoff][:batch]
        self.history = [h for h in self.history if h not in old]
        return len(old)

    async def cancels_requested(self, *, daemon_id: str, ids: list[int]) -> set[int]:
        self._fault("cancels_requested")
        rows = [self.deployments[i] for i in ids if i in self.deployments]
        return {
            row.id
            for row in rows
            if row.claimed_by == daemon_id
            and row.cancel_requested_generation is not None
            and row.cancel_requested_generation == row.attempt_generation
        }
