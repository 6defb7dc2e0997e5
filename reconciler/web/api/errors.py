"""The API's answers: JSON bodies, and errors as ``{"error": {"message", "field"}}``.

Every refusal is an :class:`ApiError`; reconciler's own errors map onto HTTP statuses here
(a refused write: 400 naming the column, or 409 for a conflict with the state; the database
away: 503), so that no input gets a 500.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from reconciler.errors import DatabaseUnavailable, InputError, ReconcilerError, RefusedWrite

JSON_TYPE = "application/json"


class ApiError(Exception):
    """A refusal: the HTTP status, a message a human can act on, and the field it is about."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        field: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field
        self.headers = dict(headers or {})


def not_found(message: str) -> ApiError:
    """A 404."""
    return ApiError(404, message)


def bad_request(message: str, *, field: str | None = None) -> ApiError:
    """A 400 about ``field`` (None: the request as a whole)."""
    return ApiError(400, message, field=field)


def from_reconciler_error(exc: ReconcilerError) -> ApiError:
    """The answer for one of reconciler's errors raised while serving a request."""
    if isinstance(exc, RefusedWrite):
        return ApiError(409 if exc.conflict else 400, str(exc), field=exc.field)
    if isinstance(exc, DatabaseUnavailable):
        return ApiError(503, f"the database is unavailable: {exc}")
    if isinstance(exc, InputError):
        return ApiError(400, str(exc))
    # A statement the database refused (a value out of a type's range, say): the input's.
    return ApiError(400, str(exc))


def _default(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON")


def to_json(data: Any) -> str:
    """``data`` as JSON text (datetimes as RFC 3339).  ASCII: a client's lone surrogate echoed
    in a message or field name is escaped, not an encoding error."""
    return json.dumps(data, default=_default)


def json_response(data: Any, *, status: int = 200) -> web.Response:
    """``data`` as a JSON answer."""
    return web.Response(status=status, text=to_json(data), content_type=JSON_TYPE)


def error_response(error: ApiError) -> web.Response:
    """The JSON answer of a refusal, with its headers (``WWW-Authenticate``)."""
    body = {"error": {"message": error.message, "field": error.field}}
    return web.Response(
        status=error.status, text=to_json(body), content_type=JSON_TYPE, headers=error.headers
    )
