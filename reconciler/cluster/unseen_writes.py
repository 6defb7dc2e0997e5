"""This process's writes that the watch cache has not shown yet.

The cache lags the API server by the time an event takes to arrive.  An attempt that trusts it
to skip an unchanged apply (:mod:`reconciler.cluster.in_sync`) must not be misled by its own
write still in flight: a rollback to content the cache still shows, a re-render of an object
just pruned.  So every write to an object marks it here before the request is sent; the mark
goes when the watch brings the version the write returned, or the object's deletion.  Writes
by others are the watch's to report (drift), as for any controller.

A write whose answer never came (an error, a timeout) keeps its mark until a later write of ours
is seen: its outcome is unknown, so that object is applied, never skipped.  A mark whose event
was lost to a relist (410 Gone) goes the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from reconciler.cluster.live_store import Change
from reconciler.model import ObjectRef

Key = tuple[str, str, str, str]
_MAX_SEEN = 8  # versions kept while a write runs; past that its own may be missed (kept marked)


@dataclass
class _Mark:
    expected: str | None = None
    """The resourceVersion the write returned; None while it runs (or for a delete)."""
    done: bool = False
    seen: set[str] = field(default_factory=set)
    """Versions the watch brought while the write ran (its own may come before its answer)."""


class UnseenWrites:
    """Marks by object; ``cached_version`` reads the cache's version of an object (None when
    the cache does not hold it)."""

    def __init__(self, cached_version: Callable[[ObjectRef], str | None]) -> None:
        self._cached_version = cached_version
        self._marks: dict[Key, _Mark] = {}

    def __len__(self) -> int:
        return len(self._marks)

    def writing(self, ref: ObjectRef) -> None:
        """A write of ``ref`` is about to be sent."""
        self._marks[_key(ref)] = _Mark()

    def written(self, ref: ObjectRef, resource_version: str | None) -> None:
        """The write answered: with the object's new version, or None when the object is
        gone (a delete)."""
        key = _key(ref)
        mark = self._marks.get(key)
        if mark is None:
            if resource_version is None:
                return  # its deletion was seen already
            mark = self._marks[key] = _Mark()
        cached = self._cached_version(ref)
        if resource_version is None:
            if cached is None:
                del self._marks[key]
            else:
                mark.done = True  # until the deletion comes
            return
        if cached == resource_version or resource_version in mark.seen:
            del self._marks[key]  # seen already (or a no-op write: no event will come)
            return
        mark.expected, mark.done, mark.seen = resource_version, True, set()

    def caught_up(self, ref: ObjectRef) -> bool:
        """Whether the cache has shown every write of ``ref`` this process made (it may hold
        the written version without an event: a kind's first list publishes none)."""
        key = _key(ref)
        mark = self._marks.get(key)
        if mark is None:
            return True
        if mark.expected is not None and self._cached_version(ref) == mark.expected:
            del self._marks[key]
            return True
        return False

    def seen(self, change: Change) -> None:
        """The watch brought ``change`` (called for every change the cache publishes)."""
        key = _key(change.ref)
        mark = self._marks.get(key)
        if mark is None:
            return
        if change.obj is None:
            del self._marks[key]  # deleted: the cache no longer shows an older state
            return
        version = (change.obj.get("metadata") or {}).get("resourceVersion")
        if not isinstance(version, str):
            return
        if mark.expected is not None and version == mark.expected:
            del self._marks[key]
        elif not mark.done and len(mark.seen) < _MAX_SEEN:
            mark.seen.add(version)


def _key(ref: ObjectRef) -> Key:
    group = ref.api_version.rpartition("/")[0]
    return (group, ref.kind, ref.namespace or "", ref.name)
