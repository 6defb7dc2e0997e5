"""Collection watches with the official client: every namespace, selectors, resourceVersions."""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import pytest
import pytest_asyncio
from kubernetes.aio import client as aio_client

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


def configmap(name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    """A ConfigMap manifest."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "labels": labels or {}},
        "data": {"v": "1"},
    }


async def watched(
    core: Any, until: int, *, within: float = 10.0, **options: Any
) -> list[dict[str, Any]]:
    """Events of a watch on ConfigMaps in every namespace, until ``until`` events or its end."""
    events: list[dict[str, Any]] = []
    watcher = aio_watch.Watch()

    async def stream() -> None:
        async with watcher.stream(
            core.list_config_map_for_all_namespaces, timeout_seconds=int(within), **options
        ) as events_stream:
            async for event in events_stream:
                events.append(event)
                if len(events) >= until:
                    return

    await asyncio.wait_for(stream(), within + 5)
    return events


def summary(events: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """(type, namespace, name) of each event."""
    return [
        (e["type"], e["raw_object"]["metadata"]["namespace"], e["raw_object"]["metadata"]["name"])
        for e in events
    ]


async def _namespaces(core: Any, *names: str) -> None:
    for name in names:
        await core.create_namespace(cast(Any, {"metadata": {"name": name}}))


async def test_all_namespace_label_watch_delivers_every_matching_change_in_order(
    core: Any,
) -> None:
    """A labelled watch over all namespaces gets each matching change once, in RV order."""
    await _namespaces(core, "team-a", "team-b")
    listed = await core.list_config_map_for_all_namespaces(label_selector="app=shop")
    version = listed.metadata.resource_version
    streaming = asyncio.create_task(
        watched(core, 6, label_selector="app=shop", resource_version=version)
    )
    await asyncio.sleep(0.2)
    shop = {"app": "shop"}
    await core.create_namespaced_config_map("team-a", cast(Any, configmap("a1", shop)))
    await core.create_namespaced_config_map("team-b", cast(Any, configmap("b1", shop)))
    await core.create_namespaced_config_map("team-b", cast(Any, configmap("other")))
    await core.patch_namespaced_config_map("a1", "team-a", {"data": {"v": "2"}})
    await core.patch_namespaced_config_map("other", "team-b", {"data": {"v": "2"}})
    await core.patch_namespaced_config_map("b1", "team-b", {"metadata": {"labels": {"app": "x"}}})
    await core.patch_namespaced_config_map("other", "team-b", {"metadata": {"labels": shop}})
    await core.delete_namespaced_config_map("a1", "team-a")
    events = await streaming
    assert summary(events) == [
        ("ADDED", "team-a", "a1"),
        ("ADDED", "team-b", "b1"),
        ("MODIFIED", "team-a", "a1"),
        ("DELETED", "team-b", "b1"),
        ("ADDED", "team-b", "other"),
        ("DELETED", "team-a", "a1"),
    ]
    versions = [int(e["raw_object"]["metadata"]["resourceVersion"]) for e in events]
    assert versions == sorted(set(versions))


async def test_field_selector_watch_sees_one_namespace(core: Any) -> None:
    """A watch over all namespaces with metadata.namespace= sees only that namespace."""
    await _namespaces(core, "team-a", "team-b")
    streaming = asyncio.create_task(
        watched(core, 2, field_selector="metadata.namespace=team-b", resource_version="0")
    )
    await asyncio.sleep(0.2)
    await core.create_namespaced_config_map("team-a", cast(Any, configmap("x")))
    await core.create_namespaced_config_map("team-b", cast(Any, configmap("y")))
    await core.delete_namespaced_config_map("y", "team-b")
    assert summary(await streaming) == [("ADDED", "team-b", "y"), ("DELETED", "team-b", "y")]


async def test_unset_version_starts_with_every_existing_object(core: Any) -> None:
    """A watch with no resourceVersion opens with ADDED for each existing matching object."""
    await _namespaces(core, "team-a", "team-b")
    await core.create_namespaced_config_map("team-a", cast(Any, configmap("a", {"w": "1"})))
    await core.create_namespaced_config_map("team-b", cast(Any, configmap("b", {"w": "1"})))
    await core.create_namespaced_config_map("team-b", cast(Any, configmap("c")))
    events = await watched(core, 2, label_selector="w=1")
    assert sorted(summary(events)) == [("ADDED", "team-a", "a"), ("ADDED", "team-b", "b")]


async def test_a_version_replays_exactly_the_changes_after_it(core: Any) -> None:
    """A watch from resourceVersion N gets the changes after N, none before, none twice."""
    await _namespaces(core, "team-a")
    first = await core.create_namespaced_config_map("team-a", cast(Any, configmap("a", {"w": "1"})))
    await core.create_namespaced_config_map("team-a", cast(Any, configmap("b", {"w": "1"})))
    await core.patch_namespaced_config_map("a", "team-a", {"data": {"v": "9"}})
    events = await watched(core, 5, within=2.0, resource_version=first.metadata.resource_version)
    assert summary(events) == [("ADDED", "team-a", "b"), ("MODIFIED", "team-a", "a")]


async def test_send_initial_events_false_starts_at_the_current_state(
    api: Api, fakekube: FakeKube
) -> None:
    """sendInitialEvents=false with no resourceVersion sends no synthetic ADDED events."""
    await api.post("/api/v1/namespaces/default/configmaps", configmap("old"))
    url = (
        f"{fakekube.url}/api/v1/configmaps?watch=true&sendInitialEvents=false"
        "&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true&timeoutSeconds=1"
    )
    async with api.session.get(url) as response:
        body = await response.read()
    assert response.status == 200
    assert body == b""


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("resourceVersionMatch=NotOlderThan", "forbidden for watch unless sendInitialEvents"),
        ("sendInitialEvents=true", "requires setting resourceVersionMatch to NotOlderThan"),
    ],
)
async def test_watch_options_kube_apiserver_forbids_are_422(
    api: Api, fakekube: FakeKube, query: str, message: str
) -> None:
    """resourceVersionMatch without sendInitialEvents, and the reverse, are 422 Invalid."""
    answer = await api.get(f"/api/v1/configmaps?watch=true&{query}")
    assert answer.status == 422
    assert answer.body["reason"] == "Invalid"
    assert message in answer.body["message"]
