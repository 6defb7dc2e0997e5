"""Who wrote a deployment's objects last decides whether an attempt may trust its watch cache
to leave unchanged applies out: the in-memory store names that daemon as the real one does."""

from __future__ import annotations

import dataclasses
import datetime as dt

from reconciler.model import Deployment
from reconciler.recording import Options
from reconciler.testing.memory import InMemoryRenderer, InMemoryStore
from tests.support.attempts import DAEMON, options
from tests.support.store_steps import run_healthy, start

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def _options(**changes: object) -> Options:
    return dataclasses.replace(options(InMemoryRenderer()), **changes)  # type: ignore[arg-type]


def _row(store: InMemoryStore, last_writer: str | None) -> Deployment:
    row = store.add_deployment(project="app", environment="prod", image_ref="reg/app:1")
    return dataclasses.replace(row, last_writer=last_writer)


def test_only_the_daemon_that_wrote_last_skips_unchanged_applies() -> None:
    """Skipping needs the setting on and this daemon as the last writer: another daemon's
    or an unknown writer means every object is applied."""
    store = InMemoryStore()
    assert _options().skips_for(_row(store, DAEMON))
    assert not _options().skips_for(_row(store, "another-daemon"))
    assert not _options().skips_for(_row(store, None))
    assert not _options(skip_unchanged=False).skips_for(_row(store, DAEMON))


async def test_the_memory_store_claims_name_the_last_writer() -> None:
    """A new row has no last writer; after a's attempt b's claim names a; after b's attempt is
    left open past its lease, c's claim (which closes it as interrupted) names b."""
    now = [NOW]
    store = InMemoryStore(clock=lambda: now[0])
    row = store.add_deployment(project="app", environment="prod", image_ref="reg/app:1")
    first = await run_healthy(store, daemon_id="a")
    assert first.last_writer is None
    store.set_desired(row.id, image_ref="reg/app:2")
    [second] = await store.claim(daemon_id="b", limit=1, lease_s=30)
    assert second.last_writer == "a"
    await start(store, second, daemon_id="b")
    now[0] = NOW + dt.timedelta(seconds=60)
    [third] = await store.claim(daemon_id="c", limit=1, lease_s=30)
    assert third.last_writer == "b"
