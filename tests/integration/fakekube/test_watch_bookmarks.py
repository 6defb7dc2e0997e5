"""Watch bookmarks and 410 Expired for a compacted resourceVersion, with the official client."""

from __future__ import annotations

import asyncio
import importlib
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import pytest
import pytest_asyncio
from kubernetes.aio import client as aio_client
from kubernetes.aio.client.exceptions import ApiException

from reconciler.testing.fakekube import FakeKube
from tests.support.kubeapi import Api

aio_config: Any = importlib.import_module("kubernetes.aio.config")
aio_watch: Any = importlib.import_module("kubernetes.aio.watch")


@pytest_asyncio.fixture
async def core(kubeconfig_path: Path) -> AsyncIterator[Any]:
    """A ``kubernetes.aio`` CoreV1Api for fakekube."""
    api = await aio_config.new_client_from_config(str(kubeconfig_path))
    async with api:
        yield aio_client.CoreV1Api(api)


def configmap(name: str) -> dict[str, Any]:
    """A ConfigMap manifest."""
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"v": "0"}}


async def events_of(
    core: Any, until: int, *, within: int = 10, **options: Any
) -> list[dict[str, Any]]:
    """Events of a watch on ConfigMaps in ``default``, until ``until`` events or its end."""
    events: list[dict[str, Any]] = []

    async def stream() -> None:
        async with aio_watch.Watch().stream(
            core.list_namespaced_config_map, "default", timeout_seconds=within, **options
        ) as events_stream:
            async for event in events_stream:
                events.append(event)
                if len(events) >= until:
                    return

    await asyncio.wait_for(stream(), within + 5)
    return events


async def _changes(core: Any, name: str, count: int) -> str:
    """Creates ``name`` and patches it ``count`` times; returns its first resourceVersion."""
    created = await core.create_namespaced_config_map("default", cast(Any, configmap(name)))
    for index in range(count):
        await core.patch_namespaced_config_map(name, "default", {"data": {"v": str(index + 1)}})
    return str(created.metadata.resource_version)


async def test_bookmarks_come_every_interval_with_only_a_resource_version(
    core: Any, fakekube: FakeKube
) -> None:
    """With allowWatchBookmarks, BOOKMARKs come each interval carrying only resourceVersion."""
    fakekube.bookmark_interval_s = 0.3
    listed = await core.list_namespaced_config_map("default")
    version = listed.metadata.resource_version
    started = time.monotonic()
    events = await events_of(core, 3, resource_version=version, allow_watch_bookmarks=True)
    assert time.monotonic() - started >= 0.8
    assert [e["type"] for e in events] == ["BOOKMARK"] * 3
    for event in events:
        assert event["raw_object"] == {
            "kind": "ConfigMap",
            "apiVersion": "v1",
            "metadata": {"resourceVersion": str(fakekube.registry.store.resource_version)},
        }


async def test_no_bookmarks_unless_the_client_allows_them(api: Api, fakekube: FakeKube) -> None:
    """Without allowWatchBookmarks an idle watch stays silent until it times out."""
    fakekube.bookmark_interval_s = 0.1
    url = f"{fakekube.url}/api/v1/namespaces/default/configmaps?watch=true&timeoutSeconds=1"
    async with api.session.get(url) as response:
        assert await response.read() == b""


async def test_a_bookmark_comes_two_seconds_before_the_timeout(
    api: Api, fakekube: FakeKube
) -> None:
    """A watch with timeoutSeconds gets its last bookmark 2 s before it ends, as kube-apiserver."""
    url = (
        f"{fakekube.url}/api/v1/namespaces/default/configmaps?watch=true"
        "&allowWatchBookmarks=true&timeoutSeconds=3"
    )
    started = time.monotonic()
    async with api.session.get(url) as response:
        line = await asyncio.wait_for(response.content.readline(), 5)
        arrived = time.monotonic() - started
        assert await response.content.read() == b""
    assert json.loads(line)["type"] == "BOOKMARK"
    assert 0.7 <= arrived <= 2.5


async def test_watching_from_a_bookmark_loses_nothing(core: Any, fakekube: FakeKube) -> None:
    """A re-watch from a bookmark's resourceVersion gets exactly the changes after it."""
    fakekube.bookmark_interval_s = 0.2
    await core.create_namespaced_config_map("default", cast(Any, configmap("before")))
    (mark,) = await events_of(core, 1, resource_version="0", allow_watch_bookmarks=True)
    mark_version = mark["raw_object"]["metadata"]["resourceVersion"]
    assert mark["type"] == "ADDED"
    (mark,) = await events_of(core, 1, resource_version=mark_version, allow_watch_bookmarks=True)
    assert mark["type"] == "BOOKMARK"
    await core.create_namespaced_config_map("default", cast(Any, configmap("after")))
    events = await events_of(
        core, 1, resource_version=mark["raw_object"]["metadata"]["resourceVersion"]
    )
    assert [(e["type"], e["object"].metadata.name) for e in events] == [("ADDED", "after")]


async def test_too_old_version_raises_410_in_the_official_client(
    core: Any, fakekube: FakeKube
) -> None:
    """Past the watch history, the official client's watch raises ApiException 410 Expired."""
    fakekube.watch_history = 3
    first = await _changes(core, "c", 5)
    with pytest.raises(ApiException) as expired:
        await events_of(core, 1, resource_version=first)
    assert expired.value.status == 410
    assert expired.value.reason is not None
    assert expired.value.reason.startswith(f"Expired: too old resource version: {first} (")


async def test_list_then_watch_past_the_history_gets_an_expired_status(
    api: Api, core: Any, fakekube: FakeKube
) -> None:
    """A watch from a list's version after the history moved on opens with one ERROR event."""
    fakekube.watch_history = 3
    listed = (await core.list_namespaced_config_map("default")).metadata.resource_version
    await _changes(core, "c", 4)
    oldest = int(fakekube.registry.store.resource_version) - 3
    url = f"{fakekube.url}/api/v1/namespaces/default/configmaps?watch=true&resourceVersion={listed}"
    async with api.session.get(url) as response:
        assert response.status == 200
        lines = (await asyncio.wait_for(response.content.read(), 5)).splitlines()
    assert [json.loads(line) for line in lines] == [
        {
            "type": "ERROR",
            "object": {
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Failure",
                "message": f"too old resource version: {listed} ({oldest})",
                "reason": "Expired",
                "code": 410,
            },
        }
    ]
    events = await events_of(core, 3, within=2, resource_version=str(oldest))
    assert [e["object"].data["v"] for e in events] == ["2", "3", "4"]


async def test_the_history_is_kept_per_resource(core: Any, fakekube: FakeKube) -> None:
    """Changes to other resources do not expire a ConfigMap watch's resourceVersion."""
    fakekube.watch_history = 3
    first = await _changes(core, "c", 0)
    for index in range(5):
        secret = {"metadata": {"name": f"s{index}"}, "stringData": {"k": "v"}}
        await core.create_namespaced_secret("default", cast(Any, secret))
    await core.patch_namespaced_config_map("c", "default", {"data": {"v": "9"}})
    events = await events_of(core, 1, resource_version=first)
    assert [(e["type"], e["object"].data["v"]) for e in events] == [("MODIFIED", "9")]
