"""The probes while ``reconciler run`` is still connecting to its database and cluster.

A daemon started before PostgreSQL waits for it (``reconciler.connect``).  Without an answer on
its port meanwhile, a kubelet's liveness probe would fail and restart it over and over; so the
port answers from the first moment: ``/livez`` 200 (the process is alive and retrying),
``/readyz`` 503 saying what it waits for, anything else 503.  The daemon's own server
(:mod:`reconciler.web.server`) takes the port over once it is connected.
"""

from __future__ import annotations

import json

from aiohttp import web

from reconciler.errors import ConfigError
from reconciler.logs import get_logger

log = get_logger("http")

_SHUTDOWN_TIMEOUT_S = 1.0


class StartingServer:
    """The probes of a connecting daemon; :attr:`waiting_for` is what readiness reports."""

    def __init__(self) -> None:
        self.waiting_for = "database"
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def start(self, *, host: str, port: int) -> None:
        app = web.Application()
        app.router.add_get("/livez", self._livez)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_route("*", "/{tail:.*}", self._starting)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=_SHUTDOWN_TIMEOUT_S)
        await runner.setup()
        try:
            await web.TCPSite(runner, host, port).start()
        except OSError as exc:
            await runner.cleanup()
            raise ConfigError(
                f"RECONCILER_HTTP_ADDRESS {host}:{port}: cannot listen: {exc}"
            ) from exc
        self._runner = runner
        self.port = int(runner.addresses[0][1])
        log.info("http_starting", host=host, port=self.port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _livez(self, _request: web.Request) -> web.Response:
        return web.Response(text=f"ok: starting, connecting to the {self.waiting_for}\n")

    async def _readyz(self, _request: web.Request) -> web.Response:
        checks = {"starting": f"error: connecting to the {self.waiting_for}"}
        return web.Response(
            status=503, text=json.dumps(checks) + "\n", content_type="application/json"
        )

    async def _starting(self, _request: web.Request) -> web.Response:
        message = f"the daemon is starting (connecting to the {self.waiting_for})"
        return web.json_response({"error": {"message": message}}, status=503)
