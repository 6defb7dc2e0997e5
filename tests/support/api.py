"""Calling the daemon's HTTP API (``/api/v1``) as a pipeline would, with tokens made as
`reconciler token create` makes them."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import aiohttp

from reconciler.db import Store


@dataclasses.dataclass(frozen=True)
class Answer:
    """One response: status, headers, and the body (parsed when it is JSON)."""

    status: int
    headers: dict[str, str]
    body: Any
    text: str

    @property
    def field(self) -> str | None:
        """The field an error names."""
        error: str | None = self.body["error"]["field"]
        return error

    @property
    def message(self) -> str:
        """The message an error says."""
        message: str = self.body["error"]["message"]
        return message


class ApiClient:
    """Requests against the API on a local port."""

    def __init__(self, port: int) -> None:
        self.base = f"http://127.0.0.1:{port}"

    async def call(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        body: Any = None,
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        """``method path`` with ``Authorization: Bearer token`` (when given) and a JSON
        ``body`` (or ``raw`` bytes)."""
        sent = dict(headers or {})
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        data = raw if raw is not None else None if body is None else json.dumps(body).encode()
        if data is not None:
            sent.setdefault("Content-Type", "application/json")
        timeout = aiohttp.ClientTimeout(total=20)
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.request(method, self.base + path, data=data, headers=sent) as response,
        ):
            text = await response.text()
            parsed = json.loads(text) if "json" in response.content_type and text else None
            return Answer(response.status, dict(response.headers), parsed, text)


async def make_token(store: Store, name: str, scope: str, project: str | None = None) -> str:
    """A new token's secret."""
    _row, secret = await store.create_token(name=name, scope=scope, project=project)
    return secret
