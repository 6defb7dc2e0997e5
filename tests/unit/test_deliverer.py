"""The deliverer over the in-memory outbox and a scripted receiver: deliver once, retry then
fail, time out, bound its work, survive the database, stop at once."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest

from reconciler.deliveries import Deliverer, DeliveryOptions
from reconciler.delivery_format import RetryPolicy
from reconciler.testing.memory import InMemoryDeliveries
from tests.support.waiting import eventually
from tests.support.webhooks import ScriptedPoster

EVENT = {"id": 1, "project": "web", "environment": "prod", "from": "syncing", "to": "healthy"}


def _options(**changes: object) -> DeliveryOptions:
    values: dict[str, object] = {
        "daemon_id": "daemon-a",
        "timeout_s": 5.0,
        "concurrency": 4,
        "poll_interval_s": 60.0,  # long: what is found sooner was found by a wake-up
        "retry": RetryPolicy(max_attempts=3, base_s=0.01, max_s=0.02),
    }
    return DeliveryOptions(**{**values, **changes})  # type: ignore[arg-type]


@contextlib.asynccontextmanager
async def running(deliverer: Deliverer) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(deliverer.run())
    try:
        yield task
    finally:
        deliverer.stop()
        await asyncio.wait_for(task, timeout=10)


async def test_a_due_delivery_is_posted_once_signed() -> None:
    """A queued delivery is POSTed once as JSON with a valid signature and recorded
    delivered with its code; the outcome is counted."""
    outbox = InMemoryDeliveries()
    row = outbox.queue(EVENT, secret="s3cret")
    poster = ScriptedPoster()
    outcomes: list[str] = []
    deliverer = Deliverer(store=outbox, options=_options(), poster=poster, outcome=outcomes.append)
    async with running(deliverer):
        await eventually(lambda: row.status == "delivered")
    [request] = poster.received
    assert request.json() == EVENT
    assert request.signed_by("s3cret", now=time.time())
    assert (row.attempts, row.last_code, row.last_error, outcomes) == (1, 200, None, ["delivered"])
    assert poster.closed


async def test_a_wake_up_finds_a_delivery_queued_while_it_waited() -> None:
    """A delivery queued after the first look is found on wake(), not at the next poll."""
    outbox = InMemoryDeliveries()
    poster = ScriptedPoster()
    deliverer = Deliverer(store=outbox, options=_options(), poster=poster)
    async with running(deliverer):
        await asyncio.sleep(0.05)
        row = outbox.queue(EVENT)
        deliverer.wake()
        await eventually(lambda: row.status == "delivered")


async def test_a_receiver_answering_500_is_retried_then_marked_failed() -> None:
    """Each 500 is recorded and retried after the backoff, until the attempts run out: then
    failed, naming the code."""
    outbox = InMemoryDeliveries()
    row = outbox.queue(EVENT)
    outcomes: list[str] = []
    deliverer = Deliverer(
        store=outbox,
        options=_options(poll_interval_s=0.02),
        poster=ScriptedPoster(codes=[500, 500, 500]),
        outcome=outcomes.append,
    )
    async with running(deliverer):
        await eventually(lambda: row.status == "failed")
    assert (row.attempts, row.codes) == (3, [500, 500, 500])
    assert row.last_error == "POST http://receiver.test/hook: answered HTTP 500"
    assert outcomes == ["retry", "retry", "failed"]


async def test_a_retry_that_succeeds_is_delivered() -> None:
    """A connection error, then a 200: delivered on the second attempt."""
    outbox = InMemoryDeliveries()
    row = outbox.queue(EVENT)
    error = aiohttp.ClientConnectionError("Cannot connect to host receiver.test:80")
    deliverer = Deliverer(
        store=outbox, options=_options(poll_interval_s=0.02), poster=ScriptedPoster([error])
    )
    async with running(deliverer):
        await eventually(lambda: row.status == "delivered")
    assert (row.attempts, row.codes) == (2, [None, 200])


async def test_an_error_names_the_url_without_its_credentials() -> None:
    """A failed POST's error names the URL with the password and a token path masked."""
    outbox = InMemoryDeliveries()
    url = "https://bot:hunter2@hooks.example.com/services/T0123ABCDE/B0123ABCDE/aB3dE6gH9jK2mN5p"
    row = outbox.queue(EVENT, url=url)
    failure = aiohttp.ClientConnectionError(f"Cannot connect to {url}")
    later = RetryPolicy(max_attempts=3, base_s=60.0, max_s=60.0)
    deliverer = Deliverer(
        store=outbox, options=_options(retry=later), poster=ScriptedPoster([failure])
    )
    async with running(deliverer):
        await eventually(lambda: row.last_error is not None)
    assert row.last_error is not None
    assert "hunter2" not in row.last_error and "aB3dE6gH9jK2mN5p" not in row.last_error
    assert row.last_error.startswith("POST https://***@hooks.example.com/services/")
    assert "ClientConnectionError" in row.last_error


async def test_a_hanging_receiver_times_out_and_is_retried() -> None:
    """A POST with no answer within the timeout is an attempt with no code, retried (and
    failed once the attempts run out)."""
    outbox = InMemoryDeliveries()
    row = outbox.queue(EVENT)
    poster = ScriptedPoster(hang=True)
    twice = RetryPolicy(max_attempts=2, base_s=0.01, max_s=0.01)
    deliverer = Deliverer(
        store=outbox, options=_options(timeout_s=0.05, retry=twice), poster=poster
    )
    async with running(deliverer):
        await eventually(lambda: row.status == "failed")
    assert row.codes == [None, None]
    assert row.last_error == "POST http://receiver.test/hook: no answer within 0.05 s"


async def test_stop_returns_at_once_with_a_hanging_receiver_and_gives_the_row_back() -> None:
    """Stopping while a POST hangs ends the run promptly; the row is due again, its
    interrupted attempt not counted."""
    outbox = InMemoryDeliveries()
    row = outbox.queue(EVENT)
    poster = ScriptedPoster(hang=True)
    deliverer = Deliverer(store=outbox, options=_options(timeout_s=600.0), poster=poster)
    task = asyncio.create_task(deliverer.run())
    await eventually(lambda: poster.in_flight == 1)
    deliverer.stop()
    await asyncio.wait_for(task, timeout=2)
    assert (row.status, row.attempts, row.claimed_by) == ("pending", 0, None)
    assert row.last_error == "the daemon shut down before the receiver answered"


async def test_no_more_posts_are_in_flight_than_the_concurrency() -> None:
    """With every receiver hanging, at most `concurrency` POSTs are in flight."""
    outbox = InMemoryDeliveries()
    for _ in range(6):
        outbox.queue(EVENT)
    poster = ScriptedPoster(hang=True)
    deliverer = Deliverer(store=outbox, options=_options(concurrency=2), poster=poster)
    async with running(deliverer):
        await eventually(lambda: poster.in_flight == 2)
        deliverer.wake()
        await asyncio.sleep(0.05)
        assert poster.most_in_flight == 2
        assert sum(1 for r in outbox.rows.values() if r.claimed_by) == 2


async def test_a_database_outage_is_survived() -> None:
    """Failed claims are logged and retried with backoff; once the database answers the
    delivery goes out."""
    outbox = InMemoryDeliveries()
    row = outbox.queue(EVENT)
    outbox.faults["claim_deliveries"] = 2
    deliverer = Deliverer(
        store=outbox, options=_options(poll_interval_s=0.02), poster=ScriptedPoster()
    )
    async with running(deliverer):
        await eventually(lambda: row.status == "delivered", within=10)
    assert outbox.faults["claim_deliveries"] == 0


async def test_an_unrecorded_outcome_leaves_the_row_to_its_lease() -> None:
    """When recording the answer fails, the run goes on and the row stays claimed (its lease
    makes it due again later): never lost, never a crash."""
    outbox = InMemoryDeliveries()
    row = outbox.queue(EVENT)
    outbox.faults["finish_delivery"] = 1
    poster = ScriptedPoster()
    deliverer = Deliverer(store=outbox, options=_options(), poster=poster)
    async with running(deliverer) as task:
        await eventually(lambda: outbox.faults["finish_delivery"] == 0)
        await eventually(lambda: deliverer.in_flight == 0)
        assert not task.done()
    assert (row.status, row.claimed_by) == ("pending", "daemon-a")


@pytest.mark.parametrize("format", ["json", "slack"])
async def test_an_unknown_format_in_a_row_is_an_attempt_error(format: str) -> None:
    """A row whose format the daemon does not know fails its attempts with words, as a
    known one is delivered."""
    outbox = InMemoryDeliveries()
    good = outbox.queue(EVENT, format=format)
    bad = outbox.queue(EVENT, format="xml")
    deliverer = Deliverer(
        store=outbox, options=_options(poll_interval_s=0.02), poster=ScriptedPoster()
    )
    async with running(deliverer):
        await eventually(lambda: good.status == "delivered" and bad.status == "failed")
    assert bad.last_error is not None and "unknown webhook format 'xml'" in bad.last_error
