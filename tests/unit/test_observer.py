"""The observer over the real LiveCache and the in-memory cluster and store: which changes ask
for a heal, and health after the rollout."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from structlog.testing import capture_logs

from reconciler.cluster.live import LiveCache
from reconciler.observer import Observer, content_changed, last_writer
from reconciler.testing.memory import InMemoryCluster
from tests.support.attempts import CONFIG, DEPLOYMENT, World, attempt
from tests.support.waiting import eventually

OURS = "reconciler"


class Watched:
    """A deployed World with an observer running over a watch of its cluster."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.flying: set[int] = set()
        self.woken = 0
        self.cache = LiveCache(world.cluster, label_selector="reconciler.io/project")
        self.observer = Observer(
            cache=self.cache,
            store=world.store,
            field_manager=OURS,
            daemon_id="test-daemon",
            in_flight=lambda i: i in self.flying,
            wake=self._wake,
            full_check_interval_s=3600.0,
        )
        self.stop = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    def _wake(self) -> None:
        self.woken += 1

    async def start(self) -> None:
        self.task = asyncio.create_task(self.observer.run(stop=self.stop))
        await eventually(lambda: self.observer.refs_of, message="inventory never loaded")

    async def close(self) -> None:
        self.stop.set()
        if self.task is not None:
            await asyncio.wait_for(self.task, timeout=5)
        await self.cache.close()

    @property
    def heal_asked(self) -> bool:
        return self.world.current.heal_requested_at is not None


@pytest.fixture
async def watched() -> AsyncIterator[Watched]:
    world = World()
    assert (await attempt(world)).status == "healthy"
    result = Watched(world)
    await result.start()
    try:
        yield result
    finally:
        await result.close()


def _replicas(value: int) -> Any:
    def change(obj: dict[str, Any]) -> None:
        obj["spec"]["replicas"] = value

    return change


def _status(obj: dict[str, Any]) -> None:
    obj["status"] = {**obj.get("status", {}), "observedGeneration": 7}


async def test_another_managers_edit_asks_for_a_heal_and_wakes_the_loop(watched: Watched) -> None:
    """A content change whose newest writer is not the daemon sets heal_requested_at."""
    watched.world.cluster.write_as(DEPLOYMENT, _replicas(5), manager="kubectl-edit")
    await eventually(lambda: watched.heal_asked, message="no heal asked")
    assert watched.woken >= 1


async def test_drift_is_logged_at_warning(watched: Watched) -> None:
    """Drift found after the rollout logs at warning, where operators look by default."""
    with capture_logs() as logs:
        watched.world.cluster.write_as(DEPLOYMENT, _replicas(5), manager="kubectl-edit")
        await eventually(
            lambda: any(e["event"] == "drift_detected" for e in logs), message="no drift logged"
        )
    [event] = [e for e in logs if e["event"] == "drift_detected"]
    assert event["log_level"] == "warning"


async def test_a_status_write_asks_for_nothing(watched: Watched) -> None:
    """A controller's status write is not drift."""
    watched.world.cluster.write_as(
        DEPLOYMENT, _status, manager="kube-controller-manager", subresource="status"
    )
    await asyncio.sleep(0.3)
    assert not watched.heal_asked


async def test_our_own_write_asks_for_nothing(watched: Watched) -> None:
    """A change written by the daemon's own field manager is not drift."""
    watched.world.cluster.write_as(DEPLOYMENT, _replicas(3), manager=OURS)
    await asyncio.sleep(0.3)
    assert not watched.heal_asked


async def test_a_delete_outside_an_attempt_asks_for_a_heal(watched: Watched) -> None:
    """A managed object deleted while no attempt runs is drift."""
    await watched.world.cluster.delete(CONFIG)
    await eventually(lambda: watched.heal_asked, message="no heal asked")


async def test_a_delete_during_an_attempt_is_the_attempts(watched: Watched) -> None:
    """A delete while the deployment's attempt runs (a prune) is not drift."""
    watched.flying.add(watched.world.row.id)
    await watched.world.cluster.delete(CONFIG)
    await asyncio.sleep(0.3)
    assert not watched.heal_asked


async def test_an_edit_during_an_attempt_asks_for_a_heal_once_it_ends(watched: Watched) -> None:
    """Another manager's edit while the attempt runs is left to it, and asked about when the
    attempt ends (its reload looks at every object it owns)."""
    watched.flying.add(watched.world.row.id)
    watched.world.cluster.write_as(DEPLOYMENT, _replicas(5), manager="kubectl-edit")
    await asyncio.sleep(0.3)
    assert not watched.heal_asked
    watched.flying.clear()
    watched.observer.attempt_done(watched.world.row.id)
    await eventually(lambda: watched.heal_asked, message="no heal asked after the attempt")


async def test_a_degraded_pod_degrades_then_recovery_heals_the_status(watched: Watched) -> None:
    """A crash-looping Pod of the deployment moves it healthy -> degraded with the reason,
    and its recovery back, each with a 'health' history row."""
    cluster: InMemoryCluster = watched.world.cluster
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "web-1",
            "namespace": "web-prod",
            "labels": {"reconciler.io/project": "web", "reconciler.io/environment": "prod"},
        },
        "spec": {"restartPolicy": "Always", "containers": [{"name": "app"}]},
        "status": {
            "phase": "Running",
            "containerStatuses": [
                {"name": "app", "state": {"waiting": {"reason": "CrashLoopBackOff"}}}
            ],
        },
    }
    await cluster.apply(pod, field_manager="kubelet")
    await eventually(lambda: watched.world.current.current_status == "degraded")
    assert "CrashLoopBackOff" in watched.world.current.status_message
    ref = next(r for r in cluster.objects if r.kind == "Pod")
    ready = {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}
    cluster.write_as(ref, lambda p: p.update(status=ready), manager="kubelet", subresource="status")
    await eventually(lambda: watched.world.current.current_status == "healthy")
    rows = [(h.action, h.status) for h in watched.world.store.history_of(watched.world.row.id)]
    assert rows[-2:] == [("health", "degraded"), ("health", "healthy")]


async def test_a_reload_after_an_attempt_forgets_only_what_it_dropped(watched: Watched) -> None:
    """After an attempt that dropped an object from the inventory, the observer no longer
    owns that object, still owns the rest, and still knows the deployment."""
    row_id = watched.world.row.id
    await watched.world.store.forget_objects(deployment_id=row_id, refs=[CONFIG])
    watched.observer.attempt_done(row_id)
    await watched.observer.handle_pending()
    assert watched.observer.refs_of[row_id] == [DEPLOYMENT]
    await watched.world.cluster.delete(CONFIG)
    await asyncio.sleep(0.3)
    assert not watched.heal_asked
    assert row_id in watched.observer.deployments
    assert watched.observer.by_name[("web", "prod")] == row_id


async def test_the_start_finds_what_changed_while_it_was_away() -> None:
    """A daemon starting finds an owned object missing (deleted while it was down)."""
    world = World()
    assert (await attempt(world)).status == "healthy"
    await world.cluster.delete(CONFIG)
    late = Watched(world)
    await late.start()
    try:
        await eventually(lambda: late.heal_asked, message="no heal asked at start")
    finally:
        await late.close()


def test_the_newest_content_writer_wins_and_ties_go_to_others() -> None:
    """last_writer skips status entries and prefers another manager on a same-second tie."""
    entries = [
        {"manager": OURS, "operation": "Apply", "time": "2026-01-01T00:00:01Z"},
        {"manager": "kubectl", "operation": "Update", "time": "2026-01-01T00:00:01Z"},
        {"manager": "kubelet", "operation": "Update", "subresource": "status", "time": "2027"},
    ]
    assert last_writer({"metadata": {"managedFields": entries}}, ours=OURS) == "kubectl"
    assert last_writer({"metadata": {"managedFields": entries[:1]}}, ours=OURS) == OURS
    assert last_writer({"metadata": {}}, ours=OURS) is None


def test_content_changes_leave_status_and_bookkeeping_out() -> None:
    """Only a change beyond status, resourceVersion, generation and managedFields counts."""
    old = {"metadata": {"resourceVersion": "1"}, "spec": {"a": 1}, "status": {"x": 1}}
    assert not content_changed(
        old, {**old, "status": {"x": 2}, "metadata": {"resourceVersion": "2"}}
    )
    assert content_changed(old, {**old, "spec": {"a": 2}})
    assert content_changed(None, old)
