"""Pooled connections: one the server closed is replaced at checkout (no round trip), and a
transaction sent straight to asyncpg is all or nothing."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

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


@pytest.mark.parametrize(("max_overflow", "kept"), [(None, 1), (0, 2)])
async def test_connections_kept_open_after_a_busy_moment(
    database_url: str, max_overflow: int | None, kept: int
) -> None:
    """Overflow connections close when returned; without overflow the pool keeps all it opened
    (the daemon's pool: no backend reopened after every busy moment)."""
    pool_size = 1 if max_overflow is None else 2
    store = await Store.connect(database_url, pool_size=pool_size, max_overflow=max_overflow)
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
        assert store.engine.pool.checkedin() == kept  # type: ignore[attr-defined]
    finally:
        await store.engine.dispose()
