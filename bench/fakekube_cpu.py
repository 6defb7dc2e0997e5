"""fakekube's CPU per deployment in a bulk update, in process and without HTTP.

    .venv/bin/python bench/fakekube_cpu.py [--deployments 300] [--rounds 2] [--profile FILE]

What ``throughput.py`` makes fakekube do for each deployment, minus the sockets: a ConfigMap,
a Deployment and (every other one) a Service are server-side applied (the body decoded from
JSON as a request's is, the answer encoded as a response's), watches on ConfigMaps,
Deployments, Services, Pods and ReplicaSets encode every event as the daemon's streams would,
and the controllers roll each Deployment out (ReplicaSet, Pod, status writes).  All are created
and rolled out first; then each round updates every Deployment's image and is timed until all
rollouts are complete.  Reports ``time.process_time`` per deployment (client work is none: the
bodies are encoded before the clock starts); ``--profile`` writes cProfile stats of the rounds,
``--sample FILE`` samples their stacks instead (``sampler.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import signal
import time
from pathlib import Path
from typing import Any

from sampler import finish, install

from reconciler import jsoncodec
from reconciler.testing.fakekube import FakeKube
from reconciler.testing.fakekube.http_io import json_response, load_json
from reconciler.testing.fakekube.store import FieldSelector, LabelSelector, Watcher
from reconciler.testing.fakekube.watch import event_line

_WATCHED = (("v1", "ConfigMap"), ("apps/v1", "Deployment"), ("v1", "Service"), ("v1", "Pod"))
_WATCHED_EXTRA = (("apps/v1", "ReplicaSet"),)


def _deployment(index: int, image: str) -> dict[str, Any]:
    name = f"app-{index:05d}"
    labels = {"app": name, "app.kubernetes.io/managed-by": "reconciler"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "bench", "labels": labels},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "containers": [
                        {
                            "name": "main",
                            "image": image,
                            "ports": [{"containerPort": 8080}],
                            "env": [{"name": "INDEX", "value": str(index)}],
                            "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}},
                        }
                    ]
                },
            },
        },
    }


def _configmap(index: int, image: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": f"app-{index:05d}-settings", "namespace": "bench"},
        "data": {"index": str(index), "image": image, "payload": "x" * 200},
    }


def _service(index: int) -> dict[str, Any]:
    name = f"app-{index:05d}"
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": "bench"},
        "spec": {"selector": {"app": name}, "ports": [{"port": 80, "targetPort": 8080}]},
    }


def _bodies(count: int, image: str) -> list[list[bytes]]:
    """Each deployment's apply bodies, encoded (the client's work, done before timing)."""
    out = []
    for index in range(count):
        objects = [_configmap(index, image), _deployment(index, image)]
        if index % 2 == 0:
            objects.append(_service(index))
        out.append([jsoncodec.dumps(obj) for obj in objects])
    return out


class _Watches:
    """Store watchers whose events are encoded as watch streams encode them."""

    def __init__(self, fakekube: FakeKube) -> None:
        registry = fakekube.registry
        self.streams: list[tuple[Any, Watcher]] = []
        for api_version, kind in (*_WATCHED, *_WATCHED_EXTRA):
            resource = registry.resource(api_version, kind)
            watcher = Watcher(
                resource=registry.types.storage_key(resource),
                namespace=None,
                labels=LabelSelector(),
                fields=FieldSelector(),
            )
            registry.store.add_watcher(watcher)
            self.streams.append((resource, watcher))
        self.lines = 0

    def drain(self) -> None:
        for resource, watcher in self.streams:
            while not watcher.queue.empty():
                item = watcher.queue.get_nowait()
                if item is None:
                    continue
                kind, event = item
                event_line(kind, resource, event.object, False, {}, event)
                self.lines += 1


def _apply_all(fakekube: FakeKube, bodies: list[list[bytes]]) -> None:
    registry = fakekube.registry
    for group in bodies:
        for raw in group:
            obj = load_json(raw)
            resource = registry.resource(obj["apiVersion"], obj["kind"])
            answer, warnings = registry.patch(
                resource,
                "bench",
                obj["metadata"]["name"],
                "application/apply-patch+yaml",
                obj,
                manager="reconciler",
                force=True,
            )
            json_response(answer, 200, warnings)


def _rolled_out(fakekube: FakeKube, count: int, image: str) -> bool:
    registry = fakekube.registry
    resource = registry.resource("apps/v1", "Deployment")
    for index in range(count):
        found = registry.find(resource, "bench", f"app-{index:05d}")
        if found is None:
            return False
        spec, status = found["spec"], found.get("status") or {}
        container = spec["template"]["spec"]["containers"][0]
        if (
            container["image"] != image
            or status.get("observedGeneration") != found["metadata"]["generation"]
            or status.get("updatedReplicas") != 1
            or status.get("availableReplicas") != 1
            or status.get("replicas") != 1
        ):
            return False
    return True


async def _round(fakekube: FakeKube, watches: _Watches, count: int, image: str) -> None:
    _apply_all(fakekube, _BODIES[image])
    while True:
        watches.drain()
        await asyncio.sleep(0.02)
        if _rolled_out(fakekube, count, image):
            watches.drain()
            return


_BODIES: dict[str, list[list[bytes]]] = {}


async def _bench(arguments: argparse.Namespace) -> None:
    count = arguments.deployments
    images = [f"registry.example/app:{n}" for n in range(arguments.rounds + 1)]
    for image in images:
        _BODIES[image] = _bodies(count, image)
    fakekube = FakeKube(rollout_delay_s=0.0)
    watches = _Watches(fakekube)
    registry = fakekube.registry
    registry.apply(
        registry.resource("v1", "Namespace"),
        "",
        "bench",
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "bench"}},
        manager="reconciler",
    )
    fakekube.controllers.start()
    try:
        await _round(fakekube, watches, count, images[0])
        profiler = cProfile.Profile() if arguments.profile else None
        sampler = install() if arguments.sample else None
        started_cpu, started_wall = time.process_time(), time.perf_counter()
        if profiler is not None:
            profiler.enable()
        if sampler is not None:
            sampler.start(signal.SIGUSR1, None)
        for image in images[1:]:
            await _round(fakekube, watches, count, image)
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(arguments.profile)
        if sampler is not None:
            finish(sampler, Path(arguments.sample))
        cpu = time.process_time() - started_cpu
        wall = time.perf_counter() - started_wall
    finally:
        await fakekube.controllers.stop()
    updates = count * arguments.rounds
    print(
        f"{updates} deployment updates: {cpu * 1000 / updates:.3f} ms CPU each "
        f"({wall:.1f} s wall, {watches.lines} watch lines, load {os.getloadavg()[0]:.2f})"
    )
    assert not fakekube.errors, fakekube.errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deployments", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--profile", default="")
    parser.add_argument("--sample", default="", help="sample stacks to FILE (see sampler.py)")
    asyncio.run(_bench(parser.parse_args()))


if __name__ == "__main__":
    main()
