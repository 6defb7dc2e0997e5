"""The in-memory cluster's list, watch and delete, as a LiveCache reads them."""

from __future__ import annotations

from reconciler.cluster.live import Change, LiveCache
from reconciler.model import ObjectRef
from reconciler.testing.memory import InMemoryCluster
from tests.support.live import SELECTOR, configmap, deployment
from tests.support.waiting import eventually


async def test_list_filters_by_kind_group_and_selector() -> None:
    """list_objects returns the applied objects of one group and kind the selector matches."""
    cluster = InMemoryCluster()
    await cluster.apply(deployment("web"), field_manager="t")
    await cluster.apply(configmap("a"), field_manager="t")
    stranger = configmap("b")
    stranger["metadata"]["labels"] = {}
    await cluster.apply(stranger, field_manager="t")
    items, version = await cluster.list_objects(
        api_version="v1", kind="ConfigMap", label_selector=SELECTOR
    )
    assert [item["metadata"]["name"] for item in items] == ["a"]
    assert version == str(cluster.resource_version) == "3"
    beta, _ = await cluster.list_objects(
        api_version="apps/v1beta2", kind="Deployment", label_selector=""
    )
    assert [item["metadata"]["name"] for item in beta] == ["web"]


async def test_delete_removes_and_says_whether_it_was_there() -> None:
    """delete is True the first time and False once the object is gone."""
    cluster = InMemoryCluster()
    await cluster.apply(configmap("a"), field_manager="t")
    ref = ObjectRef(api_version="v1", kind="ConfigMap", name="a", namespace="default")
    assert await cluster.delete(ref) is True
    assert await cluster.delete(ref) is False
    assert await cluster.get(ref) is None
    assert cluster.deleted == [ref]


async def test_a_live_cache_sees_apply_scale_and_delete() -> None:
    """Applies, scales and deletes reach a LiveCache over the in-memory cluster's watch."""
    cluster = InMemoryCluster()
    cache = LiveCache(cluster, label_selector=SELECTOR)
    changes: list[Change] = []
    cache.subscribe(changes.append)
    try:
        cache.track("apps/v1", "Deployment")
        await cache.wait_synced(timeout_s=5)
        await eventually(lambda: cluster.open_watches == 1)
        ref = ObjectRef.from_object(deployment("web"))
        await cluster.apply(deployment("web"), field_manager="t")
        await cluster.scale(ref, replicas=3)
        await cluster.delete(ref)
        await eventually(lambda: len(changes) == 3)
        assert [change.type for change in changes] == ["ADDED", "MODIFIED", "DELETED"]
        assert changes[1].obj is not None and changes[1].obj["spec"]["replicas"] == 3
        assert cache.get(ref) is None
    finally:
        await cache.close()
