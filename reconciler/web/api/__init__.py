"""The daemon's HTTP API under ``/api/v1``: deployments, ops repos, the audit, and its
OpenAPI document.  :func:`add_api_routes` is the one call ``reconciler.web.server`` makes.

Modules by concept: ``auth`` (bearer tokens, scopes), ``errors`` and ``validation`` (JSON in
and out, 400 naming the field), ``routes`` (what every operation shares), ``deployments``,
``ops_repos``, ``audit``, ``schemas`` and ``openapi`` (the document).
"""

from __future__ import annotations

from aiohttp import web

from reconciler.db import Store
from reconciler.web.api.errors import json_response
from reconciler.web.api.openapi import OPENAPI_PATH, document, operations
from reconciler.web.api.routes import register

__all__ = ["OPENAPI_PATH", "add_api_routes", "document"]


def add_api_routes(app: web.Application, *, store: Store) -> None:
    """Serve ``/api/v1`` on ``app`` over ``store``."""
    register(app, operations(), store=store)

    async def openapi(_request: web.Request) -> web.Response:
        """The document, to anyone: it holds no secret."""
        return json_response(document())

    app.router.add_get(OPENAPI_PATH, openapi)
