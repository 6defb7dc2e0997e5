"""The database, for the daemon and the CLI: one class composed of its parts."""

from __future__ import annotations

import asyncio

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine

from reconciler.db import admin
from reconciler.db.api import ApiParts
from reconciler.db.attempts import Attempts
from reconciler.db.audit import Audit
from reconciler.db.connection import close_raw_pool, create_engine, open_raw_pool
from reconciler.db.day_two import DayTwo
from reconciler.db.deliveries import Deliveries
from reconciler.db.inventory import Inventory
from reconciler.db.live_state import LiveState
from reconciler.db.ops_repos import OpsRepos
from reconciler.db.policies import Policies
from reconciler.db.queries import query
from reconciler.db.reads import Reads
from reconciler.db.retention import Retention
from reconciler.db.tokens import ApiTokens
from reconciler.db.writers import Writers
from reconciler.errors import DatabaseError


class Store(
    OpsRepos,
    Policies,
    Writers,
    Attempts,
    DayTwo,
    Reads,
    Retention,
    Inventory,
    LiveState,
    Deliveries,
    ApiTokens,
    Audit,
    ApiParts,
):
    """The database, for the daemon, the CLI and the HTTP API.  Create with :meth:`connect`."""

    def __init__(self, *, url: str, engine: AsyncEngine, raw_pool: asyncpg.Pool) -> None:
        self.url = url
        self.engine = engine
        self.raw_pool = raw_pool

    @classmethod
    async def connect(
        cls, url: str, *, pool_size: int = 10, max_overflow: int | None = None
    ) -> Store:
        """Open the pools and check the server answers, with an error naming the host.

        The hot statements get ``pool_size`` connections of asyncpg's own pool
        (:func:`open_raw_pool`); the rest (the API, the CLI, migrations) a quarter as many,
        at least one, in SQLAlchemy's (:func:`create_engine`, ``max_overflow`` as there).
        """
        engine = create_engine(url, pool_size=max(1, pool_size // 4), max_overflow=max_overflow)
        raw_pool = await open_raw_pool(url, max_size=pool_size)
        store = cls(url=url, engine=engine, raw_pool=raw_pool)
        try:
            async with store._tx() as conn:
                await conn.execute(query("ping"))
        except DatabaseError:
            await store.close()
            raise
        return store

    async def ping(self, *, timeout_s: float) -> None:
        """Check the server answers a ``SELECT 1`` within ``timeout_s`` (TimeoutError if not;
        DatabaseError naming the host when it refuses)."""
        async with asyncio.timeout(timeout_s), self._tx() as conn:
            await conn.execute(query("ping"))

    async def counts_by_status(self) -> dict[str, int]:
        """How many deployments are in each ``current_status``: one aggregate query."""
        async with self._tx() as conn:
            return {str(r[0]): int(r[1]) for r in await conn.execute(query("counts_by_status"))}

    async def close(self) -> None:
        await close_raw_pool(self.raw_pool)
        await self.engine.dispose()

    async def migrate(self, revision: str = "head") -> None:
        """Upgrade the schema to ``revision`` (idempotent)."""
        async with self._tx() as conn:
            await admin.migrate(conn, revision)

    async def current_revision(self) -> str | None:
        async with self._tx() as conn:
            return await admin.current_revision(conn)
