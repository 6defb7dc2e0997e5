"""Merge patch, strategic merge patch (as kubectl sends it), JSON patch, scale and status."""

from __future__ import annotations

from typing import Any

from reconciler.testing.fakekube import FakeKube
from tests.support.kubeapi import Api
from tests.support.manifests import DEPLOYMENTS, deployment

WEB = f"{DEPLOYMENTS}/web"
SMP = "application/strategic-merge-patch+json"
MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"


def _containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    return list(obj["spec"]["template"]["spec"]["containers"])


async def _two_containers(api: Api) -> None:
    body = deployment()
    body["spec"]["template"]["spec"]["containers"].append(
        {"name": "sidecar", "image": "busybox:1", "env": [{"name": "A", "value": "1"}]}
    )
    await api.apply(WEB, body)


async def test_strategic_patch_merges_containers_by_name(api: Api) -> None:
    """What ``kubectl set image`` sends changes one container and keeps the other."""
    await _two_containers(api)
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "nginx:2"}]}}}}
    answer = await api.patch(WEB, patch, SMP, fieldManager="kubectl-set")
    images = {c["name"]: c["image"] for c in _containers(answer.body)}
    assert images == {"web": "nginx:2", "sidecar": "busybox:1"}


async def test_merge_patch_replaces_lists(api: Api) -> None:
    """A JSON merge patch replaces a list wholesale."""
    await _two_containers(api)
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "nginx:3"}]}}}}
    answer = await api.patch(WEB, patch, MERGE)
    assert [c["name"] for c in _containers(answer.body)] == ["web"]


async def test_strategic_patch_directives(api: Api) -> None:
    """$patch: delete, $setElementOrder and $deleteFromPrimitiveList are applied, not stored."""
    await _two_containers(api)
    patch = {
        "metadata": {"finalizers": ["a/x", "a/y"]},
        "spec": {
            "template": {
                "spec": {
                    "$setElementOrder/containers": [{"name": "sidecar"}, {"name": "web"}],
                    "containers": [{"name": "sidecar", "env": [{"name": "B", "value": "2"}]}],
                }
            }
        },
    }
    ordered = await api.patch(WEB, patch, SMP)
    assert [c["name"] for c in _containers(ordered.body)] == ["sidecar", "web"]
    env = _containers(ordered.body)[0]["env"]
    assert [e["name"] for e in env] == ["A", "B"]
    removal = {
        "metadata": {"$deleteFromPrimitiveList/finalizers": ["a/x"]},
        "spec": {"template": {"spec": {"containers": [{"name": "sidecar", "$patch": "delete"}]}}},
    }
    removed = await api.patch(WEB, removal, SMP)
    assert [c["name"] for c in _containers(removed.body)] == ["web"]
    assert removed.body["metadata"]["finalizers"] == ["a/y"]
    assert "$patch" not in str(removed.body)


async def test_retain_keys_switches_the_strategy(api: Api) -> None:
    """$retainKeys drops the rollingUpdate block when the strategy becomes Recreate."""
    await api.apply(WEB, deployment())
    patch = {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}
    answer = await api.patch(WEB, patch, SMP)
    assert answer.body["spec"]["strategy"] == {"type": "Recreate"}


async def test_rollout_restart_patch(api: Api, quiet: FakeKube) -> None:
    """What ``kubectl rollout restart`` sends adds a template annotation and bumps generation."""
    await api.apply(WEB, deployment())
    patch = {
        "spec": {
            "template": {
                "metadata": {
                    "annotations": {"kubectl.kubernetes.io/restartedAt": "2024-01-01T00:00:00Z"}
                }
            }
        }
    }
    answer = await api.patch(WEB, patch, SMP, fieldManager="kubectl-rollout")
    annotations = answer.body["spec"]["template"]["metadata"]["annotations"]
    assert annotations == {"kubectl.kubernetes.io/restartedAt": "2024-01-01T00:00:00Z"}
    assert answer.body["metadata"]["generation"] == 2


async def test_json_patch_operations(api: Api) -> None:
    """JSON patch add/replace/remove work; a failed test operation is 422."""
    await api.apply(WEB, deployment())
    operations = [
        {"op": "replace", "path": "/spec/replicas", "value": 4},
        {"op": "add", "path": "/metadata/labels", "value": {"a": "b"}},
        {"op": "add", "path": "/spec/template/spec/containers/0/args", "value": ["-x"]},
    ]
    answer = await api.patch(WEB, operations, JSON_PATCH)
    assert answer.status == 200
    assert answer.body["spec"]["replicas"] == 4
    assert answer.body["metadata"]["labels"] == {"a": "b"}
    failed = await api.patch(
        WEB, [{"op": "test", "path": "/spec/replicas", "value": 9}], JSON_PATCH
    )
    assert failed.status == 422
    removed = await api.patch(WEB, [{"op": "remove", "path": "/metadata/labels"}], JSON_PATCH)
    assert "labels" not in removed.body["metadata"]


async def test_scale_subresource(api: Api, quiet: FakeKube) -> None:
    """GET /scale shows a Scale; merge, strategic and JSON patches and PUT change replicas."""
    await api.apply(WEB, deployment(replicas=2))
    scale = await api.get(f"{WEB}/scale")
    assert scale.body["kind"] == "Scale"
    assert scale.body["apiVersion"] == "autoscaling/v1"
    assert scale.body["spec"] == {"replicas": 2}
    assert scale.body["status"]["selector"] == "app=web"
    merged = await api.patch(
        f"{WEB}/scale", {"spec": {"replicas": 3}}, MERGE, fieldManager="kubectl-scale"
    )
    assert merged.body["spec"]["replicas"] == 3
    owners = (await api.get(WEB)).body["metadata"]["managedFields"]
    scaler = next(e for e in owners if e["manager"] == "kubectl-scale")
    assert scaler["subresource"] == "scale"
    assert scaler["fieldsV1"] == {"f:spec": {"f:replicas": {}}}
    strategic = await api.patch(f"{WEB}/scale", {"spec": {"replicas": 4}}, SMP)
    assert strategic.body["spec"]["replicas"] == 4
    json_patched = await api.patch(
        f"{WEB}/scale", [{"op": "replace", "path": "/spec/replicas", "value": 5}], JSON_PATCH
    )
    assert json_patched.body["spec"]["replicas"] == 5
    put = await api.put(f"{WEB}/scale", dict(json_patched.body, spec={"replicas": 6}))
    assert put.body["spec"]["replicas"] == 6
    assert (await api.get(WEB)).body["spec"]["replicas"] == 6


async def test_apply_to_scale_conflicts_like_the_field(api: Api, quiet: FakeKube) -> None:
    """An apply to /scale owns spec.replicas and conflicts with the object's applier."""
    await api.apply(WEB, deployment(replicas=2), manager="reconciler")
    answer = await api.apply(
        f"{WEB}/scale",
        {"apiVersion": "autoscaling/v1", "kind": "Scale", "spec": {"replicas": 5}},
        manager="hpa",
    )
    assert answer.status == 409
    forced = await api.apply(
        f"{WEB}/scale",
        {"apiVersion": "autoscaling/v1", "kind": "Scale", "spec": {"replicas": 5}},
        manager="hpa",
        force="true",
    )
    assert forced.body["spec"]["replicas"] == 5


async def test_status_subresource_writes_only_status(api: Api, quiet: FakeKube) -> None:
    """PUT and PATCH on /status change status only; the main resource ignores status."""
    current = (await api.apply(WEB, deployment(replicas=2))).body
    put = await api.put(
        f"{WEB}/status", dict(current, status={"replicas": 9}, spec={"replicas": 1})
    )
    assert put.body["status"] == {"replicas": 9}
    assert put.body["spec"]["replicas"] == 2
    patched = await api.patch(f"{WEB}/status", {"status": {"readyReplicas": 1}}, MERGE)
    assert patched.body["status"] == {"replicas": 9, "readyReplicas": 1}
    main = await api.patch(WEB, {"status": {"replicas": 1}}, MERGE)
    assert main.body["status"]["replicas"] == 9


async def test_strategic_patch_on_custom_resources_is_415(api: Api, fakekube: FakeKube) -> None:
    """Custom resources refuse strategic merge patch, as real clusters do."""
    from .test_custom_resources import install_widgets

    await install_widgets(api)
    path = "/apis/example.com/v1/namespaces/default/widgets/w"
    await api.apply(
        path, {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    )
    answer = await api.patch(path, {"spec": {"size": 1}}, SMP)
    assert answer.status == 415
