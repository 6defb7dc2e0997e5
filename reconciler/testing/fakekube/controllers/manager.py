"""The controller manager: schedules and runs controller keys.

Controllers are functions of (namespace, name) keyed by a controller name.  Store events and
deletions enqueue keys; a controller may ask to run again after a delay (a Pod becoming Ready, a
progress deadline).  One task runs due keys in order, yielding to the event loop between
batches, so the HTTP server stays responsive while a thousand Deployments roll out.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

from ..api_errors import ApiError
from ..faults import Faults
from ..registry import Registry
from ..store import WatchEvent

log = logging.getLogger(__name__)

Key = tuple[str, str, str]  # (controller, namespace, name)
Handler = Callable[[str, str], None]


class ClusterSettings(Protocol):
    """What controllers read on every step (FakeKube provides it)."""

    rollout_delay_s: float
    time_factor: float
    faults: Faults


class ControllerManager:
    """Schedules and runs controller keys."""

    def __init__(self, registry: Registry, settings: ClusterSettings) -> None:
        self.registry = registry
        self.settings = settings
        self.handlers: dict[str, Handler] = {}
        self.routes: dict[tuple[str, str], list[Callable[[WatchEvent], None]]] = {}
        self._heap: list[tuple[float, int, Key]] = []
        self._due: dict[Key, float] = {}
        self._counter = itertools.count()
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        #: Per-object controller memory (precise times the API only shows to the second).
        self.memory: dict[str, dict[str, Any]] = {}
        #: Unexpected exceptions (fakekube bugs), so tests can assert there were none.
        self.errors: list[str] = []
        registry.store.listeners.append(self._on_event)

    @staticmethod
    def now() -> float:
        """Monotonic seconds."""
        return time.monotonic()

    def scaled(self, seconds: float) -> float:
        """A Kubernetes duration (progressDeadlineSeconds ...) in real seconds."""
        return seconds * self.settings.time_factor

    def register(self, name: str, handler: Handler) -> None:
        """Adds a controller."""
        self.handlers[name] = handler

    def route(self, resource: tuple[str, str], callback: Callable[[WatchEvent], None]) -> None:
        """Calls ``callback`` on every event of ``resource`` (group, plural)."""
        self.routes.setdefault(resource, []).append(callback)

    def enqueue(self, controller: str, namespace: str, name: str, delay: float = 0.0) -> None:
        """Runs ``controller`` for (namespace, name) after ``delay`` seconds (earliest wins)."""
        key = (controller, namespace, name)
        due = self.now() + max(0.0, delay)
        current = self._due.get(key)
        if current is not None and current <= due:
            return
        self._due[key] = due
        heapq.heappush(self._heap, (due, next(self._counter), key))
        if self._wake is not None:
            self._wake.set()

    def _on_event(self, event: WatchEvent) -> None:
        for callback in self.routes.get(event.resource, ()):
            callback(event)

    def remember(self, uid: str) -> dict[str, Any]:
        """Mutable memory about one object."""
        return self.memory.setdefault(uid, {})

    def forget(self, uid: str) -> None:
        """Drops the memory of a deleted object."""
        self.memory.pop(uid, None)

    # -- running

    def start(self) -> None:
        """Starts running keys on the current event loop."""
        self._wake = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(
            self._run(), name="fakekube-controllers"
        )

    async def stop(self) -> None:
        """Stops running keys."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def run_due(self, limit: int = 200) -> int:
        """Runs up to ``limit`` due keys now; returns how many ran."""
        ran = 0
        now = self.now()
        while self._heap and self._heap[0][0] <= now and ran < limit:
            due, _, key = heapq.heappop(self._heap)
            if self._due.get(key) != due:
                continue
            del self._due[key]
            handler = self.handlers.get(key[0])
            if handler is None:
                continue
            ran += 1
            try:
                handler(key[1], key[2])
            except ApiError as exc:
                # Another writer won a race (or the object went away): try again shortly.
                log.debug("controller %s %s/%s: %s", key[0], key[1], key[2], exc.message)
                self.enqueue(key[0], key[1], key[2], 0.05)
            except Exception as exc:
                log.exception("controller %s failed for %s/%s", key[0], key[1], key[2])
                self.errors.append(f"controller {key[0]} {key[1]}/{key[2]}: {exc!r}")
        return ran

    async def _run(self) -> None:
        assert self._wake is not None
        while True:
            ran = self.run_due()
            if ran:
                await asyncio.sleep(0)
                continue
            self._wake.clear()
            timeout = None
            if self._heap:
                timeout = max(0.0, self._heap[0][0] - self.now())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)
