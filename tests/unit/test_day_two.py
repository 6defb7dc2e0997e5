"""Day-two commands on the in-memory fakes: cancel ends the wait, redeploy applies anyway,
pause keeps the claim away."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from collections.abc import Callable
from pathlib import Path

from reconciler.attempt import CANCELLED_MESSAGE, Options, Outcome, run_attempt
from reconciler.daemon import Daemon
from reconciler.decide import RetryPolicy
from reconciler.model import Checkout, Deployment
from reconciler.ports import Notifications
from reconciler.settings import Settings
from reconciler.testing.memory import (
    InMemoryCluster,
    InMemoryFetcher,
    InMemoryListener,
    InMemoryRenderer,
    InMemoryStore,
)
from tests.support.waiting import eventually

DAEMON = "test-daemon"
CHECKOUT = Checkout(name="ops", path=Path("/memory/ops"), subdir="", sha="c0ffee", error=None)


class World:
    """A store with one deployment, a cluster and a renderer."""

    def __init__(self, *, rollout: str = "healthy") -> None:
        self.store = InMemoryStore()
        self.cluster = InMemoryCluster(rollout=rollout)
        self.renderer = InMemoryRenderer()
        self.row = self.store.add_deployment(project="web", environment="prod", image_ref="web:1")

    async def attempt(self, *, cancelled: Callable[[], bool] | None = None) -> Outcome:
        [row] = await self.store.claim(daemon_id=DAEMON, limit=1, lease_s=60)
        return await run_attempt(
            row,
            store=self.store,
            cluster=self.cluster,
            checkout=CHECKOUT,
            options=Options(
                field_manager="reconciler",
                health_timeout_s=2.0,
                health_poll_s=0.01,
                retry=RetryPolicy(max_attempts=3, base_s=10.0, max_s=60.0),
                daemon_id=DAEMON,
                renderer=self.renderer,
            ),
            superseded=lambda: False,
            cancelled=cancelled,
        )

    def request_redeploy(self, *, restart: bool) -> None:
        """What redeploy_deployment and its trigger do: the request, and a new generation."""
        row = self.current
        self.store._put(
            row,
            redeploy_requested_at=dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC),
            redeploy_restart=restart,
            generation=row.generation + 1,
        )

    @property
    def current(self) -> Deployment:
        return self.store.deployments[self.row.id]


async def test_cancel_ends_the_wait_recorded_cancelled_without_retry() -> None:
    """A cancelled rollout stops waiting at once: 'cancelled', observed, no retry scheduled,
    the cluster as it is."""
    world = World(rollout="hold")
    outcome = await asyncio.wait_for(world.attempt(cancelled=lambda: True), timeout=1.0)
    assert (outcome.status, outcome.message) == ("cancelled", CANCELLED_MESSAGE)
    [entry] = world.store.history_of(world.row.id)
    assert (entry.action, entry.status) == ("deploy", "cancelled")
    assert world.current.current_status == "failed"
    assert world.current.observed_generation == world.current.generation
    assert world.current.next_attempt_at is None
    assert world.current.current_image_ref == "web:1"
    assert world.current.applied_digest is None


async def test_redeploy_applies_when_the_digest_is_unchanged() -> None:
    """A redeploy applies the same render again, recorded as 'redeploy', and the request is
    cleared; no pod is restarted without --restart."""
    world = World()
    await world.attempt()
    applied = len(world.cluster.applied)
    world.request_redeploy(restart=False)
    outcome = await world.attempt()
    assert outcome.status == "healthy"
    assert len(world.cluster.applied) > applied
    assert [h.action for h in world.store.history_of(world.row.id)] == ["deploy", "redeploy"]
    assert world.current.redeploy_requested_at is None
    assert world.cluster.restarted == []


async def test_redeploy_with_restart_stamps_the_pod_templates() -> None:
    """redeploy --restart sets restartedAt, the time the redeploy was asked for, on each
    workload's pod template."""
    world = World()
    await world.attempt()
    world.request_redeploy(restart=True)
    assert (await world.attempt()).status == "healthy"
    [ref] = world.cluster.restarted
    template = world.cluster.objects[ref]["spec"]["template"]
    assert template["metadata"]["annotations"] == {
        "kubectl.kubernetes.io/restartedAt": "2026-12-01T12:00:00Z"
    }
    assert world.current.redeploy_restart is False


async def test_a_paused_deployment_is_not_claimed() -> None:
    """The claim skips a paused row even with a new generation; resumed, it is claimed."""
    world = World()
    world.store._put(world.current, paused=True)
    assert await world.store.claim(daemon_id=DAEMON, limit=1, lease_s=60) == []
    world.store._put(world.current, paused=False)
    assert len(await world.store.claim(daemon_id=DAEMON, limit=1, lease_s=60)) == 1


async def test_a_cancel_notify_cancels_the_rollout_in_flight() -> None:
    """NOTIFY cancel:<id> ends the in-flight rollout 'cancelled' and nothing retries it;
    wake:<id> supersedes nothing."""
    store = InMemoryStore()
    cluster = InMemoryCluster(rollout="hold")
    listeners: list[InMemoryListener] = []

    def listen(on_notify: Callable[[str], None], on_reconnect: Callable[[], None]) -> Notifications:
        listeners.append(InMemoryListener(on_notify, on_reconnect))
        return listeners[-1]

    daemon = Daemon(
        store=store,
        kube=cluster,
        settings=dataclasses.replace(
            Settings(),
            daemon_id="unit",
            poll_interval_s=0.05,
            health_timeout_s=30.0,
            http_address=None,
        ),
        renderer=InMemoryRenderer(),
        fetcher=InMemoryFetcher(),
        listener=listen,
    )
    row = store.add_deployment(project="web", environment="prod", image_ref="web:1")
    task = asyncio.create_task(daemon.run())
    await eventually(lambda: store.deployments[row.id].current_status == "syncing")
    listeners[0].notify(f"wake:{row.id}")
    await asyncio.sleep(0.2)
    assert store.deployments[row.id].current_status == "syncing"
    listeners[0].notify(f"cancel:{row.id}")
    await eventually(lambda: store.deployments[row.id].current_status == "failed")
    await asyncio.sleep(0.2)  # several poll intervals
    daemon.stop()
    assert await asyncio.wait_for(task, timeout=5) == 0
    assert [h.status for h in store.history_of(row.id)] == ["cancelled"]
