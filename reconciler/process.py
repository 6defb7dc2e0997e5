"""``reconciler run`` as a process: signals from the first moment, connecting (waiting out a
database or a cluster that is not up yet), then the loop of :mod:`reconciler.daemon`."""

from __future__ import annotations

import asyncio

from reconciler import collector
from reconciler.cluster.kube import Kube
from reconciler.cluster.live import LiveCache
from reconciler.connect import connect_kube, connect_store
from reconciler.daemon import OWNED_SELECTOR, STOP_SIGNALS, Daemon
from reconciler.db import Store
from reconciler.errors import ConfigError
from reconciler.logs import get_logger
from reconciler.render.validation import check_version
from reconciler.repo_sync import claim_repos_dir
from reconciler.settings import Settings
from reconciler.web.starting import StartingServer

log = get_logger("daemon")

# Reconciles hold a connection only for short transactions, so the pool need not grow with
# RECONCILER_CONCURRENCY (peaks measured: 16 to 20 busy in a bulk update at the default
# concurrency).  20 for the hot statements and 5 for the rest (Store.connect) leave room for
# several daemons under PostgreSQL's default max_connections of 100.  All stay open while in
# use: overflow connections closed on return were reopened 80 to 130 times in a bulk update of
# 1,000 deployments, each a new server backend and the driver's type and prepare round trips.
DATABASE_POOL_SIZE = 20
DATABASE_POOL_OVERFLOW = 0


async def main(*, settings: Settings, once: bool) -> int:
    """``reconciler run``: connect, then loop until a signal (or one pass with ``once``).  A
    signal while still connecting stops at once, exit 0 (a pod terminated as it boots)."""
    if not settings.database_url:
        raise ConfigError("DATABASE_URL is not set (e.g. postgresql://user:pass@host:5432/db)")
    check_version(settings.kubernetes_version)
    started: list[Daemon] = []
    starting = asyncio.current_task()
    early: list[int] = []

    def on_signal() -> None:
        if started:
            started[0].stop()
        elif starting is not None and not early:
            early.append(1)
            starting.cancel()

    loop = asyncio.get_running_loop()
    for signum in STOP_SIGNALS:
        loop.add_signal_handler(signum, on_signal)
    try:
        return await _serve(settings, settings.database_url, once=once, started=started)
    except asyncio.CancelledError:
        if not early:
            raise
        log.info("daemon_stopped", reconciled=0, failed=0, while_starting=True)
        return 0
    finally:
        for signum in STOP_SIGNALS:
            loop.remove_signal_handler(signum)


async def _serve(
    settings: Settings, database_url: str, *, once: bool, started: list[Daemon]
) -> int:
    # Before anything else: a second daemon on the same checkouts must not even connect.
    with claim_repos_dir(settings.repos_dir):
        probes = await _probes_while_starting(settings, once=once)
        try:
            store = await connect_store(
                database_url,
                once=once,
                pool_size=DATABASE_POOL_SIZE,
                max_overflow=DATABASE_POOL_OVERFLOW,
            )
            if probes is not None:
                probes.waiting_for = "cluster"
            kube = await _connect_kube(settings, store=store, once=once)
        finally:
            if probes is not None:
                await probes.stop()  # the daemon's own server takes the port over
        try:
            live = LiveCache(kube, label_selector=OWNED_SELECTOR)
            collector.settle()  # what starting made stays for good
            try:
                started.append(Daemon(store=store, kube=kube, settings=settings, live=live))
                return await started[0].run(once=once)
            finally:
                await live.close()
                await kube.close()
        finally:
            await store.close()


async def _connect_kube(settings: Settings, *, store: Store, once: bool) -> Kube:
    """The cluster; the database is closed again when it cannot be reached."""
    try:
        return await connect_kube(settings, once=once)
    except BaseException:
        await store.close()
        raise


async def _probes_while_starting(settings: Settings, *, once: bool) -> StartingServer | None:
    """Probes on the daemon's port while it connects, so a kubelet does not restart a daemon
    that waits for its database.  Not for ``--once`` (it serves nothing), nor on port 0 (no
    probe could find that port)."""
    address = settings.http_address
    if once or address is None or address[1] == 0:
        return None
    probes = StartingServer()
    await probes.start(host=address[0], port=address[1])
    return probes
