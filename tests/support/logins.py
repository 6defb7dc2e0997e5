"""LOGIN roles for tests that connect as a pipeline, a reader or the daemon would."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from urllib.parse import urlsplit

import asyncpg

from reconciler.db import asyncpg_dsn

_LOGINS = itertools.count(1)

Login = Callable[[str], Awaitable[str]]
"""``await login(role)``: the URL of a new LOGIN role granted ``role``."""


@contextlib.asynccontextmanager
async def logins(url: str) -> AsyncIterator[Login]:
    """Make LOGIN roles on the server of ``url``, dropped at the end (roles are the server's,
    so each name carries the database's)."""
    database = urlsplit(url).path.lstrip("/")
    admin = await asyncpg.connect(asyncpg_dsn(url))
    made: list[str] = []

    async def make(role: str) -> str:
        """A new LOGIN role granted ``role``: its URL."""
        user = f"{role}_{database}_l{next(_LOGINS)}"
        await admin.execute(f"CREATE ROLE {user} LOGIN IN ROLE {role}")
        made.append(user)
        return url.replace("://postgres@", f"://{user}@", 1)

    try:
        yield make
    finally:
        for user in made:
            await admin.execute(f"DROP ROLE IF EXISTS {user}")
        await admin.close()


async def run_as(url: str, *statements: str) -> list[str]:
    """Run ``statements`` in one transaction on a connection to ``url``; their statuses."""
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        async with conn.transaction():
            return [await conn.execute(s) for s in statements]
    finally:
        await conn.close()
