"""Dropped watch connections as a fault: clients see the stream end and resume without loss."""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import pytest_asyncio
from kubernetes.aio import client as aio_client

from reconciler.testing.fakekube import FakeKube
from tests.support.kubectl import Kubectl
from tests.support.waiting import eventually

aio_config: Any = importlib.import_module("kubernetes.aio.config")
aio_watch: Any = importlib.import_module("kubernetes.aio.watch")


@pytest_asyncio.fixture
async def core(kubeconfig_path: Path) -> AsyncIterator[Any]:
    """A ``kubernetes.aio`` CoreV1Api for fakekube."""
    api = await aio_config.new_client_from_config(str(kubeconfig_path))
    async with api:
        yield aio_client.CoreV1Api(api)


def configmap(name: str) -> dict[str, Any]:
    """A ConfigMap manifest."""
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"v": "0"}}


class Watching:
    """An official-client watch on ConfigMaps in ``default``, run until the server ends it."""

    def __init__(self, core: Any, resource_version: str, *, list_call: str = "") -> None:
        self.watch = aio_watch.Watch()
        self.names: list[str] = []
        call = getattr(core, list_call or "list_namespaced_config_map")
        self.task = asyncio.create_task(self._run(call, resource_version))

    async def _run(self, call: Any, resource_version: str) -> None:
        async with self.watch.stream(
            call, "default", resource_version=resource_version, timeout_seconds=60
        ) as stream:
            async for event in stream:
                self.names.append(f"{event['type']} {event['raw_object']['metadata']['name']}")

    async def ended(self, within: float = 5.0) -> list[str]:
        """The events seen, once the stream has ended (fails if it does not)."""
        await asyncio.wait_for(self.task, within)
        return self.names


async def _listed_version(core: Any) -> str:
    return str((await core.list_namespaced_config_map("default")).metadata.resource_version)


async def _open(fakekube: FakeKube, resource: str, count: int = 1) -> None:
    await eventually(
        lambda: fakekube.faults.open_watches.count(resource) == count,
        message=f"{count} watch(es) of {resource} never opened",
    )


async def test_dropping_at_once_ends_the_official_clients_watch(
    core: Any, fakekube: FakeKube
) -> None:
    """drop_watches() ends an open watch at once; the official client's stream just stops."""
    watching = Watching(core, await _listed_version(core))
    await _open(fakekube, "configmaps")
    await core.create_namespaced_config_map("default", cast(Any, configmap("a")))
    await eventually(lambda: watching.names == ["ADDED a"])
    assert fakekube.faults.drop_watches() >= 1
    assert await watching.ended(within=2.0) == ["ADDED a"]
    assert fakekube.faults.open_watches.count("configmaps") == 0


async def test_a_rewatch_after_a_drop_mid_stream_loses_nothing(
    core: Any, fakekube: FakeKube
) -> None:
    """Dropped after 2 events, a re-watch from the last RV seen gets the rest, none twice."""
    first = Watching(core, await _listed_version(core))
    await _open(fakekube, "configmaps")
    assert fakekube.faults.drop_watches(resource="configmaps", after_events=2) == 1
    for index in range(5):
        await core.create_namespaced_config_map("default", cast(Any, configmap(f"c{index}")))
    seen = await first.ended()
    assert seen == ["ADDED c0", "ADDED c1"]
    second = Watching(core, first.watch.resource_version)
    await _open(fakekube, "configmaps")
    await eventually(lambda: len(second.names) >= 3)
    fakekube.faults.drop_watches()
    assert seen + await second.ended() == [f"ADDED c{index}" for index in range(5)]


async def test_drops_name_a_resource(core: Any, fakekube: FakeKube) -> None:
    """drop_watches(resource=...) ends only that resource's watches (plural or plural.group)."""
    version = await _listed_version(core)
    configmaps = Watching(core, version)
    secrets = Watching(core, version, list_call="list_namespaced_secret")
    await _open(fakekube, "configmaps")
    await _open(fakekube, "secrets")
    assert fakekube.faults.drop_watches(resource="deployments.apps") == 0
    assert fakekube.faults.drop_watches(resource="secrets") == 1
    assert await secrets.ended() == []
    await core.create_namespaced_config_map("default", cast(Any, configmap("still")))
    await eventually(lambda: configmaps.names == ["ADDED still"])
    fakekube.faults.drop_watches(resource="configmaps")
    await configmaps.ended()


async def test_kubectl_get_watch_ends_when_its_watch_is_dropped(
    kubectl: Kubectl, fakekube: FakeKube
) -> None:
    """`kubectl get --watch` prints the changes, then ends when fakekube drops its watch."""
    watching = asyncio.create_task(
        kubectl.run("get", "configmaps", "--watch", "-o", "name", check=False, within=30)
    )
    await _open(fakekube, "configmaps")
    await kubectl.run("create", "-f", str(kubectl.write("a.yaml", _yaml("dropped-a"))))
    await asyncio.sleep(0.3)
    fakekube.faults.drop_watches(resource="configmaps")
    result = await asyncio.wait_for(watching, 30)
    assert result.returncode == 0, result.stderr
    assert "configmap/dropped-a" in result.stdout.splitlines()


def _yaml(name: str) -> str:
    return f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  v: '1'\n"
