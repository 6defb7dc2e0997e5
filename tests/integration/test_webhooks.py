"""Outgoing webhooks against real PostgreSQL, in-process daemons and a local receiver: once,
signed, both formats, the filters, retries, a hanging receiver, no daemon, two daemons."""

from __future__ import annotations

import asyncio
import collections
import json
import time
from typing import Any

import asyncpg
import pytest

from reconciler.db import asyncpg_dsn
from reconciler.delivery_format import DELIVERY_HEADER
from reconciler.errors import InputError
from tests.support.database import login_role
from tests.support.events import listening
from tests.support.gitrepo import add_projects
from tests.support.pipeline import Pipeline
from tests.support.waiting import eventually, wait_for_value
from tests.support.webhooks import receiving

_FAST_RETRIES: dict[str, Any] = {
    "webhook_max_attempts": 3,
    "webhook_retry_base_s": 0.05,
    "webhook_retry_max_s": 0.1,
}


async def _deliveries(pipeline: Pipeline, webhook: str | None = None) -> list[dict[str, Any]]:
    return await pipeline.store.recent_deliveries(webhook=webhook, limit=1000)


async def _settled(pipeline: Pipeline, webhook: str, *, count: int) -> list[dict[str, Any]]:
    """The webhook's deliveries once ``count`` of them exist and none is pending."""

    async def probe() -> list[dict[str, Any]] | None:
        rows = await _deliveries(pipeline, webhook)
        done = len(rows) >= count and all(r["status"] != "pending" for r in rows)
        return rows if done else None

    return await wait_for_value(
        probe,
        timeout_s=30,
        interval_s=0.05,
        failure=lambda: f"deliveries of {webhook} never settled",
    )


async def test_a_transition_is_delivered_once_with_a_valid_signature(pipeline: Pipeline) -> None:
    """A deploy's transitions reach a signed json webhook once each: the body is the event
    LISTEN sees, the signature verifies, each row is delivered at the first attempt."""
    async with receiving() as receiver, listening(pipeline.store.url) as events:
        await pipeline.store.add_webhook(name="ci", url=receiver.url("/ci"), secret="s3cret")
        await pipeline.start_daemon()
        await pipeline.deploy("app")
        rows = await _settled(pipeline, "ci", count=2)
        await events.wait_for(lambda e: e["to"] == "healthy")
    assert [(r["transition"], r["status"], r["attempts"], r["last_code"]) for r in rows] == [
        ("syncing -> healthy", "delivered", 1, 200),
        ("pending -> syncing", "delivered", 1, 200),
    ]
    requests = receiver.on("/ci")
    assert sorted(r.headers[DELIVERY_HEADER] for r in requests) == sorted(
        str(r["id"]) for r in rows
    )
    assert all(r.signed_by("s3cret", now=time.time()) for r in requests)
    sent = sorted(json.dumps(r.json(), sort_keys=True) for r in requests)
    published = [e for e in events.events if e["project"] == "app"]
    assert sent == sorted(json.dumps(e, sort_keys=True) for e in published)


async def test_formats_and_filters_choose_what_each_webhook_gets(pipeline: Pipeline) -> None:
    """Slack gets {"text": ...}; project, environment and status filters queue nothing for
    events they do not match (the rows are written with the transition)."""
    async with receiving() as receiver:
        store = pipeline.store
        await store.add_webhook(name="chat", url=receiver.url("/chat"), format="slack")
        await store.add_webhook(name="app-healthy", url=receiver.url("/h"), statuses=["healthy"])
        await store.add_webhook(name="other", url=receiver.url("/o"), project="other")
        await store.add_webhook(name="staging", url=receiver.url("/s"), environment="staging")
        await store.add_webhook(name="app-prod", url=receiver.url("/ap"), project="app")
        await pipeline.start_daemon()
        await pipeline.deploy("app", image_ref="reg/app:7")
        await _settled(pipeline, "chat", count=2)
        await _settled(pipeline, "app-prod", count=2)
        healthy = await _settled(pipeline, "app-healthy", count=1)
    texts = [r.json() for r in receiver.on("/chat")]
    assert {"text": "app/prod: syncing -&gt; healthy, reg/app:7"} in texts
    assert [r["transition"] for r in healthy] == ["syncing -> healthy"]
    assert await _deliveries(pipeline, "other") == []
    assert await _deliveries(pipeline, "staging") == []


async def test_a_receiver_answering_500_is_retried_then_marked_failed(pipeline: Pipeline) -> None:
    """Each attempt is recorded; after the last one the row is failed, naming the code, and
    the metric counts retries and the failure."""
    async with receiving() as receiver:
        receiver.answers["/broken"] = 500
        await pipeline.store.add_webhook(
            name="broken", url=receiver.url("/broken"), statuses=["healthy"]
        )
        daemon = await pipeline.start_daemon(**_FAST_RETRIES)
        await pipeline.deploy("app")
        [row] = await _settled(pipeline, "broken", count=1)
    assert (row["status"], row["attempts"], row["last_code"]) == ("failed", 3, 500)
    assert row["last_error"] == f"POST {receiver.url('/broken')}: answered HTTP 500"
    assert len(receiver.on("/broken")) == 3
    metrics = daemon.metrics.webhook_deliveries
    assert metrics.labels(outcome="retry")._value.get() == 2
    assert metrics.labels(outcome="failed")._value.get() == 1


async def test_a_hanging_receiver_delays_no_reconcile_nor_the_shutdown(pipeline: Pipeline) -> None:
    """With the receiver never answering (timeout 60 s) and holding the deliverer's only
    slot, the deployment becomes healthy while its deliveries wait, and the daemon stops at
    once, giving the rows back."""
    async with receiving() as receiver:
        receiver.hanging.add("/hang")
        await pipeline.store.add_webhook(name="hang", url=receiver.url("/hang"))
        await pipeline.start_daemon(webhook_timeout_s=60.0, webhook_concurrency=1)
        await pipeline.deploy("app")
        await pipeline.wait_for("app", until=lambda d: d.current_status == "healthy")
        await eventually(lambda: receiver.waiting >= 1, within=10)
        rows = await _deliveries(pipeline, "hang")
        assert rows and all(r["status"] == "pending" for r in rows)
        daemon, task, _kube = pipeline.daemons[0]
        daemon.stop()
        assert await asyncio.wait_for(task, timeout=10) == 0
        after = await _deliveries(pipeline, "hang")
    assert all(r["status"] == "pending" for r in after)
    interrupted = [r for r in after if r["last_error"]]
    assert interrupted and all(
        r["last_error"] == "the daemon shut down before the receiver answered" for r in interrupted
    )


async def test_deliveries_queued_while_no_daemon_runs_go_out_when_one_starts(
    pipeline: Pipeline,
) -> None:
    """A transition written while no daemon runs waits in the table, pending; the daemon
    started later delivers it."""
    async with receiving() as receiver:
        await pipeline.store.add_webhook(name="late", url=receiver.url("/late"))
        await pipeline.deploy("app")
        await pipeline.sql(
            "UPDATE deployments SET current_status = 'failed', status_message = 'while away' "
            "WHERE project = 'app'"
        )
        [waiting] = await _deliveries(pipeline, "late")
        assert (waiting["transition"], waiting["status"]) == ("pending -> failed", "pending")
        await pipeline.start_daemon()
        await _settled(pipeline, "late", count=1)
        await eventually(lambda: len(receiver.on("/late")) >= 1)
    sent = [r.json() for r in receiver.on("/late")]
    assert any(
        (e["from"], e["to"], e["message"]) == ("pending", "failed", "while away") for e in sent
    )


async def test_a_rolled_back_transition_queues_nothing(pipeline: Pipeline) -> None:
    """The outbox rows are written in the transition's transaction: a ROLLBACK leaves none."""
    await pipeline.store.add_webhook(name="any", url="http://127.0.0.1:9/any")
    await pipeline.deploy("app")
    conn = await asyncpg.connect(asyncpg_dsn(pipeline.store.url))
    try:
        transaction = conn.transaction()
        await transaction.start()
        await conn.execute("UPDATE deployments SET current_status = 'failed'")
        assert await conn.fetchval("SELECT count(*) FROM event_deliveries") == 1
        await transaction.rollback()
    finally:
        await conn.close()
    assert await _deliveries(pipeline, "any") == []


async def test_two_daemons_deliver_each_event_once(pipeline: Pipeline) -> None:
    """Two daemons share the outbox: every delivery reaches the receiver exactly once and is
    delivered at its first attempt."""
    names = [f"p{i}" for i in range(6)]
    add_projects(pipeline.ops, names)
    async with receiving() as receiver:
        await pipeline.store.add_webhook(name="both", url=receiver.url("/both"))
        await pipeline.start_daemon(daemon_id="daemon-a")
        await pipeline.start_daemon(daemon_id="daemon-b")
        for name in names:
            await pipeline.deploy(name)
        for name in names:
            await pipeline.wait_for(name, until=lambda d: d.current_status == "healthy")
        rows = await _settled(pipeline, "both", count=2 * len(names))
    ids = collections.Counter(r.headers[DELIVERY_HEADER] for r in receiver.on("/both"))
    assert sorted(ids) == sorted(str(r["id"]) for r in rows)
    assert set(ids.values()) == {1}
    assert {(r["status"], r["attempts"]) for r in rows} == {("delivered", 1)}


async def test_pipelines_cannot_touch_webhooks_and_readers_see_no_secret(
    pipeline: Pipeline,
) -> None:
    """reconciler_pipeline can neither read nor write either table; reconciler_reader reads
    the deliveries and the webhooks but not their secret nor URL."""
    await pipeline.store.add_webhook(name="ci", url="https://u:p@h.example/x", secret="s")
    admin = pipeline.store.url
    async with login_role(admin, member_of="reconciler_pipeline") as pipeline_url:
        conn = await asyncpg.connect(asyncpg_dsn(pipeline_url))
        try:
            for statement in (
                "SELECT name FROM event_webhooks",
                "SELECT id FROM event_deliveries",
                "INSERT INTO event_webhooks (name, url) VALUES ('x', 'http://evil.test/')",
                "SELECT reconciler_queue_deliveries('{}'::jsonb)",
            ):
                with pytest.raises(asyncpg.InsufficientPrivilegeError):
                    await conn.execute(statement)
        finally:
            await conn.close()
    async with login_role(admin, member_of="reconciler_reader") as reader_url:
        conn = await asyncpg.connect(asyncpg_dsn(reader_url))
        try:
            assert await conn.fetchval("SELECT name FROM event_webhooks") == "ci"
            assert await conn.fetchval("SELECT count(*) FROM event_deliveries") == 0
            for column in ("secret", "url"):
                with pytest.raises(asyncpg.InsufficientPrivilegeError):
                    await conn.execute(f"SELECT {column} FROM event_webhooks")
        finally:
            await conn.close()


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"url": "ftp://h.example/x"}, "event_webhooks_url_is_http"),
        ({"name": "Not A Slug"}, "event_webhooks_name_is_slug"),
        ({"format": "xml"}, "event_webhooks_format_known"),
        ({"statuses": ["nope"]}, "event_webhooks_statuses_known"),
    ],
)
async def test_the_table_refuses_bad_webhooks_naming_the_constraint(
    pipeline: Pipeline, fields: dict[str, Any], named: str
) -> None:
    """A writer in psql gets the same checks as the CLI, by constraint name."""
    values: dict[str, Any] = {"name": "ok", "url": "https://h.example/x"}
    with pytest.raises(InputError, match=named):
        await pipeline.store.add_webhook(**{**values, **fields})


async def test_the_history_retention_deletes_old_finished_deliveries(pipeline: Pipeline) -> None:
    """With RECONCILER_HISTORY_RETENTION_DAYS, the daemon deletes delivered and failed rows
    older than that; pending ones and recent ones stay."""
    await pipeline.store.add_webhook(name="old", url="http://127.0.0.1:9/old")
    await pipeline.deploy("app")
    for status in ("failed", "pending", "failed", "pending"):
        await pipeline.sql(f"UPDATE deployments SET current_status = '{status}'")
    ids = [r["id"] for r in await _deliveries(pipeline, "old")]
    assert len(ids) == 4
    await pipeline.sql("UPDATE event_webhooks SET enabled = false")  # nothing is sent here
    await pipeline.sql(
        "UPDATE event_deliveries SET status = (ARRAY['delivered', 'failed', 'pending', "
        "'delivered'])[id - $1 + 1], created_at = now() - interval '3 days' "
        "WHERE id <> $2",
        min(ids),
        max(ids),
    )
    await pipeline.sql("UPDATE event_deliveries SET status = 'delivered' WHERE id = $1", max(ids))
    await pipeline.start_daemon(history_retention_days=1.0)

    async def remaining() -> list[tuple[int, str]] | None:
        rows = [(r["id"], r["status"]) for r in await _deliveries(pipeline, "old")]
        return rows if len(rows) == 2 else None

    kept: list[tuple[int, str]] = await wait_for_value(
        remaining, timeout_s=30, interval_s=0.05, failure=lambda: "nothing was pruned"
    )
    assert sorted(kept) == [(min(ids) + 2, "pending"), (max(ids), "delivered")]


async def test_a_locked_webhooks_table_does_not_fail_the_transition(pipeline: Pipeline) -> None:
    """With event_webhooks locked by someone else, a transition is still written (after the
    queueing's 2 s lock timeout), only its deliveries are skipped."""
    await pipeline.store.add_webhook(name="any", url="http://127.0.0.1:9/any")
    await pipeline.deploy("app")
    locker = await asyncpg.connect(asyncpg_dsn(pipeline.store.url))
    try:
        transaction = locker.transaction()
        await transaction.start()
        await locker.execute("LOCK TABLE event_webhooks IN ACCESS EXCLUSIVE MODE")
        status = await pipeline.sql("UPDATE deployments SET current_status = 'failed'")
        await transaction.rollback()
    finally:
        await locker.close()
    assert status == "UPDATE 1"
    deployment = await pipeline.store.get_deployment(project="app", environment="prod")
    assert deployment is not None and deployment.current_status == "failed"
    assert await _deliveries(pipeline, "any") == []
