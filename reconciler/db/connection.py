"""Where the database is (URLs for SQLAlchemy, asyncpg and messages), the engine, and the
transaction every statement runs in."""

from __future__ import annotations

import asyncio
import functools
import json
import re
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any
from urllib.parse import parse_qs, urlsplit

import asyncpg
from sqlalchemy import event, exc
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.sql.elements import TextClause

from reconciler.db.errors import DRIVER_ERRORS, RAW_DRIVER_ERRORS, database_error
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


def create_engine(url: str, *, pool_size: int = 10, max_overflow: int | None = None) -> AsyncEngine:
    """An async engine on asyncpg: ``pool_size`` connections kept open, and up to
    ``max_overflow`` (default: as many) more opened when all are busy and closed when returned.
    A pooled connection the server closed (a restart, a killed backend) is replaced as it is
    checked out, so a restarted server costs no error."""
    engine = create_async_engine(
        sqlalchemy_url(url),
        pool_size=pool_size,
        max_overflow=pool_size if max_overflow is None else max_overflow,
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
    raw_pool: asyncpg.Pool

    def _tx(self) -> AbstractAsyncContextManager[AsyncConnection]:
        return transaction(self.engine, url=self.url)

    def _raw_tx(self) -> AbstractAsyncContextManager[RawConnection]:
        return raw_transaction(self.raw_pool, url=self.url)

    def _raw_once(self) -> AbstractAsyncContextManager[RawConnection]:
        return raw_autocommit(self.raw_pool, url=self.url)


_PARAMETER = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


@functools.lru_cache(maxsize=256)
def positional(statement: str) -> tuple[str, tuple[str, ...]]:
    """A ``:name`` statement (SQLAlchemy's text style) in asyncpg's ``$n`` style, and the
    parameter names in the order of their numbers (``::type`` casts are not parameters)."""
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        if match[1] not in names:
            names.append(match[1])
        return f"${names.index(match[1]) + 1}"

    return _PARAMETER.sub(number, statement), tuple(names)


class RawRow:
    """An asyncpg record read as SQLAlchemy rows are: by attribute, or as ``_mapping``."""

    __slots__ = ("_record",)

    def __init__(self, record: Any) -> None:
        self._record = record

    def __getattr__(self, name: str) -> Any:
        try:
            return self._record[name]
        except KeyError:
            raise AttributeError(name) from None

    @property
    def _mapping(self) -> dict[str, Any]:
        return dict(self._record.items())


class RawResult:
    """The rows of one statement, with the accessors the store uses."""

    def __init__(self, records: list[Any]) -> None:
        self._rows = [RawRow(r) for r in records]

    def __iter__(self) -> Iterator[RawRow]:
        return iter(self._rows)

    def all(self) -> list[RawRow]:
        return list(self._rows)

    def first(self) -> RawRow | None:
        return self._rows[0] if self._rows else None

    def one_or_none(self) -> RawRow | None:
        if len(self._rows) > 1:
            raise exc.MultipleResultsFound("more than one row where at most one was expected")
        return self.first()


class RawConnection:
    """A transaction's statements sent to asyncpg itself: the hot path's statements skip
    SQLAlchemy's execution machinery (about a fifth of the daemon's CPU went there)."""

    def __init__(self, driver: Any) -> None:
        self._driver = driver

    async def execute(
        self, statement: TextClause, params: Mapping[str, Any] | None = None
    ) -> RawResult:
        text, names = positional(statement.text)
        params = params or {}
        return RawResult(await self._driver.fetch(text, *(params[n] for n in names)))


async def open_raw_pool(url: str, *, max_size: int) -> asyncpg.Pool:
    """asyncpg's own pool, for the hot statements :class:`RawConnection` sends.

    A statement through SQLAlchemy's pool cost about 120 microseconds of CPU more than
    through this one, a transaction about 225 (bench/README.md).  Connections open when first
    needed; one the server closed (a restart, a killed backend) is reopened at checkout.
    """
    pool = asyncpg.create_pool(
        asyncpg_dsn(url),
        min_size=0,
        max_size=max_size,
        max_inactive_connection_lifetime=RAW_IDLE_CLOSE_S,
        init=_json_codecs,
        reset=_keep_session,
    )
    return await pool


RAW_IDLE_CLOSE_S = 600.0
"""A raw connection unused this long is closed (a busy daemon keeps its connections)."""

RAW_CHECKOUT_TIMEOUT_S = 30.0
"""How long a statement waits for a free raw connection (SQLAlchemy's pool waits as long)."""


async def _json_codecs(connection: asyncpg.Connection) -> None:
    """json and jsonb as SQLAlchemy's asyncpg dialect sets them up, so a statement reads and
    writes the same values on either path: text JSON in, decoded values out."""
    await connection.set_type_codec(
        "json",
        encoder=str.encode,
        decoder=lambda value: json.loads(value.decode()),
        schema="pg_catalog",
        format="binary",
    )
    await connection.set_type_codec(
        "jsonb",
        encoder=lambda value: b"\x01" + value.encode(),  # jsonb's binary format version
        decoder=lambda value: json.loads(value[1:].decode()),
        schema="pg_catalog",
        format="binary",
    )


async def _keep_session(_connection: asyncpg.Connection) -> None:
    """No reset round trip on release: asyncpg still rolls back a transaction left open, and
    the raw statements leave no session state (no LISTEN, session SET, advisory lock or
    cursor; set_config calls are transaction-local)."""


async def close_raw_pool(pool: asyncpg.Pool, *, timeout_s: float = 10.0) -> None:
    """Close ``pool``, waiting ``timeout_s`` for connections in use; then cut them off."""
    try:
        await asyncio.wait_for(pool.close(), timeout=timeout_s)
    except TimeoutError:
        pool.terminate()


@asynccontextmanager
async def raw_transaction(pool: asyncpg.Pool, *, url: str) -> AsyncIterator[RawConnection]:
    """:func:`transaction`, its statements sent straight to asyncpg (:func:`open_raw_pool`)."""
    try:
        async with (
            pool.acquire(timeout=RAW_CHECKOUT_TIMEOUT_S) as driver,
            driver.transaction(),
        ):
            yield RawConnection(driver)
    except RAW_DRIVER_ERRORS as exc_:
        raise database_error(exc_, where=describe_url(url)) from exc_


class OneStatement(RawConnection):
    """A :class:`RawConnection` outside a transaction block, which refuses a second statement:
    two would commit apart, which the caller would not expect."""

    def __init__(self, driver: Any) -> None:
        super().__init__(driver)
        self._used = False

    async def execute(
        self, statement: TextClause, params: Mapping[str, Any] | None = None
    ) -> RawResult:
        if self._used:
            raise RuntimeError("a second statement outside a transaction: use _raw_tx()")
        self._used = True
        return await super().execute(statement, params)


@asynccontextmanager
async def raw_autocommit(pool: asyncpg.Pool, *, url: str) -> AsyncIterator[RawConnection]:
    """A pooled connection without BEGIN and COMMIT: each statement is a transaction of its
    own, committed before its answer arrives.  For a step that is one statement (a CTE may
    hold several writes, all or nothing): it saves two round trips of the server's work."""
    try:
        async with pool.acquire(timeout=RAW_CHECKOUT_TIMEOUT_S) as driver:
            yield OneStatement(driver)
    except RAW_DRIVER_ERRORS as exc_:
        raise database_error(exc_, where=describe_url(url)) from exc_
