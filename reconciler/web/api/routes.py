"""The API's operations and what every one of them shares: authentication before anything
else, the scope check, the capped body, and errors as JSON (never a traceback, never a 500 for
a client's input)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from reconciler.access import ApiToken, Scope
from reconciler.db import Store
from reconciler.errors import ReconcilerError
from reconciler.logs import get_logger
from reconciler.web.api.auth import authenticate, require
from reconciler.web.api.errors import ApiError, error_response, from_reconciler_error
from reconciler.web.api.validation import (
    MAX_BODY_BYTES,
    Body,
    Field,
    parse_json,
    query_value,
    unknown_query,
    validate_body,
)

log = get_logger("http")

_READ_CHUNK = 64 * 1024


@dataclass(frozen=True)
class Call:
    """One request being served: the request, the database, and the caller's token."""

    request: web.Request
    store: Store
    token: ApiToken

    def path(self, name: str) -> str:
        """A path parameter."""
        return self.request.match_info[name]

    def allow(self, scope: Scope, project: str | None) -> None:
        """403 unless the token may act with ``scope`` on ``project``."""
        require(self.token, scope, project=project)

    def query(self, params: Mapping[str, Field]) -> dict[str, Any]:
        """The query parameters, checked (unknown ones refused); absent ones are None."""
        unknown_query(self.request.query, tuple(params))
        return {name: query_value(self.request.query, name, spec) for name, spec in params.items()}

    async def body(self, spec: Body) -> dict[str, Any]:
        """The JSON body, checked against ``spec``; 413 over :data:`MAX_BODY_BYTES`."""
        return validate_body(spec, parse_json(await read_capped(self.request)))


Handler = Callable[[Call], Awaitable[web.Response]]


@dataclass(frozen=True, kw_only=True)
class Operation:
    """One endpoint: method, path, the scope it needs, and whether it is about a project (a
    project-bound token may use it) or about every project (it may not)."""

    operation_id: str
    method: str
    path: str
    scope: Scope
    handler: Handler
    per_project: bool


async def read_capped(request: web.Request) -> bytes:
    """The request body, at most :data:`MAX_BODY_BYTES`; 413 beyond."""
    too_large = ApiError(413, f"the body is larger than {MAX_BODY_BYTES} bytes")
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    while chunk := await request.content.read(_READ_CHUNK):
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def guarded(operation: Operation, store: Store) -> Callable[[web.Request], Awaitable[web.Response]]:
    """The aiohttp handler of ``operation``: authenticate, check the scope, serve, and answer
    every failure as JSON."""

    async def handle(request: web.Request) -> web.Response:
        """The operation, behind authentication and the scope check."""
        try:
            token = await authenticate(request, store)
            # The scope first, before the project's: a low token learns nothing more.  An
            # operation about every project (None) refuses project-bound tokens here; the
            # handler of a per-project one checks the project it names.
            target = token.project if operation.per_project else None
            require(token, operation.scope, project=target)
            return await operation.handler(Call(request=request, store=store, token=token))
        except ApiError as exc:
            return error_response(exc)
        except ReconcilerError as exc:
            return error_response(from_reconciler_error(exc))
        except Exception:  # a bug of ours: logged, answered as JSON
            log.exception("api_error", operation=operation.operation_id)
            return error_response(ApiError(500, "internal error (the daemon's log has details)"))

    return handle


def register(app: web.Application, operations: list[Operation], *, store: Store) -> None:
    """Add every operation's route to ``app``."""
    for operation in operations:
        app.router.add_route(operation.method, operation.path, guarded(operation, store))
