"""The hidden entries a sync keeps beside each checkout in ``repos_dir``.

For ops repo ``name`` (a slug, see ``checkout_dir``): ``.name.lock`` serialises its syncs,
``.name.clone-*`` are clones in progress and ``.name.old-*`` checkouts being replaced.  A clone
is moved into place only when complete, so the checkout's own name is only ever empty or whole.
``.snapshots/`` holds the commits served (``reconciler.repos.snapshots``), and ``.daemon.lock``
is held by the one daemon that owns the directory (:func:`claim_repos_dir`).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from reconciler.errors import ConfigError, OpsRepoError
from reconciler.repos.git import Budget, Subject, timeout_error

__all__ = [
    "claim_repos_dir",
    "exclusive",
    "move_into_place",
    "new_staging_dir",
    "remove_leftovers",
    "remove_path",
]

_LOCK_POLL_INTERVAL_S = 0.05
_DAEMON_LOCK = ".daemon.lock"


@contextlib.contextmanager
def claim_repos_dir(repos_dir: Path) -> Iterator[None]:
    """Own ``repos_dir`` for as long as the context lasts: the daemon's, for its lifetime.

    A second daemon (another process) on the same directory would sync its checkouts under the
    first one's renders; it is refused with a ConfigError naming the directory and the owner's
    pid.  The lock is an flock, so a daemon that dies releases it with its last descriptor.
    """
    lock_path = repos_dir / _DAEMON_LOCK
    try:
        repos_dir.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise ConfigError(f"RECONCILER_REPOS_DIR {repos_dir} cannot be used: {exc}") from exc
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.pread(descriptor, 32, 0).decode("ascii", errors="replace").strip()
            raise ConfigError(
                f"RECONCILER_REPOS_DIR {repos_dir} is in use by another reconciler daemon"
                f" (pid {owner or 'unknown'}); give each daemon its own directory"
            ) from None
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, f"{os.getpid()}\n".encode("ascii"), 0)
        yield
    finally:
        # Closing the descriptor releases the lock; the file stays, naming the last owner.
        os.close(descriptor)


@contextlib.contextmanager
def exclusive(*, repos_dir: Path, name: str, budget: Budget, subject: Subject) -> Iterator[None]:
    """Hold ops repo ``name``'s lock, against other threads and other processes."""
    lock_path = repos_dir / f".{name}.lock"
    try:
        descriptor = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise OpsRepoError(f"{subject.description}: cannot open the lock file {lock_path}") from exc
    try:
        # A blocking wait in the sync's worker thread: it must give up when the budget runs out
        # or the awaiting task is cancelled, which flock(LOCK_EX) alone would not.
        while True:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if budget.exhausted():
                    raise timeout_error(
                        subject=subject,
                        budget=budget,
                        action="waiting for another sync of the same ops repo to finish",
                        argv=["flock", str(lock_path)],
                    ) from None
                time.sleep(_LOCK_POLL_INTERVAL_S)
        yield
    finally:
        # Closing the descriptor releases the lock.
        os.close(descriptor)


def remove_leftovers(*, repos_dir: Path, name: str) -> None:
    """Remove temporary clones and replaced checkouts that a crashed sync left behind."""
    for prefix in (f".{name}.clone-", f".{name}.old-"):
        for leftover in repos_dir.glob(f"{prefix}*"):
            remove_path(leftover)


def remove_path(path: Path) -> None:
    """Remove a file, symlink or directory tree; nothing if it does not exist."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def new_staging_dir(*, repos_dir: Path, name: str, subject: Subject) -> Path:
    """Create an empty hidden directory beside the checkout to clone into."""
    try:
        return Path(tempfile.mkdtemp(prefix=f".{name}.clone-", dir=repos_dir))
    except OSError as exc:
        raise OpsRepoError(
            f"{subject.description}: cannot create a directory in {repos_dir} to clone into"
        ) from exc


def move_into_place(*, checkout: Path, staging: Path, subject: Subject) -> None:
    """Rename the finished clone ``staging`` over ``checkout``, replacing what stood there."""
    try:
        if os.path.lexists(checkout):
            # Move the old entry aside first, so the final name is only ever empty or complete.
            retired = Path(tempfile.mkdtemp(prefix=f".{checkout.name}.old-", dir=checkout.parent))
            os.replace(checkout, retired / "checkout")
            os.replace(staging, checkout)
            remove_path(retired)
        else:
            os.replace(staging, checkout)
    except OSError as exc:
        raise OpsRepoError(
            f"{subject.description}: cannot move the new clone into place at {checkout}"
        ) from exc
