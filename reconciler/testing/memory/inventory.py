"""The in-memory store's inventory and live-state half (``deployment_objects``, heals,
health changes), with the real statements' preconditions."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from reconciler.model import (
    Deployment,
    HistoryEntry,
    ObjectHealth,
    ObjectRef,
    RepoPolicy,
    StartedAttempt,
    WatchedDeployment,
)

Key = tuple[str, str, str, str]

_LIVE = ("healthy", "degraded", "drifted")


def key_of(ref: ObjectRef) -> Key:
    """The inventory's key: the API group, not the version."""
    return (ref.api_version.rpartition("/")[0], ref.kind, ref.namespace or "", ref.name)


class InventoryMemory:
    """Mixed into :class:`reconciler.testing.memory.store.InMemoryStore`."""

    clock: Callable[[], dt.datetime]
    deployments: dict[int, Deployment]
    history: list[HistoryEntry]
    owners: dict[Key, int]
    objects: dict[Key, ObjectRef]
    object_health: dict[Key, ObjectHealth]

    _put: Callable[..., Deployment]
    _append_history: Callable[..., None]
    _fault: Callable[[str], object]
    policy_for: Callable[[int], Awaitable[RepoPolicy]]
    claim_objects: Callable[..., Awaitable[list[tuple[ObjectRef, str]]]]
    start_attempt: Callable[..., Awaitable[dt.datetime | None]]

    async def policy_and_inventory(
        self, *, ops_repo_id: int, deployment_id: int
    ) -> tuple[RepoPolicy, list[ObjectRef]]:
        return await self.policy_for(ops_repo_id), await self.inventory_of(deployment_id)

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
        if self.deployments[deployment_id].claimed_by != daemon_id:
            self._fault("start_attempt")
            return StartedAttempt(started_at=None)
        owners, objects = dict(self.owners), dict(self.objects)
        try:
            taken = await self.claim_objects(deployment_id=deployment_id, refs=refs)
            if taken:
                return StartedAttempt(started_at=None, taken=tuple(taken))
            started = await self.start_attempt(
                deployment_id=deployment_id,
                daemon_id=daemon_id,
                action=action,
                image_ref=image_ref,
                values_override=values_override,
                generation=generation,
            )
        except BaseException:
            self.owners, self.objects = owners, objects  # one transaction: all or nothing
            raise
        return StartedAttempt(started_at=started)

    async def inventory_of(self, deployment_id: int) -> list[ObjectRef]:
        return sorted(
            (self.objects[k] for k, owner in self.owners.items() if owner == deployment_id),
            key=key_of,
        )

    async def all_inventory(self) -> list[tuple[int, ObjectRef]]:
        return [(owner, self.objects[k]) for k, owner in self.owners.items()]

    async def forget_objects(self, *, deployment_id: int, refs: Sequence[ObjectRef]) -> None:
        for ref in refs:
            if self.owners.get(key_of(ref)) == deployment_id:
                del self.owners[key_of(ref)]
                self.objects.pop(key_of(ref), None)

    async def record_object_health(self, healths: Sequence[ObjectHealth]) -> None:
        for health in healths:
            if key_of(health.ref) in self.owners:
                self.object_health[key_of(health.ref)] = health

    async def history_entry(self, history_id: int) -> HistoryEntry | None:
        return next((h for h in self.history if h.id == history_id), None)

    async def request_heal(self, ids: Sequence[int]) -> list[int]:
        asked = []
        for deployment_id in ids:
            row = self.deployments.get(deployment_id)
            if (
                row is not None
                and row.heal_requested_at is None
                and row.desired_status in ("active", "rollback")
                and row.current_status in _LIVE
            ):
                self._put(row, heal_requested_at=self.clock())
                asked.append(deployment_id)
        return asked

    async def record_health_change(
        self, *, deployment_id: int, from_status: str, to_status: str, message: str, daemon: str
    ) -> bool:
        row = self.deployments.get(deployment_id)
        if row is None or row.current_status != from_status or row.claimed_by is not None:
            return False
        row = self._put(row, current_status=to_status, status_message=message)
        self._append_history(
            row,
            generation=row.generation,
            action="health",
            status=to_status,
            image_ref=row.current_image_ref or "",
            values=row.current_values if row.current_values is not None else {},
            sha=row.current_sha,
            digest=row.applied_digest,
            message=message,
            daemon=daemon,
            started_at=self.clock(),
        )
        return True

    async def watched_among(self, ids: Sequence[int]) -> list[WatchedDeployment]:
        return [d for d in await self.watched_deployments() if d.id in set(ids)]

    async def inventory_among(self, ids: Sequence[int]) -> list[tuple[int, ObjectRef]]:
        return [(owner, ref) for owner, ref in await self.all_inventory() if owner in set(ids)]

    async def watched_deployments(self) -> list[WatchedDeployment]:
        return [
            WatchedDeployment(
                id=row.id,
                project=row.project,
                environment=row.environment,
                current_status=row.current_status,
                desired_status=row.desired_status,
                paused=row.paused,
                self_heal=row.self_heal,
            )
            for row in self.deployments.values()
            if row.current_status in _LIVE
        ]
