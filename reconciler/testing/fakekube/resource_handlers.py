"""The verbs on resources, over HTTP: query parameters and bodies in, Registry calls, answers out.

Lists and gets answer Tables when kubectl asks for them; writes take ``fieldManager`` (by
default the client's User-Agent name), ``fieldValidation`` and ``dryRun``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiohttp import web

from .api_errors import bad_request, method_not_allowed
from .http_io import (
    int_param,
    json_response,
    read_body,
    read_delete_options,
    read_patch_body,
)
from .patch_types import APPLY_PATCH, PATCH_TYPES, unsupported_patch_type
from .registry import Registry
from .request_log import RequestRecorder
from .resource_routes import ResourceRoute
from .tables import table_for, wants_table
from .watch import Watches


@dataclass(frozen=True)
class _WriteOptions:
    """The query parameters every write takes."""

    manager: str
    field_validation: str
    dry_run: bool


class ResourceHandlers:
    """Serves one routed resource request."""

    def __init__(self, registry: Registry, watches: Watches) -> None:
        self.registry = registry
        self.watches = watches

    async def serve(
        self, request: web.Request, route: ResourceRoute, recorder: RequestRecorder
    ) -> web.StreamResponse:
        """The answer to ``request``, by its verb."""
        query = request.query
        dry_run = _dry_run(query)
        verb = route.verb
        if verb == "watch":
            return await self.watches.serve(request, route.resource, route.namespace, recorder)
        if verb == "list":
            return self._list(request, route)
        if verb == "get":
            return self._get(request, route)
        field_validation = query.get("fieldValidation", "Warn")
        options = _WriteOptions(
            manager=query.get("fieldManager") or _default_manager(request),
            field_validation=field_validation,
            dry_run=dry_run,
        )
        if field_validation not in ("Strict", "Warn", "Ignore"):
            raise bad_request(
                'fieldValidation must be one of "Ignore", "Warn", or "Strict", '
                f'not "{field_validation}"'
            )
        if verb == "create":
            return await self._create(request, route, options)
        if verb == "update":
            return await self._update(request, route, options)
        if verb == "patch":
            return await self._patch(request, route, options)
        if verb == "delete":
            return await self._delete(request, route, dry_run=dry_run)
        if verb == "deletecollection":
            return await self._delete_collection(request, route, dry_run=dry_run)
        raise method_not_allowed()

    def _list(self, request: web.Request, route: ResourceRoute) -> web.Response:
        query = request.query
        listed = self.registry.list_objects(
            route.resource,
            route.namespace,
            label_selector=query.get("labelSelector"),
            field_selector=query.get("fieldSelector"),
            limit=int_param(query, "limit"),
            continue_token=query.get("continue"),
        )
        if wants_table(request.headers.get("Accept", "")):
            return json_response(
                table_for(route.resource, listed["items"], listed["metadata"], request.query)
            )
        return json_response(listed)

    def _get(self, request: web.Request, route: ResourceRoute) -> web.Response:
        assert route.name is not None
        resource = route.resource
        obj = self.registry.get(resource, route.ns, route.name)
        if route.subresource == "scale":
            return json_response(self.registry.scale_of(resource, obj))
        if wants_table(request.headers.get("Accept", "")):
            return json_response(
                table_for(
                    resource,
                    [obj],
                    {"resourceVersion": obj["metadata"]["resourceVersion"]},
                    request.query,
                )
            )
        return json_response(obj)

    async def _create(
        self, request: web.Request, route: ResourceRoute, options: _WriteOptions
    ) -> web.Response:
        body = await read_body(request)
        obj, warnings = self.registry.create(
            route.resource,
            route.ns,
            body,
            manager=options.manager,
            dry_run=options.dry_run,
            field_validation=options.field_validation,
        )
        return json_response(obj, 201, warnings)

    async def _update(
        self, request: web.Request, route: ResourceRoute, options: _WriteOptions
    ) -> web.Response:
        assert route.name is not None
        body = await read_body(request)
        obj, warnings = self.registry.update(
            route.resource,
            route.ns,
            route.name,
            body,
            manager=options.manager,
            subresource=route.subresource,
            dry_run=options.dry_run,
            field_validation=options.field_validation,
        )
        return json_response(obj, 200, warnings)

    async def _patch(
        self, request: web.Request, route: ResourceRoute, options: _WriteOptions
    ) -> web.Response:
        assert route.name is not None
        query = request.query
        patch_type = (request.headers.get("Content-Type") or "").split(";")[0].strip()
        if patch_type not in PATCH_TYPES:
            raise unsupported_patch_type()
        force = query.get("force", "false").lower() == "true"
        if force and patch_type != APPLY_PATCH:
            raise bad_request(
                "force is only valid for apply patches (application/apply-patch+yaml)"
            )
        body = await read_patch_body(request, patch_type)
        registry = self.registry
        existed = registry.find(route.resource, route.ns, route.name) is not None
        # Apply needs an explicit fieldManager; the other patches default to the User-Agent.
        manager = query.get("fieldManager") or (
            "" if patch_type == APPLY_PATCH else options.manager
        )
        obj, warnings = registry.patch(
            route.resource,
            route.ns,
            route.name,
            patch_type,
            body,
            manager=manager,
            subresource=route.subresource,
            force=force,
            dry_run=options.dry_run,
            field_validation=options.field_validation,
        )
        return json_response(obj, 201 if not existed else 200, warnings)

    async def _delete(
        self, request: web.Request, route: ResourceRoute, *, dry_run: bool
    ) -> web.Response:
        assert route.name is not None
        options = await read_delete_options(request)
        obj, gone = self.registry.delete(
            route.resource,
            route.ns,
            route.name,
            propagation=options.get("propagationPolicy"),
            preconditions=options.get("preconditions"),
            dry_run=dry_run or options.get("dryRun") == ["All"],
        )
        return json_response(obj, 200 if gone or dry_run else 202)

    async def _delete_collection(
        self, request: web.Request, route: ResourceRoute, *, dry_run: bool
    ) -> web.Response:
        query = request.query
        options = await read_delete_options(request)
        listed = self.registry.delete_collection(
            route.resource,
            route.namespace,
            label_selector=query.get("labelSelector"),
            field_selector=query.get("fieldSelector"),
            propagation=options.get("propagationPolicy"),
            dry_run=dry_run,
        )
        return json_response(listed)


def _dry_run(query: Any) -> bool:
    values = query.getall("dryRun", [])
    for value in values:
        if value != "All":
            raise bad_request(f'dryRun must be "All", not "{value}"')
    return bool(values)


def _default_manager(request: web.Request) -> str:
    agent = request.headers.get("User-Agent", "")
    return agent.split("/", 1)[0] or "unknown"
