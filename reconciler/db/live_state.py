"""What the daemon's watches write: heal requests and health changes after the rollout."""

from __future__ import annotations

from collections.abc import Sequence

from reconciler.db import rows
from reconciler.db.connection import Transactional
from reconciler.db.queries import query
from reconciler.model import HistoryEntry, ObjectRef, WatchedDeployment


class LiveState(Transactional):
    async def request_heal(self, ids: Sequence[int]) -> list[int]:
        """Ask for a heal of these deployments (drift seen); returns those newly asked."""
        if not ids:
            return []
        async with self._tx() as conn:
            found = await conn.execute(query("request_heal"), {"ids": list(ids)})
            return [r.id for r in found]

    async def record_health_change(
        self, *, deployment_id: int, from_status: str, to_status: str, message: str, daemon: str
    ) -> bool:
        """Move a deployment no attempt holds from ``from_status`` to ``to_status`` with a
        history row ('health'); False when its status had moved on meanwhile."""
        params = {
            "id": deployment_id,
            "from_status": from_status,
            "to_status": to_status,
            "message": message[:2000],
            "daemon": daemon,
        }
        async with self._tx() as conn:
            return (await conn.execute(query("record_health_change"), params)).first() is not None

    async def watched_deployments(self) -> list[WatchedDeployment]:
        """The deployments whose objects are watched for health and drift."""
        async with self._tx() as conn:
            return [
                WatchedDeployment(**r._mapping)
                for r in await conn.execute(query("watched_deployments"))
            ]

    async def watched_among(self, ids: Sequence[int]) -> list[WatchedDeployment]:
        """Of ``ids``, the deployments whose objects are watched."""
        async with self._raw_once() as conn:
            found = await conn.execute(query("watched_among"), {"ids": list(ids)})
            return [WatchedDeployment(**r._mapping) for r in found]

    async def inventory_among(self, ids: Sequence[int]) -> list[tuple[int, ObjectRef]]:
        """The objects ``ids`` own, with their owner."""
        async with self._raw_once() as conn:
            found = await conn.execute(query("inventory_among"), {"ids": list(ids)})
            return [
                (r.deployment_id, ObjectRef(r.api_version, r.kind, r.name, r.namespace or None))
                for r in found
            ]

    async def history_entry(self, history_id: int) -> HistoryEntry | None:
        """One history row by id (what ``rollback_to`` names)."""
        async with self._tx() as conn:
            row = (await conn.execute(query("history_entry"), {"id": history_id})).one_or_none()
        return rows.history_entry(row) if row else None
