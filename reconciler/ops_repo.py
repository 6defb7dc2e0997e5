"""Keeps a local checkout of each ops repo in step with one branch of its remote.

The first sync clones the branch; later syncs fetch it and hard-reset the working tree to it, so a
force-pushed remote history is simply followed and local changes never survive.  A failed fetch
leaves the checkout exactly as it was, so the caller can keep rendering from the last good commit.

This is the only module that runs git.  Every git process runs in its own process group, in a
worker thread, and is killed with its whole group when the sync's time budget runs out or the
awaiting task is cancelled.  Credentials in repository URLs never reach an error message.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import math
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

from git.cmd import Git
from git.exc import GitCommandError, GitCommandNotFound

from reconciler.errors import InputError, OpsRepoError

__all__ = [
    "SyncResult",
    "checkout_dir",
    "contains_commit",
    "current_sha",
    "publish_directory",
    "redact",
    "redact_url",
    "sync_repo",
    "validate_repo_url",
]


@dataclass(frozen=True)
class SyncResult:
    """The outcome of one successful sync."""

    checkout: Path
    """The working tree to render from."""
    sha: str
    """The commit now checked out."""
    changed: bool
    """Whether ``sha`` differs from what was checked out before the sync."""


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

# Options for every git invocation.  A detached auto-gc would outlive the process group that a
# timeout kills; keep it in the foreground so it stays inside the time budget.
_GIT_OPTIONS = ("-c", "gc.autoDetach=false")

_ALLOWED_SCHEMES = ("https", "http", "ssh", "git", "file")
_SCHEME_PATTERN = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://(.*)$", re.DOTALL)
_REMOTE_HELPER_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9+.-]*::")
_SCP_LIKE_PATTERN = re.compile(r"^(?:[^@/]+@)?(\[[^\]/]+\]|[^:/\[\]@]+):(.+)$", re.DOTALL)
_QUERY_PARAMETER_PATTERN = re.compile(r"(?P<key>[^?&;=#]+)=(?P<value>[^&;#]*)")
_CREDENTIAL_KEY_PATTERN = re.compile(
    r"token|secret|pass|pwd|key|auth|sig|credential|session|bearer", re.IGNORECASE
)
_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$")
_BRANCH_FORBIDDEN = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]|\.\.|//|@\{")

_REDACTED = "***"
# Shorter standalone secrets are not searched for in free text: replacing every "ab" in a git
# message would wreck it, and git itself never prints a password on its own.
_MIN_STANDALONE_SECRET = 4

_POLL_INTERVAL_S = 0.2
_LOCK_POLL_INTERVAL_S = 0.05
_REAP_AFTER_KILL_S = 5.0
_CURRENT_SHA_TIMEOUT_S = 30.0
_DETAIL_MAX_CHARS = 400


# --------------------------------------------------------------------------------------------
# URLs and redaction


def redact_url(url: str) -> str:
    """Return ``url`` with any user/password part and credential-like query values masked.

    ``https://user:token@host/x.git`` becomes ``https://***@host/x.git``, ``git@host:x.git``
    becomes ``***@host:x.git``, ``...?access_token=abc`` becomes ``...?access_token=***``.
    Local paths come back unchanged.
    """
    parts = _split_credentials(url)
    userinfo = f"{_REDACTED}@" if parts.userinfo is not None else ""
    return f"{parts.scheme}{userinfo}{_redact_query(parts.location)}"


def redact(text: str, *, url: str) -> str:
    """Remove ``url``'s credentials, and the URL as written, from ``text`` (git's stderr, say)."""
    if not url:
        return text
    safe_url = redact_url(url)
    result = text.replace(url, safe_url) if safe_url != url else text
    parts = _split_credentials(url)
    if parts.userinfo is not None:
        # "user:password@" is masked whatever its length: its shape makes it unambiguous.
        result = result.replace(f"{parts.userinfo}@", f"{_REDACTED}@")
    for secret in sorted(_standalone_secrets(parts), key=len, reverse=True):
        result = result.replace(secret, _REDACTED)
    return result


@dataclass(frozen=True)
class _UrlParts:
    scheme: str
    """``"https://"`` and the like, or ``""`` for scp-like addresses and paths."""
    userinfo: str | None
    """What stands before the host's ``@``, if anything."""
    location: str
    """The rest: host, path and query."""


def _split_credentials(url: str) -> _UrlParts:
    scheme_match = _SCHEME_PATTERN.match(url)
    if scheme_match:
        scheme, rest = scheme_match.groups()
        # The credential ends at the *last* "@": a careless password may hold "@" or "/" itself,
        # and masking too much only costs display, masking too little leaks a secret.
        at = rest.rfind("@")
        if at == -1:
            return _UrlParts(scheme=f"{scheme}://", userinfo=None, location=rest)
        return _UrlParts(scheme=f"{scheme}://", userinfo=rest[:at], location=rest[at + 1 :])
    if url.startswith("/"):
        return _UrlParts(scheme="", userinfo=None, location=url)
    # scp-like "user@host:path": the user part comes before the first "/".
    slash = url.find("/")
    at = (url if slash == -1 else url[:slash]).rfind("@")
    if at == -1:
        return _UrlParts(scheme="", userinfo=None, location=url)
    return _UrlParts(scheme="", userinfo=url[:at], location=url[at + 1 :])


def _redact_query(location: str) -> str:
    question = location.find("?")
    if question == -1:
        return location

    def mask(match: re.Match[str]) -> str:
        if _CREDENTIAL_KEY_PATTERN.search(match["key"]):
            return f"{match['key']}={_REDACTED}"
        return match.group(0)

    query = _QUERY_PARAMETER_PATTERN.sub(mask, location[question + 1 :])
    return f"{location[: question + 1]}{query}"


def _standalone_secrets(parts: _UrlParts) -> set[str]:
    """The secrets of a URL that might show up in text on their own, as written and decoded."""
    candidates: list[str] = []
    if parts.userinfo is not None:
        user, has_password, password = parts.userinfo.partition(":")
        if has_password:
            candidates.append(password)
        elif parts.scheme.lower() in ("http://", "https://"):
            # https://<token>@host: without a password, the user name is the credential.
            candidates.append(user)
    question = parts.location.find("?")
    if question != -1:
        for match in _QUERY_PARAMETER_PATTERN.finditer(parts.location[question + 1 :]):
            if _CREDENTIAL_KEY_PATTERN.search(match["key"]):
                candidates.append(match["value"])
    forms = {form for candidate in candidates for form in (candidate, unquote(candidate))}
    return {form for form in forms if len(form) >= _MIN_STANDALONE_SECRET}


def validate_repo_url(url: str) -> None:
    """Raise InputError unless ``url`` can be a git URL this module will fetch from.

    Accepted: ``https://``, ``http://``, ``ssh://``, ``git://``, ``file://``, scp-like
    ``user@host:path`` and absolute local paths.
    """
    shown = redact_url(url)
    accepted = "use https://, http://, ssh://, git://, file://, user@host:path or an absolute path"
    if not url.strip():
        raise InputError("the ops repo URL is empty")
    if any(char.isspace() or ord(char) < 0x20 or ord(char) == 0x7F for char in url):
        raise InputError(f"the ops repo URL {shown!r} contains spaces or control characters")
    if url.startswith("-"):
        raise InputError(f"the ops repo URL {shown!r} starts with '-' (git would read an option)")
    scheme_match = _SCHEME_PATTERN.match(url)
    if scheme_match:
        scheme, rest = scheme_match.groups()
        if scheme not in _ALLOWED_SCHEMES:
            raise InputError(
                f"the ops repo URL {shown!r} uses the unsupported scheme '{scheme}'; {accepted}"
            )
        authority = rest.split("/", 1)[0]
        host = authority[authority.rfind("@") + 1 :]
        if scheme == "file":
            if not rest.strip("/"):
                raise InputError(f"the ops repo URL {shown!r} names no path")
        elif not host or host.startswith(":"):
            raise InputError(f"the ops repo URL {shown!r} names no host")
        _refuse_option_like(authority, shown=shown)
        return
    if _REMOTE_HELPER_PATTERN.match(url):
        # "<transport>::<address>" runs a remote helper (ext:: runs any command): never allowed.
        raise InputError(f"the ops repo URL {shown!r} uses an unsupported transport; {accepted}")
    if url.startswith("/"):
        return
    if _SCP_LIKE_PATTERN.match(url):
        _refuse_option_like(url.split(":", 1)[0], shown=shown)
        return
    raise InputError(f"the ops repo URL {shown!r} is not a git URL; {accepted}")


def _refuse_option_like(authority: str, *, shown: str) -> None:
    # ssh would read a user or host starting with "-" as an option (-oProxyCommand=...).
    user, _, host = authority.rpartition("@")
    if user.startswith("-") or host.startswith("-"):
        raise InputError(f"the ops repo URL {shown!r} has a user or host starting with '-'")


def checkout_dir(*, repos_dir: Path, name: str) -> Path:
    """Return where ops repo ``name`` is checked out: ``repos_dir / name``.

    ``name`` must be a slug (letters, digits, '-' and '_'), so it can never leave ``repos_dir``
    or collide with this module's own hidden lock and temporary entries.
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


# --------------------------------------------------------------------------------------------
# Running git


@dataclass(frozen=True)
class _Budget:
    """The time one sync may take, and whether the task waiting for it was cancelled."""

    timeout_s: float
    deadline: float
    cancelled: threading.Event

    @classmethod
    def start(cls, timeout_s: float, cancelled: threading.Event | None = None) -> _Budget:
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
class _Subject:
    """What an error message is about, and the URL whose credentials must not appear in it."""

    description: str
    url: str
    branch: str = ""

    @classmethod
    def for_repo(cls, *, name: str, url: str, branch: str) -> _Subject:
        return cls(description=f"ops repo '{name}' ({redact_url(url)})", url=url, branch=branch)


@dataclass(frozen=True)
class _GitOutcome:
    returncode: int
    stdout: str
    stderr: str


def _run_git(
    args: Sequence[str],
    *,
    cwd: Path,
    budget: _Budget,
    subject: _Subject,
    action: str,
    check: bool = True,
) -> _GitOutcome:
    """Run one git command within the budget; raise OpsRepoError on failure (if ``check``)."""
    argv = ["git", *_GIT_OPTIONS, *args]
    shown_argv = [redact(arg, url=subject.url) for arg in argv]
    if budget.exhausted():
        raise _timeout_error(subject=subject, budget=budget, action=action, argv=shown_argv)
    try:
        # A new session makes git the leader of a process group holding every helper it starts
        # (ssh, remote-https, upload-pack), so a timeout can kill all of them at once.
        wrapper = Git(str(cwd)).execute(
            argv, as_process=True, env=_GIT_ENVIRONMENT, start_new_session=True
        )
    except GitCommandNotFound:
        raise OpsRepoError(
            f"{subject.description}: the git executable was not found while {action}"
        ) from GitCommandNotFound(shown_argv, "git executable not found")
    process = wrapper.proc
    if process is None:  # only after the wrapper was finalized, which cannot have happened yet
        raise OpsRepoError(f"{subject.description}: git did not start while {action}")
    while True:
        if budget.exhausted():
            _kill_process_group(process)
            raise _timeout_error(subject=subject, budget=budget, action=action, argv=shown_argv)
        try:
            raw_stdout, raw_stderr = process.communicate(
                timeout=max(0.0, min(_POLL_INTERVAL_S, budget.remaining_s()))
            )
            break
        except subprocess.TimeoutExpired:
            continue
    outcome = _GitOutcome(
        returncode=process.returncode,
        stdout=(raw_stdout or b"").decode("utf-8", errors="replace"),
        stderr=redact((raw_stderr or b"").decode("utf-8", errors="replace"), url=subject.url),
    )
    if check and outcome.returncode != 0:
        raise OpsRepoError(
            f"{subject.description}: {_explain(outcome.stderr, branch=subject.branch)}"
            f" ({_verb(args)} said: {_detail(outcome.stderr)})"
        ) from GitCommandError(shown_argv, outcome.returncode, outcome.stderr)
    return outcome


def _kill_process_group(process: subprocess.Popen[bytes]) -> None:
    # The group id is git's pid, which cannot have been reused: git is not reaped yet.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        # Something that left the group (a daemonized helper) may still hold the pipes open.
        process.communicate(timeout=_REAP_AFTER_KILL_S)


def _timeout_error(
    *, subject: _Subject, budget: _Budget, action: str, argv: list[str]
) -> OpsRepoError:
    if budget.cancelled.is_set():
        return OpsRepoError(f"{subject.description}: cancelled while {action}; git was stopped")
    error = OpsRepoError(
        f"{subject.description}: timed out after {budget.timeout_s:g} s while {action}"
        "; git was stopped"
    )
    error.__cause__ = subprocess.TimeoutExpired(argv, budget.timeout_s)
    return error


def _verb(args: Sequence[str]) -> str:
    options_with_values = {"-c", "-C", "--git-dir", "--work-tree"}
    skip_next = False
    for arg in args:
        if skip_next:
            skip_next = False
        elif arg in options_with_values:
            skip_next = True
        elif not arg.startswith("-"):
            return f"git {arg}"
    return "git"


# Checked in order: the specific explanations come before the generic ones that git prints
# alongside them ("Permission denied" comes with "Could not read from remote repository").
_EXPLANATIONS: tuple[tuple[tuple[str, ...], str], ...] = (
    (
        ("remote branch", "couldn't find remote ref"),
        "branch '{branch}' does not exist on the remote",
    ),
    (("host key verification failed",), "the remote's SSH host key is not trusted (known_hosts)"),
    (
        (
            "authentication failed",
            "could not read username",
            "could not read password",
            "permission denied (",
            "terminal prompts disabled",
            "returned error: 401",
            "returned error: 403",
            "access denied",
        ),
        "authentication failed (missing or rejected credentials)",
    ),
    (
        (
            "repository not found",
            "not found",
            "does not appear to be a git repository",
            "does not exist",
            "returned error: 404",
        ),
        "repository not found",
    ),
    (
        ("ssl certificate", "server certificate verification"),
        "the remote's TLS certificate is not trusted",
    ),
    (
        (
            "could not resolve",
            "failed to connect",
            "connection refused",
            "connection timed out",
            "connection reset",
            "network is unreachable",
            "no route to host",
            "unable to connect",
            "unable to access",
            "operation timed out",
            "could not read from remote repository",
            "the remote end hung up",
        ),
        "remote unreachable",
    ),
)


def _explain(stderr: str, *, branch: str) -> str:
    lowered = stderr.lower()
    for needles, explanation in _EXPLANATIONS:
        if any(needle in lowered for needle in needles):
            return explanation.format(branch=branch)
    return "git failed"


# Lines git adds to every failure of a kind; they would crowd out the line that says what happened.
_BOILERPLATE_PREFIXES = (
    "hint:",
    "please make sure you have the correct access rights",
    "and the repository exists",
)


def _detail(stderr: str) -> str:
    lines = [
        line.strip()
        for line in stderr.splitlines()
        if line.strip() and not line.strip().lower().startswith(_BOILERPLATE_PREFIXES)
    ]
    detail = "; ".join(lines[-3:]) or "no message"
    if len(detail) > _DETAIL_MAX_CHARS:
        detail = detail[: _DETAIL_MAX_CHARS - 3] + "..."
    return detail


# --------------------------------------------------------------------------------------------
# Checkouts


def current_sha(checkout: Path) -> str | None:
    """Return the commit checked out in ``checkout``; None when there is no usable checkout.

    Blocking (it runs ``git rev-parse``): call it from a thread in async code.
    """
    checkout = checkout.absolute()
    subject = _Subject(description=f"ops repo checkout {checkout}", url="")
    return _head_sha(checkout, budget=_Budget.start(_CURRENT_SHA_TIMEOUT_S), subject=subject)


_SHA_PATTERN = re.compile(r"^[0-9a-f]{4,64}$")


def contains_commit(checkout: Path, sha: str) -> bool:
    """Return whether commit ``sha`` is the commit checked out in ``checkout`` or an ancestor of
    it.  False also when the checkout does not know ``sha``: the commit is newer than the
    checkout (not fetched yet) or belongs to a rewritten history.

    Blocking (it runs ``git merge-base``): call it from a thread in async code.
    """
    checkout = checkout.absolute()
    # Only a hex sha reaches git's command line, never something it could read as an option.
    if not _SHA_PATTERN.match(sha) or not (checkout / ".git").is_dir():
        return False
    outcome = _run_git(
        _in_checkout(checkout, "merge-base", "--is-ancestor", sha, "HEAD"),
        cwd=checkout,
        budget=_Budget.start(_CURRENT_SHA_TIMEOUT_S),
        subject=_Subject(description=f"ops repo checkout {checkout}", url=""),
        action="comparing commits",
        check=False,
    )
    return outcome.returncode == 0


def _in_checkout(checkout: Path, *args: str) -> list[str]:
    # An explicit git dir stops git from searching upwards: without it, a checkout lacking .git
    # inside some other repository would make "clean -ffdx" run on that repository.
    return [f"--git-dir={checkout / '.git'}", f"--work-tree={checkout}", *args]


def _head_sha(checkout: Path, *, budget: _Budget, subject: _Subject) -> str | None:
    if not (checkout / ".git").is_dir():
        return None
    outcome = _run_git(
        _in_checkout(checkout, "rev-parse", "--verify", "--quiet", "HEAD^{commit}"),
        cwd=checkout,
        budget=budget,
        subject=subject,
        action="reading the checked-out commit",
        check=False,
    )
    sha = outcome.stdout.strip()
    return sha if outcome.returncode == 0 and sha else None


@contextlib.contextmanager
def _exclusive(lock_path: Path, *, budget: _Budget, subject: _Subject) -> Iterator[None]:
    """Hold an exclusive lock on ``lock_path``, against other threads and other processes."""
    try:
        descriptor = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise OpsRepoError(f"{subject.description}: cannot open the lock file {lock_path}") from exc
    try:
        while True:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if budget.exhausted():
                    raise _timeout_error(
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


def _remove_leftovers(*, repos_dir: Path, name: str) -> None:
    """Remove temporary clones and replaced checkouts that a crashed sync left behind."""
    for prefix in (f".{name}.clone-", f".{name}.old-"):
        for leftover in repos_dir.glob(f"{prefix}*"):
            _remove_path(leftover)


def _remove_path(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _clone_into_place(
    *, url: str, branch: str, repos_dir: Path, name: str, budget: _Budget, subject: _Subject
) -> str:
    """Clone into a temporary sibling, then rename it over ``repos_dir / name``; return the sha.

    A half-finished clone therefore never stands where the renderer looks.
    """
    checkout = repos_dir / name
    try:
        staging = Path(tempfile.mkdtemp(prefix=f".{name}.clone-", dir=repos_dir))
    except OSError as exc:
        raise OpsRepoError(
            f"{subject.description}: cannot create a directory in {repos_dir} to clone into"
        ) from exc
    try:
        _run_git(
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
        _replace(checkout=checkout, staging=staging, subject=subject)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return sha


def _replace(*, checkout: Path, staging: Path, subject: _Subject) -> None:
    try:
        if os.path.lexists(checkout):
            # Move the old entry aside first, so the final name is only ever empty or complete.
            retired = Path(tempfile.mkdtemp(prefix=f".{checkout.name}.old-", dir=checkout.parent))
            os.replace(checkout, retired / "checkout")
            os.replace(staging, checkout)
            _remove_path(retired)
        else:
            os.replace(staging, checkout)
    except OSError as exc:
        raise OpsRepoError(
            f"{subject.description}: cannot move the new clone into place at {checkout}"
        ) from exc


def _point_origin_at(checkout: Path, *, url: str, budget: _Budget, subject: _Subject) -> None:
    recorded = _run_git(
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
    _run_git(
        _in_checkout(checkout, "remote", command, "origin", url),
        cwd=checkout,
        budget=budget,
        subject=subject,
        action="updating the checkout's origin URL",
    )


def _fetch_and_reset(checkout: Path, *, branch: str, budget: _Budget, subject: _Subject) -> str:
    """Fetch ``branch`` and hard-reset the working tree to it; return the new sha.

    A fetch only moves ``refs/remotes/origin/<branch>``, so when it fails the working tree and
    HEAD are exactly as they were.
    """
    remote_ref = f"refs/remotes/origin/{branch}"
    # An explicit forced refspec: the branch may differ from the one cloned, and a rewritten
    # remote history must replace the old one rather than be refused.
    _run_git(
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
    _run_git(
        _in_checkout(
            checkout, "checkout", "--quiet", "--force", "--no-track", "-B", branch, remote_ref, "--"
        ),
        cwd=checkout,
        budget=budget,
        subject=subject,
        action=f"resetting the checkout to origin/{branch}",
    )
    _run_git(
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
    *, name: str, url: str, branch: str, repos_dir: Path, budget: _Budget
) -> SyncResult:
    subject = _Subject.for_repo(name=name, url=url, branch=branch)
    # git runs with the checkout as its working directory: every path it gets must be absolute.
    repos_dir = repos_dir.absolute()
    checkout = checkout_dir(repos_dir=repos_dir, name=name)
    try:
        repos_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OpsRepoError(f"{subject.description}: cannot create {repos_dir}") from exc
    with _exclusive(repos_dir / f".{name}.lock", budget=budget, subject=subject):
        _remove_leftovers(repos_dir=repos_dir, name=name)

        def clone() -> str:
            return _clone_into_place(
                url=url,
                branch=branch,
                repos_dir=repos_dir,
                name=name,
                budget=budget,
                subject=subject,
            )

        before = _head_sha(checkout, budget=budget, subject=subject)
        if before is None:
            # No checkout, or one a crash left unusable: start again from a clean clone.
            sha = clone()
            return SyncResult(checkout=checkout, sha=sha, changed=True)
        _point_origin_at(checkout, url=url, budget=budget, subject=subject)
        try:
            sha = _fetch_and_reset(checkout, branch=branch, budget=budget, subject=subject)
        except OpsRepoError as exc:
            if budget.exhausted() or _fetch_failed(exc):
                raise
            # The fetch worked but the working tree could not be reset (say, an index.lock
            # left by a crash): rebuild the checkout from a fresh clone instead of failing forever.
            sha = clone()
        return SyncResult(checkout=checkout, sha=sha, changed=sha != before)


def _fetch_failed(error: OpsRepoError) -> bool:
    cause = error.__cause__
    return isinstance(cause, GitCommandError) and "fetch" in cause.command


async def sync_repo(
    *, name: str, url: str, branch: str, repos_dir: Path, timeout_s: float = 60.0
) -> SyncResult:
    """Bring ``repos_dir / name`` to the tip of ``branch`` at ``url``; clone it the first time.

    The returned ``checkout`` is an absolute path.

    Raises InputError for an invalid name, URL or branch, and OpsRepoError for anything git or
    the file system refuses, or when the whole sync takes longer than ``timeout_s`` (git is then
    killed).  On a failed fetch the existing checkout is left exactly as it was.
    """
    checkout_dir(repos_dir=repos_dir, name=name)
    validate_repo_url(url)
    _validate_branch(branch)
    if not (math.isfinite(timeout_s) and timeout_s > 0):
        raise InputError(f"the ops repo sync timeout must be a positive number, not {timeout_s}")
    cancelled = threading.Event()
    budget = _Budget.start(timeout_s, cancelled)
    try:
        return await asyncio.to_thread(
            _sync_blocking, name=name, url=url, branch=branch, repos_dir=repos_dir, budget=budget
        )
    except asyncio.CancelledError:
        # The thread cannot be interrupted, but it watches this flag and kills git promptly.
        cancelled.set()
        raise


def publish_directory(*, source: Path, repo: Path, message: str) -> str:
    """Make ``repo`` a git repository whose ``main`` branch holds a copy of ``source``, with a new
    commit when the content changed.  Returns the URL to register (its absolute path).

    For ``reconciler demo`` and tests: it turns a folder such as ``ops_repos_example`` into an
    ops repo the daemon can clone and fetch like any remote.
    """
    repo.mkdir(parents=True, exist_ok=True)
    git = Git(str(repo))
    identity = ["-c", "user.name=reconciler", "-c", "user.email=reconciler@localhost"]
    if not (repo / ".git").is_dir():
        git.execute(["git", "init", "-q", "-b", "main"], env=_GIT_ENVIRONMENT)
    for child in repo.iterdir():
        if child.name != ".git":
            _remove_path(child)
    shutil.copytree(source, repo, dirs_exist_ok=True)
    git.execute(["git", "add", "-A"], env=_GIT_ENVIRONMENT)
    if git.execute(["git", "status", "--porcelain"], env=_GIT_ENVIRONMENT):
        git.execute(["git", *identity, "commit", "-q", "-m", message], env=_GIT_ENVIRONMENT)
    return str(repo.resolve())
