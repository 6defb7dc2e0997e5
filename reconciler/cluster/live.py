"""A watch-fed cache of the live state of the objects the daemon applies.

:class:`LiveCache` lists and then watches each tracked kind across all namespaces, filtered by
the daemon's label selector, so health, drift and inventory read memory instead of polling the
API server, and a health wait sleeps until something relevant changes
(:meth:`LiveCache.wait_changed`).  Each kind's loop is in :mod:`reconciler.cluster.live_watch`,
the table of objects in :mod:`reconciler.cluster.live_store`.

Every read returns a copy of its own (the cache holds compact JSON, see
:mod:`reconciler.cluster.live_store`).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Callable, Collection
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from structlog.typing import FilteringBoundLogger

from reconciler.cluster.label_selector import Selector
from reconciler.cluster.live_store import Change, GroupKind, ObjectTable, group_of
from reconciler.cluster.live_watch import Counters, KindWatch, WatchSettings
from reconciler.cluster.unseen_writes import UnseenWrites
from reconciler.logs import get_logger
from reconciler.model import ObjectRef
from reconciler.retry import Backoff

__all__ = ["Change", "LiveCache", "LiveSource", "PagedSource"]

DEFAULT_BACKOFF = Backoff(base_s=0.5, max_s=30.0)
"""How a kind's loop backs off after failures (with jitter)."""

_POD: GroupKind = ("", "Pod")


class LiveSource(Protocol):
    """Where a cache reads from: :class:`reconciler.cluster.kube.Kube`, or a fake."""

    async def list_objects(
        self, *, api_version: str, kind: str, label_selector: str
    ) -> tuple[list[dict[str, Any]], str]:
        """Every matching object in all namespaces (with apiVersion and kind), and the list's
        resourceVersion."""
        ...

    def watch_objects(
        self,
        *,
        api_version: str,
        kind: str,
        label_selector: str,
        resource_version: str,
        timeout_s: float,
    ) -> AsyncIterator[dict[str, Any]]:
        """Raw watch events from ``resource_version`` until the server ends the stream; an
        expired version raises KubernetesError with status 410."""
        ...


@runtime_checkable
class PagedSource(LiveSource, Protocol):
    """A source that can also list a page at a time (as :class:`Kube` does): the cache then
    never holds a whole big list decoded at once."""

    def list_pages(
        self, *, api_version: str, kind: str, label_selector: str
    ) -> AsyncIterator[tuple[list[dict[str, Any]], str]]:
        """The list's pages: (items, the list's resourceVersion)."""
        ...


@dataclass(eq=False)
class _Waiter:
    """One :meth:`LiveCache.wait_changed` call: what it waits for (hashed by identity)."""

    keys: frozenset[tuple[str, str, str, str]]
    namespaces: frozenset[str]
    woken: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class _Waiters:
    """The waiting calls, indexed by object key and by Pod namespace: a change wakes its
    waiters without looking at the others (a thousand rollouts wait at once)."""

    by_key: dict[tuple[str, str, str, str], set[_Waiter]] = field(default_factory=dict)
    by_namespace: dict[str, set[_Waiter]] = field(default_factory=dict)

    def add(self, waiter: _Waiter) -> None:
        for key in waiter.keys:
            self.by_key.setdefault(key, set()).add(waiter)
        for namespace in waiter.namespaces:
            self.by_namespace.setdefault(namespace, set()).add(waiter)

    def remove(self, waiter: _Waiter) -> None:
        for key in waiter.keys:
            _discard(self.by_key, key, waiter)
        for namespace in waiter.namespaces:
            _discard(self.by_namespace, namespace, waiter)

    def wake(self, change: Change) -> None:
        ref = change.ref
        for waiter in self.by_key.get(_key(ref), ()):
            waiter.woken.set()
        if (group_of(ref.api_version), ref.kind) == _POD:
            for waiter in self.by_namespace.get(ref.namespace or "", ()):
                waiter.woken.set()


def _discard(index: dict[Any, set[_Waiter]], name: Any, waiter: _Waiter) -> None:
    found = index.get(name)
    if found is not None:
        found.discard(waiter)
        if not found:
            del index[name]


class LiveCache:
    """The live state of every tracked kind, kept current by watches.

    ``label_selector`` filters every list and watch (the daemon's own objects, and their Pods
    once pod templates carry the same labels).  ``events_seen``, ``relists``, ``reconnects``
    and ``failures`` count what the watches did; ``size`` is how many objects are cached.
    """

    def __init__(
        self,
        source: LiveSource,
        *,
        label_selector: str,
        backoff: Backoff = DEFAULT_BACKOFF,
        watch_timeout_s: float = 300.0,
        unserved_retry_s: float = 60.0,
        log: FilteringBoundLogger | None = None,
    ) -> None:
        self._source = source
        self._settings = WatchSettings(
            label_selector=label_selector,
            backoff=backoff,
            watch_timeout_s=watch_timeout_s,
            unserved_retry_s=unserved_retry_s,
        )
        self._log = log if log is not None else get_logger("live")
        self._counters = Counters()
        self._table = ObjectTable()
        self._watches: dict[GroupKind, KindWatch] = {}
        self._tasks: dict[GroupKind, asyncio.Task[None]] = {}
        self._subscribers: list[Callable[[Change], None]] = []
        self._waiters = _Waiters()
        self._unseen = UnseenWrites(self._cached_version)
        self._closed = False

    # ------------------------------------------------------------ counters

    @property
    def events_seen(self) -> int:
        """Watch events received, bookmarks included."""
        return self._counters.events_seen

    @property
    def relists(self) -> int:
        """Lists after a kind's first (after 410 Expired)."""
        return self._counters.relists

    @property
    def reconnects(self) -> int:
        """Watches opened again after one ended or failed."""
        return self._counters.reconnects

    @property
    def failures(self) -> int:
        """Lists and watches that failed (410 Expired included)."""
        return self._counters.failures

    @property
    def size(self) -> int:
        """How many objects are cached."""
        return self._table.size

    # ------------------------------------------------------------ tracking

    def track(self, api_version: str, kind: str) -> None:
        """Start listing and watching ``kind`` in a task of the running loop (idempotent;
        another version of the same group and kind is the same objects, and is read as the
        version tracked first)."""
        if self._closed:
            raise RuntimeError("the live cache is closed")
        group_kind = (group_of(api_version), kind)
        if group_kind in self._watches:
            return
        self._table.add_kind(group_kind, api_version)
        watch = KindWatch(
            source=self._source,
            api_version=api_version,
            kind=kind,
            group_kind=group_kind,
            table=self._table,
            settings=self._settings,
            counters=self._counters,
            publish=self._publish,
            log=self._log,
        )
        self._watches[group_kind] = watch
        self._tasks[group_kind] = asyncio.create_task(
            watch.run(), name=f"live-watch {kind} ({api_version})"
        )

    def is_synced(self, api_version: str, kind: str) -> bool:
        """Whether ``kind`` is tracked and its first list is done."""
        watch = self._watches.get((group_of(api_version), kind))
        return watch is not None and watch.synced.is_set()

    async def wait_synced(self, *, timeout_s: float) -> None:
        """Until every tracked kind has completed its first list (a kind the server does not
        serve counts, as empty); TimeoutError naming the kinds still waited for."""
        try:
            async with asyncio.timeout(timeout_s):
                for watch in list(self._watches.values()):
                    await watch.synced.wait()
        except TimeoutError:
            waiting = ", ".join(
                f"{watch.kind} ({watch.api_version})"
                for watch in self._watches.values()
                if not watch.synced.is_set()
            )
            raise TimeoutError(f"not listed within {timeout_s:g}s: {waiting}") from None

    # ------------------------------------------------------------ reading

    def get(self, ref: ObjectRef, *, managed_fields: bool = True) -> dict[str, Any] | None:
        """The cached object, or None when it does not exist (as far as the watch knows);
        without ``metadata.managedFields`` when ``managed_fields`` is False (health needs
        none, and they are near half of the decoding).

        LookupError when its kind is not tracked: None would wrongly say "missing".
        """
        group_kind = self._tracked(ref.api_version, ref.kind)
        return self._table.get(
            group_kind, ref.namespace or "", ref.name, managed_fields=managed_fields
        )

    def objects(self, api_version: str, kind: str) -> list[dict[str, Any]]:
        """Every cached object of ``kind`` (the inventory); LookupError when not tracked."""
        return self._table.all_of(self._tracked(api_version, kind))

    def pods(
        self, namespace: str, selector: str, *, managed_fields: bool = True
    ) -> list[dict[str, Any]]:
        """Cached Pods of ``namespace`` matching the label ``selector`` (the syntax of
        :mod:`reconciler.cluster.label_selector`), without managedFields if not
        ``managed_fields``; LookupError when Pods are not tracked, InputError when the
        selector cannot be read."""
        group_kind = self._tracked("v1", "Pod")
        return self._table.select(
            group_kind, namespace, _parse_selector(selector), managed_fields=managed_fields
        )

    def _cached_version(self, ref: ObjectRef) -> str | None:
        group_kind = (group_of(ref.api_version), ref.kind)
        return self._table.version(group_kind, ref.namespace or "", ref.name)

    # ------------------------------------------------------------ this process's writes

    def writing(self, ref: ObjectRef) -> None:
        """A write of ``ref`` is about to be sent (:mod:`reconciler.cluster.unseen_writes`)."""
        self._unseen.writing(ref)

    def written(self, ref: ObjectRef, resource_version: str | None) -> None:
        """The write of ``ref`` answered: the object's new version, or None when it is gone."""
        self._unseen.written(ref, resource_version)

    def caught_up(self, ref: ObjectRef) -> bool:
        """Whether the cache shows every write of ``ref`` this process made: only then may it
        stand for the live object in deciding to skip an apply."""
        return self._unseen.caught_up(ref)

    @property
    def unseen_writes(self) -> int:
        """Writes of this process the watches have not shown yet."""
        return len(self._unseen)

    def _tracked(self, api_version: str, kind: str) -> GroupKind:
        group_kind = (group_of(api_version), kind)
        if not self._table.holds(group_kind):
            raise LookupError(f"the live cache does not track {kind} ({api_version})")
        return group_kind

    # ------------------------------------------------------------ changes

    def subscribe(self, callback: Callable[[Change], None]) -> Callable[[], None]:
        """Call ``callback`` for every change after a kind's first list (synthetic ones after
        a relist too); returns the function that unsubscribes it.  A callback that raises is
        logged and kept."""
        self._subscribers.append(callback)
        return lambda: self._subscribers.remove(callback)

    async def wait_changed(
        self,
        refs: Collection[ObjectRef],
        namespaces: Collection[str] = (),
        *,
        timeout_s: float,
    ) -> bool:
        """True as soon as one of ``refs`` or any Pod in ``namespaces`` changes; False when
        ``timeout_s`` passes first."""
        waiter = _Waiter(
            keys=frozenset(_key(ref) for ref in refs), namespaces=frozenset(namespaces)
        )
        self._waiters.add(waiter)
        try:
            async with asyncio.timeout(timeout_s):
                await waiter.woken.wait()
            return True
        except TimeoutError:
            return False
        finally:
            self._waiters.remove(waiter)

    def _publish(self, change: Change) -> None:
        self._unseen.seen(change)
        self._waiters.wake(change)
        for callback in list(self._subscribers):
            try:
                callback(change)
            except Exception as exc:  # one bad subscriber must not stop the watch
                self._log.error("live_subscriber_failed", ref=str(change.ref), exc_info=exc)

    # ------------------------------------------------------------ closing

    async def close(self) -> None:
        """Cancel every watch and wait for them to end (each ends at its next await)."""
        self._closed = True
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _key(ref: ObjectRef) -> tuple[str, str, str, str]:
    return (group_of(ref.api_version), ref.kind, ref.namespace or "", ref.name)


@functools.lru_cache(maxsize=1024)
def _parse_selector(selector: str) -> Selector:
    """Parsed once per distinct selector: health asks with the same ones again and again."""
    return Selector.parse(selector)
