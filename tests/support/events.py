"""Listening on ``reconciler_events`` in tests: every payload, parsed, in arrival order."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from reconciler.db import EVENTS_CHANNEL, asyncpg_dsn
from tests.support.waiting import eventually


@dataclass
class EventLog:
    """The events received so far (payloads parsed as JSON) and their raw sizes in bytes."""

    events: list[dict[str, Any]] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)

    def receive(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        self.sizes.append(len(payload.encode()))
        self.events.append(json.loads(payload))

    def transitions(self, project: str) -> list[tuple[str, str]]:
        """(from, to) of the events for ``project``, in order."""
        return [(e["from"], e["to"]) for e in self.events if e["project"] == project]

    async def wait_for(
        self, matches: Callable[[dict[str, Any]], bool], *, within: float = 30.0
    ) -> dict[str, Any]:
        """The first event ``matches`` accepts, waiting for it to arrive."""
        await eventually(
            lambda: any(matches(e) for e in self.events),
            within=within,
            message=f"no such event; got {self.events}",
        )
        return next(e for e in self.events if matches(e))


@contextlib.asynccontextmanager
async def listening(url: str) -> AsyncIterator[EventLog]:
    """LISTEN on ``reconciler_events`` (in place when the block starts) until it ends."""
    log = EventLog()
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        await conn.add_listener(EVENTS_CHANNEL, log.receive)
        yield log
    finally:
        await conn.close()
