"""One kind's list-then-watch loop, as client-go's reflector runs it.

List, then watch from the list's resourceVersion; every event (bookmarks too) moves that
version on, so a stream that ends or breaks resumes where it was.  A 410 Expired means the
server's history no longer reaches back that far: list again, and report what changed in the
gap.  Failures back off with jitter; a kind the server does not serve is logged once and
looked for again slowly.  Nothing here ever ends the loop but cancellation.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from reconciler.cluster.live_store import (
    Change,
    GroupKind,
    ObjectTable,
    identity,
    resource_version,
    slim,
)
from reconciler.errors import KubernetesError
from reconciler.retry import Backoff

if TYPE_CHECKING:
    from structlog.typing import FilteringBoundLogger

    from reconciler.cluster.live import LiveSource, PagedSource


# A watch that lasted this long was a working one, even without events: open the next at once.
_HEALTHY_WATCH_S = 1.0


@dataclass
class Counters:
    """What the watches of a cache have done, for metrics."""

    events_seen: int = 0
    """Watch events received (bookmarks included)."""
    relists: int = 0
    """Lists after the first one of a kind (410 Expired, or a resume that could not be)."""
    reconnects: int = 0
    """Watches opened again after one ended or failed."""
    failures: int = 0
    """Lists and watches that failed."""


@dataclass(kw_only=True)
class WatchSettings:
    """How a kind's loop retries."""

    label_selector: str
    backoff: Backoff
    watch_timeout_s: float
    unserved_retry_s: float


@dataclass(kw_only=True)
class KindWatch:
    """The loop of one kind: :meth:`run` until cancelled."""

    source: LiveSource
    api_version: str
    kind: str
    group_kind: GroupKind
    table: ObjectTable
    settings: WatchSettings
    counters: Counters
    publish: Callable[[Change], None]
    log: FilteringBoundLogger
    synced: asyncio.Event = field(default_factory=asyncio.Event)
    resource_version: str = ""
    """Where the next watch starts; "" when the next step must be a list."""
    _failures: int = 0
    _unserved_logged: bool = False

    async def run(self) -> None:
        """List and watch for ever; only cancellation ends it."""
        while True:
            try:
                if not self.resource_version:
                    await self._list()
                began = asyncio.get_running_loop().time()
                saw_events = await self._watch()
                self.counters.reconnects += 1
                lasted = asyncio.get_running_loop().time() - began
                if saw_events or lasted >= _HEALTHY_WATCH_S:
                    self._failures = 0
                else:
                    # A stream that ends at once, again and again, must not become a busy loop.
                    await self._back_off()
            except KubernetesError as exc:
                await self._failed(exc)
            except Exception as exc:  # a bug or a hostile object: log it, never end the loop
                self.log.error(
                    "live_watch_failed", kind=self.kind, api_version=self.api_version, exc_info=exc
                )
                self.resource_version = ""
                await self._back_off()

    async def _list(self) -> None:
        """List the kind page by page; after the first list, report what changed since."""
        notify = self.synced.is_set()
        listed: set[tuple[str, str]] = set()
        version = ""
        async for items, version in self._pages():  # noqa: B007 - kept for after
            for item in items:
                where = identity(item)
                if where is None:
                    continue
                listed.add(where)
                change = self.table.put(self.group_kind, slim(item))
                if change is not None and notify:
                    self.publish(change)
        for change in self.table.remove_except(self.group_kind, listed):
            if notify:
                self.publish(change)
        if notify:
            self.counters.relists += 1
        self.resource_version = version or "0"
        self.synced.set()
        if self._unserved_logged:
            self.log.info("live_kind_served", kind=self.kind, api_version=self.api_version)
            self._unserved_logged = False

    def _pages(self) -> AsyncIterator[tuple[list[dict[str, Any]], str]]:
        """The list a page at a time when the source can (a big list is then never held
        decoded all at once), else as one page."""
        options = {
            "api_version": self.api_version,
            "kind": self.kind,
            "label_selector": self.settings.label_selector,
        }
        list_pages = getattr(self.source, "list_pages", None)
        if list_pages is not None:
            return cast("PagedSource", self.source).list_pages(**options)
        return _one_page(self.source.list_objects(**options))

    async def _watch(self) -> bool:
        """One watch until the server ends it; whether it brought any event."""
        stream = self.source.watch_objects(
            api_version=self.api_version,
            kind=self.kind,
            label_selector=self.settings.label_selector,
            resource_version=self.resource_version,
            timeout_s=self.settings.watch_timeout_s,
        )
        saw_events = False
        async with _closing(stream) as events:
            async for event in events:
                saw_events = True
                self.counters.events_seen += 1
                self._apply(event)
        return saw_events

    def _apply(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        obj = event.get("object")
        if not isinstance(obj, dict):
            return
        version = resource_version(obj)
        if kind in ("ADDED", "MODIFIED"):
            change = self.table.put(self.group_kind, slim(obj))
        elif kind == "DELETED":
            change = self.table.remove(self.group_kind, obj)
        else:
            change = None  # BOOKMARK: only its resourceVersion matters
        if version:
            self.resource_version = version
        if change is not None:
            self.publish(change)

    async def _failed(self, exc: KubernetesError) -> None:
        self.counters.failures += 1
        if exc.status == 410:
            # The history is gone: list again, at once the first time.
            self.resource_version = ""
            if self._failures:
                await self._back_off()
            self._failures += 1
            return
        if exc.reason == "NotServed":
            if not self._unserved_logged:
                self.log.warning("live_kind_not_served", kind=self.kind, error=str(exc))
                self._unserved_logged = True
            # Nothing of a kind nobody serves exists: that is this kind's (first) list.
            self._forget_all()
            self.resource_version = ""
            await asyncio.sleep(self.settings.unserved_retry_s)
            return
        self.log.warning("live_watch_retry", kind=self.kind, error=str(exc))
        await self._back_off()

    def _forget_all(self) -> None:
        for change in list(self.table.remove_except(self.group_kind, set())):
            if self.synced.is_set():
                self.publish(change)
        self.synced.set()

    async def _back_off(self) -> None:
        self._failures += 1
        await asyncio.sleep(self.settings.backoff.delay(self._failures))


async def _one_page(
    listing: Awaitable[tuple[list[dict[str, Any]], str]],
) -> AsyncIterator[tuple[list[dict[str, Any]], str]]:
    yield await listing


@contextlib.asynccontextmanager
async def _closing(stream: AsyncIterator[dict[str, Any]]) -> AsyncIterator[AsyncIterator[Any]]:
    """``stream``, closed on the way out (so its connection is released at once)."""
    try:
        yield stream
    finally:
        close = getattr(stream, "aclose", None)
        if close is not None:
            await close()
