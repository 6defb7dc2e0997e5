"""The live cache holds managedFields apart: readers that ask for them get the object exactly
as it was stored, health readers get it without them, and nothing else differs."""

from __future__ import annotations

import copy
from typing import Any

from reconciler.cluster.label_selector import Selector
from reconciler.cluster.live_store import ObjectTable
from tests.support.live import SELECTOR, deployment, pod

APPS = ("apps", "Deployment")
POD = ("", "Pod")

MANAGED = [
    {
        "manager": "reconciler",
        "operation": "Apply",
        "apiVersion": "apps/v1",
        "time": "2026-12-03T10:00:00Z",
        "fieldsType": "FieldsV1",
        "fieldsV1": {"f:spec": {"f:replicas": {}}},
    },
    {
        "manager": "kube-controller-manager",
        "operation": "Update",
        "subresource": "status",
        "time": "2026-12-03T10:00:01Z",
        "fieldsType": "FieldsV1",
        "fieldsV1": {"f:status": {"f:replicas": {}}},
    },
]


def managed(obj: dict[str, Any]) -> dict[str, Any]:
    """``obj`` with managedFields (and a resourceVersion) in its metadata."""
    out = copy.deepcopy(obj)
    out["metadata"]["managedFields"] = copy.deepcopy(MANAGED)
    out["metadata"]["resourceVersion"] = "7"
    return out


def stored(group_kind: tuple[str, str], obj: dict[str, Any]) -> ObjectTable:
    table = ObjectTable()
    table.add_kind(group_kind, "v1" if group_kind == POD else "apps/v1")
    table.put(group_kind, copy.deepcopy(obj))
    return table


def test_a_full_read_is_the_object_as_stored() -> None:
    """get() returns the object with its managedFields, equal to what was stored."""
    obj = managed(deployment("web"))
    assert stored(APPS, obj).get(APPS, "default", "web") == obj


def test_a_health_read_leaves_only_managed_fields_out() -> None:
    """get(managed_fields=False) is the stored object without metadata.managedFields."""
    obj = managed(deployment("web"))
    found = stored(APPS, obj).get(APPS, "default", "web", managed_fields=False)
    expected = copy.deepcopy(obj)
    del expected["metadata"]["managedFields"]
    assert found == expected


def test_selected_pods_without_managed_fields() -> None:
    """select(managed_fields=False) leaves managedFields out of each pod; select() keeps them."""
    obj = managed(pod("web-1"))
    table = stored(POD, obj)
    selector = Selector.parse(SELECTOR)
    [light] = table.select(POD, "default", selector, managed_fields=False)
    [full] = table.select(POD, "default", selector)
    assert "managedFields" not in light["metadata"] and full == obj
    assert light["metadata"] == {k: v for k, v in obj["metadata"].items() if k != "managedFields"}


def test_an_object_without_managed_fields_reads_the_same_either_way() -> None:
    """Without managedFields, both reads give the stored object, and neither adds the key."""
    obj = deployment("web")
    table = stored(APPS, obj)
    assert table.get(APPS, "default", "web") == obj
    assert table.get(APPS, "default", "web", managed_fields=False) == obj


def test_a_change_carries_the_previous_state_with_or_without_managed_fields() -> None:
    """A MODIFIED change's old state is the full previous object, or all of it but its
    managedFields when asked so."""
    first = managed(deployment("web"))
    table = stored(APPS, first)
    second = managed(deployment("web", image="reg/app:2"))
    second["metadata"]["resourceVersion"] = "8"
    change = table.put(APPS, second)
    assert change is not None and change.old == first
    light = change.old_state(managed_fields=False)
    assert light is not None and "managedFields" not in light["metadata"]
    assert light == {**first, "metadata": {**light["metadata"]}}
    assert light["metadata"] == {k: v for k, v in first["metadata"].items() if k != "managedFields"}
