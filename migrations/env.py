"""Alembic environment.

reconciler runs migrations through ``reconciler.db.Store.migrate``, which hands Alembic an
open connection (``config.attributes["connection"]``) from the async engine.  The ``alembic``
command line works too: it builds an async engine from ``sqlalchemy.url`` / DATABASE_URL.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

config = context.config


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=None, transaction_per_migration=True)
    with context.begin_transaction():
        context.run_migrations()


def _run_from_url() -> None:
    from reconciler import settings as settings_module
    from reconciler.db import create_engine

    url = config.get_main_option("sqlalchemy.url") or settings_module.from_env().database_url
    if not url:
        raise SystemExit("set DATABASE_URL (or sqlalchemy.url) to run migrations")

    async def run() -> None:
        engine = create_engine(url)
        async with engine.begin() as conn:
            await conn.run_sync(_run)
        await engine.dispose()

    asyncio.run(run())


if context.is_offline_mode():
    context.configure(
        url=config.get_main_option("sqlalchemy.url"), target_metadata=None, literal_binds=True
    )
    with context.begin_transaction():
        context.run_migrations()
elif (connection := config.attributes.get("connection")) is not None:
    _run(connection)
else:
    _run_from_url()
