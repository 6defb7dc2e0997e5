"""Keeps a local checkout of each ops repo in step with one branch of its remote.

The first sync clones the branch; later syncs fetch it and hard-reset the working tree to it, so a
force-pushed remote history is simply followed and local changes never survive.  A failed fetch
leaves the checkout exactly as it was, so the caller can keep rendering from the last good commit.

A sync runs in a worker thread under one time budget, holding the repo's lock; git itself runs
only through ``reconciler.repos.git``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import math
import re
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from reconciler.errors import InputError, OpsRepoError
from reconciler.repos import layout, snapshots
from reconciler.repos.git import Budget, Subject, is_fetch_failure, run_git
from reconciler.repos.urls import redact_url, validate_repo_url

__all__ = [
    "SyncResult",
    "SyncedSnapshot",
    "checkout_dir",
    "contains_commit",
    "current_sha",
    "snapshot_at_commit",
    "sync_repo",
    "sync_snapshot",
]

_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$")
_BRANCH_FORBIDDEN = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]|\.\.|//|@\{")
_SHA_PATTERN = re.compile(r"^[0-9a-f]{4,64}$")
_FULL_SHA = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")
_CURRENT_SHA_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class SyncResult:
    """The outcome of one successful sync."""

    checkout: Path
    """The working tree to render from."""
    sha: str
    """The commit now checked out."""
    changed: bool
    """Whether ``sha`` differs from what was checked out before the sync."""


@dataclass(frozen=True)
class SyncedSnapshot:
    """The outcome of one successful :func:`sync_snapshot`."""

    snapshot: snapshots.Snapshot
    """The commit's snapshot, now served."""
    changed: bool
    """Whether it differs from the snapshot served before the sync."""


_Result = TypeVar("_Result", SyncResult, SyncedSnapshot, snapshots.Snapshot)


def checkout_dir(*, repos_dir: Path, name: str) -> Path:
    """Return where ops repo ``name`` is checked out: ``repos_dir / name``.

    ``name`` must be a slug (letters, digits, '-' and '_'), so it can never leave ``repos_dir``
    or collide with the hidden lock and staging entries beside it (``reconciler.repos.layout``).
    """
    if not _NAME_PATTERN.match(name):
        raise InputError(
            f"the ops repo name {name!r} is not a slug: use up to 100 letters, digits, '-' and '_',"
            " starting with a letter or digit"
        )
    return repos_dir / name


def _validate_branch(branch: str) -> None:
    if (
        not branch
        or branch == "@"
        or branch.startswith(("-", "/", "."))
        or branch.endswith(("/", ".", ".lock"))
        or "/." in branch
        or _BRANCH_FORBIDDEN.search(branch)
    ):
        raise InputError(f"the ops repo branch {branch!r} is not a valid git branch name")


def current_sha(checkout: Path) -> str | None:
    """Return the commit checked out in ``checkout``; None when there is no usable checkout.

    Blocking (it runs ``git rev-parse``): call it from a thread in async code.
    """
    checkout = checkout.absolute()
    subject = Subject(description=f"ops repo checkout {checkout}", url="")
    return _head_sha(checkout, budget=Budget.start(_CURRENT_SHA_TIMEOUT_S), subject=subject)


def contains_commit(checkout: Path, sha: str, *, tip: str = "HEAD") -> bool:
    """Return whether commit ``sha`` is the commit checked out in ``checkout`` (or commit
    ``tip`` of its history) or an ancestor of it.  False also when the checkout does not know
    ``sha``: the commit is newer than the checkout (not fetched yet) or belongs to a rewritten
    history.

    Blocking (it runs ``git merge-base``): call it from a thread in async code.
    """
    checkout = checkout.absolute()
    # Only a hex sha reaches git's command line, never something it could read as an option.
    if tip != "HEAD" and not _SHA_PATTERN.match(tip):
        return False
    if not _SHA_PATTERN.match(sha) or not (checkout / ".git").is_dir():
        return False
    return _is_ancestor(
        checkout,
        sha,
        tip=tip,
        budget=Budget.start(_CURRENT_SHA_TIMEOUT_S),
        subject=Subject(description=f"ops repo checkout {checkout}", url=""),
    )


def _in_checkout(checkout: Path, *args: str) -> list[str]:
    # An explicit git dir stops git from searching upwards: without it, a checkout lacking .git
    # inside some other repository would make "clean -ffdx" run on that repository.
    return [f"--git-dir={checkout / '.git'}", f"--work-tree={checkout}", *args]


def _head_sha(checkout: Path, *, budget: Budget, subject: Subject) -> str | None:
    if not (checkout / ".git").is_dir():
        return None
    outcome = run_git(
        _in_checkout(checkout, "rev-parse", "--verify", "--quiet", "HEAD^{commit}"),
        cwd=checkout,
        budget=budget,
        subject=subject,
        action="reading the checked-out commit",
        check=False,
    )
    sha = outcome.stdout.strip()
    return sha if outcome.returncode == 0 and sha else None


def _clone_into_place(
    *, url: str, branch: str, repos_dir: Path, name: str, budget: Budget, subject: Subject
) -> str:
    """Clone into a temporary sibling, then rename it over ``repos_dir / name``; return the sha.

    A half-finished clone therefore never stands where the renderer looks.
    """
    checkout = repos_dir / name
    staging = layout.new_staging_dir(repos_dir=repos_dir, name=name, subject=subject)
    try:
        run_git(
            [
                "clone",
                "--quiet",
                "--single-branch",
                "--no-tags",
                "--branch",
                branch,
                "--",
                url,
                str(staging),
            ],
            cwd=repos_dir,
            budget=budget,
            subject=subject,
            action=f"cloning branch '{branch}'",
        )
        sha = _head_sha(staging, budget=budget, subject=subject)
        if sha is None:
            raise OpsRepoError(
                f"{subject.description}: the clone of branch '{branch}' has no commit checked out"
            )
        layout.move_into_place(checkout=checkout, staging=staging, subject=subject)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return sha


def _point_origin_at(checkout: Path, *, url: str, budget: Budget, subject: Subject) -> None:
    recorded = run_git(
        _in_checkout(checkout, "config", "--get", "remote.origin.url"),
        cwd=checkout,
        budget=budget,
        subject=subject,
        action="reading the checkout's origin URL",
        check=False,
    )
    if recorded.returncode == 0 and recorded.stdout.strip() == url:
        return
    command = "set-url" if recorded.returncode == 0 else "add"
    run_git(
        _in_checkout(checkout, "remote", command, "origin", url),
        cwd=checkout,
        budget=budget,
        subject=subject,
        action="updating the checkout's origin URL",
    )


def _fetch_and_reset(checkout: Path, *, branch: str, budget: Budget, subject: Subject) -> str:
    """Fetch ``branch`` and hard-reset the working tree to it; return the new sha.

    A fetch only moves ``refs/remotes/origin/<branch>``, so when it fails the working tree and
    HEAD are exactly as they were.
    """
    remote_ref = f"refs/remotes/origin/{branch}"
    # An explicit forced refspec: the branch may differ from the one cloned, and a rewritten
    # remote history must replace the old one rather than be refused.
    run_git(
        _in_checkout(
            checkout,
            "fetch",
            "--quiet",
            "--no-tags",
            "--prune",
            "origin",
            f"+refs/heads/{branch}:{remote_ref}",
        ),
        cwd=checkout,
        budget=budget,
        subject=subject,
        action=f"fetching branch '{branch}'",
    )
    run_git(
        _in_checkout(
            checkout, "checkout", "--quiet", "--force", "--no-track", "-B", branch, remote_ref, "--"
        ),
        cwd=checkout,
        budget=budget,
        subject=subject,
        action=f"resetting the checkout to origin/{branch}",
    )
    run_git(
        _in_checkout(checkout, "clean", "-ffdx", "--quiet"),
        cwd=checkout,
        budget=budget,
        subject=subject,
        action="removing untracked files from the checkout",
    )
    sha = _head_sha(checkout, budget=budget, subject=subject)
    if sha is None:
        raise OpsRepoError(f"{subject.description}: no commit is checked out after the reset")
    return sha


def _sync_blocking(
    *, name: str, url: str, branch: str, repos_dir: Path, budget: Budget
) -> SyncResult:
    subject = Subject.for_repo(name=name, url=url, branch=branch)
    # git runs with the checkout as its working directory: every path it gets must be absolute.
    repos_dir = repos_dir.absolute()
    _create(repos_dir, subject=subject)
    with layout.exclusive(repos_dir=repos_dir, name=name, budget=budget, subject=subject):
        return _sync_locked(
            name=name, url=url, branch=branch, repos_dir=repos_dir, budget=budget, subject=subject
        )


def _create(repos_dir: Path, *, subject: Subject) -> None:
    try:
        repos_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OpsRepoError(f"{subject.description}: cannot create {repos_dir}") from exc


def _sync_locked(
    *, name: str, url: str, branch: str, repos_dir: Path, budget: Budget, subject: Subject
) -> SyncResult:
    checkout = checkout_dir(repos_dir=repos_dir, name=name)
    layout.remove_leftovers(repos_dir=repos_dir, name=name)

    def clone() -> str:
        return _clone_into_place(
            url=url, branch=branch, repos_dir=repos_dir, name=name, budget=budget, subject=subject
        )

    before = _head_sha(checkout, budget=budget, subject=subject)
    if before is None:
        # No checkout (never cloned, or deleted), or one a crash left unusable: start again
        # from a clean clone.
        sha = clone()
        return SyncResult(checkout=checkout, sha=sha, changed=True)
    _point_origin_at(checkout, url=url, budget=budget, subject=subject)
    try:
        sha = _fetch_and_reset(checkout, branch=branch, budget=budget, subject=subject)
    except OpsRepoError as exc:
        if budget.exhausted() or is_fetch_failure(exc):
            raise
        # The fetch worked but the working tree could not be reset (say, an index.lock
        # left by a crash): rebuild the checkout from a fresh clone instead of failing forever.
        sha = clone()
    return SyncResult(checkout=checkout, sha=sha, changed=sha != before)


def _sync_snapshot_blocking(
    *, name: str, url: str, branch: str, repos_dir: Path, budget: Budget
) -> SyncedSnapshot:
    subject = Subject.for_repo(name=name, url=url, branch=branch)
    repos_dir = repos_dir.absolute()
    _create(repos_dir, subject=subject)
    with layout.exclusive(repos_dir=repos_dir, name=name, budget=budget, subject=subject):
        snapshots.remove_staging(repos_dir=repos_dir, name=name)
        served = snapshots.serving(repos_dir=repos_dir, name=name)
        try:
            result = _sync_locked(
                name=name,
                url=url,
                branch=branch,
                repos_dir=repos_dir,
                budget=budget,
                subject=subject,
            )
        except OpsRepoError:
            if served is None:
                _snapshot_head_if_possible(repos_dir=repos_dir, name=name, budget=budget)
            raise
        snapshot = snapshots.publish(
            checkout=result.checkout,
            repos_dir=repos_dir,
            name=name,
            sha=result.sha,
            budget=budget,
            subject=subject,
        )
        changed = served is None or served.sha != snapshot.sha
        return SyncedSnapshot(snapshot=snapshot, changed=changed)


def _snapshot_head_if_possible(*, repos_dir: Path, name: str, budget: Budget) -> None:
    """No snapshot is served and the sync failed: serve the commit the checkout holds, read from
    git's objects (never from its working tree, which a failed reset may have left mixed), so a
    checkout from before snapshots existed keeps serving while its remote is away."""
    checkout = checkout_dir(repos_dir=repos_dir, name=name)
    subject = Subject(description=f"ops repo checkout {checkout}", url="")
    # The sync's own budget may be spent (a remote that hung): this is local and quick.
    local = Budget.start(_CURRENT_SHA_TIMEOUT_S, budget.cancelled)
    with contextlib.suppress(OpsRepoError):
        sha = _head_sha(checkout, budget=local, subject=subject)
        if sha is not None:
            snapshots.publish(
                checkout=checkout,
                repos_dir=repos_dir,
                name=name,
                sha=sha,
                budget=local,
                subject=subject,
            )


def _snapshot_at_blocking(
    *, name: str, url: str, branch: str, repos_dir: Path, budget: Budget, sha: str
) -> snapshots.Snapshot:
    subject = Subject.for_repo(name=name, url=url, branch=branch)
    repos_dir = repos_dir.absolute()
    _create(repos_dir, subject=subject)
    with layout.exclusive(repos_dir=repos_dir, name=name, budget=budget, subject=subject):
        snapshots.remove_staging(repos_dir=repos_dir, name=name)
        checkout = checkout_dir(repos_dir=repos_dir, name=name)
        head = _head_sha(checkout, budget=budget, subject=subject)
        if head is None:
            raise OpsRepoError(
                f"{subject.description}: there is no checkout to take commit {sha} from"
                " (the repo was never synced here, or its checkout is unusable)"
            )
        if not _is_ancestor(checkout, sha, tip=head, budget=budget, subject=subject):
            raise OpsRepoError(
                f"commit {sha} is not in the history of ops repo '{name}'"
                f" ({redact_url(url)}, branch '{branch}' at {head[:12]};"
                " rewritten by a force push, or not synced yet?)"
            )
        return snapshots.at_commit(
            checkout=checkout,
            repos_dir=repos_dir,
            name=name,
            sha=sha,
            budget=budget,
            subject=subject,
        )


def _is_ancestor(checkout: Path, sha: str, *, tip: str, budget: Budget, subject: Subject) -> bool:
    # Exit 1: not an ancestor; 128: git does not know the commit at all.  Both mean the same.
    outcome = run_git(
        _in_checkout(checkout, "merge-base", "--is-ancestor", sha, tip),
        cwd=checkout,
        budget=budget,
        subject=subject,
        action=f"looking for commit {sha} in the history of {tip}",
        check=False,
    )
    return outcome.returncode == 0


def _validate(*, name: str, url: str, branch: str, timeout_s: float) -> None:
    checkout_dir(repos_dir=Path(), name=name)
    validate_repo_url(url)
    _validate_branch(branch)
    if not (math.isfinite(timeout_s) and timeout_s > 0):
        raise InputError(f"the ops repo sync timeout must be a positive number, not {timeout_s}")


async def _in_thread(
    blocking: Callable[..., _Result],
    *,
    name: str,
    url: str,
    branch: str,
    repos_dir: Path,
    timeout_s: float,
) -> _Result:
    _validate(name=name, url=url, branch=branch, timeout_s=timeout_s)
    cancelled = threading.Event()
    budget = Budget.start(timeout_s, cancelled)
    try:
        return await asyncio.to_thread(
            blocking, name=name, url=url, branch=branch, repos_dir=repos_dir, budget=budget
        )
    except asyncio.CancelledError:
        # The thread cannot be interrupted, but it watches this flag and kills git promptly.
        cancelled.set()
        raise


async def snapshot_at_commit(
    *, name: str, url: str, branch: str, repos_dir: Path, sha: str, timeout_s: float = 60.0
) -> snapshots.Snapshot:
    """The read-only, verified snapshot of commit ``sha`` (a full commit id) of the checkout of
    ``repos_dir / name``, written under the repo's lock like a sync but never served nor
    fetched: what a rollback renders from (``reconciler.repos.snapshots.at_commit``).

    Raises InputError for an invalid name, URL, branch or commit id, and OpsRepoError when the
    repo has no checkout, when ``sha`` is not in the history of its branch (a force push
    rewrote it, or the commit is newer than the last sync), or when the snapshot cannot be
    written.
    """
    sha = sha.strip().lower()
    if not _FULL_SHA.match(sha):
        raise InputError(f"{sha[:80]!r} is not a full commit id (40 or 64 hex digits)")
    return await _in_thread(
        functools.partial(_snapshot_at_blocking, sha=sha),
        name=name,
        url=url,
        branch=branch,
        repos_dir=repos_dir,
        timeout_s=timeout_s,
    )


async def sync_repo(
    *, name: str, url: str, branch: str, repos_dir: Path, timeout_s: float = 60.0
) -> SyncResult:
    """Bring ``repos_dir / name`` to the tip of ``branch`` at ``url``; clone it the first time.

    The returned ``checkout`` is an absolute path.

    Raises InputError for an invalid name, URL or branch, and OpsRepoError for anything git or
    the file system refuses, or when the whole sync takes longer than ``timeout_s`` (git is then
    killed).  On a failed fetch the existing checkout is left exactly as it was.
    """
    return await _in_thread(
        _sync_blocking, name=name, url=url, branch=branch, repos_dir=repos_dir, timeout_s=timeout_s
    )


async def sync_snapshot(
    *, name: str, url: str, branch: str, repos_dir: Path, timeout_s: float = 60.0
) -> SyncedSnapshot:
    """:func:`sync_repo`, then publish the new commit's snapshot (``reconciler.repos.snapshots``)
    under the same lock: what the daemon renders from.

    Raises as :func:`sync_repo` does, and OpsRepoError when the snapshot cannot be written; the
    snapshot served before (:func:`snapshots.serving`) then stays served and intact.
    """
    return await _in_thread(
        _sync_snapshot_blocking,
        name=name,
        url=url,
        branch=branch,
        repos_dir=repos_dir,
        timeout_s=timeout_s,
    )
