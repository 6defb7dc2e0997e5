"""Who wrote a deployment's objects last decides whether an attempt may trust its watch cache
to leave unchanged applies out: the in-memory store names that daemon as the real one does."""

from __future__ import annotations

import dataclasses
import datetime as dt

from reconciler.decide import RetryPolicy
from reconciler.model import AttemptResult, Deployment
from reconciler.recording import Options
from reconciler.testing.memory import InMemoryRenderer, InMemoryStore

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def _options(**changes: object) -> Options:
    options = Options(
        field_manager="reconciler",
        health_timeout_s=1.0,
        health_poll_s=0.01,
        retry=RetryPolicy(max_attempts=3, base_s=1.0, max_s=1.0),
        daemon_id="a",
        renderer=InMemoryRenderer(),
    )
    return dataclasses.replace(options, **changes)  # type: ignore[arg-type]


def _row(store: InMemoryStore, last_writer: str | None) -> Deployment:
    row = store.add_deployment(project="app", environment="prod", image_ref="reg/app:1")
    return dataclasses.replace(row, last_writer=last_writer)


def test_only_the_daemon_that_wrote_last_skips_unchanged_applies() -> None:
    """Skipping needs the setting on and this daemon as the last writer: another daemon's
    or an unknown writer means every object is applied."""
    store = InMemoryStore()
    assert _options().skips_for(_row(store, "a"))
    assert not _options().skips_for(_row(store, "b"))
    assert not _options().skips_for(_row(store, None))
    assert not _options(skip_unchanged=False).skips_for(_row(store, "a"))


async def _healthy_attempt(store: InMemoryStore, daemon_id: str) -> Deployment:
    [row] = await store.claim(daemon_id=daemon_id, limit=1, lease_s=30)
    started = await store.start_attempt(
        deployment_id=row.id,
        daemon_id=daemon_id,
        action="deploy",
        image_ref=row.image_ref,
        values_override={},
        generation=row.generation,
    )
    assert started is not None
    result = AttemptResult(
        action="deploy",
        status="healthy",
        image_ref=row.image_ref,
        values_override={},
        sha="abc",
        digest="d1",
        message="",
        attempts=0,
        retry_in_s=None,
    )
    assert await store.finish_attempt(
        deployment_id=row.id,
        daemon_id=daemon_id,
        started_at=started,
        generation=row.generation,
        result=result,
    )
    return row


async def test_the_memory_store_claims_name_the_last_writer() -> None:
    """A new row has no last writer; after a's attempt b's claim names a; after b's attempt is
    left open past its lease, c's claim (which closes it as interrupted) names b."""
    now = [NOW]
    store = InMemoryStore(clock=lambda: now[0])
    row = store.add_deployment(project="app", environment="prod", image_ref="reg/app:1")
    first = await _healthy_attempt(store, "a")
    assert first.last_writer is None
    store.set_desired(row.id, image_ref="reg/app:2")
    [second] = await store.claim(daemon_id="b", limit=1, lease_s=30)
    assert second.last_writer == "a"
    await store.start_attempt(
        deployment_id=row.id,
        daemon_id="b",
        action="deploy",
        image_ref="reg/app:2",
        values_override={},
        generation=second.generation,
    )
    now[0] = NOW + dt.timedelta(seconds=60)
    [third] = await store.claim(daemon_id="c", limit=1, lease_s=30)
    assert third.last_writer == "b"
