"""LISTEN on a channel (the daemon's ``reconciler``, or ``reconciler_events`` for
``reconciler wait``), on a connection of its own that comes back when lost."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import suppress

import asyncpg

from reconciler.db.connection import asyncpg_dsn, describe_url
from reconciler.db.queries import sql
from reconciler.retry import Backoff

NOTIFY_CHANNEL = "reconciler"
EVENTS_CHANNEL = "reconciler_events"
"""Where the trigger of migration 0007 publishes every status transition, as JSON."""

_LIVENESS_INTERVAL_S = 5.0
_LISTEN_ERRORS = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError)


class Listener:
    """A dedicated connection LISTENing on ``channel`` (default: ``reconciler``); reconnects
    when lost.

    ``on_notify`` receives each payload (on ``reconciler``: a deployment id, or ``repo:<id>``).
    ``connected`` is set while the LISTEN is in place: whoever waits on it learns the
    connection is back and should poll once, since NOTIFYs sent while it was down are gone.
    """

    def __init__(
        self,
        *,
        url: str,
        on_notify: Callable[[str], None],
        on_reconnect: Callable[[], None],
        log: Callable[..., None] | None = None,
        channel: str = NOTIFY_CHANNEL,
    ) -> None:
        self._channel = channel
        self._dsn = asyncpg_dsn(url)
        self._url = url
        self._on_notify = on_notify
        self._on_reconnect = on_reconnect
        self._log = log
        self.connected = asyncio.Event()
        self._failures = 0

    async def run(self, *, stop: asyncio.Event, backoff_max_s: float = 10.0) -> None:
        """Listen until ``stop`` is set; after a loss, reconnect in 0.2 s, doubling up to
        ``backoff_max_s`` while the server stays away."""
        backoff = Backoff(base_s=0.2, max_s=backoff_max_s, jitter=1.0)  # jitter 1.0: none
        self._failures = 0
        while not stop.is_set():
            try:
                await self._listen(stop)
            except _LISTEN_ERRORS as exc:
                if self._log:
                    self._log(
                        "listen_lost",
                        error=str(exc) or type(exc).__name__,
                        retry_in_s=round(backoff.unjittered(self._failures + 1), 2),
                        database=describe_url(self._url),
                    )
            if stop.is_set():
                return
            self._failures += 1
            with suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=backoff.unjittered(self._failures))

    async def _listen(self, stop: asyncio.Event) -> None:
        """One connection: LISTEN, then wait until ``stop`` is set or the connection is lost."""
        conn: asyncpg.Connection | None = None
        lost = asyncio.Event()
        try:
            conn = await asyncpg.connect(self._dsn, timeout=10)
            conn.add_termination_listener(lambda _c: lost.set())
            await conn.add_listener(self._channel, self._deliver)
            self.connected.set()
            self._on_reconnect()
            self._failures = 0  # the backoff starts over after a connection that worked
            # Wake every few seconds to check the connection is alive: a server that
            # vanished without closing the socket would otherwise leave us deaf.
            while not stop.is_set() and not lost.is_set():
                if not await _first_of(stop, lost, timeout_s=_LIVENESS_INTERVAL_S):
                    await conn.execute(sql("ping"), timeout=_LIVENESS_INTERVAL_S)
        finally:
            self.connected.clear()
            if conn is not None and not conn.is_closed():
                await conn.close(timeout=2)

    def _deliver(self, _conn: object, _pid: int, _channel: str, payload: object) -> None:
        self._on_notify(str(payload))


async def _first_of(*events: asyncio.Event, timeout_s: float) -> bool:
    """Wait until one of ``events`` is set (True) or the timeout passes (False)."""
    waiters = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        done, _pending = await asyncio.wait(
            waiters, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        for waiter in waiters:
            waiter.cancel()
    return bool(done)
