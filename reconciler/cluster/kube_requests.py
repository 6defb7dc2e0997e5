"""Counting the HTTP requests :class:`reconciler.cluster.kube.Kube` sends, for the metrics.

An aiohttp trace on the client's session sees every request the client sends, retries
included, with the status the server answered (0: no answer), whichever call made it.  Kept
apart from ``kube.py`` so that it stays free of the ``kubernetes`` client.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import SimpleNamespace
from typing import Any

import aiohttp
from multidict import MultiMapping
from yarl import URL

RequestHook = Callable[[str, int], None]
"""Called with the verb (``get``, ``watch``, ``patch``, ...) and the status of one request."""


def request_verb(method: str, url: URL) -> str:
    """The verb of a request: its HTTP method in lower case, ``watch`` for a watch."""
    query: MultiMapping[str] = url.query
    if method.upper() == "GET" and query.get("watch") in ("true", "1"):
        return "watch"
    return method.lower()


class RequestCounter:
    """Hands each request the client sends to :attr:`hook` (none: nothing is counted)."""

    def __init__(self) -> None:
        self.hook: RequestHook | None = None

    @classmethod
    def tracing(cls, configuration: Any) -> RequestCounter:
        """A counter traced on the session the client builds from ``configuration`` (its
        ``trace_configs``, read when the client opens its session on the first request)."""
        counter = cls()
        trace = aiohttp.TraceConfig()
        trace.on_request_end.append(counter._answered)
        trace.on_request_exception.append(counter._unanswered)
        configuration.trace_configs = [trace]
        return counter

    async def _answered(
        self, _session: object, _context: SimpleNamespace, params: aiohttp.TraceRequestEndParams
    ) -> None:
        self._count(params.method, params.url, params.response.status)

    async def _unanswered(
        self,
        _session: object,
        _context: SimpleNamespace,
        params: aiohttp.TraceRequestExceptionParams,
    ) -> None:
        self._count(params.method, params.url, 0)

    def _count(self, method: str, url: URL, status: int) -> None:
        if self.hook is not None:
            self.hook(request_verb(method, url), status)


def retry_after_s(headers: Mapping[str, str] | None) -> float | None:
    """The seconds a ``Retry-After`` header among ``headers`` asks for, when there is one."""
    value = (headers or {}).get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
