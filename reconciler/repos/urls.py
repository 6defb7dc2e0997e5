"""Repository URLs: which ones git may fetch from, and how to show them without credentials."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from urllib.parse import unquote, unquote_to_bytes

from reconciler.errors import InputError

__all__ = ["local_path", "redact", "redact_url", "validate_repo_url"]

_ALLOWED_SCHEMES = ("https", "http", "ssh", "git", "file")
_SCHEME_PATTERN = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://(.*)$", re.DOTALL)
_REMOTE_HELPER_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9+.-]*::")
_SCP_LIKE_PATTERN = re.compile(r"^(?:[^@/]+@)?(\[[^\]/]+\]|[^:/\[\]@]+):(.+)$", re.DOTALL)
_QUERY_PARAMETER_PATTERN = re.compile(r"(?P<key>[^?&;=#]+)=(?P<value>[^&;#]*)")
_CREDENTIAL_KEY_PATTERN = re.compile(
    r"token|secret|pass|pwd|key|auth|sig|credential|session|bearer", re.IGNORECASE
)

_REDACTED = "***"
# Shorter standalone secrets are not searched for in free text: replacing every "ab" in a git
# message would wreck it, and git itself never prints a password on its own.
_MIN_STANDALONE_SECRET = 4


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
    """Raise InputError unless ``url`` can be a git URL that an ops repo sync fetches from.

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


def local_path(url: str) -> str | None:
    """The directory git's local transport reads for ``url`` (a valid repo URL), or None when
    git would reach it over the network (https, ssh, git://, scp-like) or this cannot tell.

    An absolute path is local to git (no ``:`` before its first ``/``).  ``file:///<path>`` is
    percent-decoded as git decodes it; ``file://<host>/...`` (git ignores the host) and a path
    decoding to a NUL are left to git.  ``~`` is never expanded: git expands it only at the
    start of a path, and every path accepted here starts with ``/``.
    """
    if url.startswith("/"):
        return url
    scheme_match = _SCHEME_PATTERN.match(url)
    if scheme_match is None or scheme_match[1] != "file" or not scheme_match[2].startswith("/"):
        return None
    path = os.fsdecode(unquote_to_bytes(scheme_match[2]))
    return None if "\0" in path else path


def _refuse_option_like(authority: str, *, shown: str) -> None:
    # ssh would read a user or host starting with "-" as an option (-oProxyCommand=...).
    user, _, host = authority.rpartition("@")
    if user.startswith("-") or host.startswith("-"):
        raise InputError(f"the ops repo URL {shown!r} has a user or host starting with '-'")
