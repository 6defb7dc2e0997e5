"""Immutable snapshots of synced commits: what the daemon renders from.

A checkout's working tree changes under every sync, and a failed reset can leave it holding files
of one commit with HEAD at another.  So after each successful sync the commit's tree is written
from git's objects into ``<repos_dir>/.snapshots/<name>/<sha>/``: into a staging directory first,
verified against the commit, made read-only, then renamed into place, so a snapshot's name is only
ever absent or whole.  ``.snapshots/<name>/.current`` names the snapshot being served; it moves
only after its snapshot is complete, so a failed sync leaves the last good one served.

:func:`at_commit` writes the snapshot of an older commit of the checkout's history the same way
(a rollback renders the exact commit of a healthy attempt) without serving it.

Everything here blocks and runs under the repo's sync lock (``reconciler.repos.layout``).
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

from reconciler.errors import OpsRepoError
from reconciler.repos.git import Budget, Subject, run_git
from reconciler.repos.layout import remove_path

__all__ = [
    "KEEP_PER_REPO",
    "Snapshot",
    "at_commit",
    "publish",
    "remove_staging",
    "serving",
    "snapshot_root",
]

KEEP_PER_REPO = 3
"""Snapshots kept per repo: the served one and the ``KEEP_PER_REPO - 1`` newest others by
modification time (an attempt may still be rendering from the previous one; one whose snapshot
is removed fails transiently and retries).  A snapshot written or reused counts as new, so one
:func:`at_commit` just made survives the next sync."""

_SNAPSHOTS = ".snapshots"
_CURRENT = ".current"
_STAGING_PREFIX = ".staging-"
_SHA_NAME = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")


@dataclass(frozen=True)
class Snapshot:
    """A complete, verified, read-only copy of commit ``sha``'s tree at ``path``."""

    path: Path
    sha: str


def snapshot_root(*, repos_dir: Path, name: str) -> Path:
    """Where ops repo ``name``'s snapshots live (``name`` is a slug, see ``checkout_dir``)."""
    return repos_dir / _SNAPSHOTS / name


def serving(*, repos_dir: Path, name: str) -> Snapshot | None:
    """The snapshot the last successful sync published, if it is still on disk."""
    root = snapshot_root(repos_dir=repos_dir, name=name)
    try:
        sha = (root / _CURRENT).read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    path = root / sha
    if not _SHA_NAME.match(sha) or not path.is_dir():
        return None
    return Snapshot(path=path, sha=sha)


def remove_staging(*, repos_dir: Path, name: str) -> None:
    """Remove the half-written snapshots a crashed or failed sync left behind."""
    for leftover in snapshot_root(repos_dir=repos_dir, name=name).glob(f"{_STAGING_PREFIX}*"):
        remove_path(leftover)


def publish(
    *, checkout: Path, repos_dir: Path, name: str, sha: str, budget: Budget, subject: Subject
) -> Snapshot:
    """Make sure commit ``sha`` of the git checkout ``checkout`` has its snapshot, serve it, and
    remove all but the newest :data:`KEEP_PER_REPO` snapshots.  OpsRepoError when it cannot be
    written (the snapshot served before stays served)."""
    snapshot = _ensure(
        checkout=checkout, repos_dir=repos_dir, name=name, sha=sha, budget=budget, subject=subject
    )
    try:
        _write_current(snapshot.path.parent, sha)
    except OSError as exc:
        raise OpsRepoError(
            f"{subject.description}: cannot serve the snapshot of {sha}"
            f" in {snapshot.path.parent}: {exc}"
        ) from exc
    _prune(snapshot.path.parent, keep={sha})
    return snapshot


def at_commit(
    *, checkout: Path, repos_dir: Path, name: str, sha: str, budget: Budget, subject: Subject
) -> Snapshot:
    """Make sure commit ``sha`` of the git checkout ``checkout`` has its snapshot, verified as
    :func:`publish` does, without serving it; the served one and this one are kept when older
    snapshots are removed.  The caller checked that ``sha`` is in the checkout's history.
    OpsRepoError when it cannot be written."""
    snapshot = _ensure(
        checkout=checkout, repos_dir=repos_dir, name=name, sha=sha, budget=budget, subject=subject
    )
    served = serving(repos_dir=repos_dir, name=name)
    _prune(snapshot.path.parent, keep={sha} | ({served.sha} if served else set()))
    return snapshot


def _ensure(
    *, checkout: Path, repos_dir: Path, name: str, sha: str, budget: Budget, subject: Subject
) -> Snapshot:
    """The snapshot of ``sha``, written now when it is not on disk yet."""
    if not _SHA_NAME.match(sha):
        raise OpsRepoError(f"{subject.description}: {sha!r} is not a commit id")
    root = snapshot_root(repos_dir=repos_dir, name=name)
    target = root / sha
    try:
        root.mkdir(parents=True, exist_ok=True)
        if target.is_dir():
            os.utime(target)  # used again (a reverted history, a rollback): it counts as new
        else:
            _materialise(checkout=checkout, root=root, sha=sha, budget=budget, subject=subject)
    except OSError as exc:
        raise OpsRepoError(
            f"{subject.description}: cannot write the snapshot of {sha} in {root}: {exc}"
        ) from exc
    return Snapshot(path=target, sha=sha)


def _materialise(*, checkout: Path, root: Path, sha: str, budget: Budget, subject: Subject) -> None:
    staging = Path(tempfile.mkdtemp(prefix=_STAGING_PREFIX, dir=root))
    try:
        tree = staging / "tree"
        tree.mkdir()

        def git(index: str, *args: str, action: str, check: bool = True) -> str:
            outcome = run_git(
                [f"--git-dir={checkout / '.git'}", f"--work-tree={tree}", *args],
                cwd=tree,
                budget=budget,
                subject=subject,
                action=action,
                check=check,
                env={"GIT_INDEX_FILE": str(staging / index)},
            )
            if outcome.returncode != 0:
                raise OpsRepoError(
                    f"{subject.description}: the snapshot of {sha} does not match the commit"
                    f" ({outcome.stdout.strip()[:200] or 'a file differs'})"
                )
            return outcome.stdout

        # A private index: the checkout's own index and working tree are never involved.
        git("index", "read-tree", sha, action=f"reading the tree of {sha}")
        git("index", "checkout-index", "--all", "--force", action=f"writing the tree of {sha}")
        # Verified with a fresh index that knows no file's stat data, so refreshing it compares
        # the content of every file written with the commit's; then nothing else may be there.
        git("verify-index", "read-tree", sha, action=f"reading the tree of {sha}")
        git(
            "verify-index",
            "update-index",
            "--refresh",
            action=f"verifying the snapshot of {sha}",
            check=False,
        )
        extra = git(
            "verify-index", "ls-files", "--others", action=f"verifying the snapshot of {sha}"
        )
        if extra.strip():
            raise OpsRepoError(
                f"{subject.description}: the snapshot of {sha} holds files the commit does not"
                f" ({extra.split()[0]})"
            )
        _make_read_only(tree)
        os.replace(tree, root / sha)
    finally:
        remove_path(staging)


def _make_read_only(tree: Path) -> None:
    # Files only: read-only directories would keep the snapshot (or an `rm -rf` of the repos
    # directory) from being removed by this same user.
    for directory, _dirs, files in os.walk(tree):
        for file_name in files:
            path = Path(directory) / file_name
            mode = path.lstat().st_mode
            if stat.S_ISREG(mode):
                path.chmod(stat.S_IMODE(mode) & ~0o222)


def _write_current(root: Path, sha: str) -> None:
    descriptor, temporary = tempfile.mkstemp(prefix=f"{_STAGING_PREFIX}current-", dir=root)
    try:
        with os.fdopen(descriptor, "w", encoding="ascii") as file:
            file.write(f"{sha}\n")
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, root / _CURRENT)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def _prune(root: Path, *, keep: set[str]) -> None:
    """Remove the snapshots neither named in ``keep`` nor among the newest others."""
    snapshots = [p for p in root.iterdir() if _SHA_NAME.match(p.name) and p.name not in keep]
    with_times = []
    for path in snapshots:
        with contextlib.suppress(FileNotFoundError):
            with_times.append((path.stat().st_mtime, path))
    with_times.sort(reverse=True)
    for _mtime, path in with_times[KEEP_PER_REPO - 1 :]:
        remove_path(path)
