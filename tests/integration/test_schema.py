"""The SQL contract: migrations, trigger, NOTIFY, constraints, the status view."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.dialects import postgresql

import reconciler
from reconciler.db import Store, asyncpg_dsn, queries
from reconciler.errors import InputError
from reconciler.testing.dbtools import downgrade


async def _seed(store: Store) -> int:
    repo = await store.add_ops_repo(name="ops", repo_url="https://git.example.com/ops.git")
    await store.upsert_deployment(
        project="web", environment="prod", ops_repo_id=repo.id, image_ref="reg/web:1"
    )
    return repo.id


async def test_migrate_on_empty_database_twice_is_a_no_op(empty_database_url: str) -> None:
    """migrate creates the schema on an empty database, and a second run changes nothing."""
    store = await Store.connect(empty_database_url)
    try:
        assert await store.current_revision() is None
        await store.migrate()
        assert await store.current_revision() == "0009"
        await store.migrate()
        assert await store.current_revision() == "0009"
        assert await store.status_rows() == []
    finally:
        await store.close()


async def test_every_statement_prepares_against_the_migrated_schema(store: Store) -> None:
    """Every named statement in queries.sql PREPAREs on the migrated schema (no drift)."""
    dialect = postgresql.asyncpg.dialect()  # type: ignore[no-untyped-call]
    conn = await asyncpg.connect(asyncpg_dsn(store.url))
    failures: dict[str, str] = {}
    try:
        for name in queries.statements():
            # As the engine sends it: binds become $n, each untyped, as asyncpg prepares them.
            sql = str(queries.query(name).compile(dialect=dialect))
            try:
                await conn.prepare(sql)
            except asyncpg.PostgresError as exc:
                failures[name] = f"{type(exc).__name__}: {exc}"
    finally:
        await conn.close()
    assert failures == {}
    assert len(queries.statements()) >= 25


def test_every_statement_the_code_names_exists_and_every_statement_is_used() -> None:
    """The names reconciler passes to query()/sql() and the blocks of queries.sql are the same."""
    package = Path(reconciler.__file__).parent
    used: set[str] = set()
    for source in package.rglob("*.py"):
        used |= set(re.findall(r"\b(?:query|sql)\(\"([a-z_0-9]+)\"\)", source.read_text()))
    assert used == set(queries.statements())


async def test_downgrade_to_base_then_upgrade(store: Store) -> None:
    """Downgrading to base removes everything; upgrading again restores a working schema."""
    await _seed(store)
    await downgrade(store, "base")
    assert await store.current_revision() is None
    conn = await asyncpg.connect(asyncpg_dsn(store.url))
    try:
        tables = await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
            "AND tablename <> 'alembic_version'"
        )
        assert tables == []
    finally:
        await conn.close()
    await store.migrate()
    await _seed(store)
    assert [r["project"] for r in await store.status_rows()] == ["web"]


async def test_image_update_bumps_generation_and_notifies(store: Store) -> None:
    """An UPDATE of image_ref bumps generation and a LISTEN on 'reconciler' receives the id."""
    await _seed(store)
    received: asyncio.Queue[str] = asyncio.Queue()
    conn = await asyncpg.connect(asyncpg_dsn(store.url))
    try:
        await conn.add_listener("reconciler", lambda *args: received.put_nowait(args[3]))
        updated = await store.set_desired(project="web", environment="prod", image_ref="reg/web:2")
        assert updated.generation == 2
        assert await asyncio.wait_for(received.get(), timeout=5) == str(updated.id)
    finally:
        await conn.close()


async def test_daemon_columns_do_not_bump_generation(store: Store) -> None:
    """An UPDATE of a column the daemon owns leaves generation alone and sends no NOTIFY."""
    await _seed(store)
    received: list[str] = []
    conn = await asyncpg.connect(asyncpg_dsn(store.url))
    try:
        await conn.add_listener("reconciler", lambda *args: received.append(args[3]))
        await conn.execute(
            "UPDATE deployments SET current_status = 'healthy', "
            "status_message = 'ok', current_image_ref = 'reg/web:1', "
            "observed_generation = 1 WHERE project = 'web'"
        )
        await conn.execute("SELECT pg_sleep(0.2)")
        row = await conn.fetchrow("SELECT generation, updated_at, created_at FROM deployments")
        assert row["generation"] == 1
        assert received == []
    finally:
        await conn.close()


async def test_same_value_update_does_not_bump_generation(store: Store) -> None:
    """A pipeline rewriting the same image_ref does not create a new generation."""
    await _seed(store)
    same = await store.set_desired(project="web", environment="prod", image_ref="reg/web:1")
    assert same.generation == 1


async def test_pipeline_upsert_defaults_namespace_and_bumps_on_conflict(store: Store) -> None:
    """A pipeline's INSERT ... ON CONFLICT DO UPDATE: namespace defaults, generation moves."""
    repo_id = await _seed(store)
    conn = await asyncpg.connect(asyncpg_dsn(store.url))
    try:
        sql = """
            INSERT INTO deployments (project, environment, ops_repo_id, image_ref)
            VALUES ('web', 'prod', $1, $2)
            ON CONFLICT (project, environment) DO UPDATE SET image_ref = EXCLUDED.image_ref
            RETURNING namespace, generation
        """
        row = await conn.fetchrow(sql, repo_id, "reg/web:3")
        assert (row["namespace"], row["generation"]) == ("web-prod", 2)
    finally:
        await conn.close()


@pytest.mark.parametrize(
    ("column", "value", "constraint"),
    [
        ("desired_status", "'paused'", "deployments_desired_status_known"),
        ("current_status", "'weird'", "deployments_current_status_known"),
        ("namespace", "'Bad_NS'", "deployments_namespace_is_dns_label"),
        ("image_ref", "'reg/web: 1'", "deployments_image_ref_without_spaces"),
        ("image_ref", "''", "deployments_image_ref_without_spaces"),
        ("values_override", "'[1, 2]'::jsonb", "deployments_values_override_is_object"),
    ],
)
async def test_check_constraints_reject_bad_values(
    store: Store, column: str, value: str, constraint: str
) -> None:
    """CHECK constraints refuse values outside the contract, naming the rule broken."""
    await _seed(store)
    conn = await asyncpg.connect(asyncpg_dsn(store.url))
    try:
        with pytest.raises(asyncpg.CheckViolationError) as caught:
            await conn.execute(f"UPDATE deployments SET {column} = {value}")
        assert caught.value.constraint_name == constraint
    finally:
        await conn.close()


async def test_history_status_is_checked(store: Store) -> None:
    """deployment_history refuses an unknown status."""
    await _seed(store)
    conn = await asyncpg.connect(asyncpg_dsn(store.url))
    try:
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute("""
                INSERT INTO deployment_history (deployment_id, generation, action, status,
                                                image_ref, started_at)
                SELECT id, 1, 'deploy', 'exploded', image_ref, now() FROM deployments
            """)
    finally:
        await conn.close()


async def test_unknown_ops_repo_is_refused_with_a_clear_message(store: Store) -> None:
    """A deployment naming no ops repo is refused, and the error says so."""
    with pytest.raises(InputError, match="ops_repo_id names no ops repo"):
        await store.upsert_deployment(
            project="web", environment="prod", ops_repo_id=999, image_ref="reg/web:1"
        )


async def test_status_view_reads_well(store: Store) -> None:
    """deployment_status shows desired, current, the wanted image and the last action."""
    await _seed(store)
    [row] = await store.status_rows()
    assert row["project"] == "web"
    assert row["desired"] == "active"
    assert row["current"] == "pending"
    assert row["wanted_image"] == "reg/web:1"
    assert row["last_action"] == ""
