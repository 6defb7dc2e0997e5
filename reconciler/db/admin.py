"""The schema's administration: Alembic migrations run on a connection of the async engine."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from reconciler.errors import DatabaseRefused

_PACKAGE_DIR = Path(__file__).resolve().parent.parent


def migrations_dir() -> Path:
    """``migrations/`` beside the package in a checkout, or the installed copy."""
    in_checkout = _PACKAGE_DIR.parent / "migrations"
    if (in_checkout / "env.py").exists():
        return in_checkout
    installed = _PACKAGE_DIR / "migrations"
    if (installed / "env.py").exists():
        return installed
    raise DatabaseRefused(f"migrations not found (looked in {in_checkout} and {installed})")


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    return config


async def run_alembic(conn: AsyncConnection, run: Callable[[Config], None]) -> None:
    """Run an Alembic command on ``conn`` (``migrations/env.py`` picks the connection up)."""

    def with_connection(sync_conn: Connection) -> None:
        cfg = alembic_config()
        cfg.attributes["connection"] = sync_conn
        run(cfg)

    await conn.run_sync(with_connection)


async def migrate(conn: AsyncConnection, revision: str = "head") -> None:
    """Upgrade the schema to ``revision`` (idempotent)."""
    await run_alembic(conn, lambda cfg: command.upgrade(cfg, revision))


async def current_revision(conn: AsyncConnection) -> str | None:
    return await conn.run_sync(lambda sync: MigrationContext.configure(sync).get_current_revision())
