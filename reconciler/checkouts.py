"""The daemon's ops repos: which checkout each deployment renders from, and the syncs running.

Syncs run in the background, one at a time per repo: a remote that hangs until the git timeout
must not hold up other work, and a sync that brings a new commit wakes the loop instead.  A
deployment renders from its repo's last good checkout, fetched first only when the deployment
already runs, or the repo's row names, a commit that checkout does not contain (another daemon
fetched it), so manifests never go back to an older commit nor lag behind the database; and
fetched again when its files vanished from disk.

Freshness without webhooks: every check interval (``min(sync_interval_s, the daemon's check
interval)``) each repo in use has its remote's branch head asked (one ``git ls-remote``); only
a head that moved, or a checkout that is missing, is fetched.  A fetch asked for (a NOTIFY, a
webhook, ``run --once``) skips the question.  A sync wakes the loop once it is recorded, since
the claim compares deployments with the row's ``last_sha``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import math
import time
from collections.abc import Callable, Sequence

from reconciler.errors import OpsRepoError
from reconciler.logs import get_logger
from reconciler.model import Checkout, Deployment, OpsRepo
from reconciler.ports import DaemonStore, RepoFetcher
from reconciler.repo_sync import record_sync
from reconciler.repos.urls import redact_url

log = get_logger("daemon")

MIN_SYNC_INTERVAL_S = 1.0
"""A repo's ``sync_interval_s`` below this (0: "every pass") checks its head this often: a
pass may run many times a second, a remote must not be asked as often."""


class Checkouts:
    """What this daemon knows of the ops repos it synced."""

    def __init__(
        self,
        *,
        store: DaemonStore,
        fetcher: RepoFetcher,
        wake: Callable[[], None],
        synced: Callable[[OpsRepo, Checkout, float], None] | None = None,
        checked: Callable[[OpsRepo], None] | None = None,
        check_interval_s: float = 10.0,
    ) -> None:
        self._store = store
        self._fetcher = fetcher
        self._wake = wake
        self._on_synced = synced
        """Told of each fetch: the repo, the checkout it left (``error`` set when it failed)
        and the seconds it took (the metrics)."""
        self._on_checked = checked
        """Told of each head check that found the checkout current (the metrics' sync age)."""
        self._check_interval_s = check_interval_s
        self._checked_at: dict[int, float] = {}
        """``time.monotonic()`` when each repo's head was last checked (or fetched)."""
        self._checkouts: dict[int, Checkout] = {}
        self._locks: dict[int, asyncio.Lock] = {}
        self._syncs: dict[int, asyncio.Task[Checkout]] = {}
        self._in_use: list[OpsRepo] = []
        self._in_use_read_at: float | None = None
        """``time.monotonic()`` when ``_in_use`` was read; None: read it at the next pass."""
        self.forced: set[int] = set()
        """Repos to fetch at the next pass: a NOTIFY (``ops-repo sync``, a changed URL or
        branch) or a webhook asked."""

    async def in_use(self, *, fresh: bool = False) -> list[OpsRepo]:
        """The ops repos some deployment uses, read again only when a pass needs the rows:
        ``fresh``, a fetch forced (a NOTIFY, a webhook), a head check due, or a check interval
        since the last read (a repo newly in use; a claim of its deployment reads its row
        anyway).  A busy daemon passes after every apply and every finish: most passes would
        read the same rows to do nothing with them."""
        read_at = self._in_use_read_at
        if (
            fresh
            or read_at is None
            or self.forced
            or self.check_due_in(self._in_use) <= 0
            or time.monotonic() - read_at >= self._check_interval_s
        ):
            self._in_use = await self._store.ops_repos_in_use()
            self._in_use_read_at = time.monotonic()
        return self._in_use

    def forget_in_use(self) -> None:
        """Read the repos in use at the next pass (the LISTEN connection came back: changes
        may have gone unannounced)."""
        self._in_use_read_at = None

    def force(self, repo_id: int) -> None:
        """Fetch this repo at the next pass, whatever its head (a NOTIFY, a webhook)."""
        self.forced.add(repo_id)

    async def start_syncs(
        self, in_use: Sequence[OpsRepo], *, wait: bool, fetch_all: bool = False
    ) -> int:
        """Start, for each repo in use that is not syncing already, a fetch when it was forced
        (or ``fetch_all``: ``run --once`` sees the repos as they are now), else a check of its
        remote head when one is due (:meth:`check_due_in`), which fetches only when the head
        moved or the checkout is missing.  With ``wait``, wait for them.  Returns how many
        started."""
        forced, self.forced = self.forced, set()
        extra = sorted(forced - {r.id for r in in_use})
        if extra:
            in_use = [*in_use, *(await self._store.ops_repos_by_id(extra)).values()]
        now = time.monotonic()
        started = []
        for repo in in_use:
            running = self._syncs.get(repo.id)
            if running is not None and not running.done():
                if repo.id in forced:
                    # Asked again during this sync (a newer push): sync again once it ends.
                    self.forced.add(repo.id)
                continue
            if fetch_all or repo.id in forced:
                started.append(self._sync_task(repo))
            elif self._check_due_in(repo, now=now) <= 0:
                started.append(self._sync_task(repo, check_first=True))
        if started and wait:
            await asyncio.wait(started)  # (wait never cancels what it waits for)
        return len(started)

    def check_due_in(self, in_use: Sequence[OpsRepo]) -> float:
        """Seconds until the next head check of one of these repos is due (0: now)."""
        now = time.monotonic()
        return max(0.0, min((self._check_due_in(r, now=now) for r in in_use), default=math.inf))

    def _check_due_in(self, repo: OpsRepo, *, now: float) -> float:
        checked = self._checked_at.get(repo.id)
        if checked is None:
            return 0.0
        interval = min(
            max(float(repo.sync_interval_s), MIN_SYNC_INTERVAL_S), self._check_interval_s
        )
        # Checks due within a quarter interval (at most a second) run together: one pass for
        # all, not one wake-up per repo as their phases drift apart.
        return checked + interval - min(interval / 4, 1.0) - now

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
        if checkout is not None and repo is not None and checkout.subdir != repo.path:
            # `ops-repo set --path` moved the projects: the row read for this claim says where.
            checkout = dataclasses.replace(checkout, subdir=repo.path)
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

    def _sync_task(self, repo: OpsRepo, *, check_first: bool = False) -> asyncio.Task[Checkout]:
        """The running sync of ``repo``, started if there is none (``check_first``: ask the
        remote's head first and fetch only when it moved)."""
        task = self._syncs.get(repo.id)
        if task is None or task.done():
            task = asyncio.create_task(
                self._sync_one(repo, check_first=check_first), name=f"sync-{repo.name}"
            )
            self._syncs[repo.id] = task
            self._checked_at[repo.id] = time.monotonic()  # a fetch checks the head too
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

    async def _sync_one(self, repo: OpsRepo, *, check_first: bool = False) -> Checkout:
        async with self._locks.setdefault(repo.id, asyncio.Lock()):
            previous = self._checkouts.get(repo.id)
            if check_first:
                current = await self._unchanged(repo, previous)
                if current is not None:
                    return current
            began = time.monotonic()
            checkout = await self._fetcher.fetch(repo)
            if self._on_synced is not None:
                self._on_synced(repo, checkout, time.monotonic() - began)
            # Known before it is recorded: the tree on disk is this commit now.
            self._checkouts[repo.id] = checkout
            await record_sync(store=self._store, repo=repo, checkout=checkout)
            if checkout.sha is not None and (previous is None or previous.sha != checkout.sha):
                # Woken once recorded: the claim compares with the row's last_sha.
                self._wake()  # deployments of the repo may need the new commit
            return checkout

    async def _unchanged(self, repo: OpsRepo, previous: Checkout | None) -> Checkout | None:
        """The checkout, when the remote's head is the commit it holds (no fetch needed); None
        when a fetch is needed: the head moved, the checkout is missing, or the remote did not
        answer (the fetch then records the error, as before)."""
        current = previous or await self._fetcher.on_disk(repo)
        if current is None or current.path is None or current.sha is None:
            return None
        if not await self._fetcher.present(current):
            return None
        began = time.monotonic()
        try:
            head = await self._fetcher.remote_head(repo)
        except OpsRepoError as exc:
            return await self._check_failed(repo, current, error=str(exc), began=began)
        if head is None:
            error = (
                f"ops repo '{repo.name}' ({redact_url(repo.repo_url)}):"
                f" branch '{repo.branch}' does not exist on the remote"
            )
            return await self._check_failed(repo, current, error=error, began=began)
        if head != current.sha:
            return None
        current = dataclasses.replace(current, error=None)
        self._checkouts[repo.id] = current
        if self._on_checked is not None:
            self._on_checked(repo)
        if repo.last_error is not None or repo.last_sha != head:
            await self._store.record_repo_sync(repo_id=repo.id, sha=head, error=None)
            self._wake()  # the row's last_sha may have moved: a claim may find work
        return current

    async def _check_failed(
        self, repo: OpsRepo, current: Checkout, *, error: str, began: float
    ) -> Checkout:
        """A head check failed: the checkout keeps being served; the error is logged and
        recorded (once: unchanged errors are not written again)."""
        log.warning("repo_check_failed", repo=repo.name, error=error, serving_sha=current.sha)
        failed = dataclasses.replace(current, error=error)
        if self._on_synced is not None:
            self._on_synced(repo, failed, time.monotonic() - began)
        self._checkouts[repo.id] = failed
        if repo.last_error != error:
            await self._store.record_repo_sync(repo_id=repo.id, sha=None, error=error)
        return failed
