"""deployment_history outlives its deployment (migration 0002), and old rows are pruned."""

from __future__ import annotations

import asyncpg
import pytest

from reconciler.db import Store, asyncpg_dsn
from reconciler.errors import ConfigError, InputError
from reconciler.settings import Settings, from_env
from reconciler.testing.dbtools import downgrade

HISTORY_ROW = """
INSERT INTO deployment_history (deployment_id, generation, action, status, image_ref,
                                started_at, finished_at)
SELECT id, 1, $2, $3, $4, now() - make_interval(days => $5), now() - make_interval(days => $5)
FROM deployments WHERE project = $1
RETURNING id
"""


async def _deployments(store: Store, *projects: str) -> None:
    repo = await store.add_ops_repo(name="ops", repo_url="https://git.example.com/ops.git")
    for project in projects:
        await store.upsert_deployment(
            project=project, environment="prod", ops_repo_id=repo.id, image_ref="reg/x:1"
        )


async def _history(
    conn: asyncpg.Connection, project: str, status: str, image: str, days_ago: int
) -> int:
    found: int = await conn.fetchval(HISTORY_ROW, project, "deploy", status, image, days_ago)
    return found


async def test_history_survives_deleting_its_deployment(store: Store) -> None:
    """DELETE FROM deployments keeps every history row, readable by project and environment."""
    await _deployments(store, "web", "api")
    conn = await asyncpg.connect(asyncpg_dsn(store.url))
    try:
        await _history(conn, "web", "healthy", "reg/web:1", 2)
        await _history(conn, "api", "failed", "reg/api:1", 1)
        await conn.execute("DELETE FROM deployments")
        rows = await conn.fetch(
            "SELECT deployment_id, project, environment, status, image_ref "
            "FROM deployment_history ORDER BY id"
        )
    finally:
        await conn.close()
    assert [tuple(r) for r in rows] == [
        (None, "web", "prod", "healthy", "reg/web:1"),
        (None, "api", "prod", "failed", "reg/api:1"),
    ]


async def test_the_migration_backfills_names_into_history(store: Store) -> None:
    """History written before 0002 gets its deployment's project and environment."""
    await downgrade(store, "0001")
    conn = await asyncpg.connect(asyncpg_dsn(store.url))
    try:
        # Written as SQL: the Store speaks the newest schema, the database is at 0001.
        repo_id = await conn.fetchval(
            "INSERT INTO ops_repos (name, repo_url) VALUES ('ops', 'https://git.example.com/o.git')"
            " RETURNING id"
        )
        await conn.execute(
            "INSERT INTO deployments (project, environment, ops_repo_id, image_ref)"
            " VALUES ('web', 'prod', $1, 'reg/x:1')",
            repo_id,
        )
        await _history(conn, "web", "healthy", "reg/web:1", 1)
        await store.migrate()
        row = await conn.fetchrow("SELECT project, environment FROM deployment_history")
    finally:
        await conn.close()
    assert tuple(row) == ("web", "prod")


async def test_prune_keeps_what_a_rollback_needs(store: Store) -> None:
    """Old rows go in batches; a live deployment keeps its newest row and its two newest
    healthy images; a deleted deployment's old rows all go; recent rows all stay."""
    await _deployments(store, "web", "gone")
    conn = await asyncpg.connect(asyncpg_dsn(store.url))
    try:
        one = await _history(conn, "web", "healthy", "reg/web:1", 30)
        await _history(conn, "web", "healthy", "reg/web:2", 29)
        await _history(conn, "web", "failed", "reg/web:3", 28)
        two = await _history(conn, "web", "healthy", "reg/web:2", 27)
        await _history(conn, "web", "failed", "reg/web:4", 26)
        recent = await _history(conn, "web", "failed", "reg/web:5", 1)
        for days in (30, 20, 2):
            await _history(conn, "gone", "healthy", "reg/gone:1", days)
        await conn.execute("DELETE FROM deployments WHERE project = 'gone'")
        assert await store.prune_history(keep_days=7, batch=2) == 5
        left = await conn.fetch("SELECT id, project FROM deployment_history ORDER BY id")
    finally:
        await conn.close()
    web = [r["id"] for r in left if r["project"] == "web"]
    assert web == [one, two, recent]
    assert [r["project"] for r in left].count("gone") == 1
    [web_row] = [d for d in await store.list_deployments() if d.project == "web"]
    target = await store.last_healthy(deployment_id=web_row.id, other_than_image="reg/web:2")
    assert target is not None and target.id == one
    assert await store.prune_history(keep_days=7) == 0


@pytest.mark.parametrize(
    ("keep_days", "batch", "message"),
    [
        (-1.0, 10, "keep_days must be a finite number of days >= 0, got -1.0"),
        (float("nan"), 10, "keep_days must be a finite number of days >= 0, got nan"),
        (1.0, 0, "batch must be at least 1, got 0"),
    ],
)
async def test_prune_refuses_nonsense(
    store: Store, keep_days: float, batch: int, message: str
) -> None:
    """A negative age, NaN or an empty batch is an error, not a guess."""
    with pytest.raises(InputError) as caught:
        await store.prune_history(keep_days=keep_days, batch=batch)
    assert str(caught.value) == message


def test_history_retention_is_off_unless_set() -> None:
    """RECONCILER_HISTORY_RETENTION_DAYS: unset keeps everything; a positive number of days."""
    assert Settings().history_retention_days is None
    assert from_env({}).history_retention_days is None
    env = "RECONCILER_HISTORY_RETENTION_DAYS"
    assert from_env({env: "30"}).history_retention_days == 30.0
    assert from_env({env: "0.5"}).history_retention_days == 0.5
    for raw, message in [
        ("0", f"{env} must be a positive number of days, got '0'"),
        ("soon", f"{env} must be a number of days, got 'soon'"),
    ]:
        with pytest.raises(ConfigError) as caught:
            from_env({env: raw})
        assert str(caught.value) == message
