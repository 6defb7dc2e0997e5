"""What the HTTP API needs of the database beyond the CLI's statements: a project's
deployments, objects with their health, the PATCH of desired state, and the ops repos' admin."""

from __future__ import annotations

from typing import Any

from reconciler.access import AuditClaim
from reconciler.db import rows
from reconciler.db.audit import claim_change
from reconciler.db.connection import Transactional
from reconciler.db.errors import refused_write, shown
from reconciler.db.queries import query
from reconciler.db.writers import values_json
from reconciler.errors import DatabaseError
from reconciler.model import Deployment

PATCHABLE_DEPLOYMENT = ("image_ref", "values_override", "desired_status", "paused")
"""The columns ``PATCH /api/v1/deployments/{project}/{environment}`` may set."""

"""The columns ``PATCH /api/v1/ops-repos/{name}`` may set."""


def _flagged(columns: tuple[str, ...], changes: dict[str, Any]) -> dict[str, Any]:
    """A ``set_<column>`` flag and a value for each of ``columns``."""
    params: dict[str, Any] = {}
    for column in columns:
        params[f"set_{column}"] = column in changes
        params[column] = changes.get(column)
    return params


class ApiParts(Transactional):
    """The HTTP API's own statements (queries.sql, "the HTTP API" section)."""

    async def deployments_of(self, project: str | None) -> list[Deployment]:
        """Every deployment of ``project`` (of every project when None)."""
        async with self._tx() as conn:
            found = await conn.execute(query("deployments_of"), {"project": project})
            return [rows.deployment(r) for r in found]

    async def objects_with_health(self, deployment_id: int) -> list[dict[str, Any]]:
        """The deployment's objects: api_version, kind, namespace, name, health, message,
        applied_at, updated_at."""
        async with self._tx() as conn:
            found = await conn.execute(
                query("objects_with_health"), {"deployment_id": deployment_id}
            )
            return [dict(r._mapping) for r in found]

    async def patch_deployment(
        self, *, project: str, environment: str, changes: dict[str, Any], claim: AuditClaim
    ) -> Deployment | None:
        """One UPDATE of the columns in ``changes`` (of :data:`PATCHABLE_DEPLOYMENT`), audited
        as ``claim``; None when there is no such deployment.  A refusal of the schema is an
        InputError naming the rule (RefusedWrite, with the column)."""
        what = f"deployment {shown(project)}/{shown(environment)}"
        params = _flagged(PATCHABLE_DEPLOYMENT, changes)
        if "values_override" in changes:
            params["values_override"] = values_json(changes["values_override"], what=what)
        params.update(project=project, environment=environment)
        try:
            async with self._tx() as conn:
                await claim_change(conn, claim)
                row = (await conn.execute(query("patch_deployment"), params)).one_or_none()
        except DatabaseError as exc:
            raise refused_write(exc, what) from exc
        return rows.deployment(row) if row else None
