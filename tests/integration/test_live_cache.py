"""LiveCache over the real Kube client and fakekube over HTTP: lists and watches across
namespaces, changes from other clients, dropped watches, 410 Expired, deletes, Pods."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from reconciler.cluster import kube as kube_module
from reconciler.cluster.health.workload_pods import pod_selector
from reconciler.cluster.kube import Kube
from reconciler.cluster.live import Change, LiveCache, LiveSource
from reconciler.errors import KubernetesError
from reconciler.model import ObjectRef
from reconciler.retry import Backoff
from reconciler.testing.fakekube import FakeKube
from reconciler.testing.fakekube.pytest_plugin import (  # noqa: F401 - fixtures, used by name
    fakekube,
    kubeconfig_path,
)
from tests.support.kubectl import Kubectl, kubectl_minor
from tests.support.live import SELECTOR, GatedSource, configmap, deployment
from tests.support.waiting import eventually

FAST = Backoff(base_s=0.02, max_s=0.2)
NAMESPACES = ("team-a", "team-b", "team-c")
State = dict[tuple[str, str], str]


@pytest_asyncio.fixture
async def writer(kubeconfig_path: Path) -> AsyncIterator[Kube]:  # noqa: F811
    """Another client of the same server: the one that changes things."""
    kube = await Kube.connect(kubeconfig=str(kubeconfig_path))
    yield kube
    await kube.close()


@pytest_asyncio.fixture
async def reader(kubeconfig_path: Path) -> AsyncIterator[Kube]:  # noqa: F811
    """The connection the cache reads through."""
    kube = await Kube.connect(kubeconfig=str(kubeconfig_path))
    yield kube
    await kube.close()


@pytest_asyncio.fixture
async def quiet(fakekube: FakeKube) -> FakeKube:  # noqa: F811
    """fakekube without its controllers: only the tests write."""
    await fakekube.controllers.stop()
    return fakekube


def start_cache(source: LiveSource) -> LiveCache:
    """A cache of the project's objects with fast retries."""
    return LiveCache(source, label_selector=SELECTOR, backoff=FAST, watch_timeout_s=30)


async def create_namespaces(writer: Kube) -> None:
    """The test's namespaces."""
    for name in NAMESPACES:
        namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
        await writer.apply(namespace, field_manager="test")


async def server_state(writer: Kube, api_version: str, kind: str) -> State:
    """(namespace, name) -> resourceVersion of what the server holds with the labels."""
    items, _ = await writer.list_objects(
        api_version=api_version, kind=kind, label_selector=SELECTOR
    )
    return {_where(item): item["metadata"]["resourceVersion"] for item in items}


def cache_state(cache: LiveCache, api_version: str, kind: str) -> State:
    """(namespace, name) -> resourceVersion of what the cache holds."""
    return {
        _where(item): item["metadata"]["resourceVersion"]
        for item in cache.objects(api_version, kind)
    }


def _where(item: dict[str, Any]) -> tuple[str, str]:
    return item["metadata"].get("namespace", ""), item["metadata"]["name"]


async def converged(cache: LiveCache, writer: Kube, api_version: str, kind: str) -> None:
    """Until the cache holds exactly what the server does (fails naming the difference)."""
    last: dict[str, State] = {}

    async def same() -> bool:
        last["server"] = await server_state(writer, api_version, kind)
        last["cache"] = cache_state(cache, api_version, kind)
        return last["server"] == last["cache"]

    try:
        await eventually(same, within=20, interval_s=0.05)
    except AssertionError:
        server, cached = last["server"], last["cache"]
        differ = {k for k in server.keys() | cached.keys() if server.get(k) != cached.get(k)}
        raise AssertionError(
            f"the cache never converged; differing: {sorted(differ)[:10]}"
        ) from None


async def test_many_objects_across_namespaces_are_listed_then_watched(
    quiet: FakeKube, writer: Kube, reader: Kube, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Labelled objects of every namespace are listed (page by page) and later writes watched;
    unlabelled objects are left out."""
    monkeypatch.setattr(kube_module, "_LIST_PAGE", 7)  # many pages, continue tokens and all
    await create_namespaces(writer)
    for namespace in NAMESPACES:
        for index in range(25):
            await writer.apply(configmap(f"cm-{index}", namespace), field_manager="test")
        stranger = configmap("stranger", namespace)
        stranger["metadata"]["labels"] = {"reconciler.io/project": "other"}
        await writer.apply(stranger, field_manager="test")
    cache = start_cache(reader)
    try:
        cache.track("v1", "ConfigMap")
        await cache.wait_synced(timeout_s=20)
        assert cache.size == 75
        assert cache_state(cache, "v1", "ConfigMap") == await server_state(
            writer, "v1", "ConfigMap"
        )
        for namespace in NAMESPACES:
            await writer.apply(configmap("late", namespace, value="1"), field_manager="test")
            await writer.apply(configmap("cm-0", namespace, value="2"), field_manager="test")
        await converged(cache, writer, "v1", "ConfigMap")
        late = cache.get(
            ObjectRef(api_version="v1", kind="ConfigMap", name="late", namespace="team-b")
        )
        assert late is not None and late["data"] == {"value": "1"}
        assert late["apiVersion"] == "v1" and late["kind"] == "ConfigMap"
        assert cache.size == 78
    finally:
        await cache.close()


@pytest.fixture
def kubectl(kubeconfig_path: Path, tmp_path: Path) -> Kubectl:  # noqa: F811
    """kubectl against fakekube (skipped when missing or older than 1.27)."""
    minor = kubectl_minor()
    if minor is None or minor < 27:
        pytest.skip("kubectl 1.27 or later is not installed")
    return Kubectl(kubeconfig_path, tmp_path / "kubectl-cache", tmp_path)


async def test_kubectl_changes_show_up_as_events(
    quiet: FakeKube, reader: Kube, kubectl: Kubectl
) -> None:
    """kubectl apply, annotate, an unlabel and a delete arrive as ADDED, MODIFIED, DELETED
    (an object that loses the labels leaves the cache) and ADDED/DELETED again."""
    cache = start_cache(reader)
    changes: list[Change] = []
    cache.subscribe(changes.append)
    try:
        cache.track("v1", "ConfigMap")
        await cache.wait_synced(timeout_s=20)
        await eventually(lambda: quiet.faults.open_watches.count("configmaps") == 1)
        path = kubectl.write("cm.json", json.dumps(configmap("edited")))
        await kubectl.run("apply", "-f", str(path))
        await kubectl.run("annotate", "configmap", "edited", "note=1")
        await kubectl.run("label", "configmap", "edited", "reconciler.io/project-")
        await kubectl.run("label", "configmap", "edited", "reconciler.io/project=app")
        await kubectl.run("delete", "configmap", "edited")
        expected = ["ADDED", "MODIFIED", "DELETED", "ADDED", "DELETED"]
        await eventually(lambda: [change.type for change in changes] == expected)
        annotated = changes[1].obj
        assert annotated is not None and annotated["metadata"]["annotations"] == {"note": "1"}
        assert annotated["metadata"]["managedFields"]  # kept for drift; last-applied is not
        ref = ObjectRef(api_version="v1", kind="ConfigMap", name="edited", namespace="default")
        assert cache.get(ref) is None
    finally:
        await cache.close()


async def write_many(writer: Kube, count: int) -> None:
    """``count`` writes: creates, updates and deletes of ConfigMaps in ``default``."""
    for index in range(count):
        name = f"churn-{index % 7}"
        ref = ObjectRef(api_version="v1", kind="ConfigMap", name=name, namespace="default")
        if index % 5 == 4:
            await writer.delete(ref)
        else:
            await writer.apply(configmap(name, value=str(index)), field_manager="test")


async def test_dropped_watches_mid_stream_still_converge(
    quiet: FakeKube, writer: Kube, reader: Kube
) -> None:
    """Watches dropped again and again while objects change resume where they were and end
    with the server's state, without listing again."""
    cache = start_cache(reader)
    try:
        cache.track("v1", "ConfigMap")
        await cache.wait_synced(timeout_s=20)
        churn = asyncio.create_task(write_many(writer, 80))
        drops = 0
        while not churn.done():
            await eventually(lambda: quiet.faults.open_watches.count("configmaps") == 1)
            drops += quiet.faults.drop_watches(resource="configmaps", after_events=3)
            await asyncio.sleep(0.02)
        await churn
        await converged(cache, writer, "v1", "ConfigMap")
        assert drops >= 2
        assert cache.reconnects >= 2
        assert cache.relists == 0
    finally:
        await cache.close()


async def test_expired_history_relists_and_reports_the_gap(
    quiet: FakeKube, writer: Kube, reader: Kube, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the watch's version has left the server's history, the 410 Expired makes the cache
    list again (page by page) and report the gap as DELETED, MODIFIED and ADDED."""
    monkeypatch.setattr(kube_module, "_LIST_PAGE", 2)
    quiet.watch_history = 3
    for name in ("kept", "changed", "gone"):
        await writer.apply(configmap(name), field_manager="test")
    gated = GatedSource(reader)
    cache = start_cache(gated)
    changes: list[Change] = []
    cache.subscribe(changes.append)
    try:
        cache.track("v1", "ConfigMap")
        await cache.wait_synced(timeout_s=20)
        await eventually(lambda: quiet.faults.open_watches.count("configmaps") == 1)
        gated.gate.clear()
        quiet.faults.drop_watches(resource="configmaps")
        await eventually(lambda: gated.waiting == 1)
        await writer.apply(configmap("changed", value="1"), field_manager="test")
        await writer.delete(
            ObjectRef(api_version="v1", kind="ConfigMap", name="gone", namespace="default")
        )
        for index in range(5):  # more than the history holds
            await writer.apply(configmap(f"new-{index}"), field_manager="test")
        gated.gate.set()
        await converged(cache, writer, "v1", "ConfigMap")
        assert cache.relists == 1
        seen = sorted(f"{change.type} {change.ref.name}" for change in changes)
        assert seen == [
            "ADDED new-0",
            "ADDED new-1",
            "ADDED new-2",
            "ADDED new-3",
            "ADDED new-4",
            "DELETED gone",
            "MODIFIED changed",
        ]
    finally:
        await cache.close()


async def test_delete_is_seen_and_a_second_delete_is_false(
    quiet: FakeKube, writer: Kube, reader: Kube
) -> None:
    """Kube.delete removes the object (the cache sees DELETED) and answers False once gone."""
    await writer.apply(deployment("web"), field_manager="test")
    cache = start_cache(reader)
    try:
        cache.track("apps/v1", "Deployment")
        await cache.wait_synced(timeout_s=20)
        ref = ObjectRef.from_object(deployment("web"))
        assert cache.get(ref) is not None
        assert await writer.delete(ref, propagation="Foreground") is True
        await eventually(lambda: cache.get(ref) is None)
        assert await writer.delete(ref) is False
        deletes = [
            r.query.get("propagationPolicy") for r in quiet.request_log if r.method == "DELETE"
        ]
        assert deletes == ["Foreground", "Background"]
        assert (
            quiet.get_object(
                api_version="apps/v1", kind="Deployment", name="web", namespace="default"
            )
            is None
        )
    finally:
        await cache.close()


async def test_impersonated_lists_and_watches_carry_the_user(quiet: FakeKube, reader: Kube) -> None:
    """A cache over an impersonating connection lists and watches as that user."""
    cache = start_cache(reader.impersonating("alice"))
    try:
        cache.track("v1", "ConfigMap")
        await cache.wait_synced(timeout_s=20)
        await eventually(lambda: quiet.faults.open_watches.count("configmaps") == 1)
        reads = [r for r in quiet.request_log if r.method == "GET" and "configmaps" in r.path]
        assert {r.impersonated_user for r in reads} == {"alice"}
        assert any(r.query.get("watch") == "true" for r in reads)
    finally:
        await cache.close()


async def test_a_deployments_pods_come_from_the_watch(
    fakekube: FakeKube,  # noqa: F811
    writer: Kube,
    reader: Kube,
) -> None:
    """Pods carrying the labels of their template are cached; pods() finds them by the
    workload's selector, and wait_changed wakes as they change."""
    cache = start_cache(reader)
    try:
        cache.track("apps/v1", "Deployment")
        cache.track("v1", "Pod")
        await cache.wait_synced(timeout_s=20)
        ref = ObjectRef.from_object(deployment("web"))
        woken = asyncio.create_task(cache.wait_changed([], ["default"], timeout_s=20))
        await asyncio.sleep(0)
        await writer.apply(deployment("web"), field_manager="test")
        assert await woken is True
        await eventually(lambda: cache.get(ref) is not None)
        workload = cache.get(ref)
        assert workload is not None
        selector = pod_selector(workload)
        assert selector is not None
        await eventually(lambda: len(cache.pods("default", selector)) == 1, within=20)
        assert cache.pods("elsewhere", selector) == []
    finally:
        await cache.close()


async def test_kube_watch_answers_expired_and_unavailable(
    quiet: FakeKube,
    writer: Kube,
    kubeconfig_path: Path,  # noqa: F811
) -> None:
    """Kube.watch_objects raises 410 Expired for a compacted version, and a transient error
    when the API server cannot serve the watch."""
    quiet.watch_history = 2
    _, listed_at = await writer.list_objects(api_version="v1", kind="ConfigMap", label_selector="")
    for index in range(4):
        await writer.apply(configmap(f"c{index}"), field_manager="test")
    options: dict[str, Any] = {
        "api_version": "v1",
        "kind": "ConfigMap",
        "label_selector": SELECTOR,
        "resource_version": listed_at,
        "timeout_s": 5,
    }
    with pytest.raises(KubernetesError) as expired:
        async for _ in writer.watch_objects(**options):
            pass
    assert (expired.value.status, expired.value.reason) == (410, "Expired")
    impatient = await Kube.connect(kubeconfig=str(kubeconfig_path), max_retries=0)
    try:
        quiet.faults.down = True
        with pytest.raises(KubernetesError) as unavailable:
            async for _ in impatient.watch_objects(**options):
                pass
        assert not unavailable.value.permanent
    finally:
        quiet.faults.down = False
        await impatient.close()


async def test_bookmarks_move_the_resume_version_over_http(
    quiet: FakeKube, writer: Kube, reader: Kube
) -> None:
    """Bookmarks from the server carry the watch past writes it does not show, so a dropped
    watch resumes from there, not from the list's version."""
    quiet.bookmark_interval_s = 0.05
    cache = start_cache(reader)
    try:
        cache.track("v1", "ConfigMap")
        await cache.wait_synced(timeout_s=20)
        await eventually(lambda: quiet.faults.open_watches.count("configmaps") == 1)
        stranger = configmap("stranger")
        stranger["metadata"]["labels"] = {}
        written = await writer.apply(stranger, field_manager="test")
        past = int(written["metadata"]["resourceVersion"])
        seen = cache.events_seen
        await eventually(lambda: cache.events_seen >= seen + 2)  # bookmarks, no object event
        assert cache.size == 0
        quiet.faults.drop_watches(resource="configmaps")
        await eventually(lambda: len(_watches(quiet)) == 2)
        first, second = _watches(quiet)
        assert first.query["allowWatchBookmarks"] == "true"
        assert int(second.query["resourceVersion"]) >= past > int(first.query["resourceVersion"])
    finally:
        await cache.close()


def _watches(fakekube: FakeKube) -> list[Any]:  # noqa: F811
    """The ConfigMap watch requests fakekube answered."""
    return [
        record
        for record in fakekube.request_log
        if record.method == "GET"
        and record.path.endswith("/configmaps")
        and record.query.get("watch") == "true"
    ]
