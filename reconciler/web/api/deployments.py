"""``/api/v1/deployments``: list, detail, history (``deploy:read``); PATCH of desired state
and rollback (``deploy:promote``), each one UPDATE audited as the API and the token's name."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from reconciler.access import AuditClaim, Scope
from reconciler.model import Deployment, HistoryEntry
from reconciler.web.api.errors import bad_request, json_response, not_found
from reconciler.web.api.routes import Call, Operation
from reconciler.web.api.validation import Body, Field

DNS_LABEL = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
DETAIL_HISTORY_ROWS = 10

PROJECT_FILTER = Field(kind="string", description="only this project's", pattern=DNS_LABEL)
HISTORY_LIMIT = Field(
    kind="integer", description="at most this many rows (default 20)", minimum=1, maximum=1000
)

PATCH_BODY = Body(
    name="DeploymentPatch",
    description="the desired-state columns to change",
    min_properties=1,
    fields={
        "image_ref": Field(
            kind="string",
            description="the image to deploy",
            pattern=r"^\S+$",
            min_length=1,
            max_length=4096,
        ),
        "values_override": Field(
            kind="object",
            description="values over the ops repo's (a JSON object, at most 32 levels deep)",
        ),
        "desired_status": Field(
            kind="string",
            description="what to do with it",
            enum=("active", "stopped", "rollback", "deleted"),
        ),
        "paused": Field(kind="boolean", description="leave it alone until resumed"),
    },
)

ROLLBACK_BODY = Body(
    name="RollbackRequest",
    description="where to roll back to",
    fields={
        "to": Field(
            kind="integer",
            description="the healthy history row to return to (default: the newest healthy "
            "deploy of another image)",
            minimum=1,
            maximum=2**63 - 1,
            nullable=True,
        )
    },
)


def deployment_json(d: Deployment) -> dict[str, Any]:
    """A deployment as the API shows it: desired and current state, the generations."""
    return {
        "project": d.project,
        "environment": d.environment,
        "namespace": d.namespace,
        "ops_repo_id": d.ops_repo_id,
        "desired": {
            "image_ref": d.image_ref,
            "values_override": d.values_override,
            "desired_status": d.desired_status,
            "paused": d.paused,
            "self_heal": d.self_heal,
            "prune_all_allowed": d.prune_all_allowed,
            "rollback_to": d.rollback_to,
        },
        "current": {
            "status": d.current_status,
            "image_ref": d.current_image_ref,
            "sha": d.current_sha,
            "message": d.status_message,
            "deployed_at": d.deployed_at,
            "attempts": d.attempts,
            "next_attempt_at": d.next_attempt_at,
            "gave_up": d.current_status == "failed"
            and d.next_attempt_at is None
            and d.generation == d.observed_generation,
        },
        "generation": d.generation,
        "observed_generation": d.observed_generation,
    }


def history_json(h: HistoryEntry) -> dict[str, Any]:
    """One history row (an attempt) as the API shows it."""
    return {
        "id": h.id,
        "generation": h.generation,
        "action": h.action,
        "status": h.status,
        "image_ref": h.image_ref,
        "sha": h.sha,
        "values_override": h.values_override,
        "digest": h.digest,
        "message": h.message,
        "daemon": h.daemon,
        "started_at": h.started_at,
        "finished_at": h.finished_at,
        "duration_ms": h.duration_ms,
        "rolled_back_to": h.rolled_back_to,
    }


def _where(call: Call, scope: Scope) -> tuple[str, str]:
    """The path's deployment, once the token may act on its project (403 before 404)."""
    project, environment = call.path("project"), call.path("environment")
    call.allow(scope, project)
    if not (re.match(DNS_LABEL, project) and re.match(DNS_LABEL, environment)):
        raise not_found(f"no deployment {project!r}/{environment!r}: names are DNS labels")
    return project, environment


async def _existing(call: Call, project: str, environment: str) -> Deployment:
    found = await call.store.get_deployment(project=project, environment=environment)
    if found is None:
        raise not_found(f"no deployment {project}/{environment}")
    return found


async def list_deployments(call: Call) -> web.Response:
    """GET /api/v1/deployments: every deployment of the token's (or the asked) project."""
    project = call.query({"project": PROJECT_FILTER})["project"]
    if project is not None:
        call.allow(Scope.DEPLOY_READ, project)
    found = await call.store.deployments_of(project or call.token.project)
    return json_response({"deployments": [deployment_json(d) for d in found]})


async def get_deployment(call: Call) -> web.Response:
    """GET one deployment, with its latest history rows and its objects' health."""
    call.query({})
    project, environment = _where(call, Scope.DEPLOY_READ)
    found = await _existing(call, project, environment)
    history = await call.store.history(deployment_id=found.id, limit=DETAIL_HISTORY_ROWS)
    objects = await call.store.objects_with_health(found.id)
    return json_response(
        {
            **deployment_json(found),
            "history": [history_json(h) for h in history],
            "objects": objects,
        }
    )


async def get_history(call: Call) -> web.Response:
    """GET a deployment's attempts, newest first."""
    limit = call.query({"limit": HISTORY_LIMIT})["limit"] or 20
    project, environment = _where(call, Scope.DEPLOY_READ)
    found = await _existing(call, project, environment)
    history = await call.store.history(deployment_id=found.id, limit=limit)
    return json_response({"history": [history_json(h) for h in history]})


async def patch_deployment(call: Call) -> web.Response:
    """PATCH desired state: one audited UPDATE; answers the new generation."""
    call.query({})
    project, environment = _where(call, Scope.DEPLOY_PROMOTE)
    changes = await call.body(PATCH_BODY)
    updated = await call.store.patch_deployment(
        project=project, environment=environment, changes=changes, claim=_claim(call)
    )
    if updated is None:
        raise not_found(f"no deployment {project}/{environment}")
    return json_response(deployment_json(updated))


async def rollback(call: Call) -> web.Response:
    """POST rollback: to the last healthy image, or to a healthy history row of it."""
    call.query({})
    project, environment = _where(call, Scope.DEPLOY_PROMOTE)
    target = (await call.body(ROLLBACK_BODY)).get("to")
    found = await _existing(call, project, environment)
    if target is not None:
        row = await call.store.history_entry(target)
        if row is None or row.deployment_id != found.id or row.status != "healthy":
            raise bad_request(
                f"history row {target} is not a healthy deploy of {project}/{environment} "
                f"(GET /api/v1/deployments/{project}/{environment}/history lists them)",
                field="to",
            )
    updated = await call.store.set_desired(
        project=project,
        environment=environment,
        claim=_claim(call),
        desired_status="rollback",
        rollback_to=target,
    )
    return json_response(deployment_json(updated))


def _claim(call: Call) -> AuditClaim:
    return AuditClaim(via="api", actor=call.token.name)


_ONE = "/api/v1/deployments/{project}/{environment}"

OPERATIONS = [
    Operation(
        operation_id="listDeployments",
        method="GET",
        path="/api/v1/deployments",
        scope=Scope.DEPLOY_READ,
        handler=list_deployments,
        per_project=True,
    ),
    Operation(
        operation_id="getDeployment",
        method="GET",
        path=_ONE,
        scope=Scope.DEPLOY_READ,
        handler=get_deployment,
        per_project=True,
    ),
    Operation(
        operation_id="patchDeployment",
        method="PATCH",
        path=_ONE,
        scope=Scope.DEPLOY_PROMOTE,
        handler=patch_deployment,
        per_project=True,
    ),
    Operation(
        operation_id="getDeploymentHistory",
        method="GET",
        path=_ONE + "/history",
        scope=Scope.DEPLOY_READ,
        handler=get_history,
        per_project=True,
    ),
    Operation(
        operation_id="rollbackDeployment",
        method="POST",
        path=_ONE + "/rollback",
        scope=Scope.DEPLOY_PROMOTE,
        handler=rollback,
        per_project=True,
    ),
]
