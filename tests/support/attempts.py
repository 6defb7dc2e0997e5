"""One claimed deployment on the in-memory database, cluster and renderer, for the attempt's
unit tests."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from reconciler.attempt import Hooks, Options, Outcome, run_attempt
from reconciler.decide import RetryPolicy
from reconciler.model import Checkout, Deployment, ObjectRef
from reconciler.testing.memory import InMemoryCluster, InMemoryRenderer, InMemoryStore

DAEMON = "test-daemon"
DEPLOYMENT = ObjectRef("apps/v1", "Deployment", "web", "web-prod")
CONFIG = ObjectRef("v1", "ConfigMap", "web-values", "web-prod")


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


async def attempt(world: World, *, hooks: Hooks | None = None, self_heal: bool = True) -> Outcome:
    """Claim the world's deployment and run one attempt at it."""
    [row] = await world.store.claim(daemon_id=DAEMON, limit=1, lease_s=60)
    return await run_attempt(
        row,
        store=world.store,
        cluster=world.cluster,
        checkout=world.checkout,
        options=dataclasses.replace(options(world.renderer), self_heal=self_heal),
        superseded=lambda: False,
        hooks=hooks,
    )
