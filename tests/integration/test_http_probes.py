"""The daemon's HTTP server against real PostgreSQL and fakekube: probes, metrics, shutdown."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiohttp
import pytest

from reconciler.db import Store
from reconciler.model import Deployment
from tests.support.own_postgres import own_postgres
from tests.support.pipeline import Pipeline, app_pipeline
from tests.support.probes import (
    EPHEMERAL,
    get,
    port_of,
    scrape,
    total,
    value,
    wait_for_answer,
)
from tests.support.waiting import wait_until


def _healthy(d: Deployment) -> bool:
    return d.current_status == "healthy"


async def test_probes_answer_ok_with_a_healthy_daemon(pipeline: Pipeline) -> None:
    """/livez and /readyz answer 200 once the daemon listens; /readyz says each check is ok."""
    daemon = await pipeline.start_daemon(http_address=EPHEMERAL)
    port = await port_of(daemon)
    body = await wait_for_answer(port, "/readyz", status=200)
    assert json.loads(body) == {"database": "ok", "listen": "ok", "cluster": "ok"}
    assert await get(port, "/livez") == (200, "ok\n")


async def test_metrics_move_with_a_reconcile(pipeline: Pipeline) -> None:
    """A deploy counts one healthy attempt, one observation of the histogram, more API
    requests, and shows among the deployments by status."""
    daemon = await pipeline.start_daemon(http_address=EPHEMERAL)
    port = await port_of(daemon)
    await wait_for_answer(port, "/readyz", status=200)
    before = await scrape(port)
    assert value(before, "reconciler_attempts_total", outcome="healthy") == 0

    await pipeline.deploy("app")
    await pipeline.wait_for("app", until=_healthy)
    after = await scrape(port)

    assert value(after, "reconciler_attempts_total", outcome="healthy") == 1
    count = "reconciler_reconcile_duration_seconds_count"
    assert value(after, count, action="deploy", outcome="healthy") == 1
    assert value(after, "reconciler_deployments", status="healthy") == 1
    requests = "reconciler_kubernetes_requests_total"
    assert total(after, requests) > total(before, requests)
    # The server-side applies created the objects: 201, as the API server answers.
    assert value(after, requests, verb="patch", code="201") > 0
    assert value(after, "reconciler_repo_sync_duration_seconds_count", repo="ops") >= 1
    assert ("reconciler_repo_sync_age_seconds", (("repo", "ops"),)) in after
    assert value(after, "reconciler_in_flight", state="applying") == 0
    assert value(after, "reconciler_watch_cache_objects") > 0


async def test_shutdown_is_prompt_with_a_scrape_connection_open(pipeline: Pipeline) -> None:
    """A stopped daemon ends, and frees its port, though a client keeps a connection open."""
    daemon = await pipeline.start_daemon(http_address=EPHEMERAL)
    port = await port_of(daemon)
    _, task, _ = pipeline.daemons[-1]
    async with aiohttp.ClientSession() as keep_alive:
        async with keep_alive.get(f"http://127.0.0.1:{port}/livez") as response:
            assert response.status == 200
        daemon.stop()
        # The grace period is 5 s and nothing is in flight: the open connection must not
        # hold the daemon for aiohttp's default minute.
        assert await asyncio.wait_for(asyncio.shield(task), timeout=4) == 0
    with pytest.raises(aiohttp.ClientConnectionError):
        await get(port, "/livez")


async def test_readyz_names_the_database_while_postgres_is_down(tmp_path: Path) -> None:
    """PostgreSQL down: /readyz answers 503 naming the database, /livez stays 200 (the daemon
    is rightly waiting); PostgreSQL back: /readyz answers 200 again."""
    async with own_postgres() as server:
        store = await Store.connect(server.url("reconciler"), pool_size=4)
        try:
            async with app_pipeline(store=store, tmp_path=tmp_path) as pipeline:
                daemon = await pipeline.start_daemon(http_address=EPHEMERAL)
                port = await port_of(daemon)
                await wait_for_answer(port, "/readyz", status=200)

                await asyncio.to_thread(server.kill)
                body = await wait_for_answer(port, "/readyz", status=503, containing="database")
                checks = json.loads(body)
                assert checks["database"].startswith("error: ")
                assert checks["cluster"] == "ok"
                # Passes fail and back off meanwhile, and the loop keeps turning.
                seen = daemon.heartbeat
                await wait_until(
                    lambda: daemon.heartbeat > seen, timeout_s=30, what="another loop turn"
                )
                assert await get(port, "/livez") == (200, "ok\n")

                await asyncio.to_thread(server.restart)
                body = await wait_for_answer(port, "/readyz", status=200)
                assert json.loads(body)["database"] == "ok"
                assert await get(port, "/livez") == (200, "ok\n")
        finally:
            await store.close()
