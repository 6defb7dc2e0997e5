"""Whether an apply would change nothing: the live object and our Apply entry's field set.

The live objects below are written as a kube-apiserver (1.30) stores them after our forced
server-side apply of ``rendered()``: defaults filled in (a Service port's protocol, a
container's terminationMessagePath), ``spec.selector`` owned whole (LabelSelector is an atomic
struct), keyed lists by their keys (``k:{"name":"web"}``), members of lists carrying ``"."``.
"""

from __future__ import annotations

import copy
from typing import Any

from reconciler.cluster.in_sync import in_sync

OURS = "reconciler"
WEB = 'k:{"name":"web"}'
PORT = 'k:{"containerPort":8080,"protocol":"TCP"}'


def rendered() -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web"}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {"name": "web", "image": "reg/web:1", "ports": [{"containerPort": 8080}]}
                    ]
                },
            },
        },
    }


def our_fields() -> dict[str, Any]:
    container: dict[str, Any] = {
        ".": {},
        "f:name": {},
        "f:image": {},
        "f:ports": {PORT: {".": {}, "f:containerPort": {}}},
    }
    return {
        "f:metadata": {"f:labels": {"f:app": {}}},
        "f:spec": {
            "f:replicas": {},
            "f:selector": {},
            "f:template": {
                "f:metadata": {"f:labels": {"f:app": {}}},
                "f:spec": {"f:containers": {WEB: container}},
            },
        },
    }


def entry(manager: str, operation: str, fields: dict[str, Any], **extra: str) -> dict[str, Any]:
    return {
        "manager": manager,
        "operation": operation,
        "apiVersion": "apps/v1",
        "time": "2026-12-01T10:00:00Z",
        "fieldsType": "FieldsV1",
        "fieldsV1": fields,
        **extra,
    }


def live(fields: dict[str, Any] | None = None) -> dict[str, Any]:
    """What the server holds after our apply of :func:`rendered` (and a status write)."""
    obj = rendered()
    obj["metadata"] |= {
        "uid": "0b7e",
        "resourceVersion": "4711",
        "generation": 1,
        "creationTimestamp": "2026-12-01T10:00:00Z",
        "annotations": {"deployment.kubernetes.io/revision": "1"},
        "managedFields": [
            entry(OURS, "Apply", our_fields() if fields is None else fields),
            entry("kube-controller-manager", "Update", {"f:status": {}}, subresource="status"),
        ],
    }
    spec = obj["spec"]
    spec |= {"strategy": {"type": "RollingUpdate"}, "revisionHistoryLimit": 10}
    container = spec["template"]["spec"]["containers"][0]
    container["ports"][0]["protocol"] = "TCP"
    container |= {
        "terminationMessagePath": "/dev/termination-log",
        "imagePullPolicy": "IfNotPresent",
    }
    obj["status"] = {"observedGeneration": 1, "replicas": 2}
    return obj


def test_an_object_as_our_apply_left_it_is_in_sync() -> None:
    """Every rendered field live at its value, our entry owning exactly those: in sync,
    whatever the server defaulted beside them."""
    assert in_sync(rendered=rendered(), live=live(), manager=OURS)


def test_a_changed_value_is_not_in_sync() -> None:
    """A new image in the render is not in sync."""
    wanted = rendered()
    wanted["spec"]["template"]["spec"]["containers"][0]["image"] = "reg/web:2"
    assert not in_sync(rendered=wanted, live=live(), manager=OURS)


def test_a_field_left_out_of_the_render_is_not_in_sync() -> None:
    """A field we own and no longer render: the apply would remove it."""
    wanted = rendered()
    del wanted["spec"]["replicas"]
    assert not in_sync(rendered=wanted, live=live(), manager=OURS)


def test_a_new_field_in_the_render_is_not_in_sync_even_when_the_server_has_it() -> None:
    """A defaulted field we start to set (same value): the apply would take it over."""
    wanted = rendered()
    wanted["spec"]["revisionHistoryLimit"] = 10
    assert not in_sync(rendered=wanted, live=live(), manager=OURS)


def test_a_field_another_manager_took_over_is_not_in_sync() -> None:
    """`kubectl scale` changed replicas and took the field: our entry no longer owns it."""
    fields = our_fields()
    del fields["f:spec"]["f:replicas"]
    current = live(fields)
    current["spec"]["replicas"] = 5
    current["metadata"]["managedFields"].append(
        entry("kubectl", "Update", {"f:spec": {"f:replicas": {}}}, subresource="scale")
    )
    assert not in_sync(rendered=rendered(), live=current, manager=OURS)


def test_a_value_changed_without_taking_the_field_is_not_in_sync() -> None:
    """A value that differs while our entry still owns it (a mutating webhook): not in sync."""
    current = live()
    current["spec"]["template"]["spec"]["containers"][0]["image"] = "evil/hacked:latest"
    assert not in_sync(rendered=rendered(), live=current, manager=OURS)


def test_an_atomic_value_with_a_key_more_is_not_in_sync() -> None:
    """A value owned whole (the selector) must be exactly as rendered: a label we no longer
    render is removed by the apply."""
    current = live()
    current["spec"]["selector"]["matchLabels"]["tier"] = "front"
    assert not in_sync(rendered=rendered(), live=current, manager=OURS)


def test_a_keyed_list_item_more_in_our_entry_is_not_in_sync() -> None:
    """A container we applied before and render no more: the apply would remove it."""
    fields = our_fields()
    containers = fields["f:spec"]["f:template"]["f:spec"]["f:containers"]
    containers['k:{"name":"sidecar"}'] = {".": {}, "f:name": {}, "f:image": {}}
    current = live(fields)
    current["spec"]["template"]["spec"]["containers"].append(
        {"name": "sidecar", "image": "reg/sidecar:1"}
    )
    assert not in_sync(rendered=rendered(), live=current, manager=OURS)


def test_a_keyed_list_item_of_another_manager_is_in_sync() -> None:
    """A container another manager added (an injected sidecar) is theirs: our apply keeps it."""
    current = live()
    current["spec"]["template"]["spec"]["containers"].append(
        {"name": "istio-proxy", "image": "istio/proxyv2"}
    )
    containers: dict[str, Any] = {
        "f:containers": {'k:{"name":"istio-proxy"}': {".": {}, "f:name": {}}}
    }
    current["metadata"]["managedFields"].append(
        entry("istio", "Update", {"f:spec": {"f:template": {"f:spec": containers}}})
    )
    assert in_sync(rendered=rendered(), live=current, manager=OURS)


def test_without_our_apply_entry_nothing_is_in_sync() -> None:
    """No Apply entry of ours (made by someone else, or managedFields reset): not in sync."""
    current = live()
    current["metadata"]["managedFields"][0]["manager"] = "helm"
    assert not in_sync(rendered=rendered(), live=current, manager=OURS)
    current["metadata"]["managedFields"] = []
    assert not in_sync(rendered=rendered(), live=current, manager=OURS)


def test_our_entry_of_another_operation_does_not_count() -> None:
    """Our name on an Update entry (a scale through the subresource) is not our apply."""
    current = live()
    current["metadata"]["managedFields"][0]["operation"] = "Update"
    assert not in_sync(rendered=rendered(), live=current, manager=OURS)


def test_a_missing_or_terminating_object_is_not_in_sync() -> None:
    """Nothing live, or an object being deleted: applied."""
    assert not in_sync(rendered=rendered(), live=None, manager=OURS)
    current = live()
    current["metadata"]["deletionTimestamp"] = "2026-12-01T11:00:00Z"
    assert not in_sync(rendered=rendered(), live=current, manager=OURS)


def test_a_null_in_the_render_is_left_to_the_server() -> None:
    """A null asks the server to remove a field: never judged here."""
    wanted = rendered()
    wanted["spec"]["replicas"] = None
    assert not in_sync(rendered=wanted, live=live(), manager=OURS)


def test_numbers_and_booleans_are_compared_by_type() -> None:
    """2.0 or True is not the 2 the server holds."""
    for value in (2.0, True):
        wanted = rendered()
        wanted["spec"]["replicas"] = value
        assert not in_sync(rendered=wanted, live=live(), manager=OURS), value


def test_a_normalised_value_is_not_in_sync() -> None:
    """A quantity the server wrote back in its canonical form differs: applied (harmless)."""
    wanted = rendered()
    container = wanted["spec"]["template"]["spec"]["containers"][0]
    container["resources"] = {"requests": {"cpu": "1000m"}}
    fields = our_fields()
    web = fields["f:spec"]["f:template"]["f:spec"]["f:containers"][WEB]
    web["f:resources"] = {"f:requests": {"f:cpu": {}}}
    current = live(fields)
    current["spec"]["template"]["spec"]["containers"][0]["resources"] = {"requests": {"cpu": "1"}}
    assert not in_sync(rendered=wanted, live=current, manager=OURS)
    current["spec"]["template"]["spec"]["containers"][0]["resources"] = copy.deepcopy(
        container["resources"]
    )
    assert in_sync(rendered=wanted, live=current, manager=OURS)


def test_a_hostile_depth_is_not_in_sync() -> None:
    """An object nested past any real one is applied (the server judges it), not walked."""
    deep: dict[str, Any] = {}
    node = deep
    fields: dict[str, Any] = {}
    owned = fields
    for _ in range(200):
        node["a"] = {}
        node = node["a"]
        owned["f:a"] = {}
        owned = owned["f:a"]
    node["b"] = 1
    owned["f:b"] = {}
    wanted: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "x"},
        "data": deep,
    }
    current = copy.deepcopy(wanted)
    current["metadata"]["managedFields"] = [entry(OURS, "Apply", {"f:data": fields})]
    assert not in_sync(rendered=wanted, live=current, manager=OURS)
