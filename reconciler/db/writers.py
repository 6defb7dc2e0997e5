"""The writers' side of ``deployments``: what a pipeline (or the CLI) changes, desired state."""

from __future__ import annotations

import json
from typing import Any

from reconciler.access import AuditClaim
from reconciler.db import rows
from reconciler.db.audit import claim_change
from reconciler.db.connection import Transactional
from reconciler.db.errors import refused_write, shown
from reconciler.db.queries import query
from reconciler.errors import DatabaseError, InputError
from reconciler.model import Deployment

VALUES_DEPTH_LIMIT = 32
"""The trigger's limit on how deeply values_override nests (migration 0002), named here for the
values too deep for Python even to encode, which never reach the trigger."""

DESIRED_STATE_COLUMNS = (
    "image_ref",
    "desired_status",
    "values_override",
    "namespace",
    "ops_repo_id",
    "rollback_to",
)


class Writers(Transactional):
    async def upsert_deployment(
        self,
        *,
        project: str,
        environment: str,
        ops_repo_id: int,
        image_ref: str,
        namespace: str | None = None,
        values_override: Any = None,
        desired_status: str = "active",
        claim: AuditClaim | None = None,
    ) -> Deployment:
        """What a pipeline does: INSERT ... ON CONFLICT (project, environment) DO UPDATE
        (``claim``: who the audit records, see :func:`reconciler.db.audit.claim_change`)."""
        what = f"deployment {shown(project)}/{shown(environment)}"
        params = {
            "project": project,
            "environment": environment,
            "ops_repo_id": ops_repo_id,
            "image_ref": image_ref,
            "namespace": namespace,
            "values_override": values_json(
                {} if values_override is None else values_override, what=what
            ),
            "desired_status": desired_status,
        }
        try:
            async with self._tx() as conn:
                await claim_change(conn, claim)
                row = (await conn.execute(query("upsert_deployment"), params)).one()
        except DatabaseError as exc:
            raise refused_write(exc, what) from exc
        return rows.deployment(row)

    async def set_desired(
        self, *, project: str, environment: str, claim: AuditClaim | None = None, **changes: Any
    ) -> Deployment:
        """Change desired-state columns of one deployment (the CLI and tests use this;
        ``claim``: who the audit records)."""
        unknown = set(changes) - set(DESIRED_STATE_COLUMNS)
        if unknown:
            raise InputError(f"not a desired-state column: {', '.join(sorted(unknown))}")
        what = f"deployment {shown(project)}/{shown(environment)}"
        params = set_desired_params(changes, what=what)
        try:
            async with self._tx() as conn:
                await claim_change(conn, claim)
                row = (
                    await conn.execute(
                        query("set_desired"),
                        {"project": project, "environment": environment, **params},
                    )
                ).one_or_none()
        except DatabaseError as exc:
            raise refused_write(exc, what) from exc
        if row is None:
            raise InputError(f"no deployment {project}/{environment}")
        return rows.deployment(row)


def set_desired_params(changes: dict[str, Any], *, what: str) -> dict[str, Any]:
    """The ``set_desired`` statement's parameters: a ``set_<column>`` flag and a value for each
    desired-state column (values_override as JSON text)."""
    params: dict[str, Any] = {}
    for column in DESIRED_STATE_COLUMNS:
        params[f"set_{column}"] = column in changes
        value = changes.get(column)
        params[column] = values_json(value, what=what) if column == "values_override" else value
    return params


def values_json(value: Any, *, what: str) -> str:
    """``value`` as JSON text, or the trigger's refusal for a value nested too deeply for
    Python's encoder (which recurses) to encode."""
    try:
        return json.dumps(value)
    except RecursionError:
        raise InputError(
            f"{what}: values_override is nested {nesting_depth(value)} levels deep; the limit is "
            f"{VALUES_DEPTH_LIMIT} (deployments_values_override_bounded)"
        ) from None


def nesting_depth(value: Any) -> int:
    """How many lists and mappings deep ``value`` nests, counted without recursing."""
    deepest = 0
    pending: list[tuple[Any, int]] = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict | list | tuple):
            deepest = max(deepest, depth + 1)
            children = item.values() if isinstance(item, dict) else item
            pending.extend((child, depth + 1) for child in children)
    return deepest
