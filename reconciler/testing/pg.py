"""PostgreSQL for test sessions: one server, a migrated template, a fresh database per test."""

from __future__ import annotations

import asyncio
import itertools
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg

from reconciler.db import Store, asyncpg_dsn
from reconciler.localpg import LocalPostgres

TEMPLATE = "reconciler_template"


class TestDatabases:
    """Hands out databases cloned from a template that is migrated once per session (cloning
    takes milliseconds; migrating takes a second)."""

    __test__ = False  # not a pytest test class

    def __init__(self) -> None:
        self._root = Path(tempfile.mkdtemp(prefix="reconciler-pg-"))
        self.server = LocalPostgres(data_dir=self._root / "data", keep_data=False)
        self._counter = itertools.count(1)

    def start(self) -> None:
        self.server.start()
        asyncio.run(self._create_template())

    def stop(self) -> None:
        self.server.stop()

    async def _create_template(self) -> None:
        conn = await asyncpg.connect(asyncpg_dsn(self.server.url()))
        try:
            await conn.execute(f"DROP DATABASE IF EXISTS {TEMPLATE}")
            await conn.execute(f"CREATE DATABASE {TEMPLATE}")
        finally:
            await conn.close()
        store = await Store.connect(self.server.url(TEMPLATE), pool_size=1)
        try:
            await store.migrate()
        finally:
            await store.close()

    async def create(self, *, migrated: bool = True) -> str:
        """A new database's URL: a copy of the migrated template, or empty."""
        name = f"test_{next(self._counter)}"
        conn = await asyncpg.connect(asyncpg_dsn(self.server.url()))
        try:
            template = TEMPLATE if migrated else "template0"
            await conn.execute(f"CREATE DATABASE {name} TEMPLATE {template}")
        finally:
            await conn.close()
        return self.server.url(name)

    async def drop(self, url: str) -> None:
        name = urlsplit(url).path.lstrip("/")
        conn = await asyncpg.connect(asyncpg_dsn(self.server.url()))
        try:
            await conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        finally:
            await conn.close()
