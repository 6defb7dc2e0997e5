"""reconciler's database: the one package that talks to PostgreSQL.

Every statement is in ``queries.sql``; the schema is in ``migrations/``.
"""

from __future__ import annotations

from reconciler.db.connection import asyncpg_dsn, create_engine, describe_url, sqlalchemy_url
from reconciler.db.deliveries import DELIVERIES_CHANNEL
from reconciler.db.listener import EVENTS_CHANNEL, NOTIFY_CHANNEL, Listener
from reconciler.db.store import Store

__all__ = [
    "DELIVERIES_CHANNEL",
    "EVENTS_CHANNEL",
    "NOTIFY_CHANNEL",
    "Listener",
    "Store",
    "asyncpg_dsn",
    "create_engine",
    "describe_url",
    "sqlalchemy_url",
]
