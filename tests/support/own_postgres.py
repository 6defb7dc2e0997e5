"""A PostgreSQL server of a test's own, for tests that stop it (the session's is shared)."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg

from reconciler.db import Store, asyncpg_dsn
from reconciler.localpg import LocalPostgres


@contextlib.asynccontextmanager
async def own_postgres() -> AsyncIterator[LocalPostgres]:
    """A started server with a migrated database ``reconciler``; stopped and its data removed
    at the end.  Its directory is a fresh one in /tmp (pytest's tmp_path may be closed to the
    server's user)."""
    root = Path(tempfile.mkdtemp(prefix="rpg-probes-"))
    server = LocalPostgres(data_dir=root / "data", keep_data=False)
    await asyncio.to_thread(server.start)
    try:
        conn = await asyncpg.connect(asyncpg_dsn(server.url()))
        try:
            await conn.execute("CREATE DATABASE reconciler")
        finally:
            await conn.close()
        store = await Store.connect(server.url("reconciler"), pool_size=2)
        try:
            await store.migrate()
        finally:
            await store.close()
        yield server
    finally:
        await asyncio.to_thread(server.stop)
        shutil.rmtree(root, ignore_errors=True)
