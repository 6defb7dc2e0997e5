"""apply_all leaves out an object only when the live view is listed, has shown our writes to
it, and holds it as an apply would leave it; the live copy stands in for the answer."""

from __future__ import annotations

import copy
from collections.abc import Collection
from typing import Any

from reconciler.cluster.apply import apply_all
from reconciler.model import ObjectRef
from reconciler.testing.memory import InMemoryCluster

OURS = "reconciler"
REF = ObjectRef("v1", "ConfigMap", "web-config", "web-prod")


def rendered() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "web-config", "namespace": "web-prod", "labels": {"app": "web"}},
        "data": {"greeting": "hello"},
    }


def live_copy() -> dict[str, Any]:
    """The ConfigMap as the server keeps it after our apply of :func:`rendered`."""
    obj = rendered()
    obj["metadata"] |= {
        "uid": "77",
        "resourceVersion": "9",
        "managedFields": [
            {
                "manager": OURS,
                "operation": "Apply",
                "apiVersion": "v1",
                "fieldsType": "FieldsV1",
                "fieldsV1": {
                    "f:data": {"f:greeting": {}},
                    "f:metadata": {"f:labels": {"f:app": {}}},
                },
            }
        ],
    }
    return obj


class View:
    """A live view that answers as the test sets it."""

    def __init__(self, *, synced: bool = True, caught_up: bool = True) -> None:
        self.synced = synced
        self.caught = caught_up
        self.objects = {REF: live_copy()}

    def track(self, api_version: str, kind: str) -> None:
        return None

    def get(self, ref: ObjectRef, *, managed_fields: bool = True) -> dict[str, Any] | None:
        found = self.objects.get(ref)
        return copy.deepcopy(found) if found is not None else None

    def pods(
        self, namespace: str, selector: str, *, managed_fields: bool = True
    ) -> list[dict[str, Any]]:
        return []

    def is_synced(self, api_version: str, kind: str) -> bool:
        return self.synced

    def caught_up(self, ref: ObjectRef) -> bool:
        return self.caught

    async def wait_changed(
        self, refs: Collection[ObjectRef], namespaces: Collection[str] = (), *, timeout_s: float
    ) -> bool:
        return False


async def _apply(cluster: InMemoryCluster, view: View | None) -> list[dict[str, Any]]:
    return await apply_all(
        kube=cluster, objects=[rendered()], namespace="web-prod", field_manager=OURS, live=view
    )


async def test_an_object_in_sync_is_not_sent_and_its_live_copy_is_returned() -> None:
    """In sync, listed, our writes seen: no apply; the answer is the live object."""
    cluster = InMemoryCluster()
    [stored] = await _apply(cluster, View())
    assert REF not in cluster.applied
    assert stored == live_copy()


async def test_an_object_is_sent_while_a_write_of_ours_is_unseen() -> None:
    """The cache may show what was there before our last write: applied."""
    cluster = InMemoryCluster()
    await _apply(cluster, View(caught_up=False))
    assert cluster.applied.count(REF) == 1


async def test_an_object_is_sent_while_its_kind_is_not_listed() -> None:
    """Before the kind's first list the cache knows nothing: applied."""
    cluster = InMemoryCluster()
    await _apply(cluster, View(synced=False))
    assert cluster.applied.count(REF) == 1


async def test_a_changed_object_is_sent() -> None:
    """A rendered value the live object does not hold: applied."""
    cluster = InMemoryCluster()
    view = View()
    view.objects[REF]["data"]["greeting"] = "hi"
    await _apply(cluster, view)
    assert cluster.applied.count(REF) == 1


async def test_without_a_view_every_object_is_sent() -> None:
    """No view (the setting off, a one-off CLI run): every object is applied."""
    cluster = InMemoryCluster()
    await _apply(cluster, None)
    assert cluster.applied.count(REF) == 1
