"""A scripted :class:`reconciler.cluster.live.LiveSource`: a tiny API server in memory.

Writes (:meth:`ScriptedSource.put`, :meth:`ScriptedSource.remove`) get the next
resourceVersion, go to a bounded history and to every open watch; a watch from an older version
than the history holds raises 410 Expired, as kube-apiserver answers.  Lists come in pages of
``page_size``.  Faults are scripted: ``drop()`` ends the open watches, ``bookmark()`` sends one,
``list_failures`` and ``watch_failures`` raise in turn, and ``unserved`` kinds are refused as a
missing CRD is.
"""

from __future__ import annotations

import asyncio
import copy
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from reconciler.cluster.label_selector import Selector
from reconciler.cluster.live_store import group_of
from reconciler.errors import KubernetesError, kubernetes_error


@dataclass(frozen=True)
class _Event:
    version: int
    type: str
    object: dict[str, Any]


_DROP = _Event(0, "DROP", {})


class ScriptedSource:
    """Objects by (group, kind, namespace, name), a history of ``history`` events per source."""

    def __init__(self, *, history: int = 100, page_size: int = 2) -> None:
        self.page_size = page_size
        self.version = 1
        self.objects: dict[tuple[str, str, str, str], dict[str, Any]] = {}
        self.history: deque[_Event] = deque(maxlen=history)
        self.list_failures: list[KubernetesError] = []
        self.watch_failures: list[KubernetesError] = []
        self.unserved: set[str] = set()
        self.lists: list[str] = []
        """The kinds listed, one entry per list."""
        self.watches_from: list[str] = []
        """The resourceVersion each watch started from."""
        self._open: list[asyncio.Queue[_Event]] = []

    @property
    def open_watches(self) -> int:
        """How many watches are open now."""
        return len(self._open)

    # ------------------------------------------------------------ writes

    def put(self, obj: dict[str, Any], *, unseen: bool = False) -> dict[str, Any]:
        """Create or replace ``obj`` (ADDED or MODIFIED); returns it as stored.  ``unseen``:
        no watch sees it and the history skips it (as if compacted already)."""
        stored = copy.deepcopy(obj)
        key = _key(stored)
        self.version += 1
        stored.setdefault("metadata", {})["resourceVersion"] = str(self.version)
        event_type = "MODIFIED" if key in self.objects else "ADDED"
        self.objects[key] = stored
        if not unseen:
            self._emit(_Event(self.version, event_type, stored))
        return stored

    def remove(self, obj: dict[str, Any], *, unseen: bool = False) -> None:
        """Delete the object ``obj`` names (DELETED); ``unseen`` as for :meth:`put`."""
        stored = self.objects.pop(_key(obj))
        self.version += 1
        gone = copy.deepcopy(stored)
        gone["metadata"]["resourceVersion"] = str(self.version)
        if not unseen:
            self._emit(_Event(self.version, "DELETED", gone))

    def forget_history(self) -> None:
        """Compact the history: every watch from an earlier version now gets 410."""
        self.history.clear()
        self.version += 1

    def drop(self) -> None:
        """End every open watch, as an API server restart does."""
        for queue in self._open:
            queue.put_nowait(_DROP)

    def bookmark(self) -> None:
        """Send a BOOKMARK at the current version to every open watch."""
        for queue in self._open:
            queue.put_nowait(_Event(self.version, "BOOKMARK", {}))

    def inject(self, event_type: str, obj: dict[str, Any]) -> None:
        """Send an arbitrary (even hostile) event to the open watches, storing nothing."""
        self.version += 1
        self._emit(_Event(self.version, event_type, copy.deepcopy(obj)))

    def _emit(self, event: _Event) -> None:
        self.history.append(event)
        for queue in self._open:
            queue.put_nowait(event)

    # ------------------------------------------------------------ LiveSource

    async def list_objects(
        self, *, api_version: str, kind: str, label_selector: str
    ) -> tuple[list[dict[str, Any]], str]:
        """The matching objects and the current version."""
        self.lists.append(kind)
        self._refuse(kind, self.list_failures)
        selector = Selector.parse(label_selector)
        group = group_of(api_version)
        items = [
            copy.deepcopy(obj)
            for (obj_group, obj_kind, _, _), obj in self.objects.items()
            if (obj_group, obj_kind) == (group, kind) and selector.matches_object(obj)
        ]
        return items, str(self.version)

    async def list_pages(
        self, *, api_version: str, kind: str, label_selector: str
    ) -> AsyncIterator[tuple[list[dict[str, Any]], str]]:
        """The list in pages of ``page_size`` (one snapshot, as a list with ``continue``)."""
        items, version = await self.list_objects(
            api_version=api_version, kind=kind, label_selector=label_selector
        )
        for start in range(0, max(len(items), 1), self.page_size):
            yield items[start : start + self.page_size], version

    async def watch_objects(
        self,
        *,
        api_version: str,
        kind: str,
        label_selector: str,
        resource_version: str,
        timeout_s: float,
    ) -> AsyncIterator[dict[str, Any]]:
        """Replays the history after ``resource_version``, then live events, until dropped
        or ``timeout_s`` passes."""
        self.watches_from.append(resource_version)
        self._refuse(kind, self.watch_failures)
        since = int(resource_version or 0)
        oldest = self.history[0].version if self.history else self.version + 1
        if since + 1 < oldest and since < self.version:
            raise kubernetes_error(
                f"watch {kind}: 410 Expired: too old resource version: {since} ({oldest})",
                status=410,
                reason="Expired",
            )
        queue: asyncio.Queue[_Event] = asyncio.Queue()
        for event in self.history:
            if event.version > since:
                queue.put_nowait(event)
        self._open.append(queue)
        selector = Selector.parse(label_selector)
        wanted = (group_of(api_version), kind)
        try:
            async for event in _until(queue, timeout_s):
                if event.type == "BOOKMARK":
                    yield _bookmark(api_version, kind, event.version)
                elif _group_kind(event.object) == wanted and selector.matches_object(event.object):
                    yield {"type": event.type, "object": copy.deepcopy(event.object)}
        finally:
            self._open.remove(queue)

    def _refuse(self, kind: str, failures: list[KubernetesError]) -> None:
        if kind in self.unserved:
            raise kubernetes_error(
                f"the cluster does not serve {kind}", status=404, reason="NotServed"
            )
        if failures:
            raise failures.pop(0)


async def _until(queue: asyncio.Queue[_Event], timeout_s: float) -> AsyncIterator[_Event]:
    """The events of ``queue`` until a drop or the deadline (a deadline per get: a timeout
    around the yields would cancel the consumer instead)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        try:
            event = await asyncio.wait_for(queue.get(), max(deadline - loop.time(), 0.0))
        except TimeoutError:
            return
        if event is _DROP:
            return
        yield event


def _bookmark(api_version: str, kind: str, version: int) -> dict[str, Any]:
    return {
        "type": "BOOKMARK",
        "object": {
            "apiVersion": api_version,
            "kind": kind,
            "metadata": {"resourceVersion": str(version)},
        },
    }


def _group_kind(obj: dict[str, Any]) -> tuple[str, str]:
    return group_of(str(obj.get("apiVersion", ""))), str(obj.get("kind", ""))


def _key(obj: dict[str, Any]) -> tuple[str, str, str, str]:
    metadata = obj.get("metadata") or {}
    group, kind = _group_kind(obj)
    return group, kind, str(metadata.get("namespace") or ""), str(metadata["name"])
