"""Day-two commands on one deployment: cancel, pause and resume, retry, redeploy.

Each is one statement of queries.sql an admin can run in psql just as well; a statement whose
precondition does not hold changes nothing, and the error then says why, naming the deployment.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import TextClause

from reconciler.access import AuditClaim
from reconciler.db.audit import claim_change
from reconciler.db.queries import query
from reconciler.db.reads import Reads
from reconciler.errors import InputError
from reconciler.model import Deployment


class DayTwo(Reads):
    """Each command's ``claim`` says who the audit records (``reconciler.db.audit``)."""

    async def cancel(
        self, *, project: str, environment: str, claim: AuditClaim | None = None
    ) -> int:
        """Cancel the in-flight rollout; returns the generation it was for.  InputError when
        nothing is in flight."""
        where = {"project": project, "environment": environment}
        row = await self._one(query("cancel_deployment"), claim, **where)
        if row is None:
            await self._explain(project, environment, "has no rollout in flight: nothing to cancel")
        assert row is not None
        generation: int = row.attempt_generation
        return generation

    async def cancels_requested(self, *, daemon_id: str, ids: list[int]) -> set[int]:
        """Of ``ids`` (claimed by ``daemon_id``), those whose rollout was cancelled."""
        if not ids:
            return set()
        params = {"daemon_id": daemon_id, "ids": ids}
        async with self._raw_once() as conn:
            return {r.id for r in await conn.execute(query("cancels_requested"), params)}

    async def set_paused(
        self, *, project: str, environment: str, paused: bool, claim: AuditClaim | None = None
    ) -> bool:
        """Pause or resume; False when it was in that state already."""
        params = {"project": project, "environment": environment, "paused": paused}
        row = await self._one(query("set_paused"), claim, **params)
        if row is None:
            await self._explain(project, environment, "")
        return row is not None

    async def retry(
        self, *, project: str, environment: str, claim: AuditClaim | None = None
    ) -> None:
        """Un-park a deployment whose retries are spent or that failed permanently."""
        where = {"project": project, "environment": environment}
        row = await self._one(query("retry_deployment"), claim, **where)
        if row is None:
            deployment = await self._explain(project, environment, "")
            raise InputError(
                f"deployment {project}/{environment} is not parked (it is "
                f"{_state(deployment)}): only a failed deployment with no retry scheduled "
                "can be retried"
            )

    async def redeploy(
        self, *, project: str, environment: str, restart: bool, claim: AuditClaim | None = None
    ) -> int:
        """Ask for an apply even when nothing changed; returns the new generation."""
        params = {"project": project, "environment": environment, "restart": restart}
        row = await self._one(query("redeploy_deployment"), claim, **params)
        if row is None:
            deployment = await self._explain(project, environment, "")
            raise InputError(
                f"deployment {project}/{environment} is {deployment.desired_status}, not "
                "active: only an active deployment can be redeployed"
            )
        generation: int = row.generation
        return generation

    async def parked_rows(self) -> list[dict[str, Any]]:
        """The ``deployments_parked`` view: what waits for a human."""
        async with self._tx() as conn:
            return [dict(r._mapping) for r in await conn.execute(query("parked_rows"))]

    async def _one(self, statement: TextClause, claim: AuditClaim | None, **params: Any) -> Any:
        async with self._tx() as conn:
            await claim_change(conn, claim)
            return (await conn.execute(statement, params)).one_or_none()

    async def _explain(self, project: str, environment: str, refusal: str) -> Deployment:
        """The deployment a statement changed nothing of: InputError when there is none, or
        with ``refusal`` when one is given."""
        deployment = await self.get_deployment(project=project, environment=environment)
        if deployment is None:
            raise InputError(f"no deployment {project}/{environment}")
        if refusal:
            raise InputError(f"deployment {project}/{environment} {refusal}")
        return deployment


def _state(deployment: Deployment) -> str:
    if deployment.current_status != "failed":
        return deployment.current_status
    if deployment.generation != deployment.observed_generation:
        return "failed, with a newer desired state pending"
    return "failed, with a retry scheduled"
