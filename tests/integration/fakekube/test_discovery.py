"""Discovery and OpenAPI: what clients learn before they send anything."""

from __future__ import annotations

from reconciler.testing.fakekube.resource_types import builtin_resource_types
from tests.support.kubeapi import Api

REQUIRED_KINDS = {
    ("v1", "Namespace"),
    ("v1", "ConfigMap"),
    ("v1", "Secret"),
    ("v1", "Service"),
    ("v1", "ServiceAccount"),
    ("v1", "Pod"),
    ("v1", "PersistentVolumeClaim"),
    ("apps/v1", "Deployment"),
    ("apps/v1", "StatefulSet"),
    ("apps/v1", "DaemonSet"),
    ("apps/v1", "ReplicaSet"),
    ("batch/v1", "Job"),
    ("batch/v1", "CronJob"),
    ("networking.k8s.io/v1", "Ingress"),
    ("networking.k8s.io/v1", "NetworkPolicy"),
    ("autoscaling/v2", "HorizontalPodAutoscaler"),
    ("policy/v1", "PodDisruptionBudget"),
    ("rbac.authorization.k8s.io/v1", "Role"),
    ("rbac.authorization.k8s.io/v1", "RoleBinding"),
    ("rbac.authorization.k8s.io/v1", "ClusterRole"),
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"),
    ("apiextensions.k8s.io/v1", "CustomResourceDefinition"),
}


async def test_version(api: Api) -> None:
    """/version reports a 1.32 server."""
    answer = await api.get("/version")
    assert answer.body["major"] == "1" and answer.body["minor"] == "32"
    assert answer.body["gitVersion"].startswith("v1.32.")


async def test_every_required_kind_is_discoverable(api: Api) -> None:
    """Each kind the product may apply is listed in its group-version's resource list."""
    found: set[tuple[str, str]] = set()
    groups = (await api.get("/apis")).body["groups"]
    paths = ["/api/v1"] + [f"/apis/{g['preferredVersion']['groupVersion']}" for g in groups]
    assert (await api.get("/api")).body["versions"] == ["v1"]
    for path in paths:
        listing = (await api.get(path)).body
        assert listing["kind"] == "APIResourceList"
        for resource in listing["resources"]:
            found.add((listing["groupVersion"], resource["kind"]))
    assert found >= REQUIRED_KINDS


async def test_resource_details(api: Api) -> None:
    """Verbs, scope, short names, the "all" category and the status/scale subresources."""
    listing = (await api.get("/apis/apps/v1")).body
    resources = {r["name"]: r for r in listing["resources"]}
    deployments = resources["deployments"]
    assert deployments["namespaced"] is True
    assert deployments["shortNames"] == ["deploy"]
    assert deployments["categories"] == ["all"]
    assert set(deployments["verbs"]) == {
        "create",
        "delete",
        "deletecollection",
        "get",
        "list",
        "patch",
        "update",
        "watch",
    }
    assert resources["deployments/status"]["verbs"] == ["get", "patch", "update"]
    assert resources["deployments/scale"]["kind"] == "Scale"
    assert resources["deployments/scale"]["group"] == "autoscaling"
    core = {r["name"]: r for r in (await api.get("/api/v1")).body["resources"]}
    assert core["namespaces"]["namespaced"] is False
    assert core["persistentvolumeclaims"]["shortNames"] == ["pvc"]
    assert "all" not in core["configmaps"].get("categories", [])
    group = (await api.get("/apis/apps")).body
    assert group["preferredVersion"]["groupVersion"] == "apps/v1"


async def test_kind_table_comes_from_the_schemas() -> None:
    """Plural names, scopes and list-map keys come from the bundled OpenAPI sources."""
    by_kind = {(t.api_version, t.kind): t for t in builtin_resource_types()}
    ingress = by_kind[("networking.k8s.io/v1", "Ingress")]
    assert ingress.plural == "ingresses" and ingress.namespaced
    cluster_role = by_kind[("rbac.authorization.k8s.io/v1", "ClusterRole")]
    assert not cluster_role.namespaced
    service = by_kind[("v1", "Service")]
    spec = service.schema.field("spec")
    assert spec is not None
    ports = spec.field("ports")
    assert ports is not None and ports.list_keys == ("port", "protocol")
    pod_spec = by_kind[("v1", "Pod")].schema.field("spec")
    assert pod_spec is not None
    containers = pod_spec.field("containers")
    assert containers is not None
    env = containers.element.field("env")
    assert env is not None and env.merge_key == "name" and env.list_keys == ("name",)


async def test_openapi_v3_index_and_documents(api: Api) -> None:
    """/openapi/v3 lists a document per group-version; PATCH advertises fieldValidation."""
    index = (await api.get("/openapi/v3")).body["paths"]
    assert "api/v1" in index and "apis/apps/v1" in index
    url = index["apis/apps/v1"]["serverRelativeURL"]
    assert url.startswith("/openapi/v3/apis/apps/v1?hash=")
    document = (await api.get(url.split("?")[0])).body
    item = document["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]
    patch = item["patch"]
    assert patch["x-kubernetes-group-version-kind"] == {
        "group": "apps",
        "version": "v1",
        "kind": "Deployment",
    }
    assert {p["name"] for p in patch["parameters"]} >= {"fieldValidation", "fieldManager", "force"}
    schemas = document["components"]["schemas"]
    containers = schemas["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"]
    assert containers["x-kubernetes-patch-merge-key"] == "name"
    assert schemas["io.k8s.api.apps.v1.Deployment"]["properties"]["spec"]["allOf"] == [
        {"$ref": "#/components/schemas/io.k8s.api.apps.v1.DeploymentSpec"}
    ]


async def test_openapi_v2_is_refused_with_a_reason(api: Api) -> None:
    """/openapi/v2 (protobuf on real servers) is a 404 that says only v3 is served."""
    answer = await api.get("/openapi/v2")
    assert answer.status == 404
    assert "v3" in answer.body["message"]


async def test_unknown_paths_are_404_status(api: Api) -> None:
    """Unknown groups and resources answer a NotFound Status."""
    for path in ("/apis/nope.example.com/v1", "/apis/apps/v1/widgets", "/nothing"):
        answer = await api.get(path)
        assert answer.status == 404
        assert answer.body["kind"] == "Status"
