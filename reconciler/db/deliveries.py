"""Outgoing webhooks in the database: ``event_webhooks`` (managed by the CLI) and the outbox
``event_deliveries`` (filled by the events trigger, emptied by the daemon's deliverer)."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from reconciler.db.connection import Transactional
from reconciler.db.errors import refused_write
from reconciler.db.queries import query
from reconciler.errors import DatabaseError, InputError
from reconciler.model import DueDelivery, Webhook

DELIVERIES_CHANNEL = "reconciler_deliveries"
"""Where the events trigger says deliveries were queued (the payload is empty)."""

_SECONDS_PER_DAY = 86400.0


class Deliveries(Transactional):
    async def add_webhook(
        self,
        *,
        name: str,
        url: str,
        project: str | None = None,
        environment: str | None = None,
        format: str = "json",
        secret: str | None = None,
        statuses: Sequence[str] | None = None,
    ) -> Webhook:
        """Register a webhook; InputError naming the rule when the table refuses it."""
        params = {
            "name": name,
            "url": url,
            "project": project,
            "environment": environment,
            "format": format,
            "secret": secret,
            "statuses": list(statuses) if statuses is not None else None,
        }
        try:
            async with self._tx() as conn:
                row = (await conn.execute(query("add_webhook"), params)).one()
        except DatabaseError as exc:
            if "event_webhooks_name_key" in str(exc):
                raise InputError(f"webhook {name!r} already exists") from exc
            raise refused_write(exc, f"webhook {name!r}") from exc
        return _webhook(row)

    async def list_webhooks(self) -> list[Webhook]:
        async with self._tx() as conn:
            return [_webhook(r) for r in await conn.execute(query("list_webhooks"))]

    async def remove_webhook(self, name: str) -> None:
        """Unregister ``name`` and its deliveries; InputError when there is none."""
        async with self._tx() as conn:
            removed = (await conn.execute(query("remove_webhook"), {"name": name})).all()
        if not removed:
            raise InputError(f"no webhook {name!r}")

    async def recent_deliveries(
        self, *, webhook: str | None = None, limit: int = 20
    ) -> list[dict[str, Any]]:
        """The newest deliveries, of ``webhook`` or of all, newest first."""
        params = {"name": webhook, "limit": limit}
        async with self._tx() as conn:
            found = await conn.execute(query("recent_deliveries"), params)
            return [dict(r._mapping) for r in found]

    async def claim_deliveries(
        self, *, daemon_id: str, limit: int, lease_s: float
    ) -> list[DueDelivery]:
        """Claim up to ``limit`` due deliveries (others' claims skipped), counting the attempt
        and leasing each for ``lease_s``."""
        if limit < 1:
            return []
        params = {"daemon_id": daemon_id, "limit": limit, "lease_s": lease_s}
        async with self._tx() as conn:
            return [_due(r) for r in await conn.execute(query("claim_deliveries"), params)]

    async def finish_delivery(
        self,
        *,
        delivery_id: int,
        daemon_id: str,
        status: str,
        code: int | None,
        error: str | None,
        retry_in_s: float | None,
    ) -> bool:
        """Record one attempt; False when the claim was no longer ours (nothing written)."""
        params = {
            "id": delivery_id,
            "daemon_id": daemon_id,
            "status": status,
            "code": code,
            "error": error,
            "retry_in_s": retry_in_s,
        }
        async with self._tx() as conn:
            return bool((await conn.execute(query("finish_delivery"), params)).all())

    async def release_deliveries(self, *, daemon_id: str, ids: Sequence[int], error: str) -> None:
        """Give back claimed deliveries not finished (shutting down): due again now."""
        if not ids:
            return
        params = {"daemon_id": daemon_id, "ids": list(ids), "error": error}
        async with self._tx() as conn:
            await conn.execute(query("release_deliveries"), params)

    async def prune_deliveries(self, *, keep_days: float, batch: int = 1000) -> int:
        """Delete finished deliveries created more than ``keep_days`` ago, ``batch`` rows per
        transaction; returns how many."""
        if not (keep_days >= 0 and math.isfinite(keep_days)):
            raise InputError(f"keep_days must be a finite number of days >= 0, got {keep_days!r}")
        params = {"keep_s": keep_days * _SECONDS_PER_DAY, "batch": max(batch, 1)}
        total = 0
        while True:
            async with self._tx() as conn:
                deleted = len((await conn.execute(query("prune_deliveries"), params)).all())
            total += deleted
            if deleted < params["batch"]:
                return total


def _webhook(row: sa.Row[Any]) -> Webhook:
    values = dict(row._mapping)
    statuses = values.pop("statuses")
    return Webhook(**values, statuses=tuple(statuses) if statuses is not None else None)


def _due(row: sa.Row[Any]) -> DueDelivery:
    values = dict(row._mapping)
    event = values.pop("event")
    return DueDelivery(**values, event=json.loads(event) if isinstance(event, str) else event)
