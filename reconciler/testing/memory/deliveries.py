"""An in-memory :class:`reconciler.ports.DeliveryStore`: the outbox with the real one's rules
(a claim skips rows claimed by others and counts the attempt; a finish needs the claim)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from reconciler.errors import DatabaseUnavailable
from reconciler.model import DueDelivery


@dataclass
class MemoryDelivery:
    """One ``event_deliveries`` row and its webhook's columns."""

    id: int
    webhook: str
    url: str
    format: str
    secret: str | None
    event: Mapping[str, Any]
    status: str = "pending"
    attempts: int = 0
    due_at: float = 0.0
    claimed_by: str | None = None
    last_code: int | None = None
    last_error: str | None = None
    codes: list[int | None] = field(default_factory=list)
    """Every attempt's code, in order (the table keeps only the last)."""


class InMemoryDeliveries:
    """The outbox in memory.  ``faults[name]`` lists DatabaseUnavailable counts per method:
    ``faults["claim_deliveries"] = 2`` fails the next two claims."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.rows: dict[int, MemoryDelivery] = {}
        self.faults: dict[str, int] = {}
        self._clock = clock
        self._next_id = 1

    def queue(
        self,
        event: Mapping[str, Any],
        *,
        url: str = "http://receiver.test/hook",
        format: str = "json",
        secret: str | None = None,
        webhook: str = "hook",
    ) -> MemoryDelivery:
        """What the events trigger does for one matching webhook."""
        row = MemoryDelivery(
            id=self._next_id,
            webhook=webhook,
            url=url,
            format=format,
            secret=secret,
            event=dict(event),
            due_at=self._clock(),
        )
        self.rows[row.id] = row
        self._next_id += 1
        return row

    def _fault(self, name: str) -> None:
        if self.faults.get(name, 0) > 0:
            self.faults[name] -= 1
            raise DatabaseUnavailable(f"{name}: the database is away (scripted)")

    async def claim_deliveries(
        self, *, daemon_id: str, limit: int, lease_s: float
    ) -> list[DueDelivery]:
        self._fault("claim_deliveries")
        now = self._clock()
        due = [r for r in self.rows.values() if r.status == "pending" and r.due_at <= now]
        claimed: list[DueDelivery] = []
        for row in sorted(due, key=lambda r: (r.due_at, r.id))[: max(limit, 0)]:
            row.claimed_by = daemon_id
            row.attempts += 1
            row.due_at = now + lease_s
            claimed.append(
                DueDelivery(
                    id=row.id,
                    webhook=row.webhook,
                    url=row.url,
                    format=row.format,
                    secret=row.secret,
                    event=row.event,
                    attempts=row.attempts,
                )
            )
        return claimed

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
        self._fault("finish_delivery")
        row = self.rows.get(delivery_id)
        if row is None or row.claimed_by != daemon_id or row.status != "pending":
            return False
        row.status, row.last_code, row.last_error, row.claimed_by = status, code, error, None
        row.codes.append(code)
        if status == "pending":
            row.due_at = self._clock() + (retry_in_s or 0.0)
        return True

    async def release_deliveries(self, *, daemon_id: str, ids: Sequence[int], error: str) -> None:
        self._fault("release_deliveries")
        for delivery_id in ids:
            row = self.rows.get(delivery_id)
            if row is not None and row.claimed_by == daemon_id and row.status == "pending":
                row.claimed_by, row.last_error = None, error
                row.attempts = max(row.attempts - 1, 0)
                row.due_at = self._clock()

    async def prune_deliveries(self, *, keep_days: float, batch: int = 1000) -> int:
        # Rows here carry no creation time: every finished one counts as old.
        finished = [i for i, r in self.rows.items() if r.status != "pending"]
        for delivery_id in finished:
            del self.rows[delivery_id]
        return len(finished)
