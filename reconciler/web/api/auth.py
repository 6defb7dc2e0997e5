"""Bearer tokens: who is asking, and whether their token's scope and project allow it.

No token, an unknown or a revoked one: 401 with ``WWW-Authenticate``.  A token whose scope is
too low, or bound to another project: 403.  Either way the request is refused before it
reads or changes anything.
"""

from __future__ import annotations

from typing import Protocol

from aiohttp import web

from reconciler.access import TOKEN_PREFIX, ApiToken, Scope, refusal
from reconciler.web.api.errors import ApiError

REALM = 'Bearer realm="reconciler"'

MAX_TOKEN_CHARS = 200
"""Longer is no token of ours: refused without asking the database."""


class TokenStore(Protocol):
    """What authentication needs of the database."""

    async def authenticate(self, secret: str) -> ApiToken | None: ...


def bearer_token(authorization: str | None) -> str:
    """The token of an ``Authorization: Bearer <token>`` header; 401 when there is none."""
    if not authorization:
        raise ApiError(
            401,
            "authentication required: send Authorization: Bearer <token> "
            "(`reconciler token create` makes one)",
            headers={"WWW-Authenticate": REALM},
        )
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise ApiError(
            401,
            "the Authorization header must be: Bearer <token>",
            headers={"WWW-Authenticate": f'{REALM}, error="invalid_request"'},
        )
    return token


def _invalid() -> ApiError:
    return ApiError(
        401,
        "the token is unknown or revoked",
        headers={"WWW-Authenticate": f'{REALM}, error="invalid_token"'},
    )


async def authenticate(request: web.Request, store: TokenStore) -> ApiToken:
    """The live token the request carries; 401 otherwise."""
    token = bearer_token(request.headers.get("Authorization"))
    if not token.startswith(TOKEN_PREFIX) or len(token) > MAX_TOKEN_CHARS:
        raise _invalid()
    found = await store.authenticate(token)
    if found is None:
        raise _invalid()
    return found


def require(token: ApiToken, scope: Scope, *, project: str | None) -> None:
    """403 unless ``token`` may act with ``scope`` on ``project`` (None: every project's)."""
    why = refusal(token, scope=scope, project=project)
    if why is not None:
        header = f'{REALM}, error="insufficient_scope", scope="{scope.value}"'
        raise ApiError(403, why, headers={"WWW-Authenticate": header})
