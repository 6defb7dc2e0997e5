"""The writes the watch cache has not shown yet: marked before the request, cleared by the
version the write returned, by the object's deletion, or by the cache already holding it."""

from __future__ import annotations

from typing import Any

from reconciler.cluster.live import LiveCache
from reconciler.cluster.live_store import Change
from reconciler.cluster.unseen_writes import UnseenWrites
from reconciler.model import ObjectRef
from reconciler.testing.memory import InMemoryCluster
from tests.support.live import SELECTOR, configmap
from tests.support.waiting import eventually

REF = ObjectRef("v1", "ConfigMap", "a", "default")


class Cached:
    """The cache's versions, by reference, as the test sets them."""

    def __init__(self) -> None:
        self.versions: dict[ObjectRef, str] = {}

    def __call__(self, ref: ObjectRef) -> str | None:
        return self.versions.get(ref)


def _event(version: str | None, kind: str = "MODIFIED") -> Change:
    obj: dict[str, Any] | None = None
    if version is not None:
        obj = {"metadata": {"name": "a", "namespace": "default", "resourceVersion": version}}
    return Change(kind if version is not None else "DELETED", REF, obj, None)


def test_a_write_is_unseen_until_the_watch_brings_its_version() -> None:
    """Marked from before the request; an older event leaves it; its own version clears it."""
    cached = Cached()
    writes = UnseenWrites(cached)
    writes.writing(REF)
    assert not writes.caught_up(REF)
    writes.written(REF, "12")
    writes.seen(_event("11"))
    assert not writes.caught_up(REF)
    writes.seen(_event("12"))
    assert writes.caught_up(REF)
    assert len(writes) == 0


def test_an_event_that_came_before_the_answer_counts() -> None:
    """The watch may bring a write's version before its answer arrives."""
    writes = UnseenWrites(Cached())
    writes.writing(REF)
    writes.seen(_event("12"))
    writes.written(REF, "12")
    assert writes.caught_up(REF)


def test_a_write_that_changed_nothing_is_seen_at_once() -> None:
    """A no-op write brings no event: the cache holding its version is enough."""
    cached = Cached()
    cached.versions[REF] = "12"
    writes = UnseenWrites(cached)
    writes.writing(REF)
    writes.written(REF, "12")
    assert writes.caught_up(REF)


def test_a_version_the_cache_got_without_an_event_clears_the_mark() -> None:
    """A kind's first list publishes no events: the listed version clears the mark when asked."""
    cached = Cached()
    writes = UnseenWrites(cached)
    writes.writing(REF)
    writes.written(REF, "12")
    assert not writes.caught_up(REF)
    cached.versions[REF] = "12"
    assert writes.caught_up(REF)


def test_a_delete_is_unseen_until_the_deletion_comes() -> None:
    """A deleted object the cache still holds stays marked; its DELETED event clears it."""
    cached = Cached()
    cached.versions[REF] = "12"
    writes = UnseenWrites(cached)
    writes.writing(REF)
    writes.written(REF, None)
    writes.seen(_event("13"))  # terminating: finalizers still run
    assert not writes.caught_up(REF)
    writes.seen(_event(None))
    assert writes.caught_up(REF)


def test_a_delete_of_what_the_cache_does_not_hold_is_seen() -> None:
    """Deleting an object the cache does not hold leaves nothing to wait for."""
    writes = UnseenWrites(Cached())
    writes.writing(REF)
    writes.written(REF, None)
    assert writes.caught_up(REF)


def test_a_write_without_an_answer_stays_unseen_until_a_later_write_is_seen() -> None:
    """An apply that failed (or timed out) may have landed: never trusted, until the next
    write of ours is seen."""
    writes = UnseenWrites(Cached())
    writes.writing(REF)
    for version in ("12", "13", "14"):
        writes.seen(_event(version))
    assert not writes.caught_up(REF)
    writes.writing(REF)
    writes.written(REF, "15")
    writes.seen(_event("15"))
    assert writes.caught_up(REF)


def test_a_long_failed_write_keeps_few_versions() -> None:
    """A mark whose answer never comes holds a bounded set of seen versions."""
    writes = UnseenWrites(Cached())
    writes.writing(REF)
    for version in range(1000):
        writes.seen(_event(str(version)))
    mark = writes._marks[("", "ConfigMap", "default", "a")]
    assert len(mark.seen) <= 8


async def test_the_live_cache_follows_the_writes_of_its_cluster() -> None:
    """Wired to a cluster, the cache marks its applies and deletes and clears them from the
    watch: unseen while the event is on its way, seen once it is cached."""
    cluster = InMemoryCluster()
    cache = LiveCache(cluster, label_selector=SELECTOR)
    cluster.report_writes(cache)
    try:
        cache.track("v1", "ConfigMap")
        await cache.wait_synced(timeout_s=5)
        applied = await cluster.apply(configmap("a"), field_manager="t")
        assert not cache.caught_up(REF)
        await eventually(lambda: cache.caught_up(REF), within=5)
        assert cache.get(REF) == applied
        await cluster.delete(REF)
        assert not cache.caught_up(REF)
        await eventually(lambda: cache.caught_up(REF), within=5)
        assert cache.get(REF) is None
        assert cache.unseen_writes == 0
    finally:
        await cache.close()
