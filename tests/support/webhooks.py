"""Receivers of outgoing webhooks for tests: a scripted in-process poster, and a local aiohttp
server that records what it was sent and answers as told (or hangs)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from reconciler.delivery_format import verify


@dataclass(frozen=True)
class Received:
    """One request as the receiver saw it."""

    path: str
    body: bytes
    headers: Mapping[str, str]

    def json(self) -> Any:
        return json.loads(self.body)

    def signed_by(self, secret: str, *, now: float) -> bool:
        return verify(secret=secret, body=self.body, headers=self.headers, now=now)


@dataclass
class ScriptedPoster:
    """A :class:`reconciler.deliveries.Poster` answering ``codes`` in turn (then 200); an
    exception in the list is raised; ``hang`` makes every POST wait for ever."""

    codes: list[int | BaseException] = field(default_factory=list)
    hang: bool = False
    received: list[Received] = field(default_factory=list)
    in_flight: int = 0
    most_in_flight: int = 0
    closed: bool = False

    async def post(
        self, url: str, *, body: bytes, headers: Mapping[str, str], timeout_s: float
    ) -> int:
        self.received.append(Received(path=url, body=body, headers=dict(headers)))
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            if self.hang:
                await asyncio.Event().wait()
            answer = self.codes.pop(0) if self.codes else 200
            if isinstance(answer, BaseException):
                raise answer
            return answer
        finally:
            self.in_flight -= 1

    async def close(self) -> None:
        self.closed = True


@dataclass
class Receiver:
    """A local HTTP receiver: ``url(path)`` to register, ``received`` what arrived; paths in
    ``answers`` get that status (default 200), paths in ``hanging`` never answer."""

    base: str = ""
    received: list[Received] = field(default_factory=list)
    answers: dict[str, int] = field(default_factory=dict)
    hanging: set[str] = field(default_factory=set)
    waiting: int = 0
    """Requests hanging right now."""

    def url(self, path: str) -> str:
        return f"{self.base}{path}"

    def on(self, path: str) -> list[Received]:
        return [r for r in self.received if r.path == path]

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.received.append(Received(path=request.path, body=body, headers=dict(request.headers)))
        if request.path in self.hanging:
            self.waiting += 1
            try:
                await asyncio.Event().wait()
            finally:
                self.waiting -= 1
        return web.Response(status=self.answers.get(request.path, 200), text="ok")


@contextlib.asynccontextmanager
async def receiving() -> AsyncIterator[Receiver]:
    """A :class:`Receiver` on 127.0.0.1 at a free port, for the block's duration."""
    receiver = Receiver()
    app = web.Application()
    app.router.add_post("/{tail:.*}", receiver.handle)
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    receiver.base = f"http://{host}:{port}"
    try:
        yield receiver
    finally:
        await runner.cleanup()
