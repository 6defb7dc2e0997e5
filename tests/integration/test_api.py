"""The HTTP API under /api/v1 against a real daemon (real PostgreSQL, fakekube, git): each
endpoint with the right scope, refused without it, bad input named, and every change audited."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator
from typing import Any

import jsonschema
import pytest
from schemathesis.specs.openapi.definitions import OPENAPI_30

from reconciler.model import Deployment
from reconciler.web.api import document
from reconciler.web.api.openapi import operations
from tests.support.api import Answer, ApiClient, make_token
from tests.support.pipeline import Pipeline
from tests.support.probes import EPHEMERAL, port_of
from tests.support.waiting import wait_for_value

APP = "/api/v1/deployments/app/prod"
OTHER = "/api/v1/deployments/other/prod"


@dataclasses.dataclass
class Api:
    """A daemon serving the API, its pipeline, and a token of each kind."""

    client: ApiClient
    pipeline: Pipeline
    tokens: dict[str, str]
    head: str
    """The ops repo's last commit."""

    async def call(self, method: str, path: str, token: str | None = "admin", **kw: Any) -> Answer:
        secret = self.tokens.get(token, token) if token is not None else None
        return await self.client.call(method, path, token=secret, **kw)

    async def audit_count(self) -> int:
        return len(await self.pipeline.store.audit_rows(limit=1000))

    async def snapshot(self) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], int]:
        """What a refused request must leave as it was: desired state, ops repos, the audit
        (not what the daemon keeps changing: statuses, sync times)."""
        store = self.pipeline.store
        deployments = [
            (
                d.project,
                d.environment,
                d.image_ref,
                d.values_override,
                d.desired_status,
                d.paused,
                d.rollback_to,
                d.generation,
            )
            for d in await store.list_deployments()
        ]
        repos = [
            (r.name, r.repo_url, r.branch, r.path, r.sync_interval_s)
            for r in await store.list_ops_repos()
        ]
        return deployments, repos, await self.audit_count()


def _healthy(d: Deployment) -> bool:
    return d.current_status == "healthy"


@pytest.fixture
async def api(pipeline: Pipeline) -> AsyncIterator[Api]:
    """Deployments app/prod (healthy) and other/prod, a daemon serving HTTP, and tokens: read,
    promote, admin, app (promote, project app), other-admin (admin, project other)."""
    pipeline.ops.write_project("other")
    head = pipeline.ops.commit("other")
    daemon = await pipeline.start_daemon(http_address=EPHEMERAL)
    await pipeline.deploy("app")
    await pipeline.deploy("other")
    await pipeline.wait_for("app", until=_healthy)
    await pipeline.wait_for("other", until=_healthy)
    store = pipeline.store
    tokens = {
        "read": await make_token(store, "reader", "deploy:read"),
        "promote": await make_token(store, "promoter", "deploy:promote"),
        "admin": await make_token(store, "root", "admin"),
        "app": await make_token(store, "app-ci", "deploy:promote", "app"),
        "other-admin": await make_token(store, "other-admin", "admin", "other"),
    }
    client = ApiClient(await port_of(daemon))
    yield Api(client=client, pipeline=pipeline, tokens=tokens, head=head)


# Every operation, with a body that would be valid: (method, path, scope needed, body).
EVERY = [
    ("GET", "/api/v1/deployments", "deploy:read", None),
    ("GET", APP, "deploy:read", None),
    ("GET", APP + "/history", "deploy:read", None),
    ("PATCH", APP, "deploy:promote", {"image_ref": "reg/app:evil"}),
    ("POST", APP + "/rollback", "deploy:promote", {}),
    ("GET", "/api/v1/ops-repos", "admin", None),
    ("POST", "/api/v1/ops-repos", "admin", {"name": "evil", "repo_url": "https://git/x.git"}),
    ("GET", "/api/v1/ops-repos/ops", "admin", None),
    ("PATCH", "/api/v1/ops-repos/ops", "admin", {"branch": "evil"}),
    ("DELETE", "/api/v1/ops-repos/ops", "admin", None),
    ("POST", "/api/v1/ops-repos/ops/sync", "admin", None),
    ("GET", "/api/v1/audit", "admin", None),
]
LOWER = {"deploy:read": [], "deploy:promote": ["read"], "admin": ["read", "promote"]}


def test_every_operation_is_in_the_table_above() -> None:
    """The refusal tests below cover every operation the API registers."""
    routes = {(op.method, op.path) for op in operations()}
    covered = {
        (
            m,
            p.replace("app/prod", "{project}/{environment}").replace(
                "ops-repos/ops", "ops-repos/{name}"
            ),
        )
        for m, p, _s, _b in EVERY
    }
    assert covered == routes


async def test_the_openapi_document_is_served_and_valid(api: Api) -> None:
    """/api/v1/openapi.json needs no token, validates against the OpenAPI 3.0 schema, and
    describes every route the server has, with its security."""
    answer = await api.call("GET", "/api/v1/openapi.json", token=None)
    assert answer.status == 200
    assert answer.body == json.loads(json.dumps(document()))
    jsonschema.Draft4Validator(OPENAPI_30).validate(answer.body)
    described = {
        (method.upper(), path) for path, item in answer.body["paths"].items() for method in item
    }
    assert described == {(op.method, op.path) for op in operations()} | {
        ("GET", "/api/v1/openapi.json")
    }
    patch = answer.body["paths"]["/api/v1/deployments/{project}/{environment}"]["patch"]
    assert patch["security"] == [{"bearer": []}]
    assert patch["x-required-scope"] == "deploy:promote"
    schemas = answer.body["components"]["schemas"]
    assert schemas["DeploymentPatch"]["additionalProperties"] is False


async def test_no_token_or_a_bad_one_is_401_and_changes_nothing(api: Api) -> None:
    """Every operation, with no token, a malformed header, an unknown token or a revoked one:
    401 with WWW-Authenticate, and nothing changed or audited."""
    before = await api.snapshot()
    await api.pipeline.store.revoke_token("root")
    for method, path, _scope, body in EVERY:
        for token, headers in (
            (None, {}),
            (None, {"Authorization": "Basic cm9vdDpyb290"}),
            ("rcn_not-a-token", {}),
            ("admin", {}),  # revoked just now
        ):
            answer = await api.call(method, path, token=token, body=body, headers=headers)
            assert answer.status == 401, (method, path, token, answer.text)
            assert answer.headers["WWW-Authenticate"].startswith('Bearer realm="reconciler"')
            assert answer.message
    assert await api.snapshot() == before


async def test_a_lower_scope_or_another_project_is_403_and_changes_nothing(api: Api) -> None:
    """Every operation, with a token below its scope, or bound to another project (every
    admin operation but the audit is about every project): 403 naming why, nothing changed.
    The lists answer a project-bound token with its own project's rows."""
    before = await api.snapshot()
    for method, path, scope, body in EVERY:
        for token in [*LOWER[scope], "other-admin"]:
            answer = await api.call(method, path, token=token, body=body)
            if token == "other-admin" and path in ("/api/v1/audit", "/api/v1/deployments"):
                assert answer.status == 200, answer.text
                continue
            assert answer.status == 403, (method, path, token, answer.text)
            assert "insufficient_scope" in answer.headers["WWW-Authenticate"]
            assert answer.message
    assert await api.snapshot() == before


async def test_a_project_token_sees_and_changes_its_project_only(api: Api) -> None:
    """A token bound to 'app' lists app's deployments only, may PATCH app and not other,
    and may not ask for another project's list."""
    listed = await api.call("GET", "/api/v1/deployments", token="app")
    assert [d["project"] for d in listed.body["deployments"]] == ["app"]
    assert (await api.call("GET", "/api/v1/deployments?project=other", token="app")).status == 403
    assert (await api.call("GET", OTHER, token="app")).status == 403
    refused = await api.call("PATCH", OTHER, token="app", body={"paused": True})
    assert refused.status == 403
    assert "limited to project 'app'" in refused.message
    done = await api.call("PATCH", APP, token="app", body={"paused": True})
    assert done.status == 200, done.text
    assert done.body["desired"]["paused"] is True


async def test_reads_show_desired_and_current_state_history_and_objects(api: Api) -> None:
    """The list, the detail (history and objects with health) and the history endpoint."""
    listed = await api.call("GET", "/api/v1/deployments", token="read")
    assert listed.status == 200
    assert [(d["project"], d["environment"]) for d in listed.body["deployments"]] == [
        ("app", "prod"),
        ("other", "prod"),
    ]
    only = await api.call("GET", "/api/v1/deployments?project=other", token="read")
    assert [d["project"] for d in only.body["deployments"]] == ["other"]

    async def with_health() -> Any:
        # The watch records each object's health shortly after the rollout.
        detail = await api.call("GET", APP, token="read")
        assert detail.status == 200
        workloads = [o for o in detail.body["objects"] if o["kind"] == "Deployment"]
        return detail.body if workloads and workloads[0]["health"] is not None else None

    body = await wait_for_value(
        with_health, timeout_s=10, interval_s=0.05, failure=lambda: "no object health"
    )
    assert body["desired"]["image_ref"] == "reg/app:1"
    assert body["current"]["status"] == "healthy"
    assert body["generation"] == body["observed_generation"] == 1
    assert [(h["action"], h["status"]) for h in body["history"]] == [("deploy", "healthy")]
    assert {"Deployment", "ConfigMap"} <= {o["kind"] for o in body["objects"]}
    history = await api.call("GET", APP + "/history?limit=1", token="read")
    assert history.status == 200
    assert len(history.body["history"]) == 1
    missing = await api.call("GET", "/api/v1/deployments/app/nope", token="read")
    assert missing.status == 404
    assert missing.message == "no deployment app/nope"


async def test_a_patch_is_one_audited_update_with_a_new_generation(api: Api) -> None:
    """PATCH answers the new generation; the daemon deploys it; the audit names the API and
    the token."""
    answer = await api.call(
        "PATCH", APP, token="promote", body={"image_ref": "reg/app:2", "values_override": {}}
    )
    assert answer.status == 200, answer.text
    assert answer.body["generation"] == 2
    assert answer.body["desired"]["image_ref"] == "reg/app:2"
    await api.pipeline.wait_for("app", until=lambda d: _healthy(d) and d.observed_generation == 2)
    [entry] = await api.pipeline.store.audit_rows(project="app", limit=1)
    assert (entry.via, entry.actor, entry.generation) == ("api", "promoter", 2)
    assert entry.changes == {"image_ref": {"from": "reg/app:1", "to": "reg/app:2"}}
    audit = await api.call("GET", "/api/v1/audit?project=app&environment=prod&limit=1")
    assert audit.status == 200
    assert audit.body["audit"][0]["actor"] == "promoter"


async def test_rollback_returns_to_the_last_healthy_image_or_a_chosen_row(api: Api) -> None:
    """POST rollback asks for the last healthy image; a row that is not a healthy deploy of
    this deployment is refused naming 'to'."""
    first = (await api.call("GET", APP + "/history", token="read")).body["history"][0]
    await api.call("PATCH", APP, token="promote", body={"image_ref": "reg/app:2"})
    await api.pipeline.wait_for("app", until=lambda d: _healthy(d) and d.image_ref == "reg/app:2")
    wrong = await api.call("POST", APP + "/rollback", token="promote", body={"to": 999999})
    assert (wrong.status, wrong.field) == (400, "to")
    answer = await api.call("POST", APP + "/rollback", token="promote", body={"to": first["id"]})
    assert answer.status == 200, answer.text
    assert answer.body["desired"]["desired_status"] == "rollback"
    back = await api.pipeline.wait_for(
        "app", until=lambda d: d.image_ref == "reg/app:1" and d.desired_status == "active"
    )
    assert _healthy(back)
    vias = [(e.via, e.actor) for e in await api.pipeline.store.audit_rows(project="app", limit=2)]
    assert vias == [("daemon", "daemon-a"), ("api", "promoter")]


@pytest.mark.parametrize(
    ("raw", "field", "words"),
    [
        (b"{not json", None, "not valid JSON"),
        (b"[1]", None, "must be a JSON object"),
        (b"{}", None, "nothing to change"),
        (b'{"image_reff": "x"}', "image_reff", "unknown field 'image_reff'"),
        (b'{"image_ref": 7}', "image_ref", "must be a string"),
        (b'{"image_ref": "a b"}', "image_ref", "must match"),
        (b'{"image_ref": ""}', "image_ref", "at least 1"),
        (b'{"paused": "yes"}', "paused", "true or false"),
        (b'{"desired_status": "gone"}', "desired_status", "one of active"),
        (b'{"values_override": [1]}', "values_override", "must be a JSON object"),
        (b'{"values_override": ' + b'{"a":' * 40 + b"1" + b"}" * 41, "values_override", "40"),
        (b'{"image_ref": "a\\u0000b"}', "image_ref", "NUL"),
        (b'{"image_ref": "\\ud800"}', "image_ref", "surrogates"),
        (b"[" * 100000 + b"]" * 100000, None, "not valid JSON"),
    ],
)
async def test_bad_patch_bodies_are_400_naming_the_field(
    api: Api, raw: bytes, field: str | None, words: str
) -> None:
    """Bad JSON, unknown fields, wrong types and bad values: 400 naming the field, nothing
    changed."""
    before = await api.snapshot()
    answer = await api.call("PATCH", APP, token="promote", raw=raw)
    assert answer.status == 400, answer.text
    assert (answer.field, words in answer.message) == (field, True), answer.message
    assert await api.snapshot() == before


async def test_the_databases_rules_are_400_or_409_with_their_message(api: Api) -> None:
    """What only the schema refuses comes back with the rule's words: values_override over
    64 KiB (400, values_override), a relative path (400, path), a name taken (409), an ops
    repo in use (409)."""
    big = {"blob": "x" * 70000}
    answer = await api.call("PATCH", APP, token="promote", body={"values_override": big})
    assert (answer.status, answer.field) == (400, "values_override")
    assert "the limit is 65536" in answer.message
    bad_path = {"name": "two", "repo_url": "https://git/x.git", "path": "../up"}
    answer = await api.call("POST", "/api/v1/ops-repos", body=bad_path)
    assert (answer.status, answer.field) == (400, "path")
    assert "ops_repos_path_is_relative" in answer.message
    taken = await api.call(
        "POST", "/api/v1/ops-repos", body={"name": "ops", "repo_url": "https://git/y.git"}
    )
    assert (taken.status, taken.field) == (409, "name")
    in_use = await api.call("DELETE", "/api/v1/ops-repos/ops")
    assert in_use.status == 409, in_use.text
    assert await api.pipeline.store.get_ops_repo("ops") is not None


async def test_a_body_over_the_cap_is_413(api: Api) -> None:
    """A body larger than 256 KiB is refused before it is parsed."""
    raw = json.dumps({"values_override": {"x": "y" * 300_000}}).encode()
    answer = await api.call("PATCH", APP, token="promote", raw=raw)
    assert answer.status == 413


async def test_unknown_query_parameters_and_bad_limits_are_400(api: Api) -> None:
    """A query parameter the operation does not know, or a limit out of range, names it."""
    unknown = await api.call("GET", APP + "/history?limt=3", token="read")
    assert (unknown.status, unknown.field) == (400, "limt")
    zero = await api.call("GET", APP + "/history?limit=0", token="read")
    assert (zero.status, zero.field) == (400, "limit")


async def test_the_ops_repo_admin_api(api: Api) -> None:
    """Register, list, show (credentials redacted), sync now (the daemon syncs a repo no
    deployment uses, so nothing else would), change, and unregister an ops repo."""
    secret_url = "https://bot:s3cret@git.example/ops.git"
    created = await api.call(
        "POST", "/api/v1/ops-repos", body={"name": "leaky", "repo_url": secret_url}
    )
    assert created.status == 201, created.text
    assert "s3cret" not in created.text
    local = {"name": "second", "repo_url": str(api.pipeline.ops.path), "sync_interval_s": 3600}
    assert (await api.call("POST", "/api/v1/ops-repos", body=local)).status == 201
    names = [r["name"] for r in (await api.call("GET", "/api/v1/ops-repos")).body["ops_repos"]]
    assert names == ["leaky", "ops", "second"]
    synced = await api.call("POST", "/api/v1/ops-repos/second/sync")
    assert synced.status == 202, synced.text
    assert synced.body == {"name": "second", "sync_requested": True}

    async def fetched() -> Any:
        shown = (await api.call("GET", "/api/v1/ops-repos/second")).body
        return shown if shown["last_sha"] else None

    shown = await wait_for_value(fetched, timeout_s=10, interval_s=0.05, failure=lambda: "no sync")
    assert shown["last_sha"] == api.head and shown["last_error"] is None
    changed = await api.call("PATCH", "/api/v1/ops-repos/second", body={"branch": "release"})
    assert (changed.status, changed.body["branch"]) == (200, "release")
    assert (await api.call("DELETE", "/api/v1/ops-repos/second")).status == 204
    assert (await api.call("GET", "/api/v1/ops-repos/second")).status == 404
    assert (await api.call("POST", "/api/v1/ops-repos/nope/sync")).status == 404


async def test_concurrent_patches_each_get_their_own_generation(api: Api) -> None:
    """Ten PATCHes at once each answer a distinct generation, each audited once."""
    before = await api.audit_count()
    answers = await asyncio.gather(
        *(
            api.call("PATCH", APP, token="promote", body={"image_ref": f"reg/app:c{i}"})
            for i in range(10)
        )
    )
    assert {a.status for a in answers} == {200}
    assert len({a.body["generation"] for a in answers}) == 10
    assert await api.audit_count() == before + 10
