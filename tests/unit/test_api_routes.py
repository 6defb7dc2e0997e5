"""What every API operation shares (routes.guarded): authentication first, the scope before
the handler runs, and every failure answered as JSON."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, cast

from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from reconciler.access import ApiToken, Scope
from reconciler.db import Store
from reconciler.errors import DatabaseUnavailable, RefusedWrite
from reconciler.web.api.routes import Call, Operation, guarded

NOW = dt.datetime(2026, 12, 2, tzinfo=dt.UTC)


class _Tokens:
    """A store that knows one token."""

    def __init__(self, token: ApiToken) -> None:
        self.token = token

    async def authenticate(self, secret: str) -> ApiToken | None:
        return self.token if secret == "rcn_good" else None


def _operation(handler: Any, *, scope: Scope = Scope.DEPLOY_READ, per_project: bool = True) -> Any:
    ran: list[Call] = []

    async def wrapped(call: Call) -> web.Response:
        ran.append(call)
        return await handler(call)  # type: ignore[no-any-return]

    operation = Operation(
        operation_id="op",
        method="GET",
        path="/x",
        scope=scope,
        handler=wrapped,
        per_project=per_project,
    )
    return operation, ran


async def _ok(_call: Call) -> web.Response:
    return web.json_response({"ok": True})


async def _serve(
    operation: Operation, *, scope: str = "admin", project: str | None = None, auth: str = ""
) -> tuple[int, Any]:
    token = ApiToken(id=1, name="ci", scope=scope, project=project, created_at=NOW)
    store = cast(Store, _Tokens(token))
    headers = {"Authorization": auth or "Bearer rcn_good"}
    response = await guarded(operation, store)(make_mocked_request("GET", "/x", headers=headers))
    assert response.content_type == "application/json"
    assert isinstance(response, web.Response) and response.text is not None
    return response.status, json.loads(response.text)


async def test_an_unknown_token_never_reaches_the_handler() -> None:
    """A token the store does not know is a 401; the handler does not run."""
    operation, ran = _operation(_ok)
    status, body = await _serve(operation, auth="Bearer rcn_bad")
    assert (status, body["error"]["message"], ran) == (401, "the token is unknown or revoked", [])


async def test_a_low_scope_never_reaches_the_handler() -> None:
    """deploy:read on an admin operation is a 403 before the handler runs."""
    operation, ran = _operation(_ok, scope=Scope.ADMIN)
    status, _ = await _serve(operation, scope="deploy:read")
    assert (status, ran) == (403, [])


async def test_an_every_project_operation_refuses_a_project_token() -> None:
    """An admin token bound to a project may not use an operation about every project."""
    operation, ran = _operation(_ok, scope=Scope.ADMIN, per_project=False)
    status, body = await _serve(operation, project="web")
    assert (status, ran) == (403, [])
    assert "limited to project 'web'" in body["error"]["message"]
    per_project, ran = _operation(_ok, scope=Scope.ADMIN)
    assert (await _serve(per_project, project="web"))[0] == 200


async def test_failures_are_json_with_their_status() -> None:
    """A refused write is 400 naming its column (409 for a conflict), the database away 503,
    a bug of ours 500: each as a JSON error."""

    def raising(exc: Exception) -> Any:
        async def handler(_call: Call) -> web.Response:
            raise exc

        return _operation(handler)[0]

    refused = RefusedWrite("bad namespace", field="namespace")
    assert await _serve(raising(refused)) == (
        400,
        {"error": {"message": "bad namespace", "field": "namespace"}},
    )
    assert (await _serve(raising(RefusedWrite("taken", conflict=True))))[0] == 409
    assert (await _serve(raising(DatabaseUnavailable("down"))))[0] == 503
    status, body = await _serve(raising(RuntimeError("oops")))
    assert status == 500 and "oops" not in body["error"]["message"]
