"""Conformance with the official Python client, sync and ``kubernetes.aio``."""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, cast

import pytest
import pytest_asyncio
from kubernetes import client
from kubernetes.aio import client as aio_client

from reconciler.testing.fakekube import FakeKube
from tests.support.manifests import deployment
from tests.support.waiting import eventually

# These client modules have no type hints; Any keeps mypy's strict mode meaningful elsewhere.
config: Any = importlib.import_module("kubernetes.config")
dynamic: Any = importlib.import_module("kubernetes.dynamic")
watch: Any = importlib.import_module("kubernetes.watch")
aio_config: Any = importlib.import_module("kubernetes.aio.config")
aio_dynamic: Any = importlib.import_module("kubernetes.aio.dynamic")
aio_watch: Any = importlib.import_module("kubernetes.aio.watch")


@pytest.fixture
def sync_api(kubeconfig_path: Path) -> Iterator[Any]:
    """A sync ApiClient for fakekube."""
    api = config.new_client_from_config(str(kubeconfig_path))
    yield api
    api.close()


@pytest_asyncio.fixture
async def aio_api(kubeconfig_path: Path) -> AsyncIterator[Any]:
    """A ``kubernetes.aio`` ApiClient for fakekube."""
    api = await aio_config.new_client_from_config(str(kubeconfig_path))
    async with api:
        yield api


async def test_sync_discovery_apply_typed_read_and_scale(
    sync_api: Any, tmp_path: Path, fakekube: FakeKube
) -> None:
    """DynamicClient discovers, server-side applies, and typed reads parse into models."""

    def scenario() -> tuple[Any, Any, Any]:
        dyn = dynamic.DynamicClient(sync_api, cache_file=str(tmp_path / "discovery.json"))
        deployments = dyn.resources.get(api_version="apps/v1", kind="Deployment")
        applied = dyn.server_side_apply(
            deployments, body=deployment(), field_manager="reconciler", force_conflicts=True
        )
        configmaps = dyn.resources.get(api_version="v1", kind="ConfigMap")
        assert configmaps.namespaced and "patch" in configmaps.verbs
        apps = client.AppsV1Api(sync_api)
        typed = apps.read_namespaced_deployment("web", "default")
        scale = apps.patch_namespaced_deployment_scale("web", "default", {"spec": {"replicas": 4}})
        return applied, typed, scale

    applied, typed, scale = await asyncio.to_thread(scenario)
    assert applied.metadata.managedFields[0].manager == "reconciler"
    assert isinstance(typed, client.V1Deployment)
    assert typed.to_dict()["spec"]["template"]["spec"]["containers"][0]["ports"][0] == {
        "container_port": 80,
        "protocol": "TCP",
        "host_ip": None,
        "host_port": None,
        "name": None,
    }
    assert isinstance(scale, client.V1Scale) and scale.to_dict()["spec"]["replicas"] == 4
    stored = fakekube.get_object(
        api_version="apps/v1", kind="Deployment", name="web", namespace="default"
    )
    assert stored is not None and stored["spec"]["replicas"] == 4


async def test_sync_typed_read_of_a_rolled_out_deployment(sync_api: Any, tmp_path: Path) -> None:
    """The status the controllers write parses into V1DeploymentStatus with its conditions."""
    apps = client.AppsV1Api(sync_api)
    await asyncio.to_thread(
        apps.create_namespaced_deployment, "default", cast(Any, deployment(replicas=2))
    )

    async def rolled_out() -> bool:
        current = await asyncio.to_thread(apps.read_namespaced_deployment, "web", "default")
        return bool(current.status and current.status.available_replicas == 2)

    await eventually(rolled_out)
    current = await asyncio.to_thread(apps.read_namespaced_deployment_status, "web", "default")
    assert current.status is not None and current.status.conditions is not None
    kinds = {c.type: c.reason for c in current.status.conditions}
    assert kinds == {
        "Available": "MinimumReplicasAvailable",
        "Progressing": "NewReplicaSetAvailable",
    }
    pods = await asyncio.to_thread(
        client.CoreV1Api(sync_api).list_namespaced_pod, "default", label_selector="app=web"
    )
    assert all(isinstance(p, client.V1Pod) for p in pods.items)
    assert [p.to_dict()["status"]["phase"] for p in pods.items] == ["Running", "Running"]


async def test_sync_watch(sync_api: Any) -> None:
    """kubernetes.watch streams ADDED and MODIFIED events as typed objects."""
    core = client.CoreV1Api(sync_api)

    def stream() -> list[tuple[str, str]]:
        seen: list[tuple[str, str]] = []
        watcher = watch.Watch()
        for event in watcher.stream(core.list_namespaced_config_map, "default", timeout_seconds=5):
            seen.append((event["type"], event["object"].metadata.name))
            if len(seen) == 2:
                watcher.stop()
        return seen

    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1"}}
    await asyncio.to_thread(core.create_namespaced_config_map, "default", cast(Any, body))
    streaming = asyncio.create_task(asyncio.to_thread(stream))
    await asyncio.sleep(0.3)
    await asyncio.to_thread(core.patch_namespaced_config_map, "c", "default", {"data": {"a": "2"}})
    assert await asyncio.wait_for(streaming, 10) == [("ADDED", "c"), ("MODIFIED", "c")]


async def test_aio_dynamic_server_side_apply(aio_api: Any, tmp_path: Path) -> None:
    """kubernetes.aio DynamicClient.server_side_apply creates, then conflicts, then forces."""
    from kubernetes.aio.client.exceptions import ApiException

    dyn = await aio_dynamic.DynamicClient(aio_api, cache_file=str(tmp_path / "aio-discovery.json"))
    deployments = await dyn.resources.get(api_version="apps/v1", kind="Deployment")
    first = await dyn.server_side_apply(deployments, body=deployment(replicas=2), field_manager="a")
    assert first.spec.replicas == 2
    with pytest.raises(ApiException) as conflict:
        await dyn.server_side_apply(deployments, body=deployment(replicas=3), field_manager="b")
    assert conflict.value.status == 409
    forced = await dyn.server_side_apply(
        deployments, body=deployment(replicas=3), field_manager="b", force_conflicts=True
    )
    assert forced.spec.replicas == 3


async def test_aio_typed_reads_scale_patch_and_watch(aio_api: Any, tmp_path: Path) -> None:
    """Typed aio reads parse, the scale subresource patches, and aio watch streams events."""
    apps = aio_client.AppsV1Api(aio_api)
    await apps.create_namespaced_deployment("default", cast(Any, deployment(replicas=1)))
    typed = await apps.read_namespaced_deployment("web", "default")
    assert isinstance(typed, aio_client.V1Deployment)
    scale = await apps.patch_namespaced_deployment_scale(
        "web", "default", {"spec": {"replicas": 2}}
    )
    assert scale.to_dict()["spec"]["replicas"] == 2
    seen: list[str] = []
    watcher = aio_watch.Watch()
    async with watcher.stream(
        apps.list_namespaced_deployment, "default", timeout_seconds=10
    ) as stream:
        async for event in stream:
            status = event["object"].status
            seen.append(event["type"])
            if status is not None and status.available_replicas == 2:
                break
    assert seen[0] == "ADDED"
    assert "MODIFIED" in seen
