"""What a failed git command means, in words: git's stderr matched against known messages."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["describe_failure"]

_DETAIL_MAX_CHARS = 400


def describe_failure(stderr: str, *, branch: str, args: Sequence[str]) -> str:
    """Say what went wrong, then quote git: ``"<explanation> (git <verb> said: <detail>)"``.

    ``stderr`` must already be redacted; ``args`` are git's arguments, without ``git`` itself.
    """
    return f"{_explain(stderr, branch=branch)} ({_verb(args)} said: {_detail(stderr)})"


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
