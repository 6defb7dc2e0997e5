"""The daemon: wake on NOTIFY, a webhook or every poll interval, claim work into free slots,
drain on stop.

One pass: check the heads of the ops repos in use whose check is due and fetch those that moved
(or were asked for: a NOTIFY, a webhook's :meth:`Daemon.sync_now`; ``reconciler.checkouts``),
claim as many deployments needing work as there are free slots, and start an attempt per claimed
deployment (``reconciler.attempt``). A background task renews the leases of in-flight
deployments and learns from the answer when one was superseded. When the database is away,
passes back off until the LISTEN connection is back. SIGTERM/SIGINT: no new claims; in-flight
work gets ``shutdown_grace_s`` to finish, then is recorded as interrupted; exit 0. While it
runs, ``reconciler.web`` serves its probes and metrics (RECONCILER_HTTP_ADDRESS).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import signal
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from reconciler.attempt import CONVERGED, Hooks, Options, Outcome, run_attempt
from reconciler.checkouts import Checkouts
from reconciler.cluster.namespaces import KnownNamespaces
from reconciler.db import NOTIFY_CHANNEL, Listener, Store
from reconciler.deliveries import Deliverer, deliverer_for
from reconciler.errors import DatabaseError
from reconciler.logs import get_logger
from reconciler.model import AttemptStatus, Checkout, Deployment, OpsRepo
from reconciler.observer import ObservedCache, Observer
from reconciler.ports import Cluster, DaemonStore, Notifications, Renderer, RepoFetcher
from reconciler.render.service import PoolRenderer
from reconciler.repo_sync import GitFetcher
from reconciler.retry import Backoff
from reconciler.settings import Settings
from reconciler.web import DaemonMetrics, HttpServer, serve

log = get_logger("daemon")


STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
"""Each drains and stops; a second one stops at once.  SIGHUP too: a closed terminal or a
supervisor's reload must not kill a rollout without recording it."""

HISTORY_PRUNE_INTERVAL_S = 3600.0

_SUCCESS = frozenset(
    {AttemptStatus.HEALTHY, AttemptStatus.STOPPED, AttemptStatus.DELETED, CONVERGED}
)
OWNED_SELECTOR = "reconciler.io/project"
"""What the watches select: every object (and Pod) labelled with an owning deployment."""

ListenerFactory = Callable[[Callable[[str], None], Callable[[], None]], Notifications]
"""Given the NOTIFY and the (re)connected callbacks, the LISTEN connection to run."""


@dataclass
class _InFlight:
    deployment: Deployment
    task: asyncio.Task[Outcome]
    superseded: bool = False
    cancelled: bool = False
    waiting: bool = False
    """Applied, waiting for health: holds no concurrency slot."""


class Daemon:
    """The reconcile loop over one database and one cluster."""

    deliverer: Deliverer | None = None
    """Outgoing webhooks, beside the loop, while :meth:`run` runs (over the database only)."""

    def __init__(
        self,
        *,
        store: DaemonStore,
        kube: Cluster,
        settings: Settings,
        renderer: Renderer | None = None,
        fetcher: RepoFetcher | None = None,
        listener: ListenerFactory | None = None,
        live: ObservedCache | None = None,
    ) -> None:
        self.store = store
        self.kube = kube
        self.settings = settings
        self.outcomes: list[Outcome] = []
        self.metrics = DaemonMetrics()
        self.http: HttpServer | None = None  # /livez, /readyz, /metrics while run() runs
        self.listener: Notifications | None = None
        self.heartbeat = time.monotonic()
        self.looping = False
        self._renderer = renderer or PoolRenderer(timeout_s=settings.render_timeout_s)
        self._options = Options.from_settings(settings, renderer=self._renderer)
        self.live = live
        if live is not None:
            kube.report_writes(live)  # so an unchanged apply is skipped only on what it saw
        self._namespaces = KnownNamespaces()
        self.observer: Observer | None = None
        self._listener = listener or self._default_listener
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._forced = asyncio.Event()
        self._database_back = asyncio.Event()
        self._check_leases = asyncio.Event()
        self._in_flight: dict[int, _InFlight] = {}
        self._repos = self._checkouts(fetcher)
        self._fetched_all = False
        self._in_use: list[OpsRepo] = []
        """The ops repos some deployment used at the last pass (their heads are checked)."""
        self._once = False
        if live is not None:
            self.observer = Observer(
                cache=live,
                store=store,
                field_manager=settings.field_manager,
                daemon_id=settings.daemon_id,
                in_flight=lambda deployment_id: deployment_id in self._in_flight,
                wake=self._wake.set,
                full_check_interval_s=settings.drift_check_interval_s,
            )

    def _checkouts(self, fetcher: RepoFetcher | None) -> Checkouts:
        settings = self.settings
        return Checkouts(
            store=self.store,
            fetcher=fetcher
            or GitFetcher(repos_dir=settings.repos_dir, timeout_s=settings.git_timeout_s),
            wake=self._wake.set,
            synced=self.metrics.repo_synced,
            checked=self.metrics.repo_checked,
            check_interval_s=settings.repo_check_interval_s or settings.poll_interval_s,
        )

    def _default_listener(
        self, on_notify: Callable[[str], None], on_reconnect: Callable[[], None]
    ) -> Notifications:
        if not isinstance(self.store, Store):
            raise TypeError("a Daemon over another store needs a listener factory")
        return Listener(
            url=self.store.url, on_notify=on_notify, on_reconnect=on_reconnect, log=log.warning
        )

    def stop(self) -> None:
        """Ask the daemon to shut down gracefully (signal handlers call this); asked again,
        it stops at once: in-flight work is recorded as interrupted without the grace."""
        if self._stopping.is_set():
            log.warning("shutdown_forced", in_flight=len(self._in_flight))
            self._forced.set()
        else:
            log.info("shutdown_requested", in_flight=len(self._in_flight))
        self._stopping.set()
        self._wake.set()

    # ------------------------------------------------------------ the loop

    async def run(self, *, once: bool = False) -> int:
        """Run until :meth:`stop` (or, with ``once``, until nothing is left to do).  Returns
        the exit code: with ``once``, 0 only if every deployment touched ended healthy or
        stopped."""
        self._once = once
        self.http = None if once else await serve(self)  # a single pass serves no probes
        self.listener = listener = self._listener(self._on_notify, self._on_listening)
        listen_task = asyncio.create_task(listener.run(stop=self._stopping), name="listen")
        renew_task = asyncio.create_task(self._renew_leases(), name="renew-leases")
        self.deliverer = None if once else deliverer_for(self.store, settings=self.settings)
        prune_task = asyncio.create_task(self._prune_history(), name="prune-history")
        deliver_task = None
        if self.deliverer is not None:
            self.deliverer.counted(self.metrics.delivery_attempted)
            deliver_task = asyncio.create_task(self.deliverer.run(), name="deliver")
        observe_task = None
        if self.observer is not None and not once:
            observe_task = asyncio.create_task(
                self.observer.run(stop=self._stopping), name="observe"
            )
        log.info(
            "daemon_started",
            daemon_id=self.settings.daemon_id,
            once=once,
            poll_interval_s=self.settings.poll_interval_s,
            concurrency=self.settings.concurrency,
        )
        try:
            self.looping = True
            await self._loop()
        finally:
            prune_task.cancel()
            await self._shut_down(renew_task=renew_task, listen_task=listen_task)
            if deliver_task is not None and self.deliverer is not None:
                self.deliverer.stop()  # after the drain: its transitions are delivered too
                await deliver_task
            if observe_task is not None:
                observe_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await observe_task
            self.looping = False
            if self.http is not None:
                await self.http.stop()
        failed = [o for o in self.outcomes if o.status not in _SUCCESS]
        log.info("daemon_stopped", reconciled=len(self.outcomes), failed=len(failed))
        return 1 if once and failed else 0

    async def _loop(self) -> None:
        backoff = Backoff(base_s=1.0, max_s=self.settings.poll_interval_s, jitter=1.0)
        failures_in_a_row = 0
        while not self._stopping.is_set():
            self.heartbeat = time.monotonic()  # /livez: the loop turns
            self._wake.clear()
            try:
                claimed = await self._pass()
                failures_in_a_row = 0
            except DatabaseError as exc:
                failures_in_a_row += 1
                delay = backoff.delay(failures_in_a_row)
                log.warning("database_unavailable", error=str(exc), retry_in_s=delay)
                if self._once:
                    raise
                await self._wait_for_database(delay)
                continue
            except Exception as exc:
                failures_in_a_row += 1
                delay = backoff.delay(failures_in_a_row)
                log.exception("pass_failed", error=repr(exc), retry_in_s=delay)
                if self._once:
                    raise
                await self._sleep(delay)
                continue
            if self._once and claimed == 0 and not self._in_flight:
                return
            # Wake for the next head check too, so a repo is checked every check interval.
            next_check_s = self._repos.check_due_in(self._in_use)
            await self._sleep(min(self.settings.poll_interval_s, max(next_check_s, 0.05)))

    async def _shut_down(
        self, *, renew_task: asyncio.Task[None], listen_task: asyncio.Task[None]
    ) -> None:
        await self._drain()
        await self._repos.stop()
        await self._renderer.close()
        self._stopping.set()
        renew_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await renew_task
        with contextlib.suppress(asyncio.CancelledError):
            await listen_task

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)

    async def _wait_for_database(self, seconds: float) -> None:
        """Back off after a failed pass.  Finished reconciles and NOTIFYs must not cut the
        wait short (each would start another failing pass at once); the LISTEN connection
        coming back is the sign the database is back, and so is a stop request."""
        self._database_back.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                while not (self._stopping.is_set() or self._database_back.is_set()):
                    await self._wake.wait()
                    self._wake.clear()
        self._wake.set()  # what arrived meanwhile still needs a pass

    async def _pass(self) -> int:
        """Start syncs of due repos, claim what fits in the free slots, start it.  Returns
        how many were claimed."""
        began = time.perf_counter()
        self._in_use = await self._repos.in_use(fresh=self._once)
        # `run --once` fetches every repo it may render from before it decides anything.
        fetch_all = self._once and not self._fetched_all
        synced = await self._repos.start_syncs(self._in_use, wait=self._once, fetch_all=fetch_all)
        self._fetched_all = True
        claimed = await self._claim_and_start()
        log.debug(
            "pass",
            repos_synced=synced,
            claimed=claimed,
            in_flight=len(self._in_flight),
            duration_ms=round((time.perf_counter() - began) * 1000, 2),
        )
        return claimed

    async def _claim_and_start(self) -> int:
        applying = sum(1 for entry in self._in_flight.values() if not entry.waiting)
        free = self.settings.concurrency - applying
        if free <= 0 or self._stopping.is_set():
            return 0
        claimed = await self.store.claim(
            daemon_id=self.settings.daemon_id,
            limit=free,
            lease_s=self.settings.lease_s,
            in_flight=list(self._in_flight),
        )
        if not claimed:
            return 0
        repos = await self._repos.ensure({d.ops_repo_id for d in claimed})
        for deployment in claimed:
            self._start(deployment, repo=repos.get(deployment.ops_repo_id))
        return len(claimed)

    def _start(self, deployment: Deployment, *, repo: OpsRepo | None) -> None:
        entry: _InFlight

        def superseded() -> bool:
            return entry.superseded

        def cancelled() -> bool:
            return entry.cancelled

        def applied() -> None:
            entry.waiting = True
            self._wake.set()  # a slot is free

        hooks = Hooks(
            live=self.live,
            applied=applied,
            checkout_at=self._checkout_at(repo),
            finished=self.metrics.reconciled,
            namespaces=self._namespaces,
        )
        task = asyncio.create_task(
            self._attempt(
                deployment, repo=repo, superseded=superseded, cancelled=cancelled, hooks=hooks
            ),
            name=f"reconcile-{deployment.project}-{deployment.environment}",
        )
        entry = _InFlight(deployment=deployment, task=task)
        self._in_flight[deployment.id] = entry
        task.add_done_callback(functools.partial(self._done, deployment.id))

    async def _attempt(
        self,
        deployment: Deployment,
        *,
        repo: OpsRepo | None,
        superseded: Callable[[], bool],
        cancelled: Callable[[], bool],
        hooks: Hooks,
    ) -> Outcome:
        return await run_attempt(
            deployment,
            store=self.store,
            cluster=self.kube,
            checkout=await self._repos.checkout_for(deployment, repo=repo),
            options=self._options,
            superseded=superseded,
            cancelled=cancelled,
            hooks=hooks,
        )

    def _checkout_at(self, repo: OpsRepo | None) -> Callable[[str], Awaitable[Checkout]] | None:
        if repo is None:
            return None
        return functools.partial(self._repos.checkout_at, repo)

    def _done(self, deployment_id: int, task: asyncio.Task[Outcome]) -> None:
        self._in_flight.pop(deployment_id, None)
        if self.observer is not None:
            self.observer.attempt_done(deployment_id)
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            # run_attempt() records its own failures; reaching here is a bug worth a loud line.
            log.error("reconcile_crashed", deployment_id=deployment_id, error=repr(error))
            return
        self.outcomes.append(task.result())
        self._wake.set()  # a slot is free: there may be more work waiting

    @property
    def in_flight_counts(self) -> tuple[int, int]:
        """Attempts applying (holding a slot) and attempts waiting for health."""
        waiting = sum(1 for entry in self._in_flight.values() if entry.waiting)
        return len(self._in_flight) - waiting, waiting

    def sync_now(self, repo_ids: Sequence[int]) -> None:
        """Fetch these ops repos at once (a verified webhook): the loop wakes, fetches them,
        and re-renders the deployments a new commit concerns."""
        for repo_id in repo_ids:
            self._repos.force(repo_id)
        self._wake.set()

    def _on_listening(self) -> None:
        # NOTIFYs sent while the connection was down are gone: look at the database once now.
        log.info("listening", channel=NOTIFY_CHANNEL)
        self._repos.forget_in_use()
        self._database_back.set()
        self._wake.set()

    def _on_notify(self, payload: str) -> None:
        """``<id>``: a new desired state (an in-flight attempt at it is superseded);
        ``cancel:<id>``: end that attempt's wait, recorded cancelled; ``repo:<id>``: sync that
        ops repo now; ``wake:<id>`` (pause, resume, retry): just look at the database."""
        if payload.startswith("repo:"):
            with contextlib.suppress(ValueError):
                self._repos.force(int(payload.removeprefix("repo:")))
        elif payload.startswith("cancel:"):
            with contextlib.suppress(ValueError):
                entry = self._in_flight.get(int(payload.removeprefix("cancel:")))
                if entry is not None:
                    entry.cancelled = True
        elif not payload.startswith("wake:"):
            # The payload names no generation, and it may arrive after a claim already read
            # the generation it announces: ask the database instead of assuming supersession.
            with contextlib.suppress(ValueError):
                if int(payload) in self._in_flight:
                    self._check_leases.set()
        self._wake.set()

    async def _renew_leases(self) -> None:
        """Keep in-flight leases alive; a row whose generation moved (or that is no longer
        ours) is superseded, even if its NOTIFY was lost; a NOTIFY for an in-flight row
        checks at once."""
        interval = self.settings.lease_s / 3
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._check_leases.wait(), interval)
            self._check_leases.clear()
            entries = dict(self._in_flight)
            if not entries:
                continue
            try:
                generations = await self.store.renew_leases(
                    daemon_id=self.settings.daemon_id,
                    ids=list(entries),
                    lease_s=self.settings.lease_s,
                )
                cancelled = await self.store.cancels_requested(
                    daemon_id=self.settings.daemon_id, ids=list(entries)
                )
            except DatabaseError as exc:
                log.warning("lease_renewal_failed", error=str(exc))
                continue
            for deployment_id, entry in entries.items():
                generation = generations.get(deployment_id)
                if generation is None or generation != entry.deployment.generation:
                    entry.superseded = True
                if deployment_id in cancelled:
                    entry.cancelled = True

    async def _prune_history(self) -> None:
        """With RECONCILER_HISTORY_RETENTION_DAYS, delete old history now and every hour, in
        small batches beside the loop (never blocking it)."""
        keep_days = self.settings.history_retention_days
        if keep_days is None or self._once:
            return
        while True:
            try:
                pruned = await self.store.prune_history(keep_days=keep_days)
                if pruned:
                    log.info("history_pruned", rows=pruned, keep_days=keep_days)
                if self.deliverer is not None:
                    deleted = await self.deliverer.prune(keep_days=keep_days)
                    if deleted:
                        log.info("deliveries_pruned", rows=deleted, keep_days=keep_days)
            except DatabaseError as exc:
                log.warning("history_prune_failed", error=str(exc))
            await asyncio.sleep(HISTORY_PRUNE_INTERVAL_S)

    async def _drain(self) -> None:
        """Let in-flight work finish within the grace period (cut short by a second stop),
        then interrupt it."""
        if not self._in_flight:
            return
        tasks = [entry.task for entry in self._in_flight.values()]
        log.info("draining", in_flight=len(tasks), grace_s=self.settings.shutdown_grace_s)
        everything = asyncio.ensure_future(asyncio.wait(tasks))
        forced = asyncio.ensure_future(self._forced.wait())
        await asyncio.wait(
            [everything, forced],
            timeout=self.settings.shutdown_grace_s,
            return_when=asyncio.FIRST_COMPLETED,
        )
        everything.cancel()
        forced.cancel()
        pending = [task for task in tasks if not task.done()]
        for task in pending:
            task.cancel()
        if pending:
            # Each cancelled attempt records itself as interrupted before it ends.
            await asyncio.wait(pending, timeout=10)
