"""The daemon: wake on NOTIFY or every poll interval, sync ops repos, claim work, reconcile.

One pass: start a sync of each ops repo that is due (one at a time per repo, in the background:
a hung remote must not hold up other work; a sync that brings a new commit wakes the loop), claim
as many deployments needing work as there are free slots, and start a task per claimed
deployment.  A task renders from the repo's last good checkout, fetching first only when the
deployment already runs a commit that checkout does not contain (another daemon fetched it), so
manifests never go back to an older commit.  A background task renews the leases of in-flight
deployments and learns from the answer when one was superseded.  When the database is away,
passes back off until the LISTEN connection is back.  SIGTERM/SIGINT: no new claims; in-flight
work gets ``shutdown_grace_s`` to finish, then is recorded as interrupted; exit 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from reconciler import ops_repo
from reconciler.cluster.kube import Kube
from reconciler.decide import RetryPolicy
from reconciler.errors import ConfigError, DatabaseError, KubernetesError, ReconcilerError
from reconciler.logs import get_logger
from reconciler.model import Checkout, Deployment, OpsRepo
from reconciler.reconcile import Options, Outcome, reconcile
from reconciler.render_pool import RenderPool
from reconciler.settings import Settings
from reconciler.store import NOTIFY_CHANNEL, Listener, Store

log = get_logger("daemon")

# Reconciles hold a connection only for short transactions, so the pool need not grow with
# RECONCILER_CONCURRENCY (peaks measured: 13 busy at concurrency 64); ten plus ten overflow
# leaves room for several daemons under PostgreSQL's default max_connections of 100.
DATABASE_POOL_SIZE = 10

_SUCCESS = frozenset({"healthy", "stopped", "converged"})


@dataclass
class _InFlight:
    deployment: Deployment
    task: asyncio.Task[Outcome]
    superseded: bool = False


@dataclass
class _RepoState:
    """The daemon's memory of the ops repos it synced: what to render from."""

    checkouts: dict[int, Checkout] = field(default_factory=dict)
    forced: set[int] = field(default_factory=set)
    changed: dict[int, str] = field(default_factory=dict)
    """Repos synced since the last claim that saw every candidate: repo id -> sha."""


class Daemon:
    """The reconcile loop over one store and one cluster."""

    def __init__(self, *, store: Store, kube: Kube, settings: Settings) -> None:
        self.store = store
        self.kube = kube
        self.settings = settings
        self.outcomes: list[Outcome] = []
        self._renderer = RenderPool(timeout_s=settings.render_timeout_s)
        self._options = Options(
            field_manager=settings.field_manager,
            health_timeout_s=settings.health_timeout_s,
            health_poll_s=0.5,
            daemon_id=settings.daemon_id,
            retry=RetryPolicy(
                max_attempts=settings.max_attempts,
                base_s=settings.retry_base_s,
                max_s=settings.retry_max_s,
            ),
            renderer=self._renderer,
        )
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._database_back = asyncio.Event()
        self._in_flight: dict[int, _InFlight] = {}
        self._repos = _RepoState()
        self._sync_locks: dict[int, asyncio.Lock] = {}
        self._syncs: dict[int, asyncio.Task[Checkout]] = {}
        self._once = False

    def stop(self) -> None:
        """Ask the daemon to shut down gracefully (signal handlers call this)."""
        if not self._stopping.is_set():
            log.info("shutdown_requested", in_flight=len(self._in_flight))
        self._stopping.set()
        self._wake.set()

    # ------------------------------------------------------------ the loop

    async def run(self, *, once: bool = False) -> int:
        """Run until :meth:`stop` (or, with ``once``, until nothing is left to do).  Returns
        the exit code: with ``once``, 0 only if every deployment touched ended healthy or
        stopped."""
        self._once = once
        listener = Listener(
            url=self.store.url,
            on_notify=self._on_notify,
            on_reconnect=self._on_listening,
            log=log.warning,
        )
        listen_task = asyncio.create_task(listener.run(stop=self._stopping), name="listen")
        renew_task = asyncio.create_task(self._renew_leases(), name="renew-leases")
        log.info(
            "daemon_started",
            daemon_id=self.settings.daemon_id,
            once=once,
            poll_interval_s=self.settings.poll_interval_s,
            concurrency=self.settings.concurrency,
        )
        failures_in_a_row = 0
        try:
            while not self._stopping.is_set():
                self._wake.clear()
                try:
                    claimed = await self._pass()
                    failures_in_a_row = 0
                except DatabaseError as exc:
                    failures_in_a_row += 1
                    delay = min(self.settings.poll_interval_s, 0.5 * 2**failures_in_a_row)
                    log.warning("database_unavailable", error=str(exc), retry_in_s=delay)
                    if once:
                        raise
                    await self._wait_for_database(delay)
                    continue
                if once and claimed == 0 and not self._in_flight:
                    break
                await self._sleep(self.settings.poll_interval_s)
        finally:
            await self._drain()
            await self._stop_syncs()
            await self._renderer.close()
            self._stopping.set()
            renew_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renew_task
            with contextlib.suppress(asyncio.CancelledError):
                await listen_task
        failed = [o for o in self.outcomes if o.status not in _SUCCESS]
        log.info("daemon_stopped", reconciled=len(self.outcomes), failed=len(failed))
        if once:
            return 0 if not failed else 1
        return 0

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
        synced = await self._sync_repos(await self.store.ops_repos_due_for_sync())
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
        free = self.settings.concurrency - len(self._in_flight)
        if free <= 0 or self._stopping.is_set():
            return 0
        changed = dict(self._repos.changed)
        claimed = await self.store.claim(
            daemon_id=self.settings.daemon_id,
            limit=free,
            lease_s=self.settings.lease_s,
            changed_repos=changed,
            in_flight=list(self._in_flight),
        )
        if len(claimed) < free:
            # Every candidate of these commits was seen; later passes need not look again.
            for repo_id in changed:
                self._repos.changed.pop(repo_id, None)
        if not claimed:
            return 0
        repos = await self._ensure_checkouts({d.ops_repo_id for d in claimed})
        for deployment in claimed:
            self._start(deployment, repo=repos.get(deployment.ops_repo_id))
        return len(claimed)

    def _start(self, deployment: Deployment, *, repo: OpsRepo | None) -> None:
        entry: _InFlight

        def superseded() -> bool:
            return entry.superseded

        task = asyncio.create_task(
            self._reconcile(deployment, repo=repo, superseded=superseded),
            name=f"reconcile-{deployment.project}-{deployment.environment}",
        )
        entry = _InFlight(deployment=deployment, task=task)
        self._in_flight[deployment.id] = entry
        task.add_done_callback(functools.partial(self._done, deployment.id))

    async def _reconcile(
        self, deployment: Deployment, *, repo: OpsRepo | None, superseded: Callable[[], bool]
    ) -> Outcome:
        return await reconcile(
            deployment,
            store=self.store,
            kube=self.kube,
            checkout=await self._checkout_for(deployment, repo=repo),
            options=self._options,
            superseded=superseded,
        )

    async def _checkout_for(self, deployment: Deployment, *, repo: OpsRepo | None) -> Checkout:
        """The checkout to render ``deployment`` from.

        Daemons keep checkouts of their own, fetched at different moments: another one may
        have deployed this deployment from a commit this daemon has not fetched yet.
        Rendering from the older checkout would take the cluster back to older manifests (and
        the next fetch forward again), so when the deployed commit is not in this checkout's
        history the repo is fetched first.
        """
        checkout = self._repos.checkouts.get(deployment.ops_repo_id)
        if repo is None or checkout is None:
            return checkout or Checkout(
                name=f"#{deployment.ops_repo_id}",
                path=None,
                subdir="",
                sha=None,
                error="the ops repo is not registered",
            )
        deployed = deployment.current_sha
        if checkout.path is None or deployed is None or deployed == checkout.sha:
            return checkout
        if await asyncio.to_thread(ops_repo.contains_commit, checkout.path, deployed):
            return checkout
        log.info(
            "checkout_behind",
            repo=repo.name,
            project=deployment.project,
            environment=deployment.environment,
            deployed_sha=deployed,
            checkout_sha=checkout.sha,
        )
        # wait() leaves the sync running if this reconcile is cancelled: it is shared.
        await asyncio.wait([self._sync_task(repo)])
        return self._repos.checkouts.get(deployment.ops_repo_id, checkout)

    def _done(self, deployment_id: int, task: asyncio.Task[Outcome]) -> None:
        self._in_flight.pop(deployment_id, None)
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            # reconcile() records its own failures; reaching here is a bug worth a loud line.
            log.error("reconcile_crashed", deployment_id=deployment_id, error=repr(error))
            return
        self.outcomes.append(task.result())
        self._wake.set()  # a slot is free: there may be more work waiting

    def _on_listening(self) -> None:
        # NOTIFYs sent while the connection was down are gone: look at the database once now.
        log.info("listening", channel=NOTIFY_CHANNEL)
        self._database_back.set()
        self._wake.set()

    def _on_notify(self, payload: str) -> None:
        if payload.startswith("repo:"):
            with contextlib.suppress(ValueError):
                self._repos.forced.add(int(payload.removeprefix("repo:")))
        else:
            with contextlib.suppress(ValueError):
                entry = self._in_flight.get(int(payload))
                if entry is not None:
                    entry.superseded = True
        self._wake.set()

    async def _renew_leases(self) -> None:
        """Keep in-flight leases alive; a row whose generation moved (or that is no longer
        ours) is superseded, even if its NOTIFY was lost."""
        interval = self.settings.lease_s / 3
        while True:
            await asyncio.sleep(interval)
            entries = dict(self._in_flight)
            if not entries:
                continue
            try:
                generations = await self.store.renew_leases(
                    daemon_id=self.settings.daemon_id,
                    ids=list(entries),
                    lease_s=self.settings.lease_s,
                )
            except DatabaseError as exc:
                log.warning("lease_renewal_failed", error=str(exc))
                continue
            for deployment_id, entry in entries.items():
                generation = generations.get(deployment_id)
                if generation is None or generation != entry.deployment.generation:
                    entry.superseded = True

    async def _drain(self) -> None:
        """Let in-flight work finish within the grace period, then interrupt it."""
        if not self._in_flight:
            return
        tasks = [entry.task for entry in self._in_flight.values()]
        log.info("draining", in_flight=len(tasks), grace_s=self.settings.shutdown_grace_s)
        _done, pending = await asyncio.wait(tasks, timeout=self.settings.shutdown_grace_s)
        for task in pending:
            task.cancel()
        if pending:
            # Each cancelled reconcile records its attempt as interrupted before it ends.
            await asyncio.wait(pending, timeout=10)

    # ------------------------------------------------------------ ops repos

    async def _sync_repos(self, due: Sequence[OpsRepo]) -> int:
        """Start a sync of each due (or NOTIFY-forced) repo that is not syncing already.
        Returns how many started.  Passes do not wait for them: a remote that hangs until the
        git timeout would hold up every deployment; a finished sync wakes the loop instead."""
        forced = self._repos.forced
        self._repos.forced = set()
        if forced - {r.id for r in due}:
            extra = await self.store.ops_repos_by_id(sorted(forced - {r.id for r in due}))
            due = [*due, *extra.values()]
        started = []
        for repo in due:
            running = self._syncs.get(repo.id)
            if running is not None and not running.done():
                if repo.id in forced:
                    # Its URL or branch changed during this sync: sync again once it ends.
                    self._repos.forced.add(repo.id)
                continue
            started.append(self._sync_task(repo))
        if started and self._once:
            # One pass of `run --once` sees the repos as they are now.
            await asyncio.wait(started)  # (wait never cancels what it waits for)
        return len(started)

    def _sync_task(self, repo: OpsRepo) -> asyncio.Task[Checkout]:
        """The running sync of ``repo``, started if there is none."""
        task = self._syncs.get(repo.id)
        if task is None or task.done():
            task = asyncio.create_task(self._sync_one(repo), name=f"sync-{repo.name}")
            self._syncs[repo.id] = task
            task.add_done_callback(functools.partial(self._synced, repo))
        return task

    def _synced(self, repo: OpsRepo, task: asyncio.Task[Checkout]) -> None:
        if self._syncs.get(repo.id) is task:
            del self._syncs[repo.id]
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            # The fetch ran, but its result could not be recorded (the database is away);
            # the repo stays due and is synced again by a later pass.
            log.warning("repo_sync_unrecorded", repo=repo.name, error=str(error))

    async def _stop_syncs(self) -> None:
        tasks = list(self._syncs.values())
        for task in tasks:
            task.cancel()  # sync_repo kills git when cancelled
        if tasks:
            await asyncio.wait(tasks, timeout=10)

    async def _ensure_checkouts(self, repo_ids: set[int]) -> dict[int, OpsRepo]:
        """Claimed deployments need their repo: use the checkout on disk, or wait for the
        first fetch (the only sync a pass waits for: without it there is nothing to render).
        Returns the repos' rows."""
        repos = await self.store.ops_repos_by_id(sorted(repo_ids))
        first_fetches = []
        for repo in repos.values():
            if repo.id in self._repos.checkouts:
                continue
            path = ops_repo.checkout_dir(repos_dir=self.settings.repos_dir, name=repo.name)
            sha = await asyncio.to_thread(ops_repo.current_sha, path)
            if sha is None:
                first_fetches.append(self._sync_task(repo))
            else:
                self._repos.checkouts[repo.id] = Checkout(
                    name=repo.name, path=path, subdir=repo.path, sha=sha, error=repo.last_error
                )
        if first_fetches:
            # A failed fetch is reported by _synced; the checkout it leaves says why.
            await asyncio.wait(first_fetches)
        return repos

    async def _sync_one(self, repo: OpsRepo) -> Checkout:
        lock = self._sync_locks.setdefault(repo.id, asyncio.Lock())
        async with lock:
            previous = self._repos.checkouts.get(repo.id)
            checkout = await sync_checkout(settings=self.settings, repo=repo)
            # Known before it is recorded: the tree on disk is this commit now.
            self._repos.checkouts[repo.id] = checkout
            if checkout.sha is not None:
                self._repos.changed[repo.id] = checkout.sha
                if previous is None or previous.sha != checkout.sha:
                    self._wake.set()  # deployments of the repo may need the new commit
            await record_sync(store=self.store, repo=repo, checkout=checkout)
            return checkout


async def sync_checkout(*, settings: Settings, repo: OpsRepo) -> Checkout:
    """Fetch one ops repo.  A failed fetch keeps the last good checkout (if any) to render
    from, with the error alongside."""
    path = ops_repo.checkout_dir(repos_dir=settings.repos_dir, name=repo.name)
    try:
        result = await ops_repo.sync_repo(
            name=repo.name,
            url=repo.repo_url,
            branch=repo.branch,
            repos_dir=settings.repos_dir,
            timeout_s=settings.git_timeout_s,
        )
    except ReconcilerError as exc:
        error = str(exc)
        sha = await asyncio.to_thread(ops_repo.current_sha, path)
        log.warning("repo_sync_failed", repo=repo.name, error=error, serving_sha=sha or "none")
        return Checkout(
            name=repo.name, path=path if sha else None, subdir=repo.path, sha=sha, error=error
        )
    if result.changed:
        log.info("repo_synced", repo=repo.name, sha=result.sha)
    return Checkout(
        name=repo.name, path=result.checkout, subdir=repo.path, sha=result.sha, error=None
    )


async def record_sync(*, store: Store, repo: OpsRepo, checkout: Checkout) -> None:
    """Record a sync on the repo's row: the new sha, or the error in ``last_error``."""
    if checkout.error is None:
        await store.record_repo_sync(repo_id=repo.id, sha=checkout.sha, error=None)
    else:
        await store.record_repo_sync(repo_id=repo.id, sha=None, error=checkout.error)


async def sync_and_record(*, store: Store, settings: Settings, repo: OpsRepo) -> Checkout:
    """Fetch one ops repo and record the result on its row (see :func:`sync_checkout`)."""
    checkout = await sync_checkout(settings=settings, repo=repo)
    await record_sync(store=store, repo=repo, checkout=checkout)
    return checkout


async def sync_named_repos(*, store: Store, settings: Settings, names: Sequence[str]) -> int:
    """``reconciler ops-repo sync``: fetch the named repos (all when none); prints one line
    each and returns how many failed."""
    repos = await store.list_ops_repos()
    if names:
        known = {r.name for r in repos}
        missing = [n for n in names if n not in known]
        if missing:
            raise ConfigError(f"no ops repo named {', '.join(missing)}")
        repos = [r for r in repos if r.name in names]
    results = await asyncio.gather(
        *(sync_and_record(store=store, settings=settings, repo=r) for r in repos)
    )
    for checkout in results:
        if checkout.error:
            print(f"{checkout.name}: failed: {checkout.error}")
        else:
            print(f"{checkout.name}: at {checkout.sha}")
    return sum(1 for c in results if c.error)


async def main(*, settings: Settings, once: bool) -> int:
    """``reconciler run``: connect, then loop until a signal (or one pass with ``once``)."""
    if not settings.database_url:
        raise ConfigError("DATABASE_URL is not set (e.g. postgresql://user:pass@host:5432/db)")
    store = await _connect_store(settings.database_url, once=once, pool_size=DATABASE_POOL_SIZE)
    try:
        kube = await _connect_kube(settings, once=once)
        try:
            daemon = Daemon(store=store, kube=kube, settings=settings)
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(signum, daemon.stop)
            try:
                return await daemon.run(once=once)
            finally:
                for signum in (signal.SIGTERM, signal.SIGINT):
                    loop.remove_signal_handler(signum)
        finally:
            await kube.close()
    finally:
        await store.close()


async def _connect_store(url: str, *, once: bool, pool_size: int) -> Store:
    delay = 0.5
    while True:
        try:
            return await Store.connect(url, pool_size=pool_size)
        except DatabaseError as exc:
            if once:
                raise
            log.warning("database_unavailable", error=str(exc), retry_in_s=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)


async def _connect_kube(settings: Settings, *, once: bool) -> Kube:
    delay = 0.5
    while True:
        try:
            return await Kube.connect(
                kubeconfig=settings.kubeconfig, request_timeout_s=settings.kube_timeout_s
            )
        except KubernetesError as exc:
            if once:
                raise
            log.warning("kubernetes_unavailable", error=str(exc), retry_in_s=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)
