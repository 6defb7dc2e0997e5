"""One claimed deployment on the in-memory database, cluster and renderer, for the attempt's
unit tests."""

from __future__ import annotations

from pathlib import Path

from reconciler.attempt import Options, Outcome, run_attempt
from reconciler.decide import RetryPolicy
from reconciler.model import Checkout, Deployment
from reconciler.testing.memory import InMemoryCluster, InMemoryRenderer, InMemoryStore

DAEMON = "test-daemon"


def options(renderer: InMemoryRenderer, *, max_attempts: int = 3) -> Options:
    return Options(
        field_manager="reconciler",
        health_timeout_s=2.0,
        health_poll_s=0.01,
        retry=RetryPolicy(max_attempts=max_attempts, base_s=10.0, max_s=60.0),
        daemon_id=DAEMON,
        renderer=renderer,
    )


class World:
    """A store with one claimed deployment, a cluster and a renderer."""

    def __init__(self, *, rollout: str = "healthy") -> None:
        self.store = InMemoryStore()
        self.cluster = InMemoryCluster(rollout=rollout)
        self.renderer = InMemoryRenderer()
        self.checkout = Checkout(
            name="ops", path=Path("/memory/ops"), subdir="", sha="c0ffee", error=None
        )
        self.row = self.store.add_deployment(project="web", environment="prod", image_ref="web:1")

    async def claimed(self) -> Deployment:
        [row] = await self.store.claim(daemon_id=DAEMON, limit=1, lease_s=60)
        return row

    async def attempt(self, *, superseded: bool = False, max_attempts: int = 3) -> Outcome:
        return await run_attempt(
            await self.claimed(),
            store=self.store,
            cluster=self.cluster,
            checkout=self.checkout,
            options=options(self.renderer, max_attempts=max_attempts),
            superseded=lambda: superseded,
        )

    @property
    def current(self) -> Deployment:
        return self.store.deployments[self.row.id]
