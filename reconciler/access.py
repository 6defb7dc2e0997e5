"""Who may do what, and who did it: API tokens and their scopes, and audit claims.

Pure: no I/O.  A token is a high-entropy secret shown once; only its SHA-256 is stored
(``api_tokens.token_hash``).  Scopes are ordered, each implying the lower ones; a token bound to
a project sees and changes that project only.  An :class:`AuditClaim` is what a transaction
says of itself to the audit trigger (migration 0009), which believes it only from the daemon's
role.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Scope(StrEnum):
    """A token's permission; each implies the ones before it."""

    DEPLOY_READ = "deploy:read"
    DEPLOY_PROMOTE = "deploy:promote"
    ADMIN = "admin"


SCOPE_ORDER = (Scope.DEPLOY_READ, Scope.DEPLOY_PROMOTE, Scope.ADMIN)

TOKEN_PREFIX = "rcn_"
"""Every token starts so: secret scanners and humans can tell what a leaked string is."""

_TOKEN_NAME = re.compile(r"^[a-z0-9]([a-z0-9_-]{0,61}[a-z0-9])?$")
_PROJECT = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


@dataclass(frozen=True, kw_only=True)
class ApiToken:
    """A row of ``api_tokens`` (never its hash)."""

    id: int
    name: str
    scope: str
    project: str | None
    created_at: dt.datetime
    revoked_at: dt.datetime | None = None
    last_used_at: dt.datetime | None = None


@dataclass(frozen=True)
class AuditClaim:
    """What a writing transaction tells the audit: how it came (``api``, ``cli``, ``daemon``)
    and who asked (a token's name, an OS user, a daemon id)."""

    via: str
    actor: str | None


@dataclass(frozen=True, kw_only=True)
class AuditEntry:
    """A row of ``deployment_audit``."""

    id: int
    at: dt.datetime
    deployment_id: int
    project: str
    environment: str
    operation: str
    changes: dict[str, Any]
    generation: int
    via: str
    actor: str | None
    claimed_via: str | None
    claimed_actor: str | None
    db_user: str
    application_name: str


def new_token() -> str:
    """A fresh token: the prefix and 256 random bits, URL-safe."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """What ``api_tokens`` stores of a token: its SHA-256, hex."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def parse_scope(text: str) -> Scope:
    """``text`` as a Scope; ValueError naming the valid ones."""
    try:
        return Scope(text)
    except ValueError:
        valid = ", ".join(s.value for s in SCOPE_ORDER)
        raise ValueError(f"unknown scope {text!r} (valid: {valid})") from None


def implies(held: str, required: Scope) -> bool:
    """Whether a token of scope ``held`` may do what ``required`` allows."""
    try:
        rank = SCOPE_ORDER.index(Scope(held))
    except ValueError:
        return False  # a scope this version does not know grants nothing
    return rank >= SCOPE_ORDER.index(required)


def refusal(token: ApiToken, *, scope: Scope, project: str | None) -> str | None:
    """Why ``token`` may not act with ``scope`` on ``project`` (None: a global resource, which
    a project-bound token never reaches), or None when it may."""
    if not implies(token.scope, scope):
        return f"token {token.name!r} has scope {token.scope}; this needs {scope.value}"
    if token.project is not None and project != token.project:
        target = f"project {project!r}" if project is not None else "resources of every project"
        return f"token {token.name!r} is limited to project {token.project!r}, not {target}"
    return None


def check_token_name(name: str) -> str:
    """``name`` if it is a valid token name (a slug, as ops repo names); ValueError if not."""
    if not _TOKEN_NAME.match(name):
        raise ValueError(
            f"token name {name!r} must be lowercase letters, digits, '_' or '-' (at most 63, "
            "starting and ending with a letter or digit)"
        )
    return name


def check_project(project: str) -> str:
    """``project`` if it is a DNS-1123 label (as deployments.project); ValueError if not."""
    if not _PROJECT.match(project):
        raise ValueError(f"project {project!r} must be a DNS-1123 label")
    return project
