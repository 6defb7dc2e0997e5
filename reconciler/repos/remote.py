"""Asking a remote for the head of one branch, without fetching: one ``git ls-remote``.

The daemon compares the answer with the commit it last synced and fetches only when the head
moved; ``reconciler ops-repo add`` and ``set`` use it to check that the remote answers and the
branch exists before anything is recorded.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from reconciler.errors import InputError, OpsRepoError
from reconciler.repos.git import Budget, Subject, run_git
from reconciler.repos.urls import redact_url, validate_repo_url

__all__ = ["branch_head", "require_branch"]


def _ls_remote_blocking(*, url: str, branch: str, budget: Budget, subject: Subject) -> str | None:
    ref = f"refs/heads/{branch}"
    outcome = run_git(
        ["ls-remote", "--", url, ref],
        cwd=Path("/"),
        budget=budget,
        subject=subject,
        action=f"asking the remote for the head of branch '{branch}'",
    )
    for line in outcome.stdout.splitlines():
        sha, _tab, name = line.partition("\t")
        if name.strip() == ref and sha.strip():
            return sha.strip()
    return None


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
            _ls_remote_blocking, url=url, branch=branch, budget=budget, subject=subject
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
