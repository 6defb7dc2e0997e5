"""Where the database is (URLs for SQLAlchemy, asyncpg and messages), the engine, and the
transaction every statement runs in."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import event, exc
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from reconciler.db.errors import DRIVER_ERRORS, database_error
from reconciler.errors import DatabaseRefused


def sqlalchemy_url(url: str) -> str:
    """``postgresql://...`` as SQLAlchemy's asyncpg URL."""
    _scheme, sep, rest = url.partition("://")
    if not sep:
        raise DatabaseRefused(f"not a database URL: {describe_url(url)}")
    return f"postgresql+asyncpg://{rest}"


def asyncpg_dsn(url: str) -> str:
    """``postgresql://...`` as a DSN asyncpg accepts (it knows no ``+asyncpg``)."""
    _scheme, _sep, rest = url.partition("://")
    return f"postgresql://{rest}"


def describe_url(url: str) -> str:
    """Where a URL points, for messages: host (or socket dir), port and database, no password."""
    try:
        parts = urlsplit(url)
        query = parse_qs(parts.query)
        host = parts.hostname or (query.get("host") or ["localhost"])[0]
        port = parts.port or (query.get("port") or ["5432"])[0]
    except ValueError:
        return "(a URL that cannot be parsed)"
    database = parts.path.lstrip("/") or "postgres"
    return f"{host}:{port}/{database}"


def create_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
    """An async engine on asyncpg.  A pooled connection the server closed (a restart, a killed
    backend) is replaced as it is checked out, so a restarted server costs no error."""
    engine = create_async_engine(
        sqlalchemy_url(url),
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_recycle=1800,
    )
    event.listen(engine.sync_engine, "checkout", _replace_if_closed)
    return engine


def _replace_if_closed(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """Refuse a pooled connection the server has closed; the pool then opens another.

    A local check, not a round trip (``pool_pre_ping`` spent a BEGIN, a ``;`` and a ROLLBACK on
    every checkout, half of the daemon's transactions): asyncpg marks a connection closed as
    soon as the event loop sees the server end it.  A connection that dies unnoticed fails its
    statement, which the callers treat as the database being unavailable.
    """
    driver = getattr(dbapi_connection, "driver_connection", None)
    if driver is not None and driver.is_closed():
        raise exc.DisconnectionError("the server closed this pooled connection")


@asynccontextmanager
async def transaction(engine: AsyncEngine, *, url: str) -> AsyncIterator[AsyncConnection]:
    """A transaction; database failures become :class:`DatabaseError` naming the server."""
    try:
        async with engine.begin() as conn:
            yield conn
    except DRIVER_ERRORS as exc:
        raise database_error(exc, where=describe_url(url)) from exc


class Transactional:
    """What every part of :class:`~reconciler.db.Store` shares: the URL, the engine, and
    :meth:`_tx`."""

    url: str
    engine: AsyncEngine

    def _tx(self) -> AbstractAsyncContextManager[AsyncConnection]:
        return transaction(self.engine, url=self.url)
