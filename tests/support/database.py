"""PostgreSQL helpers for tests: URLs as another user, and a login role of its own for daemon
processes (so a test can see when every connection of a killed daemon is gone)."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from reconciler.db import asyncpg_dsn


def url_with_user(url: str, user: str) -> str:
    """``url`` logging in as ``user`` (without a password)."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}@{host}"))


@dataclasses.dataclass
class DaemonRole:
    """The database role daemon processes log in as, and the URL that does it."""

    name: str
    url: str
    admin_url: str

    async def backends(self) -> int:
        """Server processes serving this role now (a killed daemon's linger for a moment)."""
        conn = await asyncpg.connect(asyncpg_dsn(self.admin_url))
        try:
            count: int = await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE usename = $1", self.name
            )
        finally:
            await conn.close()
        return count


@contextlib.asynccontextmanager
async def daemon_role(admin_url: str) -> AsyncIterator[DaemonRole]:
    """A login role for daemon processes on the database of ``admin_url``; its sessions are
    ended and it is dropped afterwards."""
    database = urlsplit(admin_url).path.lstrip("/")
    name = f"daemon_{database}"
    conn = await asyncpg.connect(asyncpg_dsn(admin_url))
    try:
        await conn.execute(f'CREATE ROLE "{name}" LOGIN SUPERUSER')
    finally:
        await conn.close()
    try:
        yield DaemonRole(name=name, url=url_with_user(admin_url, name), admin_url=admin_url)
    finally:
        conn = await asyncpg.connect(asyncpg_dsn(admin_url))
        try:
            await conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1", name
            )
            await conn.execute(f'DROP ROLE IF EXISTS "{name}"')
        finally:
            await conn.close()


@contextlib.asynccontextmanager
async def login_role(admin_url: str, *, member_of: str) -> AsyncIterator[str]:
    """The URL of a new LOGIN role granted ``member_of`` (``reconciler_pipeline``, ...), as a
    CI login would be; its sessions are ended and it is dropped afterwards."""
    database = urlsplit(admin_url).path.lstrip("/")
    name = f"{member_of}_{database}_login"
    conn = await asyncpg.connect(asyncpg_dsn(admin_url))
    try:
        await conn.execute(f'CREATE ROLE "{name}" LOGIN IN ROLE {member_of}')
    finally:
        await conn.close()
    try:
        yield url_with_user(admin_url, name)
    finally:
        conn = await asyncpg.connect(asyncpg_dsn(admin_url))
        try:
            await conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1", name
            )
            await conn.execute(f'DROP ROLE IF EXISTS "{name}"')
        finally:
            await conn.close()
