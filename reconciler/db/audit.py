"""The audit of desired-state changes (``deployment_audit``): reading it, and claiming who a
transaction's writes come from (the trigger of migration 0009 writes the rows)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from reconciler.access import AuditClaim, AuditEntry
from reconciler.db.connection import RawConnection, Transactional
from reconciler.db.queries import query


async def claim_change(conn: AsyncConnection | RawConnection, claim: AuditClaim | None) -> None:
    """Tell the audit trigger, for the rest of this transaction, where its writes come from
    (nothing when ``claim`` is None: the audit then records them as plain SQL)."""
    if claim is not None:
        await conn.execute(query("claim_change"), {"via": claim.via, "actor": claim.actor})


class Audit(Transactional):
    """Reading ``deployment_audit`` (the triggers write it)."""

    async def audit_rows(
        self, *, project: str | None = None, environment: str | None = None, limit: int = 50
    ) -> list[AuditEntry]:
        """The newest audit rows (of ``project`` and ``environment`` when given), newest
        first."""
        params: dict[str, Any] = {"project": project, "environment": environment, "limit": limit}
        async with self._tx() as conn:
            found = await conn.execute(query("audit_rows"), params)
            return [AuditEntry(**r._mapping) for r in found]
