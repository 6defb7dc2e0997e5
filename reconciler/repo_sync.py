"""Syncing ops repos: the daemon's fetcher, and the CLI asking the daemon to sync.

:class:`GitFetcher` is the daemon's :class:`reconciler.ports.RepoFetcher` over the checkouts in
``RECONCILER_REPOS_DIR``, which the daemon alone writes (``claim_repos_dir``); it hands out each
repo's snapshot (``reconciler.repos.snapshots``), so the sha recorded is the sha rendered.
:func:`request_syncs` is ``reconciler ops-repo sync``: it asks the daemon, over NOTIFY, and never
touches the daemon's directory itself.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from reconciler.errors import ConfigError, InputError, ReconcilerError
from reconciler.logs import get_logger
from reconciler.model import Checkout, OpsRepo
from reconciler.ports import DaemonStore
from reconciler.repos import checkout as ops_repo
from reconciler.repos import remote, snapshots
from reconciler.repos.git import Subject
from reconciler.repos.layout import claim_repos_dir
from reconciler.retry import poll_until

__all__ = [
    "GitFetcher",
    "SyncAnswer",
    "SyncRequests",
    "claim_repos_dir",
    "record_sync",
    "request_syncs",
    "wait_for_syncs",
]

log = get_logger("daemon")

_WAIT_POLL_INTERVAL_S = 0.5


class GitFetcher:
    """Fetches ops repos into ``repos_dir`` with git, killed after ``timeout_s``."""

    def __init__(self, *, repos_dir: Path, timeout_s: float) -> None:
        self.repos_dir = repos_dir
        self.timeout_s = timeout_s

    async def fetch(self, repo: OpsRepo) -> Checkout:
        """Fetch one ops repo.  A failed fetch keeps the last good snapshot (if any) to render
        from, with the error alongside."""
        try:
            synced = await ops_repo.sync_snapshot(
                name=repo.name,
                url=repo.repo_url,
                branch=repo.branch,
                repos_dir=self.repos_dir,
                timeout_s=self.timeout_s,
            )
        except ReconcilerError as exc:
            error = str(exc)
            served = await self._served(repo)
            log.warning(
                "repo_sync_failed",
                repo=repo.name,
                error=error,
                serving_sha=served.sha if served else "none",
            )
            return Checkout(
                name=repo.name,
                path=served.path if served else None,
                subdir=repo.path,
                sha=served.sha if served else None,
                error=error,
                immutable=served is not None,
            )
        if synced.changed:
            log.info("repo_synced", repo=repo.name, sha=synced.snapshot.sha)
        return Checkout(
            name=repo.name,
            path=synced.snapshot.path,
            subdir=repo.path,
            sha=synced.snapshot.sha,
            error=None,
            immutable=True,
        )

    async def on_disk(self, repo: OpsRepo) -> Checkout | None:
        served = await self._served(repo)
        if served is None:
            return None
        return Checkout(
            name=repo.name,
            path=served.path,
            subdir=repo.path,
            sha=served.sha,
            error=repo.last_error,
            immutable=True,
        )

    async def contains(self, checkout: Checkout, sha: str) -> bool:
        if checkout.path is None or checkout.sha is None:
            return False
        try:
            git_checkout = ops_repo.checkout_dir(repos_dir=self.repos_dir, name=checkout.name)
        except InputError:
            return False
        # Asked of the snapshot's commit, not of HEAD: the working tree may have moved on.
        return await asyncio.to_thread(
            ops_repo.contains_commit, git_checkout.absolute(), sha, tip=checkout.sha
        )

    async def present(self, checkout: Checkout) -> bool:
        return checkout.path is not None and await asyncio.to_thread(checkout.path.is_dir)

    async def at_commit(self, repo: OpsRepo, sha: str) -> Checkout:
        """The verified, read-only snapshot of commit ``sha`` of ``repo``'s checkout, written in
        a thread under the repo's sync lock (``snapshot_at_commit``); the commit served stays
        served.  OpsRepoError when ``sha`` is not in the history of the checkout's branch (a
        force push rewrote it, or it is newer than the last sync) or there is no checkout;
        InputError for a malformed sha."""
        snapshot = await ops_repo.snapshot_at_commit(
            name=repo.name,
            url=repo.repo_url,
            branch=repo.branch,
            repos_dir=self.repos_dir,
            sha=sha,
            timeout_s=self.timeout_s,
        )
        return Checkout(
            name=repo.name,
            path=snapshot.path,
            subdir=repo.path,
            sha=snapshot.sha,
            error=None,
            immutable=True,
        )

    async def remote_head(self, repo: OpsRepo) -> str | None:
        """One ``git ls-remote`` of the repo's branch (``reconciler.repos.remote``)."""
        subject = Subject.for_repo(name=repo.name, url=repo.repo_url, branch=repo.branch)
        return await remote.branch_head(
            url=repo.repo_url, branch=repo.branch, subject=subject, timeout_s=self.timeout_s
        )

    async def _served(self, repo: OpsRepo) -> snapshots.Snapshot | None:
        try:
            ops_repo.checkout_dir(repos_dir=self.repos_dir, name=repo.name)
        except InputError:
            return None
        return await asyncio.to_thread(
            snapshots.serving, repos_dir=self.repos_dir.absolute(), name=repo.name
        )


async def record_sync(*, store: DaemonStore, repo: OpsRepo, checkout: Checkout) -> None:
    """Record a sync on the repo's row: the new sha, or the error in ``last_error``."""
    if checkout.error is None:
        await store.record_repo_sync(repo_id=repo.id, sha=checkout.sha, error=None)
    else:
        await store.record_repo_sync(repo_id=repo.id, sha=None, error=checkout.error)


class SyncRequests(Protocol):
    """The database, as ``reconciler ops-repo sync`` uses it."""

    async def list_ops_repos(self) -> list[OpsRepo]: ...

    async def ops_repos_by_id(self, ids: Sequence[int]) -> dict[int, OpsRepo]: ...

    async def notify_repo_sync(self, repo_ids: Sequence[int]) -> list[int]: ...


@dataclass(frozen=True)
class SyncAnswer:
    """What became of one repo the daemon was asked to sync (with ``--wait``)."""

    name: str
    sha: str | None
    error: str | None
    """The daemon's ``last_error``, or why no answer came."""


async def request_syncs(
    *, store: SyncRequests, names: Sequence[str], announce: Callable[[str], None]
) -> list[OpsRepo]:
    """Ask the daemon to sync the named repos (all when none) now; ``announce`` each name.
    Returns the rows as they were before the request."""
    repos = await store.list_ops_repos()
    if names:
        known = {r.name for r in repos}
        missing = [n for n in names if n not in known]
        if missing:
            raise ConfigError(f"no ops repo named {', '.join(missing)}")
        repos = [r for r in repos if r.name in names]
    asked = set(await store.notify_repo_sync([r.id for r in repos]))
    repos = [r for r in repos if r.id in asked]  # one deleted meanwhile is not waited for
    for repo in repos:
        announce(repo.name)
    return repos


async def wait_for_syncs(
    *, store: SyncRequests, repos: Sequence[OpsRepo], timeout_s: float
) -> list[SyncAnswer]:
    """Wait up to ``timeout_s`` for each repo's ``last_synced_at`` to move past what it was."""
    before = {r.id: r.last_synced_at for r in repos}

    async def moved() -> dict[int, OpsRepo] | None:
        now = await store.ops_repos_by_id(list(before))
        done = {i: r for i, r in now.items() if _later(r.last_synced_at, than=before[i])}
        return done if len(done) == len(before) else None

    try:
        synced: dict[int, OpsRepo] = await poll_until(
            moved, timeout_s=timeout_s, interval_s=_WAIT_POLL_INTERVAL_S
        )
    except TimeoutError:
        now = await store.ops_repos_by_id(list(before))
        synced = {i: r for i, r in now.items() if _later(r.last_synced_at, than=before[i])}
    answers = []
    for repo in repos:
        row = synced.get(repo.id)
        if row is None:
            error = f"no sync within {timeout_s:g} s (is a daemon running on this database?)"
            answers.append(SyncAnswer(name=repo.name, sha=None, error=error))
        else:
            answers.append(SyncAnswer(name=repo.name, sha=row.last_sha, error=row.last_error))
    return answers


def _later(synced_at: dt.datetime | None, *, than: dt.datetime | None) -> bool:
    return synced_at is not None and (than is None or synced_at > than)
