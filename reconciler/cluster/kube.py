"""The Kubernetes API: the only module that imports ``kubernetes`` (its asyncio API).

Every call goes through :meth:`Kube._call`, which retries what a retry can fix (connection errors,
timeouts, 429 with Retry-After, 5xx) through :func:`reconciler.retry.retry` with exponential
backoff and jitter, and turns every failure into :class:`reconciler.errors.KubernetesError` with
the server's message and the client's exception chained as the cause.
"""

from __future__ import annotations

import asyncio
import copy
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
from kubernetes.aio.client import ApiClient, VersionApi
from kubernetes.aio.client.exceptions import ApiException
from kubernetes.aio.dynamic import DynamicClient
from kubernetes.aio.dynamic.exceptions import ResourceNotFoundError

from reconciler.cluster.api_status import status_message
from reconciler.cluster.kube_config import load_configuration
from reconciler.cluster.kube_http import (
    APPLY_PATCH,
    MERGE_PATCH,
    KubeHttp,
    apply_query,
    object_path,
    settle_environment,
)
from reconciler.cluster.kube_requests import RequestCounter, retry_after_s
from reconciler.cluster.server_fields import RESTARTED_AT, strip_server_fields
from reconciler.cluster.watch_events import read_watch_events
from reconciler.cluster.write_reports import WriteReports
from reconciler.errors import KubernetesError, kubernetes_error
from reconciler.model import ObjectRef
from reconciler.ports import WriteObserver
from reconciler.retry import Backoff, retry

_T = TypeVar("_T")

__all__ = ["RESTARTED_AT", "Kube", "strip_server_fields"]

_TRANSIENT_STATUSES = frozenset({0, 408, 429, 500, 502, 503, 504})
# What the client raises when a request fails; _call turns each into a KubernetesError.
_CLIENT_FAILURES = (ApiException, aiohttp.ClientError, OSError, TimeoutError)
# The longest Retry-After honoured as asked; a server asking for more gets this much.
_RETRY_AFTER_MAX_S = 60.0
# Items per page of a list: a page is one request, and so one timeout and one retry.
_LIST_PAGE = 500


class Kube:
    """A connection to one cluster.  Create with :meth:`connect`; close with :meth:`close`."""

    def __init__(
        self,
        *,
        api: ApiClient,
        dynamic: DynamicClient,
        cache_dir: Path,
        request_timeout_s: float,
        max_retries: int,
        backoff: Backoff,
    ) -> None:
        self._api = api
        self._dynamic = dynamic
        self._http = KubeHttp(api)
        self._cache_dir = cache_dir
        self._request_timeout_s = request_timeout_s
        self._max_retries = max_retries
        self._backoff = backoff
        self._discovery_lock = asyncio.Lock()
        self._resources: dict[tuple[str, str], Any] = {}
        self._headers: dict[str, str] = {}
        self._impersonating: dict[str, Kube] = {}
        self._reports = WriteReports()  # shared with the impersonating views
        self.requests = RequestCounter.tracing(api.configuration)  # for the metrics

    @classmethod
    async def connect(
        cls,
        *,
        kubeconfig: str | None,
        request_timeout_s: float = 30.0,
        max_retries: int = 6,
        retry_base_s: float = 0.2,
        retry_max_s: float = 10.0,
        pool_size: int = 64,
    ) -> Kube:
        """Connect with ``kubeconfig``, else in-cluster config, else ``~/.kube/config``."""
        configuration = await load_configuration(kubeconfig)
        configuration.connection_pool_maxsize = pool_size
        settle_environment(configuration)  # before the client's rest client reads the proxy
        api = ApiClient(configuration=configuration)
        # A discovery cache per connection: the client's default file is shared by every
        # process that talks to the same host, and would go stale across test servers.
        cache_dir = Path(tempfile.mkdtemp(prefix="reconciler-discovery-"))
        kube = cls(
            api=api,
            dynamic=DynamicClient(api, cache_file=str(cache_dir / "cache.json")),
            cache_dir=cache_dir,
            request_timeout_s=request_timeout_s,
            max_retries=max_retries,
            backoff=Backoff(base_s=retry_base_s, max_s=retry_max_s),
        )
        try:
            await kube._call("discover the API", kube._discover)
        except BaseException:
            await kube.close()
            raise
        return kube

    async def _discover(self) -> None:
        self._dynamic = await self._dynamic

    def impersonating(self, user: str) -> Kube:
        """This connection, every request made as ``user`` (``Impersonate-User``): the
        cluster's RBAC for that user then bounds what the request may do."""
        view = self._impersonating.get(user)
        if view is None:
            view = copy.copy(self)
            view._headers = {"Impersonate-User": user}
            view._impersonating = {}
            self._impersonating[user] = view
        return view

    def report_writes(self, observer: WriteObserver) -> None:
        """Tell ``observer`` of every write from now on, impersonated ones included."""
        self._reports.add(observer)

    async def close(self) -> None:
        await self._api.close()
        shutil.rmtree(self._cache_dir, ignore_errors=True)

    # ------------------------------------------------------------ calls

    async def apply(
        self, obj: Mapping[str, Any], *, field_manager: str, dry_run: bool = False
    ) -> dict[str, Any]:
        """Server-side apply ``obj``, taking over conflicting fields; returns the object as the
        server stored it.  With ``dry_run`` (``dryRun=All``) nothing is stored: the answer is
        the object as the apply would leave it."""
        body = strip_server_fields(obj)
        ref = ObjectRef.from_object(body)

        async def call() -> dict[str, Any]:
            resource = await self._resource(ref.api_version, ref.kind)
            path = object_path(resource, name=ref.name, namespace=ref.namespace, writing=True)
            result: dict[str, Any] = await self._send(
                "PATCH",
                path,
                query=apply_query(field_manager=field_manager, dry_run=dry_run),
                body=body,
                content_type=APPLY_PATCH,
            )
            return result

        if dry_run:
            return await self._call(f"dry-run apply {ref}", call)
        return await self._write(ref, f"apply {ref}", call)

    async def get(self, ref: ObjectRef) -> dict[str, Any] | None:
        """The object, or None when it does not exist."""

        async def call() -> dict[str, Any] | None:
            resource = await self._resource(ref.api_version, ref.kind)
            path = object_path(resource, name=ref.name, namespace=ref.namespace)
            try:
                result: dict[str, Any] = await self._send("GET", path)
            except ApiException as exc:
                if exc.status == 404:
                    return None
                raise
            return result

        return await self._call(f"read {ref}", call)

    async def list_pods(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        """Pods in ``namespace`` matching the label ``selector``."""

        async def call() -> list[dict[str, Any]]:
            resource = await self._resource("v1", "Pod")
            path = object_path(resource, name=None, namespace=namespace)
            result: dict[str, Any] = await self._send(
                "GET", path, query=[("labelSelector", selector)]
            )
            return list(result.get("items") or [])

        return await self._call(f"list pods in {namespace} ({selector})", call)

    async def scale(
        self, ref: ObjectRef, *, replicas: int, field_manager: str | None = None
    ) -> None:
        """Set the replicas of a Deployment/StatefulSet through its scale subresource."""

        async def call() -> Any:
            resource = await self._resource(ref.api_version, ref.kind)
            scale = resource.subresources.get("scale")
            if scale is None:
                raise kubernetes_error(f"{ref} has no scale subresource", status=405)
            return await self._merge_patch(
                scale, ref, {"spec": {"replicas": replicas}}, field_manager
            )

        await self._write(ref, f"scale {ref} to {replicas}", call)

    async def restart(self, ref: ObjectRef, *, at: str, field_manager: str | None = None) -> None:
        """Restart a workload's pods as ``kubectl rollout restart`` does: a patch (not an apply:
        the next apply, without it, leaves it and the pods alone) of restartedAt."""
        body = {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: at}}}}}

        async def call() -> Any:
            resource = await self._resource(ref.api_version, ref.kind)
            return await self._merge_patch(resource, ref, body, field_manager)

        await self._write(ref, f"restart {ref}", call)

    async def _merge_patch(
        self, resource: Any, ref: ObjectRef, body: dict[str, Any], field_manager: str | None
    ) -> Any:
        """A merge patch, written as ``field_manager`` (so the watch knows it for ours)."""
        path = object_path(resource, name=ref.name, namespace=ref.namespace, writing=True)
        query = [("fieldManager", field_manager)] if field_manager is not None else []
        return await self._send("PATCH", path, query=query, body=body, content_type=MERGE_PATCH)

    async def _write(
        self, ref: ObjectRef, what: str, call: Callable[[], Awaitable[_T]], *, gone: bool = False
    ) -> _T:
        """:meth:`_call` for a write, reported before it is sent and when it answers (a
        failed write is not: its outcome is unknown)."""
        self._reports.writing(ref)
        answer = await self._call(what, call)
        self._reports.written(ref, None if gone else answer)
        return answer

    async def _send(
        self,
        method: str,
        path: str,
        *,
        query: list[tuple[str, str]] | None = None,
        body: Any = None,
        content_type: str = "application/json",
    ) -> Any:
        """One request through the lean path, as this connection (impersonation included)."""
        return await self._http.request(
            method,
            path,
            query=query or (),
            body=body,
            content_type=content_type,
            headers=self._headers,
            timeout_s=self._request_timeout_s,
        )

    async def list_objects(
        self, *, api_version: str, kind: str, label_selector: str
    ) -> tuple[list[dict[str, Any]], str]:
        """Every ``kind`` matching ``label_selector`` in all namespaces (items with apiVersion
        and kind filled in, which list items lack) and the list's resourceVersion."""
        items: list[dict[str, Any]] = []
        version = ""
        pages = self.list_pages(api_version=api_version, kind=kind, label_selector=label_selector)
        async for page, version in pages:  # noqa: B007 - the version is the list's
            items.extend(page)
        return items, version

    async def list_pages(
        self, *, api_version: str, kind: str, label_selector: str
    ) -> AsyncIterator[tuple[list[dict[str, Any]], str]]:
        """:meth:`list_objects` a page at a time (each page one request, one timeout, one
        retry), so a big list need not be held decoded all at once: (items, resourceVersion)."""
        token: str | None = None
        while True:
            identity, page = await self._list_page(api_version, kind, label_selector, token)
            metadata = page.get("metadata") or {}
            token = metadata.get("continue") or None
            items = [{**identity, **item} for item in page.get("items") or []]
            yield items, str(metadata.get("resourceVersion") or "")
            if token is None:
                return

    async def _list_page(
        self, api_version: str, kind: str, label_selector: str, token: str | None
    ) -> tuple[dict[str, str], dict[str, Any]]:
        async def call() -> tuple[dict[str, str], dict[str, Any]]:
            resource = await self._resource(api_version, kind)
            query = [("labelSelector", label_selector)] if label_selector else []
            query.append(("limit", str(_LIST_PAGE)))
            if token is not None:
                query.append(("continue", token))
            page: dict[str, Any] = await self._send("GET", resource.path(), query=query)
            return {"apiVersion": resource.group_version, "kind": resource.kind}, page

        return await self._call(f"list {kind} ({api_version}) ({label_selector})", call)

    async def watch_objects(
        self,
        *,
        api_version: str,
        kind: str,
        label_selector: str,
        resource_version: str,
        timeout_s: float,
    ) -> AsyncIterator[dict[str, Any]]:
        """Watch ``kind`` in all namespaces from ``resource_version`` (with bookmarks) for at
        most ``timeout_s``: raw events ``{"type", "object"}``.  410 (as an ERROR event or an
        answer) raises reason Expired: list again.  Only opening the stream is retried."""
        what = f"watch {kind} ({api_version}) ({label_selector}) from {resource_version}"

        async def call() -> Any:
            resource = await self._resource(api_version, kind)
            return await self._dynamic.request(
                "get",
                resource.path(),
                query_params=[("allowWatchBookmarks", "true")],
                watch="true",
                label_selector=label_selector or None,
                resource_version=resource_version or None,
                timeout_seconds=max(1, int(timeout_s)),
                serialize=False,
                _request_timeout=aiohttp.ClientTimeout(
                    total=None,
                    sock_connect=self._request_timeout_s,
                    sock_read=timeout_s + self._request_timeout_s,
                ),
                header_params=dict(self._headers),
            )

        try:
            response = await self._call(what, call)
        except KubernetesError as exc:
            if exc.status == 410:  # some servers answer 410 Gone instead of an ERROR event
                raise kubernetes_error(str(exc), status=410, reason="Expired") from exc
            raise
        try:
            async for event in read_watch_events(response.content, what=what):
                yield event
        finally:
            response.close()

    async def delete(self, ref: ObjectRef, *, propagation: str = "Background") -> bool:
        """Delete the object (``propagationPolicy``); False when it was already gone."""

        async def call() -> bool:
            resource = await self._resource(ref.api_version, ref.kind)
            path = object_path(resource, name=ref.name, namespace=ref.namespace)
            try:
                await self._send("DELETE", path, query=[("propagationPolicy", propagation)])
            except ApiException as exc:
                if exc.status == 404:
                    return False
                raise
            return True

        return await self._write(ref, f"delete {ref}", call, gone=True)

    async def is_namespaced(self, api_version: str, kind: str) -> bool | None:
        """Whether the server serves ``kind`` in namespaces; None when it does not serve it
        (yet: a CRD in the same render)."""

        async def call() -> bool | None:
            try:
                resource = await self._resource(api_version, kind)
            except KubernetesError as exc:
                if exc.reason == "NotServed":
                    return None
                raise
            return bool(resource.namespaced)

        return await self._call(f"look up {kind} ({api_version})", call)

    async def version(self) -> str:
        """The server's version (``GET /version``): the cheapest call that says it answers."""
        info = await self._call("read the server version", VersionApi(self._api).get_code)
        return str(info.git_version)

    async def refresh_discovery(self) -> None:
        """Forget cached discovery (after a CRD is Established)."""
        async with self._discovery_lock:
            self._resources.clear()
            await self._call("refresh discovery", self._dynamic.resources.invalidate_cache)

    async def _resource(self, api_version: str, kind: str) -> Any:
        """The API resource serving ``kind``, looked up once.  The client's discovery cache is
        only touched behind one lock: read while another task invalidates it, it fails."""
        found = self._resources.get((api_version, kind))
        if found is not None:
            return found
        async with self._discovery_lock:
            try:
                found = await self._dynamic.resources.get(api_version=api_version, kind=kind)
            except ResourceNotFoundError:
                # A kind whose CRD was created a moment ago: look again once before giving up.
                self._resources.clear()
                await self._dynamic.resources.invalidate_cache()
                try:
                    found = await self._dynamic.resources.get(api_version=api_version, kind=kind)
                except ResourceNotFoundError:
                    raise kubernetes_error(
                        f"the cluster does not serve {kind} in {api_version} "
                        "(a missing CRD, or a wrong apiVersion?)",
                        status=404,
                        reason="NotServed",
                    ) from None
            self._resources[(api_version, kind)] = found
            return found

    async def _call(self, what: str, call: Callable[[], Awaitable[_T]]) -> _T:
        """Run ``call`` with a timeout, retrying transient failures with backoff and jitter."""
        deadline = time.monotonic() + self._request_timeout_s * (self._max_retries + 1)

        async def attempt() -> _T:
            try:
                async with asyncio.timeout(self._request_timeout_s):
                    return await call()
            except KubernetesError as exc:
                # Raised by our own code inside the call (an unserved kind): name the object.
                raise kubernetes_error(
                    f"{what}: {exc}", status=exc.status, reason=exc.reason
                ) from exc
            except _CLIENT_FAILURES as exc:
                raise _as_error(exc, what=what, timeout_s=self._request_timeout_s) from exc

        try:
            return await retry(
                attempt,
                decide=lambda error, tries: self._retry_delay(error, tries, deadline=deadline),
                catch=(KubernetesError,),
            )
        except KubernetesError as error:
            retry_after = _retry_after_s(_retryable_cause(error))
            if retry_after is not None:
                # Given up on a throttled request: its Retry-After is still waited out, since
                # whoever asks next (the next health poll, the next attempt) must not come back
                # sooner either.
                await asyncio.sleep(min(retry_after, _RETRY_AFTER_MAX_S))
            raise

    def _retry_delay(self, error: BaseException, attempt: int, *, deadline: float) -> float | None:
        """How long to wait before trying again after the ``attempt``-th failure; None: give up."""
        cause = _retryable_cause(error)
        if cause is None:
            return None
        retry_after = _retry_after_s(cause)
        if retry_after is not None:
            # The server said when to come back; it knows its load better than we do, and
            # coming back sooner only earns another refusal.  Waited out even past the deadline.
            if attempt > self._max_retries:
                return None
            return min(retry_after, _RETRY_AFTER_MAX_S)
        # Exponential backoff with jitter keeps many reconciles from retrying in step.
        delay = self._backoff.delay(attempt)
        if attempt > self._max_retries or time.monotonic() + delay >= deadline:
            return None
        return delay


def _retryable_cause(error: BaseException) -> BaseException | None:
    """The client's failure behind ``error`` when a retry may fix it; None otherwise (our own
    errors, and answers that will not change)."""
    cause = error.__cause__
    if (
        isinstance(error, KubernetesError)
        and isinstance(cause, _CLIENT_FAILURES)
        and error.status in _TRANSIENT_STATUSES
    ):
        return cause
    return None


def _as_error(exc: BaseException, *, what: str, timeout_s: float) -> KubernetesError:
    if isinstance(exc, ApiException):
        status = int(exc.status or 0)
        message, reason = status_message(exc.body, reason=str(exc.reason or ""))
        return kubernetes_error(
            f"{what}: {status} {reason}: {message}".rstrip(": "), status=status, reason=reason
        )
    if isinstance(exc, TimeoutError):
        return kubernetes_error(
            f"{what}: the API server did not answer within {timeout_s:g}s",
            status=0,
            reason="Timeout",
        )
    return kubernetes_error(
        f"{what}: cannot reach the API server: {exc or type(exc).__name__}",
        status=0,
        reason="Unreachable",
    )


def _retry_after_s(exc: BaseException | None) -> float | None:
    """The seconds the server's Retry-After header asks for, when it sent one."""
    return retry_after_s(exc.headers) if isinstance(exc, ApiException) else None
