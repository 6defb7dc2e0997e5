"""Fault injection and the request log."""

from __future__ import annotations

import asyncio
import json
import time

import aiohttp
import pytest

from reconciler.testing.fakekube import FakeKube
from tests.support.kubeapi import Api
from tests.support.manifests import DEPLOYMENTS, deployment


async def test_request_log_records_what_was_asked(api: Api, fakekube: FakeKube) -> None:
    """Each request is logged with method, path, query, field manager, content type, status."""
    fakekube.request_log.clear()
    await api.apply(f"{DEPLOYMENTS}/web", deployment(), manager="reconciler", dryRun="All")
    await api.get(f"{DEPLOYMENTS}/missing")
    applied, missing = fakekube.request_log
    assert applied.method == "PATCH"
    assert applied.path == f"{DEPLOYMENTS}/web"
    assert applied.field_manager == "reconciler"
    assert applied.content_type == "application/apply-patch+yaml"
    assert applied.dry_run is True
    assert applied.status == 201
    assert applied.query == {"fieldManager": "reconciler", "dryRun": "All"}
    assert missing.status == 404 and missing.method == "GET"
    assert applied.time <= missing.time <= time.time()


async def test_latency_delays_every_request(api: Api, fakekube: FakeKube) -> None:
    """latency_s delays answers."""
    fakekube.faults.latency_s = 0.2
    started = time.monotonic()
    await api.get("/version")
    assert time.monotonic() - started >= 0.2


async def test_error_kinds(api: Api, fakekube: FakeKube) -> None:
    """error_rate 1 answers 500, or 429 with Retry-After, as configured."""
    fakekube.faults.error_rate = 1.0
    fakekube.faults.error_kinds = ("500",)
    failed = await api.get("/api/v1/namespaces")
    assert failed.status == 500 and failed.body["reason"] == "InternalError"
    fakekube.faults.error_kinds = ("429",)
    fakekube.faults.retry_after_s = 7
    throttled = await api.get("/api/v1/namespaces")
    assert throttled.status == 429
    assert throttled.headers["Retry-After"] == "7"
    assert throttled.body["details"]["retryAfterSeconds"] == 7
    fakekube.faults.error_rate = 0.0
    assert (await api.get("/api/v1/namespaces")).status == 200
    assert [r.status for r in fakekube.request_log[-3:]] == [500, 429, 200]


async def test_partial_error_rate(api: Api, fakekube: FakeKube) -> None:
    """An error rate of one half fails some requests and lets others through."""
    fakekube.faults.error_rate = 0.5
    statuses = {(await api.get("/version")).status for _ in range(60)}
    assert statuses == {200, 500}


async def test_hung_requests(api: Api, fakekube: FakeKube) -> None:
    """A hang holds the request for hang_s (clients time out first) and then answers 504."""
    fakekube.faults.error_rate = 1.0
    fakekube.faults.error_kinds = ("hang",)
    fakekube.faults.hang_s = 5.0
    timeout = aiohttp.ClientTimeout(total=0.3)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        with pytest.raises(TimeoutError):
            async with session.get(f"{fakekube.url}/version"):
                pass
    fakekube.faults.hang_s = 0.05
    answer = await api.get("/version")
    assert answer.status == 504


async def test_down_answers_503_and_ends_watches(api: Api, fakekube: FakeKube) -> None:
    """down makes every request 503 and closes open watches; up again serves normally."""
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{fakekube.url}/api/v1/namespaces/default/configmaps?watch=true") as watch,
    ):
        fakekube.faults.down = True
        assert (await api.get("/version")).status == 503
        ended = await asyncio.wait_for(watch.content.read(), 5)
        assert ended == b""
    fakekube.faults.down = False
    assert (await api.get("/version")).status == 200


async def test_controllers_keep_running_while_the_api_is_down(api: Api, fakekube: FakeKube) -> None:
    """The cluster keeps rolling out while clients cannot reach it."""
    await api.apply(f"{DEPLOYMENTS}/web", deployment(replicas=1))
    fakekube.faults.down = True
    await asyncio.sleep(fakekube.rollout_delay_s * 3)
    stored = fakekube.get_object(
        api_version="apps/v1", kind="Deployment", name="web", namespace="default"
    )
    assert stored is not None and stored["status"].get("availableReplicas") == 1
    fakekube.faults.down = False
    body = (await api.get(f"{DEPLOYMENTS}/web")).body
    assert json.dumps(body["status"]) == json.dumps(stored["status"])
