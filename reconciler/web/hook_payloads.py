"""Git webhooks, pure: who sent a request, whether its signature holds, what it pushed, and
which ops repos it concerns.  No I/O; ``reconciler.web.git_hooks`` serves it.

Senders and how each proves it knows the secret (checked in this order, constant-time):

- Forgejo: ``X-Forgejo-Signature``, the hex HMAC-SHA256 of the body (it also sends
  ``X-Gitea-Signature`` and GitHub's event headers, for compatibility);
- Gitea: ``X-Gitea-Signature``, the same;
- GitHub: ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>``;
- GitLab: ``X-Gitlab-Token``, the secret itself;
- anything else: ``X-Reconciler-Signature: sha256=<hex>`` over a JSON body
  ``{"repo_url": "...", "branch": "..."}``.

A push names its repository by several URLs (clone, ssh, html); each is compared with every
registered ops repo's URL after :func:`normalise_url`, and the pushed ref with
``refs/heads/<branch>``.  A tag push or a branch deletion matches nothing.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from reconciler.model import OpsRepo

__all__ = [
    "HookRefused",
    "Provider",
    "Push",
    "matching_repos",
    "normalise_url",
    "parse_push",
    "sign",
    "verify",
]

_ZERO_SHA = re.compile(r"^0+$")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://([^/]*)(.*)$", re.DOTALL)
_SCP_LIKE = re.compile(r"^(?:[^@/]+@)?(\[[^\]/]+\]|[^:/\[\]@]+):(.+)$", re.DOTALL)
_DEFAULT_PORTS = {"https": "443", "http": "80", "ssh": "22", "git": "9418"}
_URL_KEYS = (
    "clone_url",
    "ssh_url",
    "html_url",
    "git_url",
    "url",
    "svn_url",
    "git_http_url",
    "git_ssh_url",
    "http_url",
    "web_url",
    "homepage",
)


class Provider(enum.Enum):
    """Who signed a request, by the header that authenticated it."""

    FORGEJO = "forgejo"
    GITEA = "gitea"
    GITHUB = "github"
    GITLAB = "gitlab"
    GENERIC = "generic"


class HookRefused(Exception):
    """A request that is refused: ``status`` (400, 401, ...) and a message naming what is
    wrong (never the secret, never the signature sent)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Push:
    """What a verified request announces."""

    provider: Provider
    event: str
    """The provider's event name (``push``, ``ping``, ``Push Hook``, ...)."""
    urls: tuple[str, ...]
    """Every URL the payload names the repository by."""
    branch: str | None
    """The branch pushed to; None for a tag push, a branch deletion, a ping or another event."""

    @property
    def syncs(self) -> bool:
        return self.branch is not None and bool(self.urls)


def sign(body: bytes, secret: str) -> str:
    """The hex HMAC-SHA256 of ``body`` under ``secret`` (what the senders compute)."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(headers: Mapping[str, str], body: bytes, *, secret: str) -> Provider:
    """The provider whose signature on ``body`` holds; HookRefused(401) when none is given or
    the one given is wrong.  ``headers`` are looked up case-insensitively by the caller's
    mapping (aiohttp's are)."""
    expected = sign(body, secret)
    for header, provider, prefix in (
        ("X-Forgejo-Signature", Provider.FORGEJO, ""),
        ("X-Gitea-Signature", Provider.GITEA, ""),
        ("X-Hub-Signature-256", Provider.GITHUB, "sha256="),
        ("X-Reconciler-Signature", Provider.GENERIC, "sha256="),
    ):
        given = headers.get(header)
        if given is None:
            continue
        given = given.strip()
        if prefix and not given.lower().startswith(prefix):
            raise HookRefused(401, f"{header} must be {prefix}<hex HMAC-SHA256 of the body>")
        if not hmac.compare_digest(given[len(prefix) :].lower().encode(), expected.encode()):
            raise HookRefused(401, f"{header} does not match the body signed with the secret")
        return provider
    token = headers.get("X-Gitlab-Token")
    if token is not None:
        if not hmac.compare_digest(token.encode(), secret.encode()):
            raise HookRefused(401, "X-Gitlab-Token is not the webhook secret")
        return Provider.GITLAB
    raise HookRefused(
        401,
        "the request is not signed: send X-Hub-Signature-256, X-Gitlab-Token, "
        "X-Gitea-Signature, X-Forgejo-Signature or X-Reconciler-Signature",
    )


def parse_push(
    provider: Provider, headers: Mapping[str, str], body: bytes, *, content_type: str = ""
) -> Push:
    """What a verified request announces; HookRefused(400) for a body that is not the JSON
    object its provider sends."""
    payload = _payload(body, content_type=content_type)
    if provider is Provider.GENERIC:
        return _generic(payload)
    event = _event(provider, headers)
    urls = _urls(payload.get("repository"), payload.get("project"))
    if not _is_push(provider, event, object_kind=payload.get("object_kind")):
        return Push(provider=provider, event=event, urls=urls, branch=None)
    ref = payload.get("ref")
    if not isinstance(ref, str):
        raise HookRefused(400, f"the {event} payload has no 'ref' string")
    after = payload.get("after")
    deleted = payload.get("deleted") is True or (
        isinstance(after, str) and bool(_ZERO_SHA.match(after))
    )
    branch = ref.removeprefix("refs/heads/") if ref.startswith("refs/heads/") else None
    return Push(provider=provider, event=event, urls=urls, branch=None if deleted else branch)


def _payload(body: bytes, *, content_type: str) -> dict[str, Any]:
    text: str | None
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise HookRefused(400, "the body is not UTF-8") from None
    if content_type.split(";")[0].strip().lower() == "application/x-www-form-urlencoded":
        # GitHub and Gitea may send the JSON as the form field "payload".
        fields = parse_qs(text).get("payload")
        text = fields[0] if fields else None
        if text is None:
            raise HookRefused(400, "the form body has no 'payload' field")
    try:
        payload = json.loads(text)
    except ValueError as exc:
        raise HookRefused(400, f"the body is not JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise HookRefused(400, f"the body must be a JSON object, not {type(payload).__name__}")
    return payload


def _event(provider: Provider, headers: Mapping[str, str]) -> str:
    names = {
        Provider.FORGEJO: ("X-Forgejo-Event", "X-Gitea-Event"),
        Provider.GITEA: ("X-Gitea-Event",),
        Provider.GITHUB: ("X-GitHub-Event",),
        Provider.GITLAB: ("X-Gitlab-Event",),
    }[provider]
    for name in names:
        value = headers.get(name)
        if value:
            return value.strip()
    raise HookRefused(400, f"the request has no {names[0]} header")


def _is_push(provider: Provider, event: str, *, object_kind: object) -> bool:
    if provider is Provider.GITLAB:
        # "Tag Push Hook" is a tag; a system hook says "System Hook" and the kind in the body.
        return event == "Push Hook" or (event == "System Hook" and object_kind == "push")
    return event == "push"


def _urls(*sections: object) -> tuple[str, ...]:
    found: list[str] = []
    for section in sections:
        if isinstance(section, dict):
            found += [v for k in _URL_KEYS if isinstance(v := section.get(k), str) and v]
    return tuple(dict.fromkeys(found))


def _generic(payload: dict[str, Any]) -> Push:
    unknown = sorted(set(payload) - {"repo_url", "branch"})
    if unknown:
        raise HookRefused(400, f"unknown field {unknown[0]!r}; send repo_url and branch")
    url, branch = payload.get("repo_url"), payload.get("branch")
    if not isinstance(url, str) or not url.strip():
        raise HookRefused(400, "'repo_url' must be a non-empty string")
    if not isinstance(branch, str) or not branch.strip():
        raise HookRefused(400, "'branch' must be a non-empty string")
    branch = branch.strip().removeprefix("refs/heads/")
    return Push(provider=Provider.GENERIC, event="push", urls=(url.strip(),), branch=branch)


def normalise_url(url: str) -> str:
    """A repository URL reduced to what identifies the repository: scheme and host lowercased,
    credentials, default ports, a trailing ``/`` and ``.git`` dropped; scp-like
    ``git@host:a/b.git`` and ``ssh://git@host/a/b`` become the same.  Different transports
    (https and ssh) of one host and path compare equal too: a push names both."""
    text = url.strip()
    scheme_match = _SCHEME.match(text)
    if scheme_match:
        scheme, authority, path = scheme_match.groups()
        scheme = scheme.lower()
        host = authority.rsplit("@", 1)[-1].lower()
        name, colon, port = host.rpartition(":")
        if colon and name and port == _DEFAULT_PORTS.get(scheme):
            host = name
        if scheme == "file":
            return _strip_path(path or "/")
    elif (scp := _SCP_LIKE.match(text)) and not text.startswith("/"):
        host, path = scp.group(1).lower(), "/" + scp.group(2).lstrip("/")
    else:
        return _strip_path(text)
    return f"{host}{_strip_path(path)}"


def _strip_path(path: str) -> str:
    path = path.split("?", 1)[0].split("#", 1)[0].rstrip("/")
    return path.removesuffix(".git").rstrip("/")


def matching_repos(push: Push, repos: Sequence[OpsRepo]) -> list[OpsRepo]:
    """The ops repos ``push`` concerns: one of its URLs names the repo's, and it pushed the
    repo's branch.  None for a tag push, a deletion or another event."""
    if not push.syncs:
        return []
    wanted = {normalise_url(u) for u in push.urls}
    return [r for r in repos if r.branch == push.branch and normalise_url(r.repo_url) in wanted]
