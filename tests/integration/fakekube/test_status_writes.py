"""Status writes (PUT .../status, and the controllers' own) store a new status over the rest
of the object, which they share with the version before: that version must stay as it was."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from reconciler.testing.fakekube import FakeKube
from tests.support.kubeapi import Api
from tests.support.manifests import DEPLOYMENTS, deployment

_SERVICE = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
    "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]},
}
_CLAIM = {
    "apiVersion": "v1",
    "kind": "PersistentVolumeClaim",
    "metadata": {"name": "data", "namespace": "default"},
    "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
}
_POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "one", "namespace": "default"},
    "spec": {"containers": [{"name": "main", "image": "nginx:1.25"}]},
}
CASES = [
    (DEPLOYMENTS, deployment(), "apps/v1", "Deployment", {"observedGeneration": 1, "replicas": 2}),
    (
        "/api/v1/namespaces/default/services",
        _SERVICE,
        "v1",
        "Service",
        {"loadBalancer": {"ingress": [{"ip": "192.0.2.7"}]}},
    ),
    (
        "/api/v1/namespaces/default/persistentvolumeclaims",
        _CLAIM,
        "v1",
        "PersistentVolumeClaim",
        {"phase": "Bound", "capacity": {"storage": "1Gi"}},
    ),
    ("/api/v1/namespaces/default/pods", _POD, "v1", "Pod", {"phase": "Running"}),
]


def _stored(fakekube: FakeKube, api_version: str, kind: str, name: str) -> dict[str, Any]:
    registry = fakekube.registry
    found = registry.find(registry.resource(api_version, kind), "default", name)
    assert found is not None
    return found


@pytest.mark.parametrize(("path", "body", "api_version", "kind", "status"), CASES)
async def test_a_status_write_leaves_the_version_before_unchanged(
    api: Api,
    quiet: FakeKube,
    path: str,
    body: dict[str, Any],
    api_version: str,
    kind: str,
    status: dict[str, Any],
) -> None:
    """After PUT .../status the previous stored version is exactly as it was, the new one has
    the status sent and the same spec and generation, and the same PUT again changes nothing."""
    name = body["metadata"]["name"]
    created = await api.post(path, body)
    assert created.status == 201, created.body
    before = _stored(quiet, api_version, kind, name)
    snapshot = copy.deepcopy(before)
    sent = created.body | {"status": status}
    written = await api.put(f"{path}/{name}/status", sent)
    assert written.status == 200, written.body
    assert before == snapshot
    after = _stored(quiet, api_version, kind, name)
    assert after["status"] == status
    assert after["spec"] == before["spec"]
    assert after["metadata"].get("generation") == before["metadata"].get("generation")
    assert after["metadata"]["resourceVersion"] != before["metadata"]["resourceVersion"]
    again = await api.put(f"{path}/{name}/status", written.body)
    assert again.body["metadata"]["resourceVersion"] == written.body["metadata"]["resourceVersion"]


async def test_a_status_write_ignores_a_changed_spec(api: Api, quiet: FakeKube) -> None:
    """A spec sent to the status subresource is ignored and the stored spec is not touched."""
    created = await api.post(DEPLOYMENTS, deployment(replicas=2))
    before = _stored(quiet, "apps/v1", "Deployment", "web")
    snapshot = copy.deepcopy(before)
    sent = copy.deepcopy(created.body)
    sent["spec"]["replicas"] = 9
    sent["status"] = {"replicas": 1}
    written = await api.put(f"{DEPLOYMENTS}/web/status", sent)
    assert written.status == 200, written.body
    assert written.body["spec"]["replicas"] == 2 and written.body["status"] == {"replicas": 1}
    assert before == snapshot
