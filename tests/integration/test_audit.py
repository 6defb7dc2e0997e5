"""The audit of desired-state changes (migration 0009): every writer is recorded, in its own
transaction, and nobody can forge or erase the record."""

from __future__ import annotations

import asyncio
import getpass
from collections.abc import AsyncIterator

import asyncpg
import pytest

from reconciler.access import AuditClaim, AuditEntry
from reconciler.db import Store, asyncpg_dsn
from tests.support.logins import Login, logins, run_as
from tests.support.pipeline import Pipeline
from tests.support.processes import run_cli

APP = "WHERE project = 'app' AND environment = 'prod'"


@pytest.fixture
async def login(store: Store) -> AsyncIterator[Login]:
    """LOGIN roles on the test's server, dropped afterwards."""
    async with logins(store.url) as make:
        yield make


@pytest.fixture
async def app(store: Store) -> Store:
    """A store holding deployment app/prod of ops repo 'ops' (one audit row: its insert)."""
    repo = await store.add_ops_repo(name="ops", repo_url="https://git.example/ops.git")
    await store.upsert_deployment(
        project="app", environment="prod", ops_repo_id=repo.id, image_ref="reg/app:1"
    )
    return store


async def _newest(store: Store) -> AuditEntry:
    return (await store.audit_rows(limit=1))[0]


async def test_an_insert_records_the_desired_state_as_plain_sql(app: Store) -> None:
    """The insert is one row: every desired column from null, via sql, by the database user."""
    [entry] = await app.audit_rows()
    assert (entry.operation, entry.via, entry.actor, entry.db_user) == (
        "insert",
        "sql",
        None,
        "postgres",
    )
    assert entry.changes["image_ref"] == {"from": None, "to": "reg/app:1"}
    assert entry.changes["namespace"] == {"from": None, "to": "app-prod"}
    assert "self_heal" not in entry.changes and "rollback_to" not in entry.changes  # null
    assert entry.generation == 1


async def test_a_psql_update_records_role_and_application_name(app: Store) -> None:
    """A plain UPDATE names the changed column only, the new generation, and the session."""
    conn = await asyncpg.connect(
        asyncpg_dsn(app.url), server_settings={"application_name": "ci-deploy"}
    )
    try:
        await conn.execute(f"UPDATE deployments SET image_ref = 'reg/app:2' {APP}")
    finally:
        await conn.close()
    entry = await _newest(app)
    assert entry.changes == {"image_ref": {"from": "reg/app:1", "to": "reg/app:2"}}
    assert (entry.operation, entry.generation, entry.via) == ("update", 2, "sql")
    assert entry.application_name == "ci-deploy"


async def test_the_daemons_own_columns_are_not_audited(app: Store) -> None:
    """Writes of current_* and the lease (the daemon's bookkeeping) add no audit row."""
    await run_as(
        app.url,
        f"UPDATE deployments SET current_status = 'healthy', status_message = 'x', "
        f"claimed_by = 'd', observed_generation = 1 {APP}",
        f"UPDATE deployments SET image_ref = image_ref {APP}",
    )
    assert len(await app.audit_rows()) == 1


async def test_a_pipelines_forged_api_claim_is_recorded_as_sql(app: Store, login: Login) -> None:
    """A pipeline claiming via 'api' in its transaction is recorded via 'sql', the claim kept
    visibly as a claim, its own login as db_user."""
    url = await login("reconciler_pipeline")
    await run_as(
        url,
        "SELECT set_config('reconciler.via', 'api', true), "
        "set_config('reconciler.actor', 'release-bot', true)",
        f"UPDATE deployments SET desired_status = 'stopped' {APP}",
    )
    entry = await _newest(app)
    assert (entry.via, entry.actor) == ("sql", None)
    assert (entry.claimed_via, entry.claimed_actor) == ("api", "release-bot")
    assert entry.db_user.startswith("reconciler_pipeline_")
    assert entry.changes == {"desired_status": {"from": "active", "to": "stopped"}}


async def test_the_daemons_role_may_claim(app: Store, login: Login) -> None:
    """A member of reconciler_daemon claiming via 'api' is recorded as the API, by its actor."""
    url = await login("reconciler_daemon")
    await run_as(
        url,
        "SELECT set_config('reconciler.via', 'api', true), "
        "set_config('reconciler.actor', 'release-bot', true)",
        f"UPDATE deployments SET paused = true {APP}",
    )
    entry = await _newest(app)
    assert (entry.via, entry.actor, entry.claimed_via) == ("api", "release-bot", None)


async def test_a_claim_ends_with_its_transaction(app: Store) -> None:
    """A claim is local: the next transaction on the same pooled connection is plain SQL."""
    await app.set_desired(
        project="app", environment="prod", image_ref="reg/app:2", claim=AuditClaim("cli", "ann")
    )
    await app.set_desired(project="app", environment="prod", image_ref="reg/app:3")
    second, first = await app.audit_rows(limit=2)
    assert (first.via, first.actor) == ("cli", "ann")
    assert (second.via, second.actor) == ("sql", None)


async def test_a_temporary_table_cannot_swallow_the_audit(app: Store, login: Login) -> None:
    """A pipeline's temporary table named like the audit does not receive its row."""
    url = await login("reconciler_pipeline")
    await run_as(
        url,
        "CREATE TEMP TABLE deployment_audit (LIKE pg_class)",
        f"UPDATE deployments SET image_ref = 'reg/app:9' {APP}",
    )
    entry = await _newest(app)
    assert entry.changes["image_ref"]["to"] == "reg/app:9"


@pytest.mark.parametrize(
    "statement",
    [
        "INSERT INTO deployment_audit (deployment_id, project, environment, operation, "
        "changes, generation, via, db_user) VALUES (1, 'app', 'prod', 'update', '{}', 1, 'api', "
        "'x')",
        "UPDATE deployment_audit SET via = 'api'",
        "DELETE FROM deployment_audit",
        "TRUNCATE deployment_audit",
    ],
)
@pytest.mark.parametrize("role", ["reconciler_pipeline", "reconciler_daemon", "reconciler_reader"])
async def test_nobody_but_the_owner_writes_the_audit(
    app: Store, login: Login, role: str, statement: str
) -> None:
    """Pipelines, readers and the daemon may not write, change or erase audit rows."""
    url = await login(role)
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await run_as(url, statement)
    assert len(await app.audit_rows()) == 1


async def test_readers_read_the_audit_and_pipelines_do_not(app: Store, login: Login) -> None:
    """reconciler_reader may SELECT the audit; reconciler_pipeline may not."""
    assert await run_as(await login("reconciler_reader"), "TABLE deployment_audit") == ["SELECT 1"]
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await run_as(await login("reconciler_pipeline"), "TABLE deployment_audit")


async def test_a_deleted_deployment_keeps_its_audit(app: Store) -> None:
    """Deleting the row is audited, and the rows outlive it (no foreign key)."""
    await run_as(app.url, f"DELETE FROM deployments {APP}")
    delete, insert = await app.audit_rows()
    assert delete.operation == "delete"
    assert delete.changes["image_ref"] == {"from": "reg/app:1", "to": None}
    assert insert.deployment_id == delete.deployment_id


async def test_day_two_requests_are_audited_with_their_claim(app: Store) -> None:
    """pause, redeploy, a retry and a cancel are audited with the claim they carry."""
    claim = AuditClaim("cli", "ann")
    where = {"project": "app", "environment": "prod", "claim": claim}
    await app.set_paused(**where, paused=True)
    await app.redeploy(**where, restart=True)
    await run_as(
        app.url,
        f"UPDATE deployments SET current_status = 'failed', observed_generation = generation {APP}",
    )
    await app.retry(**where)
    retry, redeploy, pause, _insert = await app.audit_rows()
    assert pause.changes == {"paused": {"from": False, "to": True}}
    assert redeploy.changes["redeploy_restart"] == {"from": False, "to": True}
    assert redeploy.generation == 2
    assert retry.changes["attempts"] == {"from": 0, "to": 0}
    assert retry.changes["next_attempt_at"]["to"] is not None
    assert {(e.via, e.actor) for e in (pause, redeploy, retry)} == {("cli", "ann")}
    await run_as(
        app.url,
        f"UPDATE deployments SET attempt_started_at = now(), attempt_generation = 2 {APP}",
    )
    await app.cancel(**where)
    cancel = await _newest(app)
    assert cancel.changes == {"cancel_requested_generation": {"from": None, "to": 2}}
    assert (cancel.via, cancel.actor) == ("cli", "ann")


async def test_the_cli_claims_via_cli_and_the_os_user(app: Store) -> None:
    """`reconciler pause` and `reconciler rollback` (as processes) are audited via 'cli' by
    the OS user running them; `reconciler audit` shows them."""
    paused = await asyncio.to_thread(run_cli, "pause", "app", "prod", database_url=app.url)
    assert paused.returncode == 0, paused.stderr
    entry = await _newest(app)
    assert (entry.via, entry.actor) == ("cli", getpass.getuser())
    shown = await asyncio.to_thread(run_cli, "audit", "app", "prod", database_url=app.url)
    assert shown.returncode == 0, shown.stderr
    assert "paused: false -> true" in shown.stdout
    assert f"| cli | {getpass.getuser()}" in shown.stdout


async def test_a_healthy_rollback_is_audited_as_the_daemon(pipeline: Pipeline) -> None:
    """The daemon writing image_ref back after a rollback is audited via 'daemon', by its id."""
    await pipeline.start_daemon()
    for image in ("reg/app:1", "reg/app:2"):
        await pipeline.deploy("app", image_ref=image)
        await pipeline.wait_for(
            "app", until=lambda d, i=image: d.current_status == "healthy" and d.image_ref == i
        )
    await pipeline.store.set_desired(project="app", environment="prod", desired_status="rollback")
    await pipeline.wait_for(
        "app", until=lambda d: d.desired_status == "active" and d.image_ref == "reg/app:1"
    )
    entry = await _newest(pipeline.store)
    assert (entry.via, entry.actor) == ("daemon", "daemon-a")
    assert entry.changes["image_ref"] == {"from": "reg/app:2", "to": "reg/app:1"}
    assert entry.changes["desired_status"] == {"from": "rollback", "to": "active"}
