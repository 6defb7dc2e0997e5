"""Raw HTTP against fakekube, for the semantics clients hide."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import aiohttp


@dataclass
class Answer:
    """One HTTP answer from fakekube."""

    status: int
    body: Any
    headers: dict[str, str]


class Api:
    """Raw HTTP against fakekube, for the semantics clients hide."""

    def __init__(self, session: aiohttp.ClientSession, base: str) -> None:
        self.session = session
        self.base = base

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        content_type: str = "application/json",
        params: dict[str, str] | None = None,
        raw: bytes | None = None,
    ) -> Answer:
        """Sends one request; the body is JSON-encoded unless ``raw`` is given."""
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        headers = {"Content-Type": content_type} if data is not None else {}
        async with self.session.request(
            method, self.base + path, data=data, headers=headers, params=params
        ) as response:
            text = await response.text()
            try:
                parsed: Any = json.loads(text) if text else None
            except ValueError:
                parsed = text
            return Answer(response.status, parsed, dict(response.headers))

    async def get(self, path: str, **params: str) -> Answer:
        """GET."""
        return await self.request("GET", path, params=params or None)

    async def post(self, path: str, body: Any, **params: str) -> Answer:
        """POST (create)."""
        return await self.request("POST", path, body=body, params=params or None)

    async def put(self, path: str, body: Any, **params: str) -> Answer:
        """PUT (update)."""
        return await self.request("PUT", path, body=body, params=params or None)

    async def patch(self, path: str, body: Any, content_type: str, **params: str) -> Answer:
        """PATCH with the given patch content type."""
        return await self.request(
            "PATCH", path, body=body, content_type=content_type, params=params or None
        )

    async def apply(self, path: str, body: Any, manager: str = "test", **params: str) -> Answer:
        """Server-side apply as ``manager``."""
        return await self.patch(
            path, body, "application/apply-patch+yaml", fieldManager=manager, **params
        )

    async def delete(self, path: str, **params: str) -> Answer:
        """DELETE."""
        return await self.request("DELETE", path, params=params or None)
