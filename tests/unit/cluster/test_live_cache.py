"""LiveCache over a scripted in-memory source: list then watch, resume, relist, selectors,
change notification and closing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from structlog.testing import capture_logs

from reconciler.cluster.health.workload_pods import pod_selector
from reconciler.cluster.live import Change, LiveCache
from reconciler.errors import InputError, kubernetes_error
from reconciler.model import ObjectRef
from reconciler.retry import Backoff
from reconciler.testing.memory.live_source import ScriptedSource
from tests.support.live import SELECTOR, configmap, deployment, pod
from tests.support.waiting import eventually

FAST = Backoff(base_s=0.01, max_s=0.05)


def ref_of(obj: dict[str, Any]) -> ObjectRef:
    """The reference to a manifest."""
    return ObjectRef.from_object(obj)


@pytest.fixture
def source() -> ScriptedSource:
    """An empty scripted source."""
    return ScriptedSource()


@pytest.fixture
async def cache(source: ScriptedSource) -> AsyncIterator[LiveCache]:
    """A cache over ``source`` with fast retries, closed after the test."""
    live = LiveCache(source, label_selector=SELECTOR, backoff=FAST, unserved_retry_s=0.05)
    yield live
    await live.close()


def recorder(cache: LiveCache) -> list[Change]:
    """Every change the cache reports from now on."""
    changes: list[Change] = []
    cache.subscribe(changes.append)
    return changes


def summary(changes: list[Change]) -> list[str]:
    """``TYPE name`` per change."""
    return [f"{change.type} {change.ref.name}" for change in changes]


async def watching(source: ScriptedSource, count: int = 1) -> None:
    """Until ``count`` watches are open."""
    await eventually(lambda: source.open_watches == count, message="the watch never opened")


async def test_lists_then_watches(source: ScriptedSource, cache: LiveCache) -> None:
    """Objects present at the first list are cached silently; later writes arrive as events."""
    first = source.put(configmap("a", "one"))
    changes = recorder(cache)
    cache.track("v1", "ConfigMap")
    await cache.wait_synced(timeout_s=5)
    assert cache.get(ref_of(first)) == first
    assert changes == []
    await watching(source)
    second = source.put(configmap("b", "two"))
    await eventually(lambda: summary(changes) == ["ADDED b"])
    assert cache.get(ref_of(second)) == second
    assert changes[0].obj == second and changes[0].old is None
    assert cache.size == 2
    assert cache.events_seen == 1


async def test_modified_and_deleted_carry_old_and_new(
    source: ScriptedSource, cache: LiveCache
) -> None:
    """MODIFIED has the old and new object; DELETED the old one; get then says None."""
    old = source.put(configmap("a"))
    cache.track("v1", "ConfigMap")
    await cache.wait_synced(timeout_s=5)
    await watching(source)
    changes = recorder(cache)
    new = source.put(configmap("a", value="1"))
    source.remove(new)
    await eventually(lambda: summary(changes) == ["MODIFIED a", "DELETED a"])
    assert (changes[0].old, changes[0].obj) == (old, new)
    assert changes[1].obj is None and changes[1].old == new
    assert cache.get(ref_of(new)) is None


async def test_the_label_selector_filters_lists_and_watches(
    source: ScriptedSource, cache: LiveCache
) -> None:
    """Objects without the project's labels are never cached."""
    stranger = configmap("stranger")
    stranger["metadata"]["labels"] = {"reconciler.io/project": "other"}
    source.put(stranger)
    cache.track("v1", "ConfigMap")
    await cache.wait_synced(timeout_s=5)
    await watching(source)
    source.put(dict(stranger, data={"v": "1"}))
    mine = source.put(configmap("mine"))
    await eventually(lambda: cache.get(ref_of(mine)) is not None)
    assert cache.get(ref_of(stranger)) is None
    assert cache.size == 1


async def test_a_bookmark_moves_the_resume_version_on(
    source: ScriptedSource, cache: LiveCache
) -> None:
    """After a bookmark, a dropped watch resumes from the bookmark's version, not the list's."""
    cache.track("v1", "ConfigMap")
    await cache.wait_synced(timeout_s=5)
    await watching(source)
    listed_at = source.watches_from[-1]
    other = configmap("other")
    other["metadata"]["labels"] = {}
    source.put(other)  # not ours: the watch never shows it, only a bookmark moves past it
    source.bookmark()
    await eventually(lambda: cache.events_seen == 1)
    source.drop()
    await eventually(lambda: len(source.watches_from) == 2)
    assert source.watches_from == [listed_at, str(source.version)]
    assert source.lists == ["ConfigMap"]


async def test_a_dropped_watch_resumes_from_the_last_version_without_a_list(
    source: ScriptedSource, cache: LiveCache
) -> None:
    """A watch that ends resumes from the last event's version; changes made in between are
    replayed, and nothing is listed again."""
    cache.track("v1", "ConfigMap")
    await cache.wait_synced(timeout_s=5)
    await watching(source)
    changes = recorder(cache)
    seen = source.put(configmap("a"))
    await eventually(lambda: summary(changes) == ["ADDED a"])
    source.drop()
    source.put(configmap("b"))
    await eventually(lambda: summary(changes) == ["ADDED a", "ADDED b"])
    assert source.watches_from[-1] == seen["metadata"]["resourceVersion"]
    assert source.lists == ["ConfigMap"]
    assert cache.reconnects >= 1
    assert cache.relists == 0


async def test_a_failing_watch_is_retried(source: ScriptedSource, cache: LiveCache) -> None:
    """Transient failures to open the watch are retried from the same version."""
    cache.track("v1", "ConfigMap")
    await cache.wait_synced(timeout_s=5)
    await watching(source)
    resume_at = source.watches_from[-1]
    unavailable = kubernetes_error("503 ServiceUnavailable", status=503)
    source.watch_failures.extend([unavailable, unavailable])
    source.drop()
    await eventually(lambda: len(source.watches_from) == 4)
    await watching(source)
    assert source.watches_from[-3:] == [resume_at] * 3
    assert cache.failures == 2
    assert source.lists == ["ConfigMap"]


async def test_expired_relists_and_reports_the_gap(
    source: ScriptedSource, cache: LiveCache
) -> None:
    """410 Expired lists again and reports what changed meanwhile: gone as DELETED, changed as
    MODIFIED, new as ADDED; what did not change is not reported."""
    kept = source.put(configmap("kept"))
    changed = source.put(configmap("changed"))
    gone = source.put(configmap("gone"))
    cache.track("v1", "ConfigMap")
    await cache.wait_synced(timeout_s=5)
    await watching(source)
    changes = recorder(cache)
    source.put(configmap("changed", value="1"), unseen=True)
    source.remove(gone, unseen=True)
    new = source.put(configmap("new"), unseen=True)
    source.forget_history()
    source.drop()
    await eventually(lambda: len(changes) == 3)
    assert sorted(summary(changes)) == ["ADDED new", "DELETED gone", "MODIFIED changed"]
    assert source.lists == ["ConfigMap", "ConfigMap"]
    assert cache.relists == 1
    assert cache.get(ref_of(kept)) == kept
    assert cache.get(ref_of(gone)) is None
    assert cache.get(ref_of(new)) == new
    modified = next(change for change in changes if change.type == "MODIFIED")
    assert modified.old == changed
    await watching(source)  # and it watches again, from the new list
    assert source.watches_from[-1] == str(source.version)


async def test_an_unserved_kind_is_logged_once_and_found_later(
    source: ScriptedSource, cache: LiveCache
) -> None:
    """A kind the server does not serve counts as listed (empty), is logged once, and is
    looked for again until it is served; other kinds are unaffected."""
    source.unserved.add("Widget")
    widget = {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {
            "name": "w",
            "namespace": "default",
            "labels": configmap("x")["metadata"]["labels"],
        },
    }
    with capture_logs() as logs:
        cache.track("example.com/v1", "Widget")
        cache.track("v1", "ConfigMap")
        await cache.wait_synced(timeout_s=5)
        assert cache.get(ref_of(widget)) is None
        await eventually(lambda: source.lists.count("Widget") >= 3)
        source.unserved.clear()
        source.put(widget)
        await eventually(lambda: cache.get(ref_of(widget)) is not None)
    unserved = [entry for entry in logs if entry["event"] == "live_kind_not_served"]
    assert len(unserved) == 1
    assert "Widget" in unserved[0]["error"]


async def test_other_versions_of_a_kind_are_the_same_objects(
    source: ScriptedSource, cache: LiveCache
) -> None:
    """apps/v1 and apps/v1beta2 Deployments are one kind: tracked once, read by either."""
    web = source.put(deployment("web"))
    cache.track("apps/v1", "Deployment")
    cache.track("apps/v1beta2", "Deployment")
    await cache.wait_synced(timeout_s=5)
    beta = ObjectRef(api_version="apps/v1beta2", kind="Deployment", name="web", namespace="default")
    assert cache.get(beta) == web
    assert source.lists == ["Deployment"]


async def test_an_untracked_kind_is_refused(cache: LiveCache) -> None:
    """get and pods of a kind the cache does not track raise LookupError rather than say
    "missing"."""
    with pytest.raises(LookupError, match="does not track Secret"):
        cache.get(ObjectRef(api_version="v1", kind="Secret", name="s", namespace="default"))
    with pytest.raises(LookupError, match="Pod"):
        cache.pods("default", "app=web")


async def test_last_applied_is_dropped_and_managed_fields_kept(
    source: ScriptedSource, cache: LiveCache
) -> None:
    """Cached copies lose kubectl's last-applied annotation and keep managedFields."""
    manifest = configmap("a")
    manifest["metadata"]["annotations"] = {
        "kubectl.kubernetes.io/last-applied-configuration": "{...}",
        "keep": "me",
    }
    manifest["metadata"]["managedFields"] = [{"manager": "reconciler", "fieldsV1": {"f:data": {}}}]
    stored = source.put(manifest)
    cache.track("v1", "ConfigMap")
    await cache.wait_synced(timeout_s=5)
    cached = cache.get(ref_of(stored))
    assert cached is not None
    assert cached["metadata"]["annotations"] == {"keep": "me"}
    assert cached["metadata"]["managedFields"] == manifest["metadata"]["managedFields"]
    assert "kubectl.kubernetes.io/last-applied-configuration" in stored["metadata"]["annotations"]


async def test_pods_match_the_selectors_pod_selector_writes(
    source: ScriptedSource, cache: LiveCache
) -> None:
    """pods() reads the selectors pod_selector builds, matchExpressions included, in one
    namespace only."""
    workload = deployment("web")
    workload["spec"]["selector"] = {
        "matchLabels": {"app": "web"},
        "matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["front", "edge"]},
            {"key": "track", "operator": "NotIn", "values": ["canary"]},
            {"key": "owner", "operator": "Exists"},
            {"key": "legacy", "operator": "DoesNotExist"},
        ],
    }
    selector = pod_selector(workload)
    assert selector is not None
    source.put(pod("match", app="web", tier="edge", owner="x"))
    source.put(pod("stable", app="web", tier="front", owner="x", track="stable"))
    source.put(pod("canary", app="web", tier="front", owner="x", track="canary"))
    source.put(pod("back", app="web", tier="back", owner="x"))
    source.put(pod("ownerless", app="web", tier="front"))
    source.put(pod("legacy", app="web", tier="front", owner="x", legacy="1"))
    source.put(pod("elsewhere", "other", app="web", tier="front", owner="x"))
    cache.track("v1", "Pod")
    await cache.wait_synced(timeout_s=5)
    names = sorted(p["metadata"]["name"] for p in cache.pods("default", selector))
    assert names == ["match", "stable"]
    assert [p["metadata"]["name"] for p in cache.pods("other", "app=web")] == ["elsewhere"]
    assert len(cache.pods("default", "")) == 6
    with pytest.raises(InputError, match="app=web,=x"):
        cache.pods("default", "app=web,=x")


async def test_wait_changed_wakes_on_a_watched_object(
    source: ScriptedSource, cache: LiveCache
) -> None:
    """wait_changed returns True when one of its objects changes, not for others."""
    web = source.put(deployment("web"))
    cache.track("apps/v1", "Deployment")
    cache.track("v1", "ConfigMap")
    await cache.wait_synced(timeout_s=5)
    await watching(source, 2)
    waiting = asyncio.create_task(cache.wait_changed([ref_of(web)], timeout_s=30))
    await asyncio.sleep(0)
    source.put(configmap("unrelated"))
    await eventually(lambda: cache.events_seen == 1)
    assert not waiting.done()
    source.put(deployment("web", image="reg/app:2"))
    assert await asyncio.wait_for(waiting, 5) is True


async def test_wait_changed_wakes_on_a_pod_in_its_namespaces(
    source: ScriptedSource, cache: LiveCache
) -> None:
    """Any Pod change in the namespaces given wakes the waiter; Pods elsewhere do not."""
    cache.track("v1", "Pod")
    await cache.wait_synced(timeout_s=5)
    await watching(source)
    waiting = asyncio.create_task(cache.wait_changed([], ["apps"], timeout_s=30))
    await asyncio.sleep(0)
    source.put(pod("p", "elsewhere"))
    await eventually(lambda: cache.events_seen == 1)
    assert not waiting.done()
    source.put(pod("p", "apps"))
    assert await asyncio.wait_for(waiting, 5) is True


async def test_wait_changed_times_out_without_a_change(cache: LiveCache) -> None:
    """Without a relevant change wait_changed returns False at its timeout."""
    cache.track("v1", "ConfigMap")
    await cache.wait_synced(timeout_s=5)
    ref = ObjectRef(api_version="v1", kind="ConfigMap", name="a", namespace="default")
    assert await cache.wait_changed([ref], ["default"], timeout_s=0.05) is False


async def test_a_failing_subscriber_does_not_stop_the_watch(
    source: ScriptedSource, cache: LiveCache
) -> None:
    """A callback that raises is logged; the cache and the other subscribers go on."""

    def broken(change: Change) -> None:
        raise ValueError("subscriber bug")

    cache.subscribe(broken)
    changes = recorder(cache)
    cache.track("v1", "ConfigMap")
    await cache.wait_synced(timeout_s=5)
    await watching(source)
    with capture_logs() as logs:
        source.put(configmap("a"))
        source.put(configmap("b"))
        await eventually(lambda: summary(changes) == ["ADDED a", "ADDED b"])
    assert [entry["event"] for entry in logs].count("live_subscriber_failed") == 2


async def test_a_hostile_event_is_skipped(source: ScriptedSource, cache: LiveCache) -> None:
    """An object without a name neither crashes the watch nor lands in the cache."""
    cache.track("v1", "ConfigMap")
    await cache.wait_synced(timeout_s=5)
    await watching(source)
    changes = recorder(cache)
    nameless = configmap("x")
    nameless["metadata"]["name"] = ""
    source.inject("ADDED", nameless)
    source.put(configmap("after"))
    await eventually(lambda: summary(changes) == ["ADDED after"])
    assert cache.size == 1


async def test_close_is_prompt_with_watches_open(source: ScriptedSource) -> None:
    """close() ends long watches (and a kind waiting to be served) at once."""
    source.unserved.add("Widget")
    cache = LiveCache(source, label_selector=SELECTOR, watch_timeout_s=3600, unserved_retry_s=3600)
    cache.track("v1", "ConfigMap")
    cache.track("v1", "Pod")
    cache.track("example.com/v1", "Widget")
    await cache.wait_synced(timeout_s=5)
    await watching(source, 2)
    await asyncio.wait_for(cache.close(), 2)
    assert source.open_watches == 0
    with pytest.raises(RuntimeError, match="closed"):
        cache.track("v1", "Secret")


async def test_wait_synced_names_the_kinds_not_listed(source: ScriptedSource) -> None:
    """wait_synced raises TimeoutError naming a kind whose list keeps failing."""
    source.list_failures.extend(kubernetes_error("boom", status=500) for _ in range(1000))
    cache = LiveCache(source, label_selector=SELECTOR, backoff=FAST)
    try:
        cache.track("v1", "ConfigMap")
        with pytest.raises(TimeoutError, match=r"ConfigMap \(v1\)"):
            await cache.wait_synced(timeout_s=0.1)
    finally:
        await cache.close()
