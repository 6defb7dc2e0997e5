"""Read models: deployments, their history, and the status view."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from reconciler.db import rows
from reconciler.db.connection import Transactional
from reconciler.db.queries import query
from reconciler.model import Deployment, HistoryEntry


class Reads(Transactional):
    async def get_deployment(self, *, project: str, environment: str) -> Deployment | None:
        params = {"project": project, "environment": environment}
        async with self._tx() as conn:
            row = (await conn.execute(query("get_deployment"), params)).one_or_none()
        return rows.deployment(row) if row else None

    async def get_deployment_by_id(self, deployment_id: int) -> Deployment | None:
        async with self._tx() as conn:
            row = (
                await conn.execute(query("get_deployment_by_id"), {"id": deployment_id})
            ).one_or_none()
        return rows.deployment(row) if row else None

    async def list_deployments(self) -> list[Deployment]:
        async with self._tx() as conn:
            return [rows.deployment(r) for r in await conn.execute(query("list_deployments"))]

    async def last_healthy(
        self, *, deployment_id: int, other_than_image: str
    ) -> HistoryEntry | None:
        """The newest healthy deploy or rollback of an image other than ``other_than_image``."""
        params = {"deployment_id": deployment_id, "other_than_image": other_than_image}
        async with self._tx() as conn:
            row = (await conn.execute(query("last_healthy"), params)).one_or_none()
        return rows.history_entry(row) if row else None

    async def history(self, *, deployment_id: int, limit: int = 20) -> list[HistoryEntry]:
        params = {"deployment_id": deployment_id, "limit": limit}
        async with self._tx() as conn:
            return [rows.history_entry(r) for r in await conn.execute(query("history"), params)]

    async def status_rows(
        self, *, statuses: Sequence[str] | None = None, project: str | None = None
    ) -> list[dict[str, Any]]:
        """The ``deployment_status`` view, as humans read it: the rows whose ``current`` is one
        of ``statuses`` (or that are paused, when they name 'paused'), of ``project``; None:
        all of them."""
        params = {"statuses": None if statuses is None else list(statuses), "project": project}
        async with self._tx() as conn:
            return [dict(r._mapping) for r in await conn.execute(query("status_rows"), params)]

    async def status_row(self, *, project: str, environment: str) -> dict[str, Any] | None:
        """One deployment's ``deployment_status`` row (the columns ``reconciler wait`` reads:
        desired, current, generation, observed_generation, attempts, next_attempt_at,
        gave_up, message); None when there is no such deployment."""
        params = {"project": project, "environment": environment}
        async with self._tx() as conn:
            row = (await conn.execute(query("status_row"), params)).one_or_none()
        return dict(row._mapping) if row else None
