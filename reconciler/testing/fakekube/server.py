"""The aiohttp application: routing, discovery, fault injection, the request log, watches."""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Callable
from typing import Any, Protocol
from urllib.parse import unquote

import yaml
from aiohttp import web

from . import openapi
from .api_errors import ApiError, bad_request
from .faults import Faults, RequestRecord
from .patch_types import APPLY_PATCH, PATCH_TYPES
from .registry import Registry
from .resource_types import ResourceType
from .schema import KUBERNETES_VERSION
from .store import Watcher
from .tables import table_for, wants_table

log = logging.getLogger(__name__)

_JSON = "application/json"
_YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml")
_PROTOBUF = "application/vnd.kubernetes.protobuf"
#: Subresources real clusters serve that fakekube does not emulate (answered 501, not 404).
_UNEMULATED_SUBRESOURCES = frozenset(
    {
        "log",
        "exec",
        "attach",
        "portforward",
        "proxy",
        "eviction",
        "binding",
        "ephemeralcontainers",
        "resize",
        "token",
        "approval",
        "finalize",
    }
)
_BOOKMARK_INTERVAL_S = 5.0
_WATCH_POLL_S = 0.5
_DEFAULT_WATCH_TIMEOUT_S = 1800.0

try:
    _YamlLoader: Any = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - pyyaml built without libyaml
    _YamlLoader = yaml.SafeLoader


class ServerSettings(Protocol):
    """What the server reads on every request (FakeKube provides it)."""

    faults: Faults
    request_log: list[RequestRecord]
    request_log_limit: int | None


def status_response(error: ApiError) -> web.Response:
    """A Status object as the response body."""
    return web.Response(
        status=error.code,
        body=json.dumps(error.status()).encode(),
        content_type=_JSON,
        headers=error.headers,
    )


def _json_response(body: Any, status: int = 200, warnings: list[str] | None = None) -> web.Response:
    response = web.Response(
        status=status, body=json.dumps(body, separators=(",", ":")).encode(), content_type=_JSON
    )
    for warning in warnings or ():
        response.headers.add("Warning", f'299 - "{warning.replace(chr(34), chr(92) + chr(34))}"')
    return response


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
        self._host_port = host_port
        self._openapi = openapi.OpenApiCache()
        self._random = random.Random()
        #: Unexpected exceptions (fakekube bugs), so tests can assert there were none.
        self.errors: list[str] = []
        self.watch_tasks: set[asyncio.Task[Any]] = set()
        self.closing = False

    def application(self) -> web.Application:
        """The aiohttp application (one catch-all route; routing is ours)."""
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app

    # ------------------------------------------------------------------ entry point

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Faults, dispatch, Status errors and the request log around every request."""
        started = time.time()
        record_state: dict[str, Any] = {"logged": False}
        status = 500
        try:
            response = await self._faulty(request)
            if response is None:
                response = await self._dispatch(request, started, record_state)
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
            if not record_state["logged"]:
                self._log(request, status, started)

    def _log(self, request: web.Request, status: int, started: float) -> None:
        query = dict(request.query)
        log = self.settings.request_log
        limit = self.settings.request_log_limit
        if limit is not None and len(log) >= 2 * limit:
            # Trimming in halves keeps appends cheap on average.
            del log[:-limit]
        log.append(
            RequestRecord(
                time=started,
                method=request.method,
                path=request.path,
                query=query,
                field_manager=query.get("fieldManager"),
                content_type=request.headers.get("Content-Type"),
                status=status,
                dry_run=query.get("dryRun") == "All",
                duration_s=time.time() - started,
            )
        )

    async def _faulty(self, request: web.Request) -> web.StreamResponse | None:
        faults = self.settings.faults
        if faults.down:
            return status_response(
                ApiError(503, "ServiceUnavailable", "the API server is down (fakekube faults.down)")
            )
        if faults.latency_s > 0:
            await asyncio.sleep(faults.latency_s)
        if (
            faults.error_rate > 0
            and self._random.random() < faults.error_rate
            and faults.error_kinds
        ):
            kind = self._random.choice(faults.error_kinds)
            if kind == "429":
                return status_response(
                    ApiError(
                        429,
                        "TooManyRequests",
                        "the server has received too many requests and has asked us to try again "
                        "later (fakekube faults.error_rate)",
                        details={"retryAfterSeconds": faults.retry_after_s},
                        headers={"Retry-After": str(faults.retry_after_s)},
                    )
                )
            if kind == "hang":
                await asyncio.sleep(faults.hang_s)
                return status_response(
                    ApiError(504, "Timeout", "the request hung (fakekube faults.error_rate)")
                )
            return status_response(
                ApiError(
                    500, "InternalError", "an error on the server (fakekube faults.error_rate)"
                )
            )
        return None

    # ------------------------------------------------------------------ routing

    async def _dispatch(
        self, request: web.Request, started: float, record_state: dict[str, Any]
    ) -> web.StreamResponse:
        raw = request.rel_url.raw_path.strip("/")
        parts = [unquote(p) for p in raw.split("/")] if raw else []
        method = request.method
        if not parts:
            return _json_response({"paths": sorted(self._root_paths())})
        head = parts[0]
        if head in ("healthz", "livez", "readyz") and method == "GET":
            return web.Response(text="ok")
        if head == "version" and len(parts) == 1:
            return _json_response(self._version())
        if head == "openapi":
            return self._openapi_response(parts[1:])
        if head == "api":
            if len(parts) == 1:
                return _json_response(
                    {
                        "kind": "APIVersions",
                        "versions": ["v1"],
                        "serverAddressByClientCIDRs": [
                            {"clientCIDR": "0.0.0.0/0", "serverAddress": self._host_port()}
                        ],
                    }
                )
            if parts[1] != "v1":
                raise self._no_route(request)
            if len(parts) == 2:
                return _json_response(self._resource_list("", "v1"))
            return await self._resource_request(request, "", "v1", parts[2:], started, record_state)
        if head == "apis":
            if len(parts) == 1:
                return _json_response(self._group_list())
            group = parts[1]
            versions = [v for g, v in self.registry.types.group_versions() if g == group]
            if not versions:
                raise self._no_route(request)
            if len(parts) == 2:
                return _json_response(self._group(group, versions))
            version = parts[2]
            if version not in versions:
                raise self._no_route(request)
            if len(parts) == 3:
                return _json_response(self._resource_list(group, version))
            return await self._resource_request(
                request, group, version, parts[3:], started, record_state
            )
        raise self._no_route(request)

    def _no_route(self, request: web.Request) -> ApiError:
        return ApiError(404, "NotFound", "the server could not find the requested resource")

    def _root_paths(self) -> list[str]:
        paths = [
            "/api",
            "/api/v1",
            "/apis",
            "/healthz",
            "/livez",
            "/readyz",
            "/version",
            "/openapi/v3",
        ]
        for group, version in self.registry.types.group_versions():
            if group:
                paths += [f"/apis/{group}", f"/apis/{group}/{version}"]
        return sorted(set(paths))

    # ------------------------------------------------------------------ discovery

    def _version(self) -> dict[str, Any]:
        major, minor, _ = KUBERNETES_VERSION.split(".")
        return {
            "major": major,
            "minor": minor,
            "gitVersion": f"v{KUBERNETES_VERSION}",
            "gitCommit": "fakekube",
            "gitTreeState": "clean",
            "buildDate": "2024-12-11T00:00:00Z",
            "goVersion": "go1.23.4",
            "compiler": "gc",
            "platform": "linux/amd64",
        }

    def _group(self, group: str, versions: list[str]) -> dict[str, Any]:
        listed = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
        return {
            "kind": "APIGroup",
            "apiVersion": "v1",
            "name": group,
            "versions": listed,
            "preferredVersion": listed[0],
        }

    def _group_list(self) -> dict[str, Any]:
        groups: dict[str, list[str]] = {}
        for group, version in self.registry.types.group_versions():
            if group:
                groups.setdefault(group, []).append(version)
        result = []
        for group, versions in groups.items():
            entry = self._group(group, self._ordered_versions(group, versions))
            del entry["kind"], entry["apiVersion"]
            result.append(entry)
        return {"kind": "APIGroupList", "apiVersion": "v1", "groups": result}

    def _ordered_versions(self, group: str, versions: list[str]) -> list[str]:
        custom = next((r for r in self.registry.types.all() if r.custom and r.group == group), None)
        if custom is None:
            return versions
        order = list(custom.served_versions)
        return sorted(versions, key=lambda v: order.index(v) if v in order else len(order))

    def _resource_list(self, group: str, version: str) -> dict[str, Any]:
        resources: list[dict[str, Any]] = []
        for resource in self.registry.types.in_group_version(group, version):
            entry: dict[str, Any] = {
                "name": resource.plural,
                "singularName": resource.singular,
                "namespaced": resource.namespaced,
                "kind": resource.kind,
                "verbs": list(resource.verbs),
            }
            if resource.short_names:
                entry["shortNames"] = list(resource.short_names)
            if resource.categories:
                entry["categories"] = list(resource.categories)
            entry["storageVersionHash"] = resource.storage_version_hash()
            resources.append(entry)
            if resource.has_status:
                resources.append(
                    {
                        "name": f"{resource.plural}/status",
                        "singularName": "",
                        "namespaced": resource.namespaced,
                        "kind": resource.kind,
                        "verbs": ["get", "patch", "update"],
                    }
                )
            if resource.scale is not None:
                resources.append(
                    {
                        "name": f"{resource.plural}/scale",
                        "singularName": "",
                        "namespaced": resource.namespaced,
                        "group": "autoscaling",
                        "version": "v1",
                        "kind": "Scale",
                        "verbs": ["get", "patch", "update"],
                    }
                )
        return {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": f"{group}/{version}" if group else version,
            "resources": resources,
        }

    # ------------------------------------------------------------------ openapi

    def _crds(self) -> dict[str, dict[str, Any]]:
        return {
            obj["metadata"]["name"]: obj
            for obj in self.registry.store.objects(
                ("apiextensions.k8s.io", "customresourcedefinitions")
            )
        }

    def _openapi_response(self, parts: list[str]) -> web.Response:
        if not parts or parts[0] != "v3":
            raise ApiError(
                404,
                "NotFound",
                "fakekube serves OpenAPI v3 only (/openapi/v3); /openapi/v2 would be protobuf",
            )
        types = self.registry.types
        if len(parts) == 1:
            index: dict[str, Any] = {}
            for group, version in types.group_versions():
                _, digest = self._openapi.get(
                    group,
                    version,
                    generation=types.generation,
                    resources=types.in_group_version(group, version),
                    crds=self._crds(),
                )
                path = openapi.group_version_path(group, version)
                index[path] = {"serverRelativeURL": f"/openapi/v3/{path}?hash={digest}"}
            return _json_response({"paths": index})
        wanted = "/".join(parts[1:])
        for group, version in types.group_versions():
            if openapi.group_version_path(group, version) == wanted:
                body, _ = self._openapi.get(
                    group,
                    version,
                    generation=types.generation,
                    resources=types.in_group_version(group, version),
                    crds=self._crds(),
                )
                return web.Response(body=body, content_type=_JSON)
        raise ApiError(404, "NotFound", f"no OpenAPI v3 document for {wanted}")

    # ------------------------------------------------------------------ resources

    async def _resource_request(
        self,
        request: web.Request,
        group: str,
        version: str,
        rest: list[str],
        started: float,
        record_state: dict[str, Any],
    ) -> web.StreamResponse:
        types = self.registry.types
        namespace: str | None = None
        if (
            len(rest) >= 3
            and rest[0] == "namespaces"
            and (found := types.by_path(group, version, rest[2])) is not None
            and found.namespaced
        ):
            namespace = rest[1]
            rest = rest[2:]
        resource = types.by_path(group, version, rest[0])
        if resource is None or len(rest) > 3:
            raise self._no_route(request)
        name = rest[1] if len(rest) >= 2 else None
        subresource = rest[2] if len(rest) == 3 else ""
        if resource.namespaced and name is not None and namespace is None:
            raise self._no_route(request)
        if not resource.namespaced and namespace is not None:
            raise self._no_route(request)
        if subresource and subresource not in ("status", "scale"):
            if subresource in _UNEMULATED_SUBRESOURCES:
                raise ApiError(
                    501,
                    "NotImplemented",
                    f"fakekube does not emulate the {resource.plural}/{subresource} subresource",
                )
            raise self._no_route(request)
        if (subresource == "status" and not resource.has_status) or (
            subresource == "scale" and resource.scale is None
        ):
            raise self._no_route(request)
        query = request.query
        method = request.method
        verb = self._verb(method, name, query)
        if verb is None or (subresource == "" and verb not in resource.verbs):
            raise ApiError(
                405,
                "MethodNotAllowed",
                "the server does not allow this method on the requested resource",
            )
        if subresource and verb not in ("get", "update", "patch"):
            raise ApiError(
                405,
                "MethodNotAllowed",
                "the server does not allow this method on the requested resource",
            )
        ns = namespace or ""
        dry_run = self._dry_run(query)
        registry = self.registry
        if verb == "watch":
            return await self._watch(request, resource, namespace, started, record_state)
        if verb == "list":
            listed = registry.list_objects(
                resource,
                namespace,
                label_selector=query.get("labelSelector"),
                field_selector=query.get("fieldSelector"),
                limit=_int_param(query, "limit"),
                continue_token=query.get("continue"),
            )
            if wants_table(request.headers.get("Accept", "")):
                return _json_response(
                    table_for(resource, listed["items"], listed["metadata"], request.query)
                )
            return _json_response(listed)
        if verb == "get":
            assert name is not None
            obj = registry.get(resource, ns, name)
            if subresource == "scale":
                return _json_response(registry.scale_of(resource, obj))
            if wants_table(request.headers.get("Accept", "")):
                return _json_response(
                    table_for(
                        resource,
                        [obj],
                        {"resourceVersion": obj["metadata"]["resourceVersion"]},
                        request.query,
                    )
                )
            return _json_response(obj)
        manager = query.get("fieldManager") or self._default_manager(request)
        field_validation = query.get("fieldValidation", "Warn")
        if field_validation not in ("Strict", "Warn", "Ignore"):
            raise bad_request(
                'fieldValidation must be one of "Ignore", "Warn", or "Strict", '
                f'not "{field_validation}"'
            )
        if verb == "create":
            body = await self._body(request)
            obj, warnings = registry.create(
                resource,
                ns,
                body,
                manager=manager,
                dry_run=dry_run,
                field_validation=field_validation,
            )
            return _json_response(obj, 201, warnings)
        if verb == "update":
            assert name is not None
            body = await self._body(request)
            obj, warnings = registry.update(
                resource,
                ns,
                name,
                body,
                manager=manager,
                subresource=subresource,
                dry_run=dry_run,
                field_validation=field_validation,
            )
            return _json_response(obj, 200, warnings)
        if verb == "patch":
            assert name is not None
            patch_type = (request.headers.get("Content-Type") or "").split(";")[0].strip()
            if patch_type not in PATCH_TYPES:
                raise ApiError(
                    415,
                    "UnsupportedMediaType",
                    f"the body of the request was in an unknown format - accepted media types "
                    f"include: {', '.join(PATCH_TYPES)}",
                )
            force = query.get("force", "false").lower() == "true"
            if force and patch_type != APPLY_PATCH:
                raise bad_request(
                    "force is only valid for apply patches (application/apply-patch+yaml)"
                )
            body = await self._patch_body(request, patch_type)
            existed = registry.find(resource, ns, name) is not None
            obj, warnings = registry.patch(
                resource,
                ns,
                name,
                patch_type,
                body,
                manager=query.get("fieldManager") or ("" if patch_type == APPLY_PATCH else manager),
                subresource=subresource,
                force=force,
                dry_run=dry_run,
                field_validation=field_validation,
            )
            return _json_response(obj, 201 if not existed else 200, warnings)
        if verb == "delete":
            assert name is not None
            options = await self._delete_options(request)
            obj, gone = registry.delete(
                resource,
                ns,
                name,
                propagation=options.get("propagationPolicy"),
                preconditions=options.get("preconditions"),
                dry_run=dry_run or options.get("dryRun") == ["All"],
            )
            return _json_response(obj, 200 if gone or dry_run else 202)
        if verb == "deletecollection":
            options = await self._delete_options(request)
            listed = registry.delete_collection(
                resource,
                namespace,
                label_selector=query.get("labelSelector"),
                field_selector=query.get("fieldSelector"),
                propagation=options.get("propagationPolicy"),
                dry_run=dry_run,
            )
            return _json_response(listed)
        raise ApiError(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        )

    @staticmethod
    def _verb(method: str, name: str | None, query: Any) -> str | None:
        watching = query.get("watch", "").lower() in ("true", "1")
        if name is None:
            return {
                "GET": "watch" if watching else "list",
                "POST": "create",
                "DELETE": "deletecollection",
            }.get(method)
        return {"GET": "get", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}.get(method)

    @staticmethod
    def _dry_run(query: Any) -> bool:
        values = query.getall("dryRun", [])
        for value in values:
            if value != "All":
                raise bad_request(f'dryRun must be "All", not "{value}"')
        return bool(values)

    @staticmethod
    def _default_manager(request: web.Request) -> str:
        agent = request.headers.get("User-Agent", "")
        return agent.split("/", 1)[0] or "unknown"

    async def _raw_body(self, request: web.Request) -> tuple[str, bytes]:
        content_type = (request.headers.get("Content-Type") or _JSON).split(";")[0].strip()
        if content_type.startswith(_PROTOBUF):
            raise ApiError(
                415,
                "UnsupportedMediaType",
                "fakekube does not decode protobuf request bodies (kubectl's imperative "
                "'create <kind>' commands send them); use kubectl apply or create -f instead",
            )
        return content_type, await request.read()

    async def _body(self, request: web.Request) -> Any:
        content_type, raw = await self._raw_body(request)
        if content_type in _YAML_TYPES:
            return _load_yaml(raw)
        if content_type not in (_JSON, "*/*", ""):
            raise ApiError(
                415,
                "UnsupportedMediaType",
                f"the body of the request was in an unknown format - accepted media types include: "
                f'{_JSON}, application/yaml ("{content_type}" was sent)',
            )
        return _load_json(raw)

    async def _patch_body(self, request: web.Request, patch_type: str) -> Any:
        _, raw = await self._raw_body(request)
        if patch_type == APPLY_PATCH:
            try:
                return json.loads(raw)
            except ValueError:
                return _load_yaml(raw)
        return _load_json(raw)

    async def _delete_options(self, request: web.Request) -> dict[str, Any]:
        options: dict[str, Any] = {}
        if request.can_read_body:
            raw = await request.read()
            if raw.strip():
                parsed = _load_json(raw)
                if isinstance(parsed, dict):
                    options = parsed
        query = request.query
        if "propagationPolicy" in query:
            options["propagationPolicy"] = query["propagationPolicy"]
        if query.get("orphanDependents") == "true" or options.get("orphanDependents") is True:
            options.setdefault("propagationPolicy", "Orphan")
        return options

    # ------------------------------------------------------------------ watch

    async def _watch(
        self,
        request: web.Request,
        resource: ResourceType,
        namespace: str | None,
        started: float,
        record_state: dict[str, Any],
    ) -> web.StreamResponse:
        registry = self.registry
        store = registry.store
        query = request.query
        labels, fields = registry.selectors(
            resource, query.get("labelSelector"), query.get("fieldSelector")
        )
        storage_key = registry.types.storage_key(resource)
        version_text = query.get("resourceVersion", "")
        initial = query.get("sendInitialEvents", "").lower() == "true"
        bookmarks = query.get("allowWatchBookmarks", "").lower() == "true"
        timeout = float(query.get("timeoutSeconds") or _DEFAULT_WATCH_TIMEOUT_S)
        table = wants_table(request.headers.get("Accept", ""))
        watcher = Watcher(resource=storage_key, namespace=namespace, labels=labels, fields=fields)
        lines: list[bytes] = []
        expired = False
        if version_text in ("", "0") or initial:
            for obj in store.objects(storage_key, namespace):
                if watcher.matches(obj):
                    lines.append(
                        self._event_line(
                            "ADDED", resource, registry.present(resource, obj), table, query
                        )
                    )
            if initial and bookmarks:
                lines.append(self._bookmark(resource, store.resource_version, initial_end=True))
        else:
            try:
                since = int(version_text)
            except ValueError as exc:
                raise bad_request(f"invalid resourceVersion {version_text!r}") from exc
            if since < store.oldest_replayable(storage_key):
                expired = True
            else:
                for event in store.events_since(storage_key, since):
                    seen_as = watcher.translate(event)
                    if seen_as is not None:
                        lines.append(
                            self._event_line(
                                seen_as,
                                resource,
                                registry.present(resource, event.object),
                                table,
                                query,
                            )
                        )
        if not expired:
            store.add_watcher(watcher)
        response = web.StreamResponse(status=200, headers={"Content-Type": _JSON})
        response.enable_chunked_encoding()
        await response.prepare(request)
        self._log(request, 200, started)
        record_state["logged"] = True
        task = asyncio.current_task()
        if task is not None:
            self.watch_tasks.add(task)
        try:
            if expired:
                status = ApiError(
                    410,
                    "Expired",
                    f"too old resource version: {version_text} "
                    f"({store.oldest_replayable(storage_key) + 1})",
                ).status()
                await response.write(
                    json.dumps({"type": "ERROR", "object": status}).encode() + b"\n"
                )
                return response
            if lines:
                await response.write(b"".join(lines))
            deadline = time.monotonic() + timeout
            last_sent = time.monotonic()
            while not self.closing:
                if self.settings.faults.down:
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    item = await asyncio.wait_for(
                        watcher.queue.get(), min(remaining, _WATCH_POLL_S)
                    )
                except TimeoutError:
                    if bookmarks and time.monotonic() - last_sent >= _BOOKMARK_INTERVAL_S:
                        await response.write(self._bookmark(resource, store.resource_version))
                        last_sent = time.monotonic()
                    continue
                if item is None:
                    break
                seen_as, event = item
                chunk = [
                    self._event_line(
                        seen_as,
                        resource,
                        registry.present(resource, event.object),
                        table,
                        query,
                        event,
                    )
                ]
                while not watcher.queue.empty():
                    more = watcher.queue.get_nowait()
                    if more is None:
                        break
                    chunk.append(
                        self._event_line(
                            more[0],
                            resource,
                            registry.present(resource, more[1].object),
                            table,
                            query,
                            more[1],
                        )
                    )
                await response.write(b"".join(chunk))
                last_sent = time.monotonic()
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            store.remove_watcher(watcher)
            if task is not None:
                self.watch_tasks.discard(task)
        return response

    def _event_line(
        self,
        kind: str,
        resource: ResourceType,
        obj: dict[str, Any],
        table: bool,
        query: Any,
        event: Any = None,
    ) -> bytes:
        if table:
            meta = {"resourceVersion": obj["metadata"].get("resourceVersion", "")}
            encoded = json.dumps(
                table_for(resource, [obj], meta, query), separators=(",", ":")
            ).encode()
        elif event is not None and event.object is obj:
            encoded = event.encoded_object()
        else:
            encoded = json.dumps(obj, separators=(",", ":")).encode()
        return b'{"type":"' + kind.encode() + b'","object":' + encoded + b"}\n"

    def _bookmark(
        self, resource: ResourceType, version: int, *, initial_end: bool = False
    ) -> bytes:
        meta: dict[str, Any] = {"resourceVersion": str(version)}
        if initial_end:
            meta["annotations"] = {"k8s.io/initial-events-end": "true"}
        obj = {"kind": resource.kind, "apiVersion": resource.api_version, "metadata": meta}
        return (
            json.dumps({"type": "BOOKMARK", "object": obj}, separators=(",", ":")).encode() + b"\n"
        )


def _int_param(query: Any, name: str) -> int | None:
    value = query.get(name)
    if value in (None, ""):
        return None
    try:
        return int(value)
    except ValueError as exc:
        raise bad_request(f"{name} must be an integer, not {value!r}") from exc


def _load_json(raw: bytes) -> Any:
    if not raw.strip():
        raise bad_request("the request body is empty")
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise bad_request(f"couldn't get version/kind; json parse error: {exc}") from exc


def _load_yaml(raw: bytes) -> Any:
    try:
        return yaml.load(raw, Loader=_YamlLoader)
    except yaml.YAMLError as exc:
        raise bad_request(f"error converting YAML to JSON: {exc}") from exc
