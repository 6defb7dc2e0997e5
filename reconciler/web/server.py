"""The daemon's one HTTP server: ``/livez``, ``/readyz``, ``/metrics``, the API under
``/api/v1`` (:mod:`reconciler.web.api`) and the git webhooks (``POST /hooks/git``,
:mod:`reconciler.web.git_hooks`).

Liveness says the loop turns: a kubelet restarts a daemon whose loop is stuck, but not one
waiting out a database outage (its loop keeps turning, backing off).  Readiness says the daemon
can work: the database answers, the LISTEN connection is up, the cluster answers.  Metrics are
:class:`reconciler.web.metrics.DaemonMetrics`, refreshed at each scrape.
"""

from __future__ import annotations

import asyncio
import functools
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from reconciler.cluster.kube import Kube
from reconciler.cluster.live import LiveCache
from reconciler.db import Store
from reconciler.errors import ConfigError, ReconcilerError
from reconciler.logs import get_logger
from reconciler.observer import ObservedCache, Observer
from reconciler.ports import Cluster, DaemonStore, Notifications
from reconciler.settings import Settings
from reconciler.web.api import add_api_routes
from reconciler.web.git_hooks import add_git_hooks
from reconciler.web.metrics import DaemonMetrics, Sampled

log = get_logger("http")

CHECK_TIMEOUT_S = 2.0
"""How long each readiness check (and the scrape's query) may take: a probe must answer before
the kubelet's own timeout, and a hung database is as good as a refusing one."""

LIVENESS_SLACK_S = 60.0
"""Beyond three poll intervals and the git timeout (a pass may wait for a first clone), how
long a loop iteration may take before the loop counts as stuck."""

_SHUTDOWN_TIMEOUT_S = 1.0  # an open scrape connection must not hold up the daemon's exit


class Probed(Protocol):
    """What the server reads of the daemon (``reconciler.daemon.Daemon``)."""

    settings: Settings
    store: DaemonStore
    kube: Cluster
    live: ObservedCache | None
    observer: Observer | None
    metrics: DaemonMetrics
    listener: Notifications | None
    heartbeat: float
    """``time.monotonic()`` when the loop last began an iteration (a pass or a backoff)."""
    looping: bool

    @property
    def in_flight_counts(self) -> tuple[int, int]:
        """Attempts applying (holding a slot) and attempts waiting for health."""
        ...

    def sync_now(self, repo_ids: Sequence[int]) -> None:
        """Fetch these ops repos at once (``POST /hooks/git``)."""
        ...


class HttpServer:
    """The running server; :attr:`port` is the port bound (useful with port 0)."""

    def __init__(self, *, runner: web.AppRunner, port: int) -> None:
        self._runner = runner
        self.port = port

    async def stop(self) -> None:
        await self._runner.cleanup()


async def serve(daemon: Probed) -> HttpServer | None:
    """Start the server on ``RECONCILER_HTTP_ADDRESS`` (None when it is ``off``), counting
    the daemon's Kubernetes requests and sampling its watch counters for the metrics.  A port
    that cannot be bound is a ConfigError naming the setting."""
    address = daemon.settings.http_address
    if address is None:
        return None
    _instrument(daemon)
    app = web.Application()
    for path, endpoint in (("/livez", _livez), ("/readyz", _readyz), ("/metrics", _metrics)):
        app.router.add_get(path, functools.partial(_answer, endpoint, daemon))
    if isinstance(daemon.store, Store):  # the API needs the real database (tests fake it)
        add_api_routes(app, store=daemon.store)
    add_git_hooks(app, daemon)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=_SHUTDOWN_TIMEOUT_S)
    await runner.setup()
    host, port = address
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as exc:
        await runner.cleanup()
        raise ConfigError(f"RECONCILER_HTTP_ADDRESS {host}:{port}: cannot listen: {exc}") from exc
    bound = int(runner.addresses[0][1])
    log.info("http_listening", host=host, port=bound)
    return HttpServer(runner=runner, port=bound)


def _instrument(daemon: Probed) -> None:
    metrics = daemon.metrics
    if isinstance(daemon.kube, Kube):
        daemon.kube.requests.hook = metrics.kube_request
    live = daemon.live if isinstance(daemon.live, LiveCache) else None
    observer = daemon.observer

    def sampled() -> Sampled:
        return Sampled(
            heals_requested=observer.heals_requested if observer else 0,
            health_changes=observer.health_changes if observer else 0,
            watch_events=live.events_seen if live else 0,
            watch_relists=live.relists if live else 0,
            watch_reconnects=live.reconnects if live else 0,
            watch_failures=live.failures if live else 0,
            watch_cache_objects=live.size if live else 0,
        )

    metrics.sample(sampled)


# ------------------------------------------------------------ the endpoints


async def _answer(
    endpoint: Callable[[Probed], Awaitable[web.Response]], daemon: Probed, _request: web.Request
) -> web.Response:
    return await endpoint(daemon)


async def _livez(daemon: Probed) -> web.Response:
    stuck = liveness_problem(daemon, now=time.monotonic())
    if stuck is None:
        return web.Response(text="ok\n")
    return web.Response(status=503, text=f"{stuck}\n")


def liveness_problem(daemon: Probed, *, now: float) -> str | None:
    """Why the daemon is not alive, or None: the loop runs and began an iteration lately."""
    if not daemon.looping:
        return "the loop is not running"
    settings = daemon.settings
    limit_s = 3 * settings.poll_interval_s + settings.git_timeout_s + LIVENESS_SLACK_S
    idle_s = now - daemon.heartbeat
    if idle_s > limit_s:
        return f"the loop has not turned for {idle_s:.0f}s (more than {limit_s:.0f}s)"
    return None


async def _readyz(daemon: Probed) -> web.Response:
    checks = await readiness(daemon)
    ready = all(result == "ok" for result in checks.values())
    return web.Response(
        status=200 if ready else 503,
        text=json.dumps(checks) + "\n",
        content_type="application/json",
    )


async def readiness(daemon: Probed) -> dict[str, str]:
    """Each check's result: ``ok``, or ``error: ...`` saying what failed."""
    database, cluster = await asyncio.gather(
        _check(daemon.store.ping(timeout_s=CHECK_TIMEOUT_S)), _check(daemon.kube.version())
    )
    listening = daemon.listener is not None and daemon.listener.connected.is_set()
    return {
        "database": database,
        "listen": "ok" if listening else "error: the LISTEN connection is not established",
        "cluster": cluster,
    }


async def _check(call: Awaitable[object]) -> str:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_S):
            await call
    except TimeoutError:
        return f"error: no answer within {CHECK_TIMEOUT_S:g}s"
    except ReconcilerError as exc:
        return f"error: {exc}"
    except Exception as exc:  # a probe answers with what went wrong, never a bare 500
        return f"error: {type(exc).__name__}: {exc}"
    return "ok"


async def _metrics(daemon: Probed) -> web.Response:
    counts: dict[str, int] | None
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_S):
            counts = await daemon.store.counts_by_status()
    except (TimeoutError, ReconcilerError) as exc:
        log.warning("metrics_counts_unavailable", error=str(exc) or type(exc).__name__)
        counts = None
    applying, waiting = daemon.in_flight_counts
    daemon.metrics.refresh(counts_by_status=counts, applying=applying, waiting=waiting)
    return web.Response(
        body=daemon.metrics.exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST}
    )
