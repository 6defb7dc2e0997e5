"""Watch streams: initial events or a replay from a resourceVersion, then live events.

A watch from ``resourceVersion`` "" or "0", or with ``sendInitialEvents``, starts with every
matching object as ADDED (and, with bookmarks, the closing ``initial-events-end`` bookmark); a
watch from a later version replays the history since, or gets 410 Expired when that history is
gone.  Streams end at ``timeoutSeconds``, when the server stops, or when the API is down.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from .api_errors import ApiError, bad_request
from .http_io import JSON
from .registry import Registry
from .request_log import RequestRecorder
from .resource_types import ResourceType
from .store import Watcher, WatchEvent
from .tables import table_for, wants_table

_BOOKMARK_INTERVAL_S = 5.0
_WATCH_POLL_S = 0.5
_DEFAULT_WATCH_TIMEOUT_S = 1800.0


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


class Watches:
    """Serves watch requests; ``tasks`` are the open streams, ``closing`` ends them."""

    def __init__(self, registry: Registry, *, api_down: Callable[[], bool]) -> None:
        self.registry = registry
        self._api_down = api_down
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
        store = registry.store
        query = request.query
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
            store.add_watcher(watcher)
        response = web.StreamResponse(status=200, headers={"Content-Type": JSON})
        response.enable_chunked_encoding()
        await response.prepare(request)
        recorder.record(200)
        task = asyncio.current_task()
        if task is not None:
            self.tasks.add(task)
        try:
            if lines is None:
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
            await self._stream_events(response, stream, watcher, duration_s=timeout)
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            store.remove_watcher(watcher)
            if task is not None:
                self.tasks.discard(task)
        return response

    def _opening(self, stream: _Stream, watcher: Watcher, version_text: str) -> list[bytes] | None:
        """The events a watch starts with; None when its resourceVersion is too old (410)."""
        store = self.registry.store
        storage_key = watcher.resource
        initial = stream.query.get("sendInitialEvents", "").lower() == "true"
        lines: list[bytes] = []
        if version_text in ("", "0") or initial:
            for obj in store.objects(storage_key, watcher.namespace):
                if watcher.matches(obj):
                    lines.append(stream.line("ADDED", obj))
            if initial and stream.bookmarks:
                lines.append(bookmark(stream.resource, store.resource_version, initial_end=True))
            return lines
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

    async def _stream_events(
        self, response: web.StreamResponse, stream: _Stream, watcher: Watcher, *, duration_s: float
    ) -> None:
        """Writes live events (and idle bookmarks) for ``duration_s`` or until the stream ends."""
        deadline = time.monotonic() + duration_s
        last_sent = time.monotonic()
        while not self.closing:
            if self._api_down():
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                item = await asyncio.wait_for(watcher.queue.get(), min(remaining, _WATCH_POLL_S))
            except TimeoutError:
                if stream.bookmarks and time.monotonic() - last_sent >= _BOOKMARK_INTERVAL_S:
                    resource_version = self.registry.store.resource_version
                    await response.write(bookmark(stream.resource, resource_version))
                    last_sent = time.monotonic()
                continue
            if item is None:
                break
            seen_as, event = item
            chunk = [stream.line(seen_as, event.object, event)]
            while not watcher.queue.empty():
                more = watcher.queue.get_nowait()
                if more is None:
                    # The watcher was closed; the loop's own checks end the stream.
                    break
                chunk.append(stream.line(more[0], more[1].object, more[1]))
            await response.write(b"".join(chunk))
            last_sent = time.monotonic()


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
        encoded = json.dumps(
            table_for(resource, [obj], meta, query), separators=(",", ":")
        ).encode()
    elif event is not None and event.object is obj:
        encoded = event.encoded_object()
    else:
        encoded = json.dumps(obj, separators=(",", ":")).encode()
    return b'{"type":"' + kind.encode() + b'","object":' + encoded + b"}\n"


def bookmark(resource: ResourceType, version: int, *, initial_end: bool = False) -> bytes:
    """A BOOKMARK event line at ``version``."""
    meta: dict[str, Any] = {"resourceVersion": str(version)}
    if initial_end:
        meta["annotations"] = {"k8s.io/initial-events-end": "true"}
    obj = {"kind": resource.kind, "apiVersion": resource.api_version, "metadata": meta}
    return json.dumps({"type": "BOOKMARK", "object": obj}, separators=(",", ":")).encode() + b"\n"
