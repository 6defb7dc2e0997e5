"""After the rollout: watch every deployment's objects, ask for heals, record health changes.

The observer reads the watch-fed cache (:class:`reconciler.cluster.live.LiveCache`), never the
API.  For each change to an object some deployment owns:

- **drift**: the object was deleted, or its content (not its status) changed and the newest
  writer in ``managedFields`` is not the daemon: a heal is asked for in SQL
  (``heal_requested_at``); the heal attempt diffs with a dry-run and re-applies, or records
  ``drifted`` when healing is off;
- **health**: a deployment no attempt holds moves ``healthy`` -> ``degraded`` when one of its
  objects or Pods fails, and back when all are healthy again, each a history row; each owned
  object's health is kept in ``deployment_objects``.

A periodic full check (``RECONCILER_DRIFT_CHECK_INTERVAL_S``, and once at start) reloads the
inventory and looks at every owned object, catching what happened while the daemon was down
or a watch missed.  Changes are gathered and handled in small batches, so a burst of events
costs one round of writes.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from reconciler.cluster.drift import writes_content
from reconciler.cluster.health.rules import assess_detail
from reconciler.cluster.health.verdict import Health, HealthStatus, describe
from reconciler.cluster.live import Change
from reconciler.errors import DatabaseError
from reconciler.logs import get_logger
from reconciler.model import ObjectHealth, ObjectRef, WatchedDeployment
from reconciler.policy import OWNER_LABELS
from reconciler.ports import LiveView, ObserverStore, WriteObserver

log = get_logger("observer")

Key = tuple[str, str, str, str]
_SETTLE_S = 0.1
_SYNC_TIMEOUT_S = 60.0
_IGNORED_METADATA = ("resourceVersion", "managedFields", "generation")


class ObservedCache(LiveView, WriteObserver, Protocol):
    """The cache as the daemon and the observer use it."""

    def subscribe(self, callback: Callable[[Change], None]) -> Callable[[], None]: ...

    async def wait_synced(self, *, timeout_s: float) -> None: ...


def key_of(ref: ObjectRef) -> Key:
    return (ref.api_version.rpartition("/")[0], ref.kind, ref.namespace or "", ref.name)


def last_writer(obj: Mapping[str, Any], *, ours: str) -> str | None:
    """The field manager that wrote the object's content last (status and bookkeeping writes
    left out).  managedFields times have seconds: on a tie another manager wins over ours, so
    a change right after our apply is not missed (a false alarm costs one dry-run)."""
    stamped: list[tuple[str, str]] = []
    for entry in (obj.get("metadata") or {}).get("managedFields") or []:
        if isinstance(entry, Mapping) and writes_content(entry):
            stamped.append((str(entry.get("time") or ""), str(entry.get("manager") or "")))
    if not stamped:
        return None
    newest = max(stamp for stamp, _ in stamped)
    writers = {manager for stamp, manager in stamped if stamp == newest}
    others = sorted(writers - {ours})
    return others[0] if others else ours


def content_changed(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> bool:
    """Whether more than the status (and the server's bookkeeping) changed."""
    if old is None:
        return True
    return _content(old) != _content(new)


def _content(obj: Mapping[str, Any]) -> dict[str, Any]:
    body = {k: v for k, v in obj.items() if k != "status"}
    metadata = body.get("metadata") or {}
    body["metadata"] = {k: v for k, v in metadata.items() if k not in _IGNORED_METADATA}
    return body


class Observer:
    """Turns watch events into heal requests, health transitions and object health rows."""

    def __init__(
        self,
        *,
        cache: ObservedCache,
        store: ObserverStore,
        field_manager: str,
        daemon_id: str,
        in_flight: Callable[[int], bool],
        wake: Callable[[], None],
        full_check_interval_s: float,
    ) -> None:
        self.cache = cache
        self.store = store
        self.field_manager = field_manager
        self.daemon_id = daemon_id
        self.in_flight = in_flight
        self.wake = wake
        self.full_check_interval_s = full_check_interval_s
        self.owner_of: dict[Key, int] = {}
        self.refs_of: dict[int, list[ObjectRef]] = {}
        self.deployments: dict[int, WatchedDeployment] = {}
        self.by_name: dict[tuple[str, str], int] = {}
        self.written_health: dict[Key, tuple[str, str]] = {}
        self.asked_at_version: dict[Key, str] = {}
        """The version of each object a heal was last asked for: a full check does not ask
        again for an object that has not changed since (drift left alone, healing off)."""
        self._heal: set[int] = set()
        self._health: set[int] = set()
        self._reload: set[int] = set()
        self._dirty = asyncio.Event()
        self.heals_requested = 0
        self.health_changes = 0

    # ------------------------------------------------------------ the loop

    async def run(self, *, stop: asyncio.Event) -> None:
        """Until ``stop``: load, watch, and handle changes in batches."""
        unsubscribe = self.cache.subscribe(self._on_change)
        try:
            await self._start(stop)
            next_full = time.monotonic() + self.full_check_interval_s
            while not stop.is_set():
                timeout = max(0.0, next_full - time.monotonic())
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(timeout):
                        await _first(self._dirty.wait(), stop.wait())
                if stop.is_set():
                    return
                await asyncio.sleep(_SETTLE_S)  # let a burst of events gather
                if time.monotonic() >= next_full:
                    await self._guarded(self.full_check)
                    next_full = time.monotonic() + self.full_check_interval_s
                await self._guarded(self.handle_pending)
        finally:
            unsubscribe()

    async def _start(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.full_check()
                return
            except DatabaseError as exc:
                log.warning("observer_start_failed", error=str(exc))
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(5.0):
                        await stop.wait()

    async def _guarded(self, step: Callable[[], Any]) -> None:
        try:
            await step()
        except DatabaseError as exc:
            log.warning("observer_write_failed", error=str(exc))
        except Exception:
            log.exception("observer_failed")

    def attempt_done(self, deployment_id: int) -> None:
        """An attempt ended: its inventory and status are reloaded before the next batch."""
        self._reload.add(deployment_id)
        self._dirty.set()

    # ------------------------------------------------------------ loading

    async def full_check(self) -> None:
        """Reload every owned object and watched deployment, then look at all of them."""
        inventory = await self.store.all_inventory()
        watched = await self.store.watched_deployments()
        self.owner_of = {key_of(ref): owner for owner, ref in inventory}
        self.refs_of = {}
        for owner, ref in inventory:
            self.refs_of.setdefault(owner, []).append(ref)
            self.cache.track(ref.api_version, ref.kind)
        self.cache.track("v1", "Pod")
        self._set_deployments(watched)
        try:
            await self.cache.wait_synced(timeout_s=_SYNC_TIMEOUT_S)
        except TimeoutError:
            log.warning("watch_not_synced", timeout_s=_SYNC_TIMEOUT_S)
        for deployment_id in self.refs_of:
            if deployment_id in self.deployments:
                self._health.add(deployment_id)
                self._check_all(deployment_id)
        await self.handle_pending()

    def _check(self, deployment_id: int, ref: ObjectRef, live: Mapping[str, Any] | None) -> None:
        """Ask for a heal when ``live`` drifted, unless asked for this very version."""
        if not self._drifted(live):
            self.asked_at_version.pop(key_of(ref), None)
            return
        version = str(((live or {}).get("metadata") or {}).get("resourceVersion") or "gone")
        if self.asked_at_version.get(key_of(ref)) != version:
            self.asked_at_version[key_of(ref)] = version
            self._heal.add(deployment_id)

    def _set_deployments(self, watched: Sequence[WatchedDeployment]) -> None:
        self.deployments = {d.id: d for d in watched}
        self.by_name = {(d.project, d.environment): d.id for d in watched}

    async def _reload_done(self) -> None:
        """The inventory and status of the deployments whose attempts ended, in two queries."""
        ids, self._reload = self._reload, set()
        if not ids:
            return
        watched = {d.id: d for d in await self.store.watched_among(sorted(ids))}
        inventory = await self.store.inventory_among(sorted(ids))
        for deployment_id in ids:
            self._forget(deployment_id)
        for owner, ref in inventory:
            self.owner_of[key_of(ref)] = owner
            self.refs_of.setdefault(owner, []).append(ref)
            self.cache.track(ref.api_version, ref.kind)
        for deployment in watched.values():
            self.deployments[deployment.id] = deployment
            self.by_name[(deployment.project, deployment.environment)] = deployment.id
        for deployment_id in ids & watched.keys():
            self._health.add(deployment_id)
            # A change that arrived before the inventory was known here is caught now.
            self._check_all(deployment_id)

    def _forget(self, deployment_id: int) -> None:
        """Drop what is known of one deployment (its objects, its row), touching only its own
        entries: a reload after each attempt must not cost a pass over every deployment."""
        for ref in self.refs_of.pop(deployment_id, []):
            if self.owner_of.get(key_of(ref)) == deployment_id:
                del self.owner_of[key_of(ref)]
        gone = self.deployments.pop(deployment_id, None)
        if gone is not None and self.by_name.get((gone.project, gone.environment)) == deployment_id:
            del self.by_name[(gone.project, gone.environment)]

    def _check_all(self, deployment_id: int) -> None:
        if self.in_flight(deployment_id):
            return
        for ref in self.refs_of.get(deployment_id, []):
            if self.cache.is_synced(ref.api_version, ref.kind):
                self._check(deployment_id, ref, self.cache.get(ref))

    # ------------------------------------------------------------ events

    def _on_change(self, change: Change) -> None:
        owner = self.owner_of.get(key_of(change.ref))
        if owner is None:
            if change.ref.kind == "Pod":
                self._pod_changed(change)
            return
        if self.in_flight(owner):
            # The attempt's own writes (and its prune) come back here by the dozen; once it
            # ends, the reload looks at every object it owns as the cache has them then, so a
            # foreign change made meanwhile is still caught.
            return
        self._health.add(owner)
        if change.obj is None:
            self._check(owner, change.ref, None)
        elif content_changed(change.old_state(managed_fields=False), change.obj):
            self._check(owner, change.ref, change.obj)
        self._dirty.set()

    def _pod_changed(self, change: Change) -> None:
        previous = change.old_state(managed_fields=False) if change.obj is None else None
        labels = ((change.obj or previous or {}).get("metadata") or {}).get("labels") or {}
        name = (str(labels.get(OWNER_LABELS[0], "")), str(labels.get(OWNER_LABELS[1], "")))
        owner = self.by_name.get(name)
        if owner is not None and not self.in_flight(owner):
            self._health.add(owner)
            self._dirty.set()

    def _foreign(self, obj: Mapping[str, Any]) -> bool:
        writer = last_writer(obj, ours=self.field_manager)
        return writer is not None and writer != self.field_manager

    def _drifted(self, live: Mapping[str, Any] | None) -> bool:
        return live is None or self._foreign(live)

    # ------------------------------------------------------------ batches

    async def handle_pending(self) -> None:
        """Ask for the heals gathered, then look at the health of the deployments touched."""
        self._dirty.clear()
        await self._reload_done()
        heal = {i for i in self._heal if i in self.deployments}
        self._heal.clear()
        if heal:
            asked = await self.store.request_heal(sorted(heal))
            if asked:
                self.heals_requested += len(asked)
                log.warning("drift_detected", deployments=sorted(asked))
                self.wake()
        touched, self._health = self._health, set()
        healths: list[ObjectHealth] = []
        for deployment_id in sorted(touched):
            # An attempt's own rollout is its wait's business; it is assessed once it ends.
            if not self.in_flight(deployment_id):
                healths.extend(await self._assess(deployment_id))
        await self.store.record_object_health(healths)

    async def _assess(self, deployment_id: int) -> list[ObjectHealth]:
        """The deployment's health from the cache: a transition when it changed, and the
        object health rows that changed."""
        refs = self.refs_of.get(deployment_id, [])
        found = [(ref, self.cache.get(ref, managed_fields=False)) for ref in refs]
        changed = []
        worst: tuple[str, Health] | None = None
        all_done = True
        for ref, live in found:
            health = assess_detail(live) if live is not None else Health(HealthStatus.MISSING)
            all_done = all_done and live is not None and health.done
            if self.written_health.get(key_of(ref)) != (health.status, health.message):
                self.written_health[key_of(ref)] = (health.status, health.message)
                changed.append(ObjectHealth(ref, str(health.status), health.message))
            if health.status is HealthStatus.DEGRADED and worst is None:
                worst = (str(ref), health)
        worst = worst or self._failing_pod(deployment_id, refs)
        await self._transition(deployment_id, worst=worst, all_done=all_done)
        return changed

    def _failing_pod(
        self, deployment_id: int, refs: Sequence[ObjectRef]
    ) -> tuple[str, Health] | None:
        watched = self.deployments.get(deployment_id)
        if watched is None:
            return None
        selector = f"{OWNER_LABELS[0]}={watched.project},{OWNER_LABELS[1]}={watched.environment}"
        for namespace in sorted({r.namespace for r in refs if r.namespace}):
            for pod in self.cache.pods(namespace, selector, managed_fields=False):
                health = assess_detail(pod)
                if health.status is HealthStatus.DEGRADED:
                    name = (pod.get("metadata") or {}).get("name")
                    return (f"Pod {namespace}/{name}", health)
        return None

    async def _transition(
        self, deployment_id: int, *, worst: tuple[str, Health] | None, all_done: bool
    ) -> None:
        watched = self.deployments.get(deployment_id)
        if watched is None or self.in_flight(deployment_id):
            return
        if watched.current_status == "healthy" and worst is not None:
            to_status, message = "degraded", describe(*worst)
        elif watched.current_status == "degraded" and worst is None and all_done:
            to_status, message = "healthy", "recovered: every object is healthy again"
        else:
            return
        moved = await self.store.record_health_change(
            deployment_id=deployment_id,
            from_status=watched.current_status,
            to_status=to_status,
            message=message,
            daemon=self.daemon_id,
        )
        if moved:
            self.health_changes += 1
            self.deployments[deployment_id] = _with_status(watched, to_status)
            emit = log.warning if to_status == "degraded" else log.info
            emit(
                "health_changed",
                deployment_id=deployment_id,
                project=watched.project,
                environment=watched.environment,
                status=to_status,
                message=message,
            )


def _with_status(watched: WatchedDeployment, status: str) -> WatchedDeployment:
    return dataclasses.replace(watched, current_status=status)


async def _first(*waits: Any) -> None:
    tasks = [asyncio.ensure_future(w) for w in waits]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
