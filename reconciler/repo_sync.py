"""Syncing ops repos and recording the result on their rows: the daemon's and the CLI's path.

:class:`GitFetcher` is the daemon's :class:`reconciler.ports.RepoFetcher` over the checkouts in
``RECONCILER_REPOS_DIR``; :func:`sync_named_repos` is ``reconciler ops-repo sync``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

from reconciler.errors import ConfigError, ReconcilerError
from reconciler.logs import get_logger
from reconciler.model import Checkout, OpsRepo
from reconciler.ports import DaemonStore
from reconciler.repos import checkout as ops_repo

log = get_logger("daemon")


class GitFetcher:
    """Fetches ops repos into ``repos_dir`` with git, killed after ``timeout_s``."""

    def __init__(self, *, repos_dir: Path, timeout_s: float) -> None:
        self.repos_dir = repos_dir
        self.timeout_s = timeout_s

    def _path(self, repo: OpsRepo) -> Path:
        return ops_repo.checkout_dir(repos_dir=self.repos_dir, name=repo.name)

    async def fetch(self, repo: OpsRepo) -> Checkout:
        """Fetch one ops repo.  A failed fetch keeps the last good checkout (if any) to render
        from, with the error alongside."""
        path = self._path(repo)
        try:
            result = await ops_repo.sync_repo(
                name=repo.name,
                url=repo.repo_url,
                branch=repo.branch,
                repos_dir=self.repos_dir,
                timeout_s=self.timeout_s,
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

    async def on_disk(self, repo: OpsRepo) -> Checkout | None:
        path = self._path(repo)
        sha = await asyncio.to_thread(ops_repo.current_sha, path)
        if sha is None:
            return None
        return Checkout(name=repo.name, path=path, subdir=repo.path, sha=sha, error=repo.last_error)

    async def contains(self, checkout: Checkout, sha: str) -> bool:
        if checkout.path is None:
            return False
        return await asyncio.to_thread(ops_repo.contains_commit, checkout.path, sha)


async def record_sync(*, store: DaemonStore, repo: OpsRepo, checkout: Checkout) -> None:
    """Record a sync on the repo's row: the new sha, or the error in ``last_error``."""
    if checkout.error is None:
        await store.record_repo_sync(repo_id=repo.id, sha=checkout.sha, error=None)
    else:
        await store.record_repo_sync(repo_id=repo.id, sha=None, error=checkout.error)


async def sync_named_repos(
    *, store: DaemonStore, repos: Sequence[OpsRepo], names: Sequence[str], fetcher: GitFetcher
) -> list[Checkout]:
    """``reconciler ops-repo sync``: fetch the named repos (all when none) and record each."""
    if names:
        known = {r.name for r in repos}
        missing = [n for n in names if n not in known]
        if missing:
            raise ConfigError(f"no ops repo named {', '.join(missing)}")
        repos = [r for r in repos if r.name in names]

    async def one(repo: OpsRepo) -> Checkout:
        checkout = await fetcher.fetch(repo)
        await record_sync(store=store, repo=repo, checkout=checkout)
        return checkout

    return list(await asyncio.gather(*(one(r) for r in repos)))
