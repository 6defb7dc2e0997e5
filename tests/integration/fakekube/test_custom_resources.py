"""CustomResourceDefinitions: Established, served, schema-driven, and cleaned up."""

from __future__ import annotations

from typing import Any

from tests.support.kubeapi import Api
from tests.support.waiting import eventually

CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
WIDGETS = "/apis/example.com/v1/namespaces/default/widgets"

WIDGET_CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.example.com"},
    "spec": {
        "group": "example.com",
        "scope": "Namespaced",
        "names": {
            "plural": "widgets",
            "singular": "widget",
            "kind": "Widget",
            "shortNames": ["wg"],
        },
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "subresources": {
                    "status": {},
                    "scale": {
                        "specReplicasPath": ".spec.size",
                        "statusReplicasPath": ".status.size",
                    },
                },
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "properties": {
                                    "size": {"type": "integer", "default": 1},
                                    "color": {"type": "string", "enum": ["red", "blue"]},
                                    "parts": {
                                        "type": "array",
                                        "x-kubernetes-list-type": "map",
                                        "x-kubernetes-list-map-keys": ["name"],
                                        "items": {
                                            "type": "object",
                                            "required": ["name"],
                                            "properties": {
                                                "name": {"type": "string"},
                                                "count": {"type": "integer"},
                                            },
                                        },
                                    },
                                },
                            },
                            "status": {
                                "type": "object",
                                "properties": {"size": {"type": "integer"}},
                            },
                        },
                    }
                },
            }
        ],
    },
}


async def install_widgets(api: Api) -> None:
    """Applies the Widget CRD and waits until it is Established."""
    answer = await api.apply(f"{CRDS}/widgets.example.com", WIDGET_CRD)
    assert answer.status == 201, answer.body

    async def established() -> bool:
        crd = (await api.get(f"{CRDS}/widgets.example.com")).body
        conditions = (crd.get("status") or {}).get("conditions") or []
        return any(c["type"] == "Established" and c["status"] == "True" for c in conditions)

    await eventually(established, message="the CRD never became Established")


def widget(name: str = "w", **spec: Any) -> dict[str, Any]:
    """A Widget manifest."""
    return {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": name},
        "spec": spec,
    }


async def test_crd_is_established_and_served(api: Api) -> None:
    """After the CRD is Established its resource is in discovery and objects can be applied."""
    await install_widgets(api)
    crd = (await api.get(f"{CRDS}/widgets.example.com")).body
    assert crd["status"]["acceptedNames"]["kind"] == "Widget"
    assert crd["status"]["storedVersions"] == ["v1"]
    group = (await api.get("/apis/example.com/v1")).body
    names = {r["name"]: r for r in group["resources"]}
    assert names["widgets"]["shortNames"] == ["wg"]
    assert names["widgets"]["namespaced"] is True
    assert {"widgets/status", "widgets/scale"} <= set(names)
    groups = (await api.get("/apis")).body["groups"]
    assert any(g["name"] == "example.com" for g in groups)
    created = await api.apply(f"{WIDGETS}/w", widget(color="red"))
    assert created.status == 201
    assert created.body["metadata"]["generation"] == 1
    assert created.body["spec"] == {"color": "red", "size": 1}


async def test_custom_resources_are_not_served_before_their_crd(api: Api) -> None:
    """Without an Established CRD the group does not exist."""
    answer = await api.get(WIDGETS)
    assert answer.status == 404


async def test_schema_drives_pruning_validation_and_apply(api: Api) -> None:
    """Unknown fields are pruned, enums checked, and list-map keys used in managedFields."""
    await install_widgets(api)
    pruned = await api.apply(f"{WIDGETS}/w", widget(extra=True, parts=[{"name": "a", "count": 1}]))
    assert "extra" not in pruned.body["spec"]
    fields = pruned.body["metadata"]["managedFields"][0]["fieldsV1"]
    assert 'k:{"name":"a"}' in fields["f:spec"]["f:parts"]
    invalid = await api.apply(f"{WIDGETS}/w", widget(color="green"))
    assert invalid.status == 422
    assert "Unsupported value" in invalid.body["message"]
    missing_key = await api.apply(f"{WIDGETS}/w", widget(parts=[{"count": 2}]))
    assert missing_key.status == 422


async def test_custom_status_and_scale_subresources(api: Api) -> None:
    """The CRD's status and scale subresources work on its objects."""
    await install_widgets(api)
    await api.apply(f"{WIDGETS}/w", widget(size=2))
    scale = await api.get(f"{WIDGETS}/w/scale")
    assert scale.body["spec"]["replicas"] == 2
    scaled = await api.patch(
        f"{WIDGETS}/w/scale", {"spec": {"replicas": 5}}, "application/merge-patch+json"
    )
    assert scaled.body["spec"]["replicas"] == 5
    assert (await api.get(f"{WIDGETS}/w")).body["spec"]["size"] == 5
    status = await api.patch(
        f"{WIDGETS}/w/status", {"status": {"size": 5}}, "application/merge-patch+json"
    )
    assert status.body["status"] == {"size": 5}
    assert (await api.get(f"{WIDGETS}/w/scale")).body["status"]["replicas"] == 5


async def test_deleting_the_crd_removes_its_objects(api: Api) -> None:
    """Deleting a CRD deletes its custom resources and stops serving them."""
    await install_widgets(api)
    await api.apply(f"{WIDGETS}/w", widget())
    await api.delete(f"{CRDS}/widgets.example.com")

    async def gone() -> bool:
        return (await api.get(f"{CRDS}/widgets.example.com")).status == 404

    await eventually(gone, message="the CRD was never deleted")
    assert (await api.get(WIDGETS)).status == 404
