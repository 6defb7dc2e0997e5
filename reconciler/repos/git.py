"""The only place that runs git.

Every git process of a sync runs in its own process group and is killed with its whole group when
the sync's time budget runs out or the task awaiting it is cancelled.  Failures become
OpsRepoError with git's stderr explained and redacted: credentials in repository URLs never reach
an error message.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from git.cmd import Git
from git.exc import GitCommandError, GitCommandNotFound

from reconciler.errors import OpsRepoError
from reconciler.repos.explain import describe_failure
from reconciler.repos.urls import redact, redact_url

__all__ = [
    "Budget",
    "GitOutcome",
    "Subject",
    "is_fetch_failure",
    "run_git",
    "run_untimed",
    "timeout_error",
]

# Added to git's environment (GitPython merges it over the process environment).
_GIT_ENVIRONMENT = {
    # Never wait for a human: a missing credential must fail at once, in words.
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_ASKPASS": "/bin/false",
    "SSH_ASKPASS_REQUIRE": "never",
    "GIT_SSH_COMMAND": "ssh -o BatchMode=yes",
    # Failures are explained by matching git's messages, which must therefore be in English.
    "LC_ALL": "C",
    "LANGUAGE": "C",
}

# Options for every budgeted git invocation.  A detached auto-gc would outlive the process group
# that a timeout kills; keep it in the foreground so it stays inside the time budget.
_GIT_OPTIONS = ("-c", "gc.autoDetach=false")

_POLL_INTERVAL_S = 0.2
_REAP_AFTER_KILL_S = 5.0


@dataclass(frozen=True)
class Budget:
    """The time one sync may take, and whether the task waiting for it was cancelled."""

    timeout_s: float
    deadline: float
    cancelled: threading.Event

    @classmethod
    def start(cls, timeout_s: float, cancelled: threading.Event | None = None) -> Budget:
        return cls(
            timeout_s=timeout_s,
            deadline=time.monotonic() + timeout_s,
            cancelled=cancelled or threading.Event(),
        )

    def remaining_s(self) -> float:
        return self.deadline - time.monotonic()

    def exhausted(self) -> bool:
        return self.cancelled.is_set() or self.remaining_s() <= 0


@dataclass(frozen=True)
class Subject:
    """What an error message is about, and the URL whose credentials must not appear in it."""

    description: str
    url: str
    branch: str = ""

    @classmethod
    def for_repo(cls, *, name: str, url: str, branch: str) -> Subject:
        return cls(description=f"ops repo '{name}' ({redact_url(url)})", url=url, branch=branch)


@dataclass(frozen=True)
class GitOutcome:
    returncode: int
    stdout: str
    stderr: str


def run_git(
    args: Sequence[str],
    *,
    cwd: Path,
    budget: Budget,
    subject: Subject,
    action: str,
    check: bool = True,
    env: Mapping[str, str] | None = None,
) -> GitOutcome:
    """Run one git command within the budget; raise OpsRepoError on failure (if ``check``).

    ``env`` adds variables to git's environment (``GIT_INDEX_FILE`` for a snapshot's index).
    """
    argv = ["git", *_GIT_OPTIONS, *args]
    shown_argv = [redact(arg, url=subject.url) for arg in argv]
    if budget.exhausted():
        raise timeout_error(subject=subject, budget=budget, action=action, argv=shown_argv)
    try:
        # A new session makes git the leader of a process group holding every helper it starts
        # (ssh, remote-https, upload-pack), so a timeout can kill all of them at once.
        wrapper = Git(str(cwd)).execute(
            argv,
            as_process=True,
            env={**_GIT_ENVIRONMENT, **(env or {})},
            start_new_session=True,
        )
    except GitCommandNotFound:
        raise OpsRepoError(
            f"{subject.description}: the git executable was not found while {action}"
        ) from GitCommandNotFound(shown_argv, "git executable not found")
    process = wrapper.proc
    if process is None:  # only after the wrapper was finalized, which cannot have happened yet
        raise OpsRepoError(f"{subject.description}: git did not start while {action}")
    raw_stdout, raw_stderr = _communicate_within(
        process, budget=budget, subject=subject, action=action, argv=shown_argv
    )
    outcome = GitOutcome(
        returncode=process.returncode,
        stdout=(raw_stdout or b"").decode("utf-8", errors="replace"),
        stderr=redact((raw_stderr or b"").decode("utf-8", errors="replace"), url=subject.url),
    )
    if check and outcome.returncode != 0:
        raise OpsRepoError(
            f"{subject.description}:"
            f" {describe_failure(outcome.stderr, branch=subject.branch, args=args)}"
        ) from GitCommandError(shown_argv, outcome.returncode, outcome.stderr)
    return outcome


def _communicate_within(
    process: subprocess.Popen[bytes],
    *,
    budget: Budget,
    subject: Subject,
    action: str,
    argv: list[str],
) -> tuple[bytes | None, bytes | None]:
    """Wait for git's output, killing its process group once the budget is exhausted."""
    # Waits in short slices so that a cancellation (a flag, not a deadline) is noticed promptly.
    while True:
        if budget.exhausted():
            _kill_process_group(process)
            raise timeout_error(subject=subject, budget=budget, action=action, argv=argv)
        with contextlib.suppress(subprocess.TimeoutExpired):
            return process.communicate(
                timeout=max(0.0, min(_POLL_INTERVAL_S, budget.remaining_s()))
            )


def _kill_process_group(process: subprocess.Popen[bytes]) -> None:
    # The group id is git's pid, which cannot have been reused: git is not reaped yet.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        # Something that left the group (a daemonized helper) may still hold the pipes open.
        process.communicate(timeout=_REAP_AFTER_KILL_S)


def timeout_error(
    *, subject: Subject, budget: Budget, action: str, argv: list[str]
) -> OpsRepoError:
    """The error for a step that ran out of budget (or was cancelled) while ``action``."""
    if budget.cancelled.is_set():
        return OpsRepoError(f"{subject.description}: cancelled while {action}; git was stopped")
    error = OpsRepoError(
        f"{subject.description}: timed out after {budget.timeout_s:g} s while {action}"
        "; git was stopped"
    )
    error.__cause__ = subprocess.TimeoutExpired(argv, budget.timeout_s)
    return error


def is_fetch_failure(error: OpsRepoError) -> bool:
    """Whether ``error`` came from a failed ``git fetch`` (rather than a later step)."""
    cause = error.__cause__
    return isinstance(cause, GitCommandError) and "fetch" in cause.command


def run_untimed(args: Sequence[str], *, cwd: Path) -> str:
    """Run git in ``cwd`` without a budget and return its stdout; GitCommandError on failure.

    For set-up helpers such as ``publish_directory``, never for a sync.
    """
    return Git(str(cwd)).execute(["git", *args], env=_GIT_ENVIRONMENT)
