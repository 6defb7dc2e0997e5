"""``GET /api/v1/audit`` (admin): who changed which desired state, newest first.  A token
bound to a project sees that project's rows only."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from reconciler.access import AuditEntry, Scope
from reconciler.web.api.deployments import DNS_LABEL
from reconciler.web.api.errors import json_response
from reconciler.web.api.routes import Call, Operation
from reconciler.web.api.validation import Field

QUERY = {
    "project": Field(kind="string", description="only this project's", pattern=DNS_LABEL),
    "environment": Field(kind="string", description="only this environment's", pattern=DNS_LABEL),
    "limit": Field(
        kind="integer", description="at most this many rows (default 50)", minimum=1, maximum=1000
    ),
}


def audit_json(entry: AuditEntry) -> dict[str, Any]:
    """One audit row as the API shows it (every column)."""
    return dict(entry.__dict__)


async def list_audit(call: Call) -> web.Response:
    """GET the audit, newest first (a project-bound token: its project's)."""
    params = call.query(QUERY)
    project = params["project"]
    if project is not None:
        call.allow(Scope.ADMIN, project)
    rows = await call.store.audit_rows(
        project=project or call.token.project,
        environment=params["environment"],
        limit=params["limit"] or 50,
    )
    return json_response({"audit": [audit_json(r) for r in rows]})


OPERATIONS = [
    Operation(
        operation_id="listAudit",
        method="GET",
        path="/api/v1/audit",
        scope=Scope.ADMIN,
        handler=list_audit,
        per_project=True,
    )
]
