"""Pooled connections the server closed are replaced at checkout, without a round trip."""

from __future__ import annotations

import asyncio

import asyncpg

from reconciler.db import Store, asyncpg_dsn
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
