"""Dropped watch connections, a fault: open streams that end at once or after N more events.

A real apiserver ends watches when it restarts, when a load balancer times the connection out,
or at ``timeoutSeconds``; clients must then watch again from the last resourceVersion they saw.
``Faults.drop_watches`` ends open streams the same way (the response simply ends).
"""

from __future__ import annotations

from collections.abc import Callable


class OpenWatch:
    """One open watch stream as the fault sees it: what it watches and when it must end."""

    def __init__(self, *, plural: str, group: str, wake: Callable[[], None]) -> None:
        self.plural = plural
        self.group = group
        self._wake = wake
        #: Events the stream may still write before it ends; None while no drop is ordered.
        self.remaining: int | None = None

    def watches(self, resource: str | None) -> bool:
        """True when ``resource`` (``plural`` or ``plural.group``, None for any) names this."""
        if resource is None:
            return True
        qualified = f"{self.plural}.{self.group}" if self.group else self.plural
        return resource in (self.plural, qualified)

    def drop(self, *, after_events: int) -> None:
        """Orders the stream to end after ``after_events`` more events (0: at once)."""
        limit = max(after_events, 0)
        self.remaining = limit if self.remaining is None else min(self.remaining, limit)
        if self.remaining == 0:
            self._wake()

    @property
    def dropped(self) -> bool:
        """True once the stream must end."""
        return self.remaining == 0

    def allowed(self, count: int) -> int:
        """How many of ``count`` events the stream may write now (and counts them as written)."""
        if self.remaining is None:
            return count
        allowed = min(count, self.remaining)
        self.remaining -= allowed
        return allowed


class WatchDrops:
    """The open streams a ``Faults`` can drop."""

    def __init__(self) -> None:
        self._open: set[OpenWatch] = set()

    def opened(self, watch: OpenWatch) -> None:
        """A stream started."""
        self._open.add(watch)

    def closed(self, watch: OpenWatch) -> None:
        """A stream ended."""
        self._open.discard(watch)

    def count(self, resource: str | None = None) -> int:
        """How many streams of ``resource`` (None: any) are open."""
        return sum(1 for watch in self._open if watch.watches(resource))

    def drop(self, *, resource: str | None, after_events: int) -> int:
        """Orders the matching open streams to end; returns how many there were."""
        matching = [watch for watch in self._open if watch.watches(resource)]
        for watch in matching:
            watch.drop(after_events=after_events)
        return len(matching)
