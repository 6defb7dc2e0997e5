"""Database operations only tests need, on a :class:`~reconciler.db.Store`."""

from __future__ import annotations

from alembic import command

from reconciler.db import Store
from reconciler.db.admin import run_alembic
from reconciler.db.connection import transaction


async def downgrade(store: Store, revision: str = "base") -> None:
    """Downgrade the schema to ``revision``."""
    async with transaction(store.engine, url=store.url) as conn:
        await run_alembic(conn, lambda cfg: command.downgrade(cfg, revision))


async def counts_by_status(store: Store) -> dict[str, int]:
    """How many deployments are in each ``current_status``."""
    return await store.counts_by_status()
