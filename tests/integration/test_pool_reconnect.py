"""Pooled connections: one the server closed is replaced at checkout (no round trip), and a
transaction sent straight to asyncpg is all or nothing."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
import sqlalchemy as sa

from reconciler.db import Store, asyncpg_dsn
from reconciler.model import ObjectRef
from tests.support.waiting import wait_until


async def test_a_terminated_backend_is_replaced_without_an_error(database_url: str) -> None:
    """A pooled connection whose backend was terminated is replaced: the next use succeeds."""
    store = await Store.connect(database_url, pool_size=1)
    admin = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        await store.ping(timeout_s=5)
        pids = await admin.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
        )
        assert pids
        for row in pids:
            await admin.execute("SELECT pg_terminate_backend($1)", row["pid"])

        async def gone() -> bool:
            count = await admin.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid = ANY($1::int[])",
                [r["pid"] for r in pids],
            )
            return int(count) == 0

        await wait_until(gone, timeout_s=10, what="the terminated backends to go")
        await asyncio.sleep(0.05)  # the loop reads the server's goodbye
        await store.ping(timeout_s=5)
        async with store._tx() as conn:
            assert (await conn.exec_driver_sql("SELECT 1")).scalar_one() == 1
    finally:
        await admin.close()
        await store.close()


async def test_a_raw_transaction_is_all_or_nothing(store: Store) -> None:
    """Statements sent straight to asyncpg share one transaction, rolled back on an error."""
    repo = await store.add_ops_repo(name="ops", repo_url="https://git.example.com/ops.git")
    deployment = await store.upsert_deployment(
        project="app", environment="prod", ops_repo_id=repo.id, image_ref="reg/app:1"
    )
    ref = ObjectRef("v1", "ConfigMap", "settings", "app-prod")

    class Boom(Exception):
        """Raised inside the transaction."""

    with pytest.raises(Boom):
        async with store._raw_tx() as conn:
            await store._claim_in(conn, deployment_id=deployment.id, refs=[ref])
            assert await store._inventory_in(conn, deployment.id) == [ref]
            raise Boom
    assert await store.inventory_of(deployment.id) == []
    assert await store.claim_objects(deployment_id=deployment.id, refs=[ref]) == []
    assert await store.inventory_of(deployment.id) == [ref]


async def test_sqlalchemy_overflow_connections_close_when_returned(database_url: str) -> None:
    """SQLAlchemy's pool (the cold statements) closes an overflow connection when it is
    returned, and keeps the one it holds."""
    store = await Store.connect(database_url, pool_size=4)  # 1 for SQLAlchemy, 1 overflow
    try:
        both_in = asyncio.Event()
        inside = 0

        async def hold() -> None:
            nonlocal inside
            async with store.engine.connect():
                inside += 1
                if inside == 2:
                    both_in.set()
                await asyncio.wait_for(both_in.wait(), timeout=10)

        await asyncio.gather(hold(), hold())
        assert store.engine.pool.checkedin() == 1  # type: ignore[attr-defined]
    finally:
        await store.close()


async def test_raw_connections_kept_open_after_a_busy_moment(database_url: str) -> None:
    """The hot statements' pool keeps every connection it opened (no backend reopened after
    each busy moment), and opens none it was not asked for."""
    store = await Store.connect(database_url, pool_size=3)
    try:
        assert store.raw_pool.get_size() == 0
        all_in = asyncio.Event()
        inside = 0

        async def hold() -> None:
            nonlocal inside
            async with store._raw_once() as conn:
                inside += 1
                if inside == 2:
                    all_in.set()
                await asyncio.wait_for(all_in.wait(), timeout=10)
                await conn.execute(sa.text("SELECT 1"))

        await asyncio.gather(hold(), hold())
        assert (store.raw_pool.get_size(), store.raw_pool.get_idle_size()) == (2, 2)
    finally:
        await store.close()


async def test_a_terminated_raw_backend_is_replaced_without_an_error(database_url: str) -> None:
    """A raw pooled connection whose backend was terminated is reopened at checkout."""
    store = await Store.connect(database_url, pool_size=1)
    admin = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        async with store._raw_once() as conn:
            first = (await conn.execute(sa.text("SELECT pg_backend_pid() AS pid"))).first()
        assert first is not None
        await admin.execute("SELECT pg_terminate_backend($1)", first.pid)

        async def closed() -> bool:
            return all(h._con is None or h._con.is_closed() for h in store.raw_pool._holders)

        await wait_until(closed, timeout_s=10, what="the pool to see its backend end")
        async with store._raw_once() as conn:
            second = (await conn.execute(sa.text("SELECT pg_backend_pid() AS pid"))).first()
        assert second is not None and second.pid != first.pid
    finally:
        await admin.close()
        await store.close()


async def test_a_raw_connection_comes_back_without_a_transaction(database_url: str) -> None:
    """A raw transaction cut off by a cancel is rolled back before its connection is reused:
    the next statement does not run inside it."""
    store = await Store.connect(database_url, pool_size=1)
    try:
        started = asyncio.Event()

        async def hang() -> None:
            async with store._raw_tx() as conn:
                await conn.execute(sa.text("CREATE TEMP TABLE leftover (x int)"))
                started.set()
                await asyncio.sleep(60)

        task = asyncio.create_task(hang())
        await asyncio.wait_for(started.wait(), timeout=10)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        async with store._raw_once() as conn:
            found = (
                await conn.execute(
                    sa.text("SELECT to_regclass('pg_temp.leftover') IS NULL AS gone")
                )
            ).first()
        assert found is not None and found.gone
    finally:
        await store.close()


async def test_raw_json_values_read_as_on_the_sqlalchemy_path(database_url: str) -> None:
    """json and jsonb columns read the same decoded values on the raw path as through
    SQLAlchemy, and a JSON text parameter is written as jsonb."""
    store = await Store.connect(database_url, pool_size=1)
    statement = sa.text("SELECT CAST(:doc AS jsonb) AS b, CAST(CAST(:doc AS text) AS json) AS j")
    params = {"doc": '{"a": [1, 2.5, null, "\u00e9"], "b": {"c": true}}'}
    try:
        async with store._raw_once() as conn:
            raw = (await conn.execute(statement, params)).first()
        async with store._tx() as sa_conn:
            via_sqlalchemy = (await sa_conn.execute(statement, params)).first()
        assert raw is not None and via_sqlalchemy is not None
        assert (raw.b, raw.j) == (via_sqlalchemy.b, via_sqlalchemy.j)
        assert raw.b == {"a": [1, 2.5, None, "\u00e9"], "b": {"c": True}}
    finally:
        await store.close()
