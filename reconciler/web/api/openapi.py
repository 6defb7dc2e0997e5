"""The OpenAPI 3.0 document of ``/api/v1``, served at ``/api/v1/openapi.json`` (no token).

Built from the operations themselves (their paths, methods and scopes) and the declarations
validation checks bodies and queries against, so it describes what the server does."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import Any

from reconciler.web.api import audit, deployments, ops_repos
from reconciler.web.api.routes import Operation
from reconciler.web.api.schemas import RESPONSES, Schema, body_schema, field_schema
from reconciler.web.api.validation import Body, Field

OPENAPI_PATH = "/api/v1/openapi.json"

_PATH_PARAMETERS = {
    "project": (deployments.DNS_LABEL, "the deployment's project", "app"),
    "environment": (deployments.DNS_LABEL, "the deployment's environment", "prod"),
    "name": (ops_repos.NAME, "the ops repo's name", "ops"),
}


@dataclass(frozen=True, kw_only=True)
class Doc:
    """What the document says of one operation beyond its route."""

    summary: str
    ok: int
    answer: str | None
    query: dict[str, Field] | None = None
    body: Body | None = None


DOCS = {
    "listDeployments": Doc(
        summary="Every deployment (of the token's project, or of ?project=)",
        ok=200,
        answer="DeploymentList",
        query={"project": deployments.PROJECT_FILTER},
    ),
    "getDeployment": Doc(
        summary="One deployment: desired and current state, its latest history rows, the "
        "objects it owns with their health",
        ok=200,
        answer="DeploymentDetail",
    ),
    "patchDeployment": Doc(
        summary="Change desired state: one UPDATE, as a pipeline's; answers the new generation "
        "(for `reconciler wait --generation N`)",
        ok=200,
        answer="Deployment",
        body=deployments.PATCH_BODY,
    ),
    "getDeploymentHistory": Doc(
        summary="A deployment's attempts, newest first",
        ok=200,
        answer="HistoryList",
        query={"limit": deployments.HISTORY_LIMIT},
    ),
    "rollbackDeployment": Doc(
        summary="Roll back to the last healthy image, or to a chosen healthy history row",
        ok=200,
        answer="Deployment",
        body=deployments.ROLLBACK_BODY,
    ),
    "listOpsRepos": Doc(summary="Every ops repo", ok=200, answer="OpsRepoList"),
    "createOpsRepo": Doc(
        summary="Register an ops repo", ok=201, answer="OpsRepo", body=ops_repos.CREATE_BODY
    ),
    "getOpsRepo": Doc(summary="One ops repo", ok=200, answer="OpsRepo"),
    "patchOpsRepo": Doc(
        summary="Change where an ops repo points",
        ok=200,
        answer="OpsRepo",
        body=ops_repos.PATCH_BODY,
    ),
    "deleteOpsRepo": Doc(summary="Unregister an ops repo no deployment uses", ok=204, answer=None),
    "syncOpsRepo": Doc(
        summary="Ask the daemon to sync an ops repo now", ok=202, answer="SyncRequested"
    ),
    "listAudit": Doc(
        summary="Who changed which desired state, newest first",
        ok=200,
        answer="AuditList",
        query=audit.QUERY,
    ),
}


def operations() -> list[Operation]:
    """Every operation of the API, in the document's order."""
    return [*deployments.OPERATIONS, *ops_repos.OPERATIONS, *audit.OPERATIONS]


def _json(schema: Schema) -> Schema:
    return {"content": {"application/json": {"schema": schema}}}


def _error(description: str, **extra: Any) -> Schema:
    return {"description": description, **_json({"$ref": "#/components/schemas/Error"}), **extra}


def _responses(operation: Operation, doc: Doc, *, has_path: bool) -> Schema:
    ok: Schema = {"description": "done"}
    if doc.answer is not None:
        ok.update(_json({"$ref": f"#/components/schemas/{doc.answer}"}))
    challenge = {"WWW-Authenticate": {"schema": {"type": "string"}}}
    responses: Schema = {
        str(doc.ok): ok,
        "400": _error("a bad value: the message names the field"),
        "401": _error("no token, or an unknown or revoked one", headers=challenge),
        "403": _error(
            f"the token lacks scope {operation.scope.value} or is bound to another project",
            headers=challenge,
        ),
        "503": _error("the database is unavailable"),
    }
    if has_path:
        responses["404"] = _error("no such deployment or ops repo")
    if doc.body is not None:
        responses["409"] = _error("the change conflicts with the state (a name taken, in use)")
        responses["413"] = _error("the body is too large")
    if operation.operation_id == "deleteOpsRepo":
        responses["409"] = _error("a deployment uses the ops repo")
    return responses


def _parameters(operation: Operation, doc: Doc) -> list[Schema]:
    parameters: list[Schema] = []
    for name in re.findall(r"{(\w+)}", operation.path):
        pattern, description, example = _PATH_PARAMETERS[name]
        parameters.append(
            {
                "name": name,
                "in": "path",
                "required": True,
                "description": description,
                "schema": {"type": "string", "pattern": pattern},
                "example": example,
            }
        )
    for name, spec in (doc.query or {}).items():
        parameters.append(
            {
                "name": name,
                "in": "query",
                "required": False,
                "description": spec.description,
                "schema": field_schema(spec),
            }
        )
    return parameters


def _operation(operation: Operation) -> Schema:
    doc = DOCS[operation.operation_id]
    parameters = _parameters(operation, doc)
    binding = "any project's token" if operation.per_project else "a token of every project"
    described: Schema = {
        "operationId": operation.operation_id,
        "summary": doc.summary,
        "description": f"Needs scope `{operation.scope.value}` ({binding}).",
        "security": [{"bearer": []}],
        "x-required-scope": operation.scope.value,
        "responses": _responses(operation, doc, has_path="{" in operation.path),
    }
    if parameters:
        described["parameters"] = parameters
    if doc.body is not None:
        described["requestBody"] = {
            "required": True,
            **_json({"$ref": f"#/components/schemas/{doc.body.name}"}),
        }
    return described


@cache
def document() -> dict[str, Any]:
    """The whole OpenAPI document (built once)."""
    paths: dict[str, Any] = {}
    bodies: dict[str, Schema] = {}
    for operation in operations():
        paths.setdefault(operation.path, {})[operation.method.lower()] = _operation(operation)
        body = DOCS[operation.operation_id].body
        if body is not None:
            bodies[body.name] = body_schema(body)
    paths[OPENAPI_PATH] = {
        "get": {
            "operationId": "getOpenApi",
            "summary": "This document",
            "security": [],
            "responses": {"200": {"description": "the document", **_json({"type": "object"})}},
        }
    }
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "reconciler",
            "version": "1",
            "description": "The HTTP API of the reconciler daemon: deployments' desired state "
            "(the same SQL contract pipelines write), their history, ops repos, the audit. "
            "Tokens: `reconciler token create NAME --scope deploy:read|deploy:promote|admin "
            "[--project P]`; each scope implies the ones before it.",
        },
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {**RESPONSES, **bodies},
        },
    }
