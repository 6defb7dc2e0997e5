"""The JSON schemas of the API's answers (OpenAPI 3.0 dialect: ``nullable``), exactly what the
handlers write: every object closed with ``additionalProperties: false``."""

from __future__ import annotations

import copy
from typing import Any

from reconciler.web.api.validation import Body, Field

Schema = dict[str, Any]


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(schema: Schema) -> Schema:
    return {**schema, "nullable": True}


def closed(properties: dict[str, Schema], *, description: str = "") -> Schema:
    """An object with exactly these properties, all present."""
    schema: Schema = {
        "type": "object",
        "additionalProperties": False,
        "required": list(properties),
        "properties": properties,
    }
    if description:
        schema["description"] = description
    return schema


STRING: Schema = {"type": "string"}
INTEGER: Schema = {"type": "integer"}
BOOLEAN: Schema = {"type": "boolean"}
OBJECT: Schema = {"type": "object"}
TIME: Schema = {"type": "string", "format": "date-time"}


def list_of(key: str, item: str) -> Schema:
    """``{key: [item, ...]}``."""
    return closed({key: {"type": "array", "items": _ref(item)}})


_DEPLOYMENT: dict[str, Schema] = {
    "project": STRING,
    "environment": STRING,
    "namespace": STRING,
    "ops_repo_id": INTEGER,
    "desired": closed(
        {
            "image_ref": STRING,
            "values_override": OBJECT,
            "desired_status": {
                "type": "string",
                "enum": ["active", "stopped", "rollback", "deleted"],
            },
            "paused": BOOLEAN,
            "self_heal": _nullable(BOOLEAN),
            "prune_all_allowed": BOOLEAN,
            "rollback_to": _nullable(INTEGER),
        },
        description="what pipelines ask for",
    ),
    "current": closed(
        {
            "status": STRING,
            "image_ref": _nullable(STRING),
            "sha": _nullable(STRING),
            "message": STRING,
            "deployed_at": _nullable(TIME),
            "attempts": INTEGER,
            "next_attempt_at": _nullable(TIME),
            "gave_up": BOOLEAN,
        },
        description="what the daemon last saw and did",
    ),
    "generation": {"type": "integer", "description": "bumped by every desired-state change"},
    "observed_generation": {
        "type": "integer",
        "description": "the generation the daemon last finished reconciling",
    },
}

RESPONSES: dict[str, Schema] = {
    "Error": closed(
        {
            "error": closed(
                {"message": STRING, "field": _nullable(STRING)},
                description="what is wrong, and the field it is about (null: the request)",
            )
        }
    ),
    "Deployment": closed(copy.deepcopy(_DEPLOYMENT)),
    "DeploymentDetail": closed(
        {
            **copy.deepcopy(_DEPLOYMENT),
            "history": {"type": "array", "items": _ref("HistoryEntry")},
            "objects": {"type": "array", "items": _ref("InventoryObject")},
        }
    ),
    "DeploymentList": list_of("deployments", "Deployment"),
    "HistoryEntry": closed(
        {
            "id": INTEGER,
            "generation": INTEGER,
            "action": STRING,
            "status": STRING,
            "image_ref": STRING,
            "sha": _nullable(STRING),
            "values_override": OBJECT,
            "digest": _nullable(STRING),
            "message": STRING,
            "daemon": _nullable(STRING),
            "started_at": TIME,
            "finished_at": TIME,
            "duration_ms": INTEGER,
            "rolled_back_to": _nullable(INTEGER),
        }
    ),
    "HistoryList": list_of("history", "HistoryEntry"),
    "InventoryObject": closed(
        {
            "api_version": STRING,
            "kind": STRING,
            "namespace": {"type": "string", "description": "'' for a cluster-scoped object"},
            "name": STRING,
            "health": _nullable(STRING),
            "message": STRING,
            "applied_at": _nullable(TIME),
            "updated_at": TIME,
        }
    ),
    "OpsRepo": closed(
        {
            "id": INTEGER,
            "name": STRING,
            "repo_url": {"type": "string", "description": "credentials redacted"},
            "branch": STRING,
            "path": STRING,
            "sync_interval_s": INTEGER,
            "last_synced_at": _nullable(TIME),
            "last_sha": _nullable(STRING),
            "last_error": _nullable(STRING),
        }
    ),
    "OpsRepoList": list_of("ops_repos", "OpsRepo"),
    "SyncRequested": closed(
        {"name": STRING, "sync_requested": {"type": "boolean", "enum": [True]}}
    ),
    "AuditEntry": closed(
        {
            "id": INTEGER,
            "at": TIME,
            "deployment_id": INTEGER,
            "project": STRING,
            "environment": STRING,
            "operation": {"type": "string", "enum": ["insert", "update", "delete"]},
            "changes": {
                "type": "object",
                "description": "column -> {from, to}",
                "additionalProperties": closed({"from": {}, "to": {}}),
            },
            "generation": INTEGER,
            "via": {"type": "string", "enum": ["api", "cli", "sql", "daemon"]},
            "actor": _nullable(STRING),
            "claimed_via": _nullable(STRING),
            "claimed_actor": _nullable(STRING),
            "db_user": STRING,
            "application_name": STRING,
        }
    ),
    "AuditList": list_of("audit", "AuditEntry"),
}


def field_schema(spec: Field) -> Schema:
    """A body field or query parameter as JSON schema (what validation.check_value checks)."""
    schema: Schema = {"type": spec.kind, "description": spec.description}
    for key, value in (
        ("pattern", spec.pattern),
        ("minLength", spec.min_length),
        ("maxLength", spec.max_length),
        ("minimum", spec.minimum),
        ("maximum", spec.maximum),
    ):
        if value is not None:
            schema[key] = value
    if spec.enum is not None:
        schema["enum"] = list(spec.enum)
    if spec.nullable:
        schema["nullable"] = True
    return schema


def body_schema(body: Body) -> Schema:
    """A request body as JSON schema: these fields, no others."""
    schema: Schema = {
        "type": "object",
        "description": body.description,
        "additionalProperties": False,
        "properties": {name: field_schema(spec) for name, spec in body.fields.items()},
    }
    if body.required:
        schema["required"] = list(body.required)
    if body.min_properties:
        schema["minProperties"] = body.min_properties
    return schema
