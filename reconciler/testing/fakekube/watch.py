"""Watch streams: initial events or a replay from a resourceVersion, then live events.

As kube-apiserver does: a watch from ``resourceVersion`` "" or "0" starts with every matching
object as ADDED (``sendInitialEvents`` defaults to true for them), ``sendInitialEvents=true``
(which needs ``resourceVersionMatch=NotOlderThan``) does so from any version and, with
bookmarks, closes the initial state with the ``initial-events-end`` bookmark; a watch from a
later version replays the history since, or gets an ERROR event with 410 Expired when that
history is gone.  With ``allowWatchBookmarks`` a BOOKMARK comes every ``bookmark_interval_s``
(and one 2 s before ``timeoutSeconds``).  Streams end at ``timeoutSeconds``, when the server
stops, when the API is down, or when ``Faults.drop_watches`` drops them.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from ... import jsoncodec
from .api_errors import ApiError, bad_request
from .http_io import JSON
from .registry import Registry
from .request_log import RequestRecorder, ServerSettings
from .resource_types import ResourceType
from .store import Watcher, WatchEvent
from .tables import table_for, wants_table
from .watch_drops import OpenWatch

_WATCH_POLL_S = 0.5
_DEFAULT_WATCH_TIMEOUT_S = 1800.0
#: kube-apiserver sends a last bookmark this long before a watch's timeoutSeconds.
_PRE_TIMEOUT_BOOKMARK_S = 2.0


@dataclass(frozen=True)
class _Stream:
    """One watch request: what it watches and how it wants events written."""

    resource: ResourceType
    query: Any
    table: bool
    bookmarks: bool
    present: Callable[[ResourceType, dict[str, Any]], dict[str, Any]]

    def line(self, kind: str, obj: dict[str, Any], event: WatchEvent | None = None) -> bytes:
        """One event, as the stored object shows in this watch's version."""
        return event_line(
            kind, self.resource, self.present(self.resource, obj), self.table, self.query, event
        )


def check_watch_options(query: Any) -> None:
    """422 for the option combinations kube-apiserver's ValidateListOptions forbids on watch."""
    match = query.get("resourceVersionMatch", "")
    initial = query.get("sendInitialEvents")
    problems: list[str] = []
    if initial is not None and match != "NotOlderThan":
        problems.append(
            "resourceVersionMatch: Forbidden: sendInitialEvents requires setting "
            "resourceVersionMatch to NotOlderThan"
        )
    if match:
        if initial is None:
            problems.append(
                "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden for watch "
                "unless sendInitialEvents is provided"
            )
        if match != "NotOlderThan":
            problems.append(
                f'resourceVersionMatch: Unsupported value: "{match}": supported values: '
                '"NotOlderThan"'
            )
    if problems:
        summary = problems[0] if len(problems) == 1 else "[" + ", ".join(problems) + "]"
        raise ApiError(
            422,
            "Invalid",
            f'ListOptions.meta.k8s.io "" is invalid: {summary}',
            details={"group": "meta.k8s.io", "kind": "ListOptions", "causes": []},
        )


def _next_bookmark(now: float, interval_s: float, deadline: float) -> float | None:
    """When the next periodic bookmark is due (kube-apiserver's nextBookmarkTime)."""
    due = min(now + interval_s, deadline - _PRE_TIMEOUT_BOOKMARK_S)
    return due if due >= now else None


class Watches:
    """Serves watch requests; ``tasks`` are the open streams, ``closing`` ends them."""

    def __init__(self, registry: Registry, *, settings: ServerSettings) -> None:
        self.registry = registry
        self.settings = settings
        self.tasks: set[asyncio.Task[Any]] = set()
        self.closing = False

    async def serve(
        self,
        request: web.Request,
        resource: ResourceType,
        namespace: str | None,
        recorder: RequestRecorder,
    ) -> web.StreamResponse:
        """A watch: the opening events, then live ones until the stream ends."""
        registry = self.registry
        query = request.query
        check_watch_options(query)
        labels, fields = registry.selectors(
            resource, query.get("labelSelector"), query.get("fieldSelector")
        )
        storage_key = registry.types.storage_key(resource)
        version_text = query.get("resourceVersion", "")
        timeout = float(query.get("timeoutSeconds") or _DEFAULT_WATCH_TIMEOUT_S)
        stream = _Stream(
            resource=resource,
            query=query,
            table=wants_table(request.headers.get("Accept", "")),
            bookmarks=query.get("allowWatchBookmarks", "").lower() == "true",
            present=registry.present,
        )
        watcher = Watcher(resource=storage_key, namespace=namespace, labels=labels, fields=fields)
        lines = self._opening(stream, watcher, version_text)
        if lines is not None:
            registry.store.add_watcher(watcher)
        response = web.StreamResponse(status=200, headers={"Content-Type": JSON})
        response.enable_chunked_encoding()
        await response.prepare(request)
        recorder.record(200)
        task = asyncio.current_task()
        if task is not None:
            self.tasks.add(task)
        drops = self.settings.faults.open_watches
        open_watch = OpenWatch(
            plural=resource.plural,
            group=resource.group,
            wake=lambda: watcher.queue.put_nowait(None),
        )
        drops.opened(open_watch)
        try:
            if lines is None:
                await response.write(self._expired(storage_key, version_text))
                return response
            if lines:
                await response.write(b"".join(lines))
            await self._stream_events(response, stream, watcher, open_watch, duration_s=timeout)
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            drops.closed(open_watch)
            registry.store.remove_watcher(watcher)
            if task is not None:
                self.tasks.discard(task)
        return response

    def _expired(self, storage_key: tuple[str, str], version_text: str) -> bytes:
        """The ERROR event kube-apiserver's watch cache sends for a compacted version."""
        oldest = self.registry.store.oldest_replayable(storage_key)
        status = ApiError(
            410, "Expired", f"too old resource version: {version_text} ({oldest})"
        ).status()
        return json.dumps({"type": "ERROR", "object": status}).encode() + b"\n"

    def _opening(self, stream: _Stream, watcher: Watcher, version_text: str) -> list[bytes] | None:
        """The events a watch starts with; None when its resourceVersion is too old (410)."""
        store = self.registry.store
        storage_key = watcher.resource
        sent = stream.query.get("sendInitialEvents")
        legacy = version_text in ("", "0")
        initial = legacy if sent is None else sent.lower() == "true"
        lines: list[bytes] = []
        if initial:
            for obj in store.objects(storage_key, watcher.namespace):
                if watcher.matches(obj):
                    lines.append(stream.line("ADDED", obj))
            if sent is not None and stream.bookmarks:
                lines.append(bookmark(stream.resource, store.resource_version, initial_end=True))
            return lines
        if legacy:
            return lines  # sendInitialEvents=false: only what changes from now on
        try:
            since = int(version_text)
        except ValueError as exc:
            raise bad_request(f"invalid resourceVersion {version_text!r}") from exc
        if since < store.oldest_replayable(storage_key):
            return None
        for event in store.events_since(storage_key, since):
            seen_as = watcher.translate(event)
            if seen_as is not None:
                lines.append(stream.line(seen_as, event.object))
        return lines

    def _ended(self, open_watch: OpenWatch, deadline: float) -> bool:
        """True when the stream must end now."""
        return (
            self.closing
            or self.settings.faults.down
            or open_watch.dropped
            or time.monotonic() >= deadline
        )

    async def _stream_events(
        self,
        response: web.StreamResponse,
        stream: _Stream,
        watcher: Watcher,
        open_watch: OpenWatch,
        *,
        duration_s: float,
    ) -> None:
        """Writes live events (and bookmarks) for ``duration_s`` or until the stream ends."""
        deadline = time.monotonic() + duration_s
        settings = self.settings
        due = _next_bookmark(time.monotonic(), settings.bookmark_interval_s, deadline)
        while not self._ended(open_watch, deadline):
            now = time.monotonic()
            if stream.bookmarks and due is not None and now >= due:
                resource_version = self.registry.store.resource_version
                await response.write(bookmark(stream.resource, resource_version))
                due = _next_bookmark(now, settings.bookmark_interval_s, deadline)
                continue
            wait = min(deadline - now, _WATCH_POLL_S)
            if stream.bookmarks and due is not None:
                wait = min(wait, due - now)
            try:
                item = await asyncio.wait_for(watcher.queue.get(), max(wait, 0.0))
            except TimeoutError:
                continue
            if item is None:
                continue  # closed or dropped: the loop's own checks end the stream
            items = [item]
            while not watcher.queue.empty():
                more = watcher.queue.get_nowait()
                if more is None:
                    break
                items.append(more)
            items = items[: open_watch.allowed(len(items))]
            if items:
                await response.write(
                    b"".join(stream.line(kind, event.object, event) for kind, event in items)
                )


def event_line(
    kind: str,
    resource: ResourceType,
    obj: dict[str, Any],
    table: bool,
    query: Any,
    event: WatchEvent | None = None,
) -> bytes:
    """One watch event line (the object as a Table row when the client asked for tables)."""
    if table:
        meta = {"resourceVersion": obj["metadata"].get("resourceVersion", "")}
        encoded = jsoncodec.dumps(table_for(resource, [obj], meta, query))
    elif event is not None and event.object is obj:
        encoded = event.encoded_object()
    else:
        encoded = jsoncodec.dumps_decoded(obj)
    return b'{"type":"' + kind.encode() + b'","object":' + encoded + b"}\n"


def bookmark(resource: ResourceType, version: int, *, initial_end: bool = False) -> bytes:
    """A BOOKMARK event line at ``version``."""
    meta: dict[str, Any] = {"resourceVersion": str(version)}
    if initial_end:
        meta["annotations"] = {"k8s.io/initial-events-end": "true"}
    obj = {"kind": resource.kind, "apiVersion": resource.api_version, "metadata": meta}
    return jsoncodec.dumps({"type": "BOOKMARK", "object": obj}) + b"\n"
