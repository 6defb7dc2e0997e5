"""The aiohttp application: routing, fault injection, Status errors and the request log.

Routing is ours (one catch-all aiohttp route): discovery and OpenAPI paths go to ``discovery``,
resource paths are parsed by ``resource_routes`` and served by ``resource_handlers`` (watches by
``watch``).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from urllib.parse import unquote

from aiohttp import web

from .api_errors import ApiError, no_route
from .discovery import Discovery, version
from .fault_injection import injected_fault
from .http_io import json_response, status_response
from .registry import Registry
from .request_log import RequestRecorder, ServerSettings
from .resource_handlers import ResourceHandlers
from .resource_routes import resource_route
from .watch import Watches

log = logging.getLogger(__name__)


class ApiServer:
    """Serves a Registry over HTTP as kube-apiserver would."""

    def __init__(
        self,
        registry: Registry,
        *,
        settings: ServerSettings,
        host_port: Callable[[], str],
    ) -> None:
        self.registry = registry
        self.settings = settings
        self.discovery = Discovery(registry.types, registry.store, host_port=host_port)
        #: Open watch streams; FakeKube ends them when it stops.
        self.watches = Watches(registry, settings=settings)
        self.resources = ResourceHandlers(registry, self.watches)
        self._random = random.Random()
        #: Unexpected exceptions (fakekube bugs), so tests can assert there were none.
        self.errors: list[str] = []

    def application(self) -> web.Application:
        """The aiohttp application (one catch-all route; routing is ours)."""
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Faults, dispatch, Status errors and the request log around every request."""
        recorder = RequestRecorder(self.settings, request, time.time())
        status = 500
        try:
            response = await injected_fault(self.settings.faults, self._random)
            if response is None:
                response = await self._dispatch(request, recorder)
            status = response.status
            return response
        except ApiError as error:
            status = error.code
            return status_response(error)
        except asyncio.CancelledError:
            status = 499
            raise
        except Exception as exc:
            # A fakekube bug: answer a Status like the apiserver's panic handler, and keep it.
            log.exception("fakekube failed on %s %s", request.method, request.path)
            self.errors.append(f"{request.method} {request.path}: {exc!r}")
            status = 500
            return status_response(
                ApiError(500, "InternalError", f"fakekube internal error: {exc!r}")
            )
        finally:
            recorder.record(status)

    async def _dispatch(
        self, request: web.Request, recorder: RequestRecorder
    ) -> web.StreamResponse:
        raw = request.rel_url.raw_path.strip("/")
        parts = [unquote(p) for p in raw.split("/")] if raw else []
        if not parts:
            return json_response({"paths": sorted(self.discovery.root_paths())})
        head = parts[0]
        if head in ("healthz", "livez", "readyz") and request.method == "GET":
            return web.Response(text="ok")
        if head == "version" and len(parts) == 1:
            return json_response(version())
        if head == "openapi":
            return self.discovery.openapi_response(parts[1:])
        if head == "api":
            return await self._core(request, parts, recorder)
        if head == "apis":
            return await self._groups(request, parts, recorder)
        raise no_route()

    async def _core(
        self, request: web.Request, parts: list[str], recorder: RequestRecorder
    ) -> web.StreamResponse:
        """``/api`` and below: the core group."""
        if len(parts) == 1:
            return json_response(self.discovery.core_versions())
        if parts[1] != "v1":
            raise no_route()
        if len(parts) == 2:
            return json_response(self.discovery.resource_list("", "v1"))
        return await self._resource_request(request, "", "v1", parts[2:], recorder)

    async def _groups(
        self, request: web.Request, parts: list[str], recorder: RequestRecorder
    ) -> web.StreamResponse:
        """``/apis`` and below: the named groups."""
        if len(parts) == 1:
            return json_response(self.discovery.group_list())
        group = parts[1]
        versions = self.discovery.group_versions_of(group)
        if not versions:
            raise no_route()
        if len(parts) == 2:
            return json_response(self.discovery.group(group, versions))
        group_version = parts[2]
        if group_version not in versions:
            raise no_route()
        if len(parts) == 3:
            return json_response(self.discovery.resource_list(group, group_version))
        return await self._resource_request(request, group, group_version, parts[3:], recorder)

    async def _resource_request(
        self,
        request: web.Request,
        group: str,
        group_version: str,
        rest: list[str],
        recorder: RequestRecorder,
    ) -> web.StreamResponse:
        route = resource_route(
            self.registry.types,
            group,
            group_version,
            rest,
            method=request.method,
            query=request.query,
        )
        return await self.resources.serve(request, route, recorder)
