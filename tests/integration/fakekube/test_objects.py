"""Objects: create, get, list, update, delete, and the metadata the apiserver maintains."""

from __future__ import annotations

from typing import Any

import pytest

from reconciler.testing.fakekube import FakeKube
from tests.support.kubeapi import Api
from tests.support.manifests import DEPLOYMENTS, deployment
from tests.support.waiting import eventually

CONFIGMAPS = "/api/v1/namespaces/default/configmaps"


def configmap(name: str, labels: dict[str, str] | None = None, **data: str) -> dict[str, Any]:
    """A ConfigMap manifest."""
    meta: dict[str, Any] = {"name": name}
    if labels:
        meta["labels"] = labels
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data}


async def test_create_get_and_metadata(api: Api) -> None:
    """A created object gets uid, creationTimestamp and resourceVersion, and reads back."""
    created = await api.post(CONFIGMAPS, configmap("a", x="1"))
    assert created.status == 201
    meta = created.body["metadata"]
    assert meta["uid"] and meta["creationTimestamp"].endswith("Z") and meta["resourceVersion"]
    assert "generation" not in meta  # ConfigMaps do not count generations
    fetched = await api.get(f"{CONFIGMAPS}/a")
    assert fetched.body == created.body
    entry = meta["managedFields"][0]
    assert entry["operation"] == "Update"
    assert entry["fieldsV1"]["f:data"] == {".": {}, "f:x": {}}


async def test_create_twice_is_already_exists(api: Api) -> None:
    """Creating an existing name is 409 AlreadyExists."""
    await api.post(CONFIGMAPS, configmap("a"))
    again = await api.post(CONFIGMAPS, configmap("a"))
    assert again.status == 409
    assert again.body["reason"] == "AlreadyExists"
    assert again.body["message"] == 'configmaps "a" already exists'


async def test_generate_name(api: Api) -> None:
    """generateName gets a random five-character suffix."""
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"generateName": "gen-"}}
    created = await api.post(CONFIGMAPS, body)
    name = created.body["metadata"]["name"]
    assert name.startswith("gen-") and len(name) == len("gen-") + 5


async def test_invalid_name_is_422(api: Api) -> None:
    """Names that are not DNS subdomains are refused as Invalid."""
    answer = await api.post(CONFIGMAPS, configmap("Not_Valid"))
    assert answer.status == 422
    assert answer.body["details"]["causes"][0]["field"] == "metadata.name"


async def test_namespaced_objects_need_their_namespace(api: Api) -> None:
    """Creating in a namespace that does not exist is 404 for the namespace."""
    answer = await api.post("/api/v1/namespaces/ghost/configmaps", configmap("a"))
    assert answer.status == 404
    assert answer.body["details"] == {"name": "ghost", "kind": "namespaces"}


async def test_get_missing_is_not_found(api: Api) -> None:
    """A missing object is 404 with a Status naming the resource."""
    answer = await api.get(f"{DEPLOYMENTS}/nope")
    assert answer.status == 404
    assert answer.body["message"] == 'deployments.apps "nope" not found'
    assert answer.body["details"] == {"name": "nope", "kind": "deployments", "group": "apps"}


async def test_list_with_selectors_and_pages(api: Api) -> None:
    """Lists filter by label and field selectors and page with limit/continue."""
    for index in range(5):
        await api.post(CONFIGMAPS, configmap(f"cm-{index}", {"tier": "a" if index % 2 else "b"}))
    listed = await api.get(CONFIGMAPS, labelSelector="tier=a")
    assert [i["metadata"]["name"] for i in listed.body["items"]] == ["cm-1", "cm-3"]
    assert listed.body["kind"] == "ConfigMapList"
    named = await api.get(CONFIGMAPS, fieldSelector="metadata.name=cm-4")
    assert [i["metadata"]["name"] for i in named.body["items"]] == ["cm-4"]
    notin = await api.get(CONFIGMAPS, labelSelector="tier notin (a),tier")
    assert len(notin.body["items"]) == 3
    first = await api.get(CONFIGMAPS, limit="2")
    assert len(first.body["items"]) == 2
    assert first.body["metadata"]["remainingItemCount"] == 3
    rest = await api.get(CONFIGMAPS, limit="10", **{"continue": first.body["metadata"]["continue"]})
    names = [i["metadata"]["name"] for i in first.body["items"] + rest.body["items"]]
    assert names == [f"cm-{i}" for i in range(5)]


async def test_unsupported_field_selector_is_400(api: Api) -> None:
    """Field selectors on fields the apiserver does not index are refused."""
    answer = await api.get(CONFIGMAPS, fieldSelector="data.x=1")
    assert answer.status == 400
    assert "field label not supported: data.x" in answer.body["message"]


async def test_update_with_stale_resource_version_conflicts(api: Api) -> None:
    """A PUT carrying an old resourceVersion is 409 Conflict."""
    created = (await api.post(CONFIGMAPS, configmap("a", x="1"))).body
    changed = dict(created, data={"x": "2"})
    assert (await api.put(f"{CONFIGMAPS}/a", changed)).status == 200
    stale = await api.put(f"{CONFIGMAPS}/a", dict(created, data={"x": "3"}))
    assert stale.status == 409
    assert "the object has been modified" in stale.body["message"]


async def test_noop_update_keeps_resource_version(api: Api) -> None:
    """Writing back an unchanged object does not bump resourceVersion."""
    created = (await api.post(CONFIGMAPS, configmap("a", x="1"))).body
    again = await api.put(f"{CONFIGMAPS}/a", created)
    assert again.body["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]


async def test_generation_moves_with_spec_only(api: Api, quiet: FakeKube) -> None:
    """A label change keeps generation; a spec change bumps it."""
    path = f"{DEPLOYMENTS}/web"
    await api.apply(path, deployment())
    labelled = await api.patch(
        path, {"metadata": {"labels": {"x": "y"}}}, "application/merge-patch+json"
    )
    assert labelled.body["metadata"]["generation"] == 1
    scaled = await api.patch(path, {"spec": {"replicas": 5}}, "application/merge-patch+json")
    assert scaled.body["metadata"]["generation"] == 2


async def test_delete_answers_status_or_object(api: Api) -> None:
    """Deleting a Deployment answers a Success Status; a Service answers the object."""
    await api.apply(f"{DEPLOYMENTS}/web", deployment())
    deleted = await api.delete(f"{DEPLOYMENTS}/web")
    assert deleted.status == 200
    assert deleted.body["kind"] == "Status" and deleted.body["status"] == "Success"
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "svc"},
        "spec": {"ports": [{"port": 80}]},
    }
    await api.post("/api/v1/namespaces/default/services", service)
    gone = await api.delete("/api/v1/namespaces/default/services/svc")
    assert gone.body["kind"] == "Service"
    assert (await api.get("/api/v1/namespaces/default/services/svc")).status == 404


async def test_finalizers_hold_deletion(api: Api) -> None:
    """An object with finalizers gets a deletionTimestamp and goes when they are removed."""
    body = configmap("held")
    body["metadata"]["finalizers"] = ["example.com/hold"]
    await api.post(CONFIGMAPS, body)
    pending = await api.delete(f"{CONFIGMAPS}/held")
    assert pending.status == 202
    assert pending.body["metadata"]["deletionTimestamp"]
    assert (await api.get(f"{CONFIGMAPS}/held")).status == 200
    released = await api.patch(
        f"{CONFIGMAPS}/held", {"metadata": {"finalizers": None}}, "application/merge-patch+json"
    )
    assert released.status == 200
    assert (await api.get(f"{CONFIGMAPS}/held")).status == 404


async def test_deleting_a_namespace_removes_its_content(api: Api) -> None:
    """A deleted namespace terminates, empties, then disappears; new content is forbidden."""
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "gone"}}
    created = await api.post("/api/v1/namespaces", namespace)
    assert created.body["status"]["phase"] == "Active"
    assert created.body["metadata"]["labels"] == {"kubernetes.io/metadata.name": "gone"}
    await api.post("/api/v1/namespaces/gone/configmaps", configmap("a"))
    deleting = await api.delete("/api/v1/namespaces/gone")
    assert deleting.body["status"]["phase"] == "Terminating"
    refused = await api.post("/api/v1/namespaces/gone/configmaps", configmap("b"))
    assert refused.status == 403
    assert "because it is being terminated" in refused.body["message"]

    async def gone() -> bool:
        return (await api.get("/api/v1/namespaces/gone")).status == 404

    await eventually(gone, message="namespace never went away")
    assert (await api.get("/api/v1/namespaces/gone/configmaps/a")).status == 404


async def test_new_namespaces_get_a_default_service_account(api: Api) -> None:
    """As on a real cluster, every namespace gets a "default" ServiceAccount."""
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "fresh"}}
    await api.post("/api/v1/namespaces", namespace)

    async def has_account() -> bool:
        answer = await api.get("/api/v1/namespaces/fresh/serviceaccounts/default")
        return answer.status == 200

    await eventually(has_account, message="no default ServiceAccount")


async def test_protobuf_bodies_are_refused_clearly(api: Api) -> None:
    """A protobuf body (what kubectl create sends) is 415 with an explanation."""
    answer = await api.request(
        "POST", CONFIGMAPS, raw=b"k8s\x00", content_type="application/vnd.kubernetes.protobuf"
    )
    assert answer.status == 415
    assert "protobuf" in answer.body["message"]


@pytest.mark.parametrize("number", [".nan", ".inf", "-.inf", "1.0e+400"])
async def test_yaml_bodies_with_nan_or_infinity_are_refused(api: Api, number: str) -> None:
    """A YAML body holding NaN or an infinity is a 400 (JSON has neither), and nothing is
    stored."""
    body = f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: odd}}\nx: {number}\n"
    answer = await api.request(
        "POST", CONFIGMAPS, raw=body.encode(), content_type="application/yaml"
    )
    assert answer.status == 400
    assert "NaN or infinite" in answer.body["message"]
    assert (await api.get(f"{CONFIGMAPS}/odd")).status == 404


async def test_unsupported_patch_type_is_415(api: Api) -> None:
    """An unknown patch content type is 415 UnsupportedMediaType."""
    answer = await api.patch(f"{CONFIGMAPS}/a", {}, "text/plain")
    assert answer.status == 415
    assert answer.body["reason"] == "UnsupportedMediaType"


async def test_unemulated_subresources_are_501(api: Api) -> None:
    """Pod logs and exec are refused with 501, saying fakekube does not emulate them."""
    answer = await api.get("/api/v1/namespaces/default/pods/p/log")
    assert answer.status == 501
    assert "does not emulate" in answer.body["message"]


async def test_verbs_a_resource_lacks_are_405(api: Api) -> None:
    """deletecollection on namespaces (which real clusters refuse) is 405."""
    answer = await api.delete("/api/v1/namespaces")
    assert answer.status == 405
    assert answer.body["reason"] == "MethodNotAllowed"


async def test_delete_collection(api: Api) -> None:
    """DELETE on a collection removes what the selector matches."""
    await api.post(CONFIGMAPS, configmap("keep", {"k": "1"}))
    await api.post(CONFIGMAPS, configmap("drop", {"k": "2"}))
    await api.request("DELETE", CONFIGMAPS, params={"labelSelector": "k=2"})
    names = [i["metadata"]["name"] for i in (await api.get(CONFIGMAPS)).body["items"]]
    assert "keep" in names and "drop" not in names


async def test_secret_string_data_is_encoded(api: Api) -> None:
    """stringData is merged into data, base64-encoded, and not stored."""
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "s"},
        "stringData": {"password": "hunter2"},
    }
    created = await api.post("/api/v1/namespaces/default/secrets", secret)
    assert created.body["data"] == {"password": "aHVudGVyMg=="}
    assert created.body["type"] == "Opaque"
    assert "stringData" not in created.body


async def test_service_defaults_and_allocation(api: Api) -> None:
    """A Service gets a ClusterIP, TCP ports with targetPort, and NodePorts when asked."""
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "svc"},
        "spec": {"type": "NodePort", "selector": {"app": "x"}, "ports": [{"port": 80}]},
    }
    created = (await api.post("/api/v1/namespaces/default/services", service)).body
    spec = created["spec"]
    assert spec["clusterIP"].startswith("10.9")
    assert spec["clusterIPs"] == [spec["clusterIP"]]
    port = spec["ports"][0]
    assert port["protocol"] == "TCP" and port["targetPort"] == 80
    assert 30000 <= port["nodePort"] <= 32767
    reapplied = await api.apply("/api/v1/namespaces/default/services/svc", service, manager="other")
    assert reapplied.body["spec"]["clusterIP"] == spec["clusterIP"]


async def test_duplicate_list_keys_through_put_keep_managed_fields(api: Api) -> None:
    """A PUT with duplicate port keys is stored, as the apiserver does, without ownership."""
    body = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "dup"},
        "spec": {"ports": [{"name": "a", "port": 80}, {"name": "b", "port": 80}]},
    }
    created = await api.post("/api/v1/namespaces/default/services", body)
    assert created.status == 201
    assert len(created.body["spec"]["ports"]) == 2


async def test_quantities_are_stored_canonically(api: Api) -> None:
    """cpu: 1 becomes "1", 1024Mi becomes "1Gi", 0.5 becomes "500m"; garbage is a 400."""
    body = deployment()
    container = body["spec"]["template"]["spec"]["containers"][0]
    container["resources"] = {
        "requests": {"cpu": 1, "memory": "1024Mi"},
        "limits": {"cpu": 0.5, "memory": "1.5Gi"},
    }
    stored = (await api.apply(f"{DEPLOYMENTS}/web", body)).body
    resources = stored["spec"]["template"]["spec"]["containers"][0]["resources"]
    assert resources == {
        "requests": {"cpu": "1", "memory": "1Gi"},
        "limits": {"cpu": "500m", "memory": "1536Mi"},
    }
    container["resources"] = {"requests": {"cpu": "lots"}}
    refused = await api.apply(f"{DEPLOYMENTS}/web", body)
    assert refused.status == 400
    assert "quantities must match the regular expression" in refused.body["message"]
