"""One attempt through a store's own steps (claim, start, finish), for the real store and the
in-memory one alike: tests of what the store records, without a cluster or a render."""

from __future__ import annotations

import datetime as dt

from reconciler.model import AttemptResult, Deployment
from reconciler.ports import DaemonStore


def healthy_result(image: str = "reg/app:1") -> AttemptResult:
    """A healthy deploy of ``image`` at commit abc."""
    return AttemptResult(
        action="deploy",
        status="healthy",
        image_ref=image,
        values_override={},
        sha="abc",
        digest="d1",
        message="",
        attempts=0,
        retry_in_s=None,
    )


async def start(store: DaemonStore, d: Deployment, *, daemon_id: str) -> dt.datetime:
    """Start a deploy attempt of the claimed row ``d`` as ``daemon_id``."""
    started = await store.start_attempt(
        deployment_id=d.id,
        daemon_id=daemon_id,
        action="deploy",
        image_ref=d.image_ref,
        values_override={},
        generation=d.generation,
    )
    assert started is not None
    return started


async def run_healthy(store: DaemonStore, *, daemon_id: str) -> Deployment:
    """Claim the one deployment needing work as ``daemon_id`` and run it to healthy; the
    row as the claim returned it."""
    [d] = await store.claim(daemon_id=daemon_id, limit=1, lease_s=30)
    started = await start(store, d, daemon_id=daemon_id)
    assert await store.finish_attempt(
        deployment_id=d.id,
        daemon_id=daemon_id,
        started_at=started,
        generation=d.generation,
        result=healthy_result(d.image_ref),
    )
    return d
