"""wait_for_health over a live view: how a wait looks at the cache after a change."""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from typing import Any

from reconciler.cluster.health import HealthStatus
from reconciler.model import ObjectRef
from reconciler.testing.memory import InMemoryCluster
from reconciler.waiting import LIVE_SETTLE_S, wait_for_health
from tests.unit.cluster.health.objects import deployment

ROLLING = deployment(status={"observedGeneration": 3})
ROLLED = deployment()


class BurstView:
    """A view whose object changes twice in a burst right after the first wake: the second
    change a few milliseconds after the wake, with no wake of its own."""

    def __init__(self) -> None:
        self.obj: dict[str, Any] = ROLLING
        self.looks = 0
        self.wakes = 0

    def track(self, api_version: str, kind: str) -> None:
        pass

    def get(self, ref: ObjectRef, *, managed_fields: bool = True) -> dict[str, Any] | None:
        self.looks += 1
        return self.obj

    def pods(
        self, namespace: str, selector: str, *, managed_fields: bool = True
    ) -> list[dict[str, Any]]:
        return []

    def is_synced(self, api_version: str, kind: str) -> bool:
        return True

    def caught_up(self, ref: ObjectRef) -> bool:
        return True

    async def wait_changed(
        self, refs: Collection[ObjectRef], namespaces: Collection[str] = (), *, timeout_s: float
    ) -> bool:
        self.wakes += 1
        if self.wakes > 1:
            await asyncio.sleep(timeout_s)  # no further change comes
            return False
        asyncio.get_running_loop().call_later(LIVE_SETTLE_S / 4, self._roll)
        return True

    def _roll(self) -> None:
        self.obj = ROLLED


async def test_a_wake_lets_the_changes_of_its_burst_arrive_before_looking() -> None:
    """After a change wakes it, the wait looks once the burst has arrived: it sees the last
    change of the burst at once instead of waiting for a wake that never comes."""
    view = BurstView()

    async def never() -> bool:
        return False

    outcome = await asyncio.wait_for(
        wait_for_health(
            objects=[ROLLED],
            applied=[ROLLED],
            cluster=InMemoryCluster(),
            live=view,
            timeout_s=30.0,
            poll_interval_s=0.5,
            should_stop=never,
        ),
        timeout=0.5,  # without the settle, the second look waits out LIVE_RECHECK_S (1 s)
    )
    assert outcome.status == HealthStatus.HEALTHY
    assert (view.looks, view.wakes) == (2, 1)
