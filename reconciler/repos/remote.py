"""Asking a remote for the head of one branch, without fetching.

The daemon compares the answer with the commit it last synced and fetches only when the head
moved; ``reconciler ops-repo add`` and ``set`` use it to check that the remote answers and the
branch exists before anything is recorded.

A remote over the network is asked with one ``git ls-remote``.  A local one (a path, a
``file:///`` URL) is read by one ``git for-each-ref`` in the repository instead: ``ls-remote``
of a path is three processes (git, the shell its local transport starts, ``git-upload-pack``),
about four times the CPU, and the daemon asks every ops repo in use every check interval.  The
repository is the one ``git-upload-pack`` would serve (``<path>/.git``, else ``<path>`` as a
bare repository; git finds it, never climbing above ``<path>``); when git finds none there, or
fails, ``ls-remote`` answers instead, so its answer or its error stays the one given.  One
difference remains: a branch the remote hides from fetchers (``uploadpack.hideRefs``) is seen;
the fetch that follows then fails as a missing branch would.
"""

from __future__ import annotations

import asyncio
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from reconciler.errors import InputError, OpsRepoError
from reconciler.repos.git import Budget, Subject, run_git
from reconciler.repos.urls import local_path, redact_url, validate_repo_url

__all__ = ["HeadCommand", "branch_head", "head_command", "require_branch"]

# Tab-separated like ls-remote's lines, so one reader serves both.
_FORMAT = "--format=%(objectname)%09%(refname)"


@dataclass(frozen=True)
class HeadCommand:
    """The git command that asks for a branch's head."""

    args: tuple[str, ...]
    """git's arguments (without ``git``): ``ls-remote``, or ``for-each-ref`` run in ``local``."""
    local: str | None
    """The repository's path when git reads it directly (a local remote); None for ls-remote."""
    ref: str


def head_command(*, url: str, branch: str) -> HeadCommand:
    """How the head of ``branch`` on ``url`` (a valid repo URL) is asked: ``for-each-ref`` in
    a local remote, ``ls-remote`` of any other."""
    ref = f"refs/heads/{branch}"
    path = local_path(url)
    if path is None:
        return HeadCommand(args=_ls_remote_args(url, ref), local=None, ref=ref)
    return HeadCommand(args=("for-each-ref", _FORMAT, ref), local=path, ref=ref)


def _ls_remote_args(url: str, ref: str) -> tuple[str, ...]:
    return ("ls-remote", "--", url, ref)


def _head_of(stdout: str, *, ref: str) -> str | None:
    """The sha of ``ref`` in ``<sha>\t<refname>`` lines: both commands' patterns match other
    refs too (ls-remote's by their tail, for-each-ref's by prefix), only the exact name counts."""
    for line in stdout.splitlines():
        sha, _tab, name = line.partition("\t")
        if name.strip() == ref and sha.strip():
            return sha.strip()
    return None


def _branch_head_blocking(*, url: str, branch: str, budget: Budget, subject: Subject) -> str | None:
    command = head_command(url=url, branch=branch)
    action = f"asking the remote for the head of branch '{branch}'"
    if command.local is not None:
        # Resolved first: git's ceiling must be the parent of the directory git changes into,
        # or a symlinked path would let it climb into a repository around the target.
        directory = os.path.realpath(command.local)
        local = run_git(
            ["-C", directory, *command.args],
            cwd=Path("/"),
            budget=budget,
            subject=subject,
            action=action,
            check=False,
            env={"GIT_CEILING_DIRECTORIES": os.path.dirname(directory)},
        )
        if local.returncode == 0:
            return _head_of(local.stdout, ref=command.ref)
        # No repository git finds there (``<path>.git``, a bundle, an unsafe owner...):
        # upload-pack may still serve one, or fails in its own words.
    outcome = run_git(
        _ls_remote_args(url, command.ref),
        cwd=Path("/"),
        budget=budget,
        subject=subject,
        action=action,
    )
    return _head_of(outcome.stdout, ref=command.ref)


async def branch_head(*, url: str, branch: str, subject: Subject, timeout_s: float) -> str | None:
    """The commit ``refs/heads/<branch>`` points at on the remote ``url``; None when the remote
    has no such branch.  OpsRepoError (redacted, explained) when the remote does not answer
    within ``timeout_s`` or refuses; InputError for a URL git may not fetch from."""
    validate_repo_url(url)
    if not branch or branch.startswith("-"):
        raise InputError(f"the ops repo branch {branch!r} is not a valid git branch name")
    cancelled = threading.Event()
    budget = Budget.start(timeout_s, cancelled)
    try:
        return await asyncio.to_thread(
            _branch_head_blocking, url=url, branch=branch, budget=budget, subject=subject
        )
    except asyncio.CancelledError:
        cancelled.set()  # the thread kills git when it sees this
        raise


async def require_branch(*, url: str, branch: str, timeout_s: float) -> str:
    """:func:`branch_head`, for the CLI: OpsRepoError naming the URL (redacted) and the branch
    when the remote does not answer or has no such branch.  Returns the head."""
    subject = Subject(
        description=f"the remote {redact_url(url)} (branch '{branch}')", url=url, branch=branch
    )
    head = await branch_head(url=url, branch=branch, subject=subject, timeout_s=timeout_s)
    if head is None:
        raise OpsRepoError(
            f"the remote {redact_url(url)} has no branch '{branch}'"
            " (check --branch, or pass --no-check to record it anyway)"
        )
    return head
