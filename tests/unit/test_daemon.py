"""The daemon loop's decisions, on the in-memory database, cluster, renderer, git and LISTEN."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable

from reconciler.daemon import Daemon
from reconciler.errors import DatabaseUnavailable, OpsRepoError
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

SETTINGS = Settings(
    daemon_id="unit-daemon",
    poll_interval_s=0.05,
    lease_s=3.0,
    shutdown_grace_s=0.3,
    health_timeout_s=30.0,
    concurrency=4,
    http_address=None,
)


class Loop:
    """A daemon over in-memory fakes, and the listener it opened."""

    def __init__(self, *, rollout: str = "healthy", **settings: object) -> None:
        self.store = InMemoryStore()
        self.cluster = InMemoryCluster(rollout=rollout)
        self.renderer = InMemoryRenderer()
        self.fetcher = InMemoryFetcher()
        self.listener: InMemoryListener | None = None
        self.daemon = Daemon(
            store=self.store,
            kube=self.cluster,
            settings=dataclasses.replace(SETTINGS, **settings),  # type: ignore[arg-type]
            renderer=self.renderer,
            fetcher=self.fetcher,
            listener=self._listen,
        )

    def _listen(
        self, on_notify: Callable[[str], None], on_reconnect: Callable[[], None]
    ) -> Notifications:
        self.listener = InMemoryListener(on_notify, on_reconnect)
        return self.listener

    def statuses(self) -> list[str]:
        return [d.current_status for d in self.store.deployments.values()]


async def test_run_once_converges_every_deployment_and_exits_0() -> None:
    """`run --once` reconciles what needs work, then exits 0 when all ended healthy."""
    loop = Loop()
    for env in ("dev", "staging", "prod"):
        loop.store.add_deployment(project="web", environment=env, image_ref="web:1")
    assert await asyncio.wait_for(loop.daemon.run(once=True), timeout=10) == 0
    assert loop.statuses() == ["healthy"] * 3
    assert loop.fetcher.fetched == ["ops"]
    assert loop.renderer.closed


async def test_run_once_exits_1_when_a_deployment_failed() -> None:
    """`run --once` exits 1 when something it touched did not end healthy or stopped."""
    loop = Loop(rollout="deadline", max_attempts=1)
    loop.store.add_deployment(project="web", environment="prod", image_ref="web:1")
    assert await asyncio.wait_for(loop.daemon.run(once=True), timeout=10) == 1
    assert loop.statuses() == ["failed"]


async def test_notify_supersedes_the_rollout_in_flight() -> None:
    """A NOTIFY for an in-flight deployment ends its rollout 'superseded', and the newer
    generation is reconciled next."""
    loop = Loop(rollout="hold")
    row = loop.store.add_deployment(project="web", environment="prod", image_ref="web:1")
    task = asyncio.create_task(loop.daemon.run())
    await eventually(lambda: loop.store.deployments[row.id].current_status == "syncing")
    loop.cluster.rollout = "healthy"
    loop.store.set_desired(row.id, image_ref="web:2")
    assert loop.listener is not None
    loop.listener.notify(str(row.id))
    await eventually(lambda: loop.store.deployments[row.id].current_status == "healthy")
    loop.daemon.stop()
    assert await asyncio.wait_for(task, timeout=5) == 0
    assert [h.status for h in loop.store.history_of(row.id)] == ["superseded", "healthy"]
    assert loop.store.deployments[row.id].current_image_ref == "web:2"


async def test_a_late_notify_for_the_generation_in_flight_does_not_supersede_it() -> None:
    """A NOTIFY that arrives after the claim already read its generation makes the daemon
    check the database, and the rollout at that generation goes on (it is not 'superseded')."""
    loop = Loop(rollout="hold", lease_s=60.0)
    row = loop.store.add_deployment(project="web", environment="prod", image_ref="web:1")
    task = asyncio.create_task(loop.daemon.run())
    await eventually(lambda: loop.store.deployments[row.id].current_status == "syncing")
    assert loop.listener is not None
    renewals = loop.store.calls.count("renew_leases")
    loop.listener.notify(str(row.id))
    await eventually(lambda: loop.store.calls.count("renew_leases") > renewals)
    await asyncio.sleep(0.2)  # what a supersession would take to be recorded
    assert loop.store.history_of(row.id) == []
    loop.daemon.stop()
    assert await asyncio.wait_for(task, timeout=5) == 0
    assert [h.status for h in loop.store.history_of(row.id)] == ["interrupted"]


async def test_lease_renewal_supersedes_without_a_notify() -> None:
    """A generation that moved is noticed at lease renewal even when its NOTIFY was lost."""
    loop = Loop(rollout="hold", lease_s=0.3)
    row = loop.store.add_deployment(project="web", environment="prod", image_ref="web:1")
    task = asyncio.create_task(loop.daemon.run())
    await eventually(lambda: loop.store.deployments[row.id].current_status == "syncing")
    loop.store.set_desired(row.id, image_ref="web:2")  # no notify
    await eventually(lambda: len(loop.store.history_of(row.id)) >= 1)
    loop.daemon.stop()
    await asyncio.wait_for(task, timeout=5)
    assert loop.store.history_of(row.id)[0].status == "superseded"


async def test_stop_drains_then_records_in_flight_work_as_interrupted() -> None:
    """On stop, a rollout that does not finish within the grace is recorded 'interrupted'
    once, and run() returns 0 promptly."""
    loop = Loop(rollout="hold")
    row = loop.store.add_deployment(project="web", environment="prod", image_ref="web:1")
    task = asyncio.create_task(loop.daemon.run())
    await eventually(lambda: loop.store.deployments[row.id].current_status == "syncing")
    loop.daemon.stop()
    assert await asyncio.wait_for(task, timeout=5) == 0
    assert [h.status for h in loop.store.history_of(row.id)] == ["interrupted"]
    assert loop.store.deployments[row.id].claimed_by is None


async def test_a_database_outage_does_not_stop_the_loop() -> None:
    """Claims that fail while the database is away are retried; the work then gets done."""
    loop = Loop()
    row = loop.store.add_deployment(project="web", environment="prod", image_ref="web:1")
    loop.store.faults["claim"] = [DatabaseUnavailable("away"), DatabaseUnavailable("away")]
    task = asyncio.create_task(loop.daemon.run())
    await eventually(lambda: loop.store.deployments[row.id].current_status == "healthy")
    loop.daemon.stop()
    assert await asyncio.wait_for(task, timeout=5) == 0
    assert loop.store.calls.count("claim") >= 3


async def test_concurrency_bounds_the_applies() -> None:
    """No more deployments are applying at once than RECONCILER_CONCURRENCY allows."""
    loop = Loop(concurrency=2)
    loop.cluster.applies_open.clear()
    for env in ("a", "b", "c", "d"):
        loop.store.add_deployment(project="web", environment=env, image_ref="web:1")
    task = asyncio.create_task(loop.daemon.run())
    await eventually(lambda: loop.statuses().count("syncing") == 2)
    await asyncio.sleep(0.2)
    assert loop.statuses().count("syncing") == 2
    loop.cluster.applies_open.set()
    await eventually(lambda: loop.statuses().count("healthy") == 4)
    loop.daemon.stop()
    await asyncio.wait_for(task, timeout=5)


async def test_waiting_for_health_holds_no_slot() -> None:
    """Rollouts waiting for health do not count against RECONCILER_CONCURRENCY: with a
    concurrency of 2, four rollouts that never finish all wait at once."""
    loop = Loop(rollout="hold", concurrency=2)
    for env in ("a", "b", "c", "d"):
        loop.store.add_deployment(project="web", environment=env, image_ref="web:1")
    task = asyncio.create_task(loop.daemon.run())
    await eventually(lambda: loop.statuses().count("syncing") == 4)
    loop.daemon.stop()
    await asyncio.wait_for(task, timeout=5)


async def test_a_retry_that_is_due_is_claimed_again() -> None:
    """A failed deployment whose retry is due is attempted again by a later pass."""
    loop = Loop(retry_base_s=0.05, retry_max_s=0.05)
    row = loop.store.add_deployment(project="web", environment="prod", image_ref="web:1")
    loop.renderer.errors.append(OpsRepoError("remote unreachable"))
    task = asyncio.create_task(loop.daemon.run())
    await eventually(lambda: loop.store.deployments[row.id].current_status == "healthy")
    loop.daemon.stop()
    await asyncio.wait_for(task, timeout=5)
    assert [h.status for h in loop.store.history_of(row.id)] == ["failed", "healthy"]


async def test_a_second_stop_interrupts_at_once() -> None:
    """Asked to stop twice, the daemon does not wait out the grace period: in-flight work is
    recorded as interrupted and run() returns."""
    loop = Loop(rollout="hold", shutdown_grace_s=60.0)
    row = loop.store.add_deployment(project="web", environment="prod", image_ref="web:1")
    task = asyncio.create_task(loop.daemon.run())
    await eventually(lambda: loop.store.deployments[row.id].current_status == "syncing")
    loop.daemon.stop()
    await asyncio.sleep(0.1)
    assert not task.done()
    loop.daemon.stop()
    assert await asyncio.wait_for(task, timeout=5) == 0
    assert [h.status for h in loop.store.history_of(row.id)] == ["interrupted"]


async def test_an_unforeseen_error_in_a_pass_does_not_stop_the_loop() -> None:
    """A pass that fails for a reason nobody foresaw is logged and retried; the work then gets
    done."""
    loop = Loop()
    row = loop.store.add_deployment(project="web", environment="prod", image_ref="web:1")
    loop.store.faults["claim"] = [RecursionError("maximum recursion depth exceeded")]
    task = asyncio.create_task(loop.daemon.run())
    await eventually(lambda: loop.store.deployments[row.id].current_status == "healthy")
    loop.daemon.stop()
    assert await asyncio.wait_for(task, timeout=5) == 0


async def test_history_retention_prunes_in_the_background() -> None:
    """With a retention set, old history is pruned beside the loop, which keeps serving."""
    loop = Loop(history_retention_days=0.0)
    row = loop.store.add_deployment(project="web", environment="prod", image_ref="web:1")
    task = asyncio.create_task(loop.daemon.run())
    await eventually(lambda: "prune_history" in loop.store.calls)
    await eventually(lambda: loop.store.deployments[row.id].current_status == "healthy")
    loop.daemon.stop()
    await asyncio.wait_for(task, timeout=5)


async def test_no_retention_prunes_nothing() -> None:
    """Without a retention setting, history is never pruned."""
    loop = Loop()
    loop.store.add_deployment(project="web", environment="prod", image_ref="web:1")
    task = asyncio.create_task(loop.daemon.run())
    await asyncio.sleep(0.3)
    loop.daemon.stop()
    await asyncio.wait_for(task, timeout=5)
    assert "prune_history" not in loop.store.calls


async def test_a_vanished_checkout_is_fetched_again_before_rendering() -> None:
    """A checkout whose files were deleted is synced again when a deployment needs it."""
    loop = Loop()
    row = loop.store.add_deployment(project="web", environment="prod", image_ref="web:1")
    task = asyncio.create_task(loop.daemon.run())
    await eventually(lambda: loop.store.deployments[row.id].current_status == "healthy")
    assert loop.fetcher.fetched == ["ops"]
    loop.fetcher.vanished.add("ops")
    loop.store.set_desired(row.id, image_ref="web:2")
    assert loop.listener is not None
    loop.listener.notify(str(row.id))
    await eventually(lambda: loop.store.deployments[row.id].current_image_ref == "web:2")
    loop.daemon.stop()
    assert await asyncio.wait_for(task, timeout=5) == 0
    assert loop.fetcher.fetched == ["ops", "ops"]
    assert not loop.fetcher.vanished


async def test_lease_renewal_learns_of_a_cancel_whose_notify_was_lost() -> None:
    """A cancel written while no NOTIFY reaches the daemon still ends the rollout, recorded
    'cancelled', at the next lease renewal."""
    loop = Loop(rollout="hold", lease_s=0.3)
    row = loop.store.add_deployment(project="web", environment="prod", image_ref="web:1")
    task = asyncio.create_task(loop.daemon.run())
    await eventually(lambda: loop.store.deployments[row.id].current_status == "syncing")
    current = loop.store.deployments[row.id]
    loop.store._put(current, cancel_requested_generation=current.attempt_generation)  # no notify
    await eventually(lambda: len(loop.store.history_of(row.id)) >= 1)
    loop.daemon.stop()
    await asyncio.wait_for(task, timeout=5)
    assert [h.status for h in loop.store.history_of(row.id)] == ["cancelled"]
