"""The daemon's ops repos: which checkout each deployment renders from, and the syncs running.

Syncs run in the background, one at a time per repo: a remote that hangs until the git timeout
must not hold up other work, and a sync that brings a new commit wakes the loop instead.  A
deployment renders from its repo's last good checkout, fetched first only when the deployment
already runs, or the repo's row names, a commit that checkout does not contain (another daemon
fetched it), so manifests never go back to an older commit nor lag behind the database; and
fetched again when its files vanished from disk.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable, Sequence

from reconciler.logs import get_logger
from reconciler.model import Checkout, Deployment, OpsRepo
from reconciler.ports import DaemonStore, RepoFetcher
from reconciler.repo_sync import record_sync

log = get_logger("daemon")


class Checkouts:
    """What this daemon knows of the ops repos it synced."""

    def __init__(
        self,
        *,
        store: DaemonStore,
        fetcher: RepoFetcher,
        wake: Callable[[], None],
        synced: Callable[[OpsRepo, Checkout, float], None] | None = None,
    ) -> None:
        self._store = store
        self._fetcher = fetcher
        self._wake = wake
        self._on_synced = synced
        """Told of each fetch: the repo, the checkout it left (``error`` set when it failed)
        and the seconds it took (the metrics)."""
        self._checkouts: dict[int, Checkout] = {}
        self._locks: dict[int, asyncio.Lock] = {}
        self._syncs: dict[int, asyncio.Task[Checkout]] = {}
        self.forced: set[int] = set()
        """Repos a NOTIFY asked to sync now (their URL or branch changed)."""

    def force(self, repo_id: int) -> None:
        self.forced.add(repo_id)

    async def start_syncs(self, due: Sequence[OpsRepo], *, wait: bool) -> int:
        """Start a sync of each due (or forced) repo that is not syncing already; with
        ``wait``, wait for them (``run --once`` sees the repos as they are now).  Returns how
        many started."""
        forced, self.forced = self.forced, set()
        extra = sorted(forced - {r.id for r in due})
        if extra:
            due = [*due, *(await self._store.ops_repos_by_id(extra)).values()]
        started = []
        for repo in due:
            running = self._syncs.get(repo.id)
            if running is not None and not running.done():
                if repo.id in forced:
                    # Its URL or branch changed during this sync: sync again once it ends.
                    self.forced.add(repo.id)
                continue
            started.append(self._sync_task(repo))
        if started and wait:
            await asyncio.wait(started)  # (wait never cancels what it waits for)
        return len(started)

    async def ensure(self, repo_ids: set[int]) -> dict[int, OpsRepo]:
        """Claimed deployments need their repo: use the checkout on disk, or wait for the
        first fetch (the only sync a pass waits for: without it there is nothing to render).
        Returns the repos' rows."""
        repos = await self._store.ops_repos_by_id(sorted(repo_ids))
        first_fetches = []
        for repo in repos.values():
            if repo.id in self._checkouts:
                continue
            on_disk = await self._fetcher.on_disk(repo)
            if on_disk is None:
                first_fetches.append(self._sync_task(repo))
            else:
                self._checkouts[repo.id] = on_disk
        if first_fetches:
            # A failed fetch is logged by _synced; the checkout it leaves says why.
            await asyncio.wait(first_fetches)
        return repos

    async def checkout_for(self, deployment: Deployment, *, repo: OpsRepo | None) -> Checkout:
        """The checkout to render ``deployment`` from (see the module's docstring)."""
        checkout = self._checkouts.get(deployment.ops_repo_id)
        if repo is None or checkout is None:
            return checkout or Checkout(
                name=f"#{deployment.ops_repo_id}",
                path=None,
                subdir="",
                sha=None,
                error="the ops repo is not registered",
            )
        if checkout.path is None:
            return checkout
        if not await self._fetcher.present(checkout):
            # Its snapshot was deleted (the repos directory with it, say): sync again, which
            # clones afresh when the checkout went too, rather than fail every render.
            log.warning("checkout_vanished", repo=repo.name, path=str(checkout.path))
            await asyncio.wait([self._sync_task(repo)])
            return self._checkouts.get(deployment.ops_repo_id, checkout)
        # Neither what runs nor the repo's last synced commit (another daemon, or the CLI, may
        # have synced it: the claim came from it) may be newer than the checkout.
        newer = [
            sha
            for sha in dict.fromkeys((deployment.current_sha, repo.last_sha))
            if sha is not None
            and sha != checkout.sha
            and not await self._fetcher.contains(checkout, sha)
        ]
        if not newer:
            return checkout
        log.info(
            "checkout_behind",
            repo=repo.name,
            project=deployment.project,
            environment=deployment.environment,
            deployed_sha=deployment.current_sha,
            synced_sha=repo.last_sha,
            checkout_sha=checkout.sha,
        )
        # wait() leaves the sync running if this reconcile is cancelled: it is shared.
        await asyncio.wait([self._sync_task(repo)])
        return self._checkouts.get(deployment.ops_repo_id, checkout)

    async def checkout_at(self, repo: OpsRepo, sha: str) -> Checkout:
        """The checkout of commit ``sha`` of ``repo`` (a rollback renders the exact commit of
        a healthy attempt), whatever the repo serves now.  When the checkout this daemon holds
        does not contain ``sha`` (never fetched here, or another daemon synced a newer one) the
        repo is synced first.  Raises OpsRepoError when ``sha`` is not in its history (a force
        push rewrote it) or its snapshot cannot be written."""
        current = self._checkouts.get(repo.id)
        if (
            current is None
            or current.path is None
            or not await self._fetcher.contains(current, sha)
        ):
            # wait() leaves the sync running if this reconcile is cancelled: it is shared.
            await asyncio.wait([self._sync_task(repo)])
        return await self._fetcher.at_commit(repo, sha)

    async def stop(self) -> None:
        tasks = list(self._syncs.values())
        for task in tasks:
            task.cancel()  # the git runner kills git when cancelled
        if tasks:
            await asyncio.wait(tasks, timeout=10)

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

    async def _sync_one(self, repo: OpsRepo) -> Checkout:
        async with self._locks.setdefault(repo.id, asyncio.Lock()):
            previous = self._checkouts.get(repo.id)
            began = time.monotonic()
            checkout = await self._fetcher.fetch(repo)
            if self._on_synced is not None:
                self._on_synced(repo, checkout, time.monotonic() - began)
            # Known before it is recorded: the tree on disk is this commit now.
            self._checkouts[repo.id] = checkout
            if checkout.sha is not None and (previous is None or previous.sha != checkout.sha):
                self._wake()  # deployments of the repo may need the new commit
            await record_sync(store=self._store, repo=repo, checkout=checkout)
            return checkout
