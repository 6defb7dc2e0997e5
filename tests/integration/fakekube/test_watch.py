"""Watch semantics: initial state, resourceVersion replay, selectors, expiry, bookmarks."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp

from reconciler.testing.fakekube import FakeKube
from reconciler.testing.fakekube.store import HISTORY_SIZE
from tests.support.kubeapi import Api

CONFIGMAPS = "/api/v1/namespaces/default/configmaps"


def configmap(name: str, value: str = "1", labels: dict[str, str] | None = None) -> dict[str, Any]:
    """A ConfigMap manifest."""
    meta: dict[str, Any] = {"name": name}
    if labels:
        meta["labels"] = labels
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"v": value}}


async def _collect(url: str, count: int, within: float = 5.0) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        assert response.status == 200
        while len(events) < count:
            line = await asyncio.wait_for(response.content.readline(), within)
            if not line:
                break
            events.append(json.loads(line))
    return events


async def test_watch_without_version_starts_with_the_current_state(
    api: Api, fakekube: FakeKube
) -> None:
    """A watch from no resourceVersion sends ADDED for existing objects, then changes."""
    await api.post(CONFIGMAPS, configmap("a"))
    url = f"{fakekube.url}{CONFIGMAPS}?watch=true"
    collecting = asyncio.create_task(_collect(url, 3))
    await asyncio.sleep(0.1)
    await api.patch(f"{CONFIGMAPS}/a", {"data": {"v": "2"}}, "application/merge-patch+json")
    await api.delete(f"{CONFIGMAPS}/a")
    events = await collecting
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("ADDED", "a"),
        ("MODIFIED", "a"),
        ("DELETED", "a"),
    ]
    assert events[1]["object"]["data"] == {"v": "2"}


async def test_watch_from_a_version_replays_what_followed(api: Api, fakekube: FakeKube) -> None:
    """A watch from resourceVersion N replays exactly the later changes."""
    first = (await api.post(CONFIGMAPS, configmap("a"))).body
    version = first["metadata"]["resourceVersion"]
    await api.post(CONFIGMAPS, configmap("b"))
    await api.patch(f"{CONFIGMAPS}/a", {"data": {"v": "3"}}, "application/merge-patch+json")
    url = f"{fakekube.url}{CONFIGMAPS}?watch=1&resourceVersion={version}"
    events = await _collect(url, 2)
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("ADDED", "b"),
        ("MODIFIED", "a"),
    ]


async def test_label_selector_watch_sees_objects_enter_and_leave(
    api: Api, fakekube: FakeKube
) -> None:
    """With a label selector, relabelling shows as ADDED and DELETED."""
    await api.post(CONFIGMAPS, configmap("a"))
    listed = (await api.get(CONFIGMAPS)).body["metadata"]["resourceVersion"]
    url = f"{fakekube.url}{CONFIGMAPS}?watch=true&labelSelector=team%3Dx&resourceVersion={listed}"
    collecting = asyncio.create_task(_collect(url, 2))
    await asyncio.sleep(0.1)
    path = f"{CONFIGMAPS}/a"
    await api.patch(path, {"metadata": {"labels": {"team": "x"}}}, "application/merge-patch+json")
    await api.patch(path, {"metadata": {"labels": {"team": "y"}}}, "application/merge-patch+json")
    events = await collecting
    assert [e["type"] for e in events] == ["ADDED", "DELETED"]


async def test_too_old_version_is_410_expired(api: Api, fakekube: FakeKube) -> None:
    """A resourceVersion older than the history answers an ERROR event with 410 Expired."""
    store = fakekube.registry.store
    for index in range(HISTORY_SIZE + 5):
        store.put(
            ("", "configmaps"),
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {
                    "name": f"bulk-{index % 3}",
                    "namespace": "default",
                    "uid": f"uid-{index % 3}",
                    "resourceVersion": str(store.next_version()),
                },
            },
            None,
        )
    events = await _collect(f"{fakekube.url}{CONFIGMAPS}?watch=true&resourceVersion=1", 1)
    assert events[0]["type"] == "ERROR"
    assert events[0]["object"]["code"] == 410
    assert events[0]["object"]["reason"] == "Expired"


async def test_initial_events_end_with_a_bookmark(api: Api, fakekube: FakeKube) -> None:
    """sendInitialEvents with bookmarks ends the initial state with an annotated BOOKMARK."""
    await api.post(CONFIGMAPS, configmap("a"))
    url = (
        f"{fakekube.url}{CONFIGMAPS}?watch=true&sendInitialEvents=true"
        "&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true"
    )
    events = await _collect(url, 2)
    assert events[0]["type"] == "ADDED"
    assert events[1]["type"] == "BOOKMARK"
    annotations = events[1]["object"]["metadata"]["annotations"]
    assert annotations == {"k8s.io/initial-events-end": "true"}


async def test_watch_ends_after_timeout_seconds(api: Api, fakekube: FakeKube) -> None:
    """timeoutSeconds closes the stream."""
    url = f"{fakekube.url}{CONFIGMAPS}?watch=true&timeoutSeconds=1"
    events = await asyncio.wait_for(_collect(url, 1, within=5), 5)
    assert events == []
