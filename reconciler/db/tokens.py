"""The ``api_tokens`` table: creating, listing, revoking and checking the API's tokens."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from reconciler.access import ApiToken, new_token, token_hash
from reconciler.db.connection import Transactional
from reconciler.db.errors import refused_write, shown
from reconciler.db.queries import query
from reconciler.errors import DatabaseError, InputError


def _token(row: sa.Row[Any]) -> ApiToken:
    return ApiToken(**row._mapping)


class ApiTokens(Transactional):
    """Tokens of the HTTP API, by hash."""

    async def create_token(
        self, *, name: str, scope: str, project: str | None
    ) -> tuple[ApiToken, str]:
        """Record a new token; returns its row and the token itself, which is stored nowhere
        (only its hash is)."""
        secret = new_token()
        params = {
            "name": name,
            "token_hash": token_hash(secret),
            "scope": scope,
            "project": project,
        }
        try:
            async with self._tx() as conn:
                row = (await conn.execute(query("create_api_token"), params)).one()
        except DatabaseError as exc:
            raise refused_write(exc, f"token {shown(name)!r}") from exc
        return _token(row), secret

    async def list_tokens(self) -> list[ApiToken]:
        """Every token, revoked ones too, by name (never a hash)."""
        async with self._tx() as conn:
            return [_token(r) for r in await conn.execute(query("list_api_tokens"))]

    async def revoke_token(self, name: str) -> ApiToken:
        """Revoke the token ``name``; InputError when there is none or it is revoked already."""
        async with self._tx() as conn:
            row = (await conn.execute(query("revoke_api_token"), {"name": name})).one_or_none()
        if row is None:
            known = {t.name: t for t in await self.list_tokens()}
            if name in known:
                raise InputError(f"token {shown(name)!r} is revoked already")
            raise InputError(f"no token named {shown(name)!r}")
        return _token(row)

    async def authenticate(self, secret: str) -> ApiToken | None:
        """The live token ``secret`` is, or None (unknown or revoked)."""
        params = {"token_hash": token_hash(secret)}
        async with self._tx() as conn:
            row = (await conn.execute(query("authenticate_api_token"), params)).one_or_none()
        return _token(row) if row else None
