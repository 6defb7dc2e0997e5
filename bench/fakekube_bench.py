"""fakekube benchmark: server-side applies per second from ``kubernetes.aio``, and memory.

    .venv/bin/python bench/fakekube_bench.py [--deployments 1000] [--concurrency 32]
                                             [--objects 10000] [--subprocess]

Phases: apply N Deployments (creates), wait until every rollout is complete, apply them all
again (no-op applies), then fill the store up to ``--objects`` objects with ConfigMaps and report
the server's memory.  By default fakekube runs in this process (client and server share one
core, as in the test suite); ``--subprocess`` runs it as ``python -m reconciler.testing.fakekube``
so the server has a core of its own and its memory is measured alone.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from reconciler.testing.fakekube import FakeKube

# The client's config and dynamic modules have no type hints.
aio_config: Any = importlib.import_module("kubernetes.aio.config")
aio_dynamic: Any = importlib.import_module("kubernetes.aio.dynamic")


def _rss_bytes(pid: int | None = None) -> int:
    """Resident memory of a process (Linux /proc)."""
    with open(f"/proc/{pid or os.getpid()}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def _deployment(index: int, image: str) -> dict[str, Any]:
    name = f"app-{index:05d}"
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "bench", "labels": {"app": name}},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "containers": [
                        {
                            "name": "app",
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


def _configmap(index: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": f"cm-{index:05d}", "namespace": "bench"},
        "data": {"index": str(index), "payload": "x" * 200},
    }


async def _run_all(
    count: int, concurrency: int, work: Callable[[int], Awaitable[None]]
) -> tuple[float, list[float]]:
    """Runs ``work(i)`` for i < count with at most ``concurrency`` at once; (seconds, latencies)."""
    latencies: list[float] = []
    queue: asyncio.Queue[int] = asyncio.Queue()
    for index in range(count):
        queue.put_nowait(index)

    async def worker() -> None:
        while not queue.empty():
            index = queue.get_nowait()
            started = time.perf_counter()
            await work(index)
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started, latencies


def _report(label: str, count: int, seconds: float, latencies: list[float]) -> None:
    ordered = sorted(latencies)
    p95 = ordered[int(len(ordered) * 0.95) - 1] if ordered else 0.0
    print(
        f"{label:<28} {count:>6} in {seconds:6.2f} s = {count / seconds:8.1f}/s   "
        f"p50 {statistics.median(ordered) * 1000:6.1f} ms   p95 {p95 * 1000:6.1f} ms",
        flush=True,
    )


async def _bench(arguments: argparse.Namespace) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="fakekube-bench-"))
    kubeconfig = workdir / "kubeconfig"
    server: FakeKube | None = None
    process: asyncio.subprocess.Process | None = None
    baseline_rss = _rss_bytes()
    if arguments.subprocess:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "reconciler.testing.fakekube",
            "--port",
            "0",
            "--kubeconfig",
            str(kubeconfig),
            stdout=asyncio.subprocess.PIPE,
        )
        assert process.stdout is not None
        await process.stdout.readline()
        server_pid: int | None = process.pid
    else:
        server = FakeKube()
        await server.start()
        server.write_kubeconfig(kubeconfig)
        server_pid = None
    try:
        api = await aio_config.new_client_from_config(str(kubeconfig))
        api.configuration.connection_pool_maxsize = arguments.concurrency
        async with api:
            dyn = await aio_dynamic.DynamicClient(api, cache_file=str(workdir / "discovery.json"))
            namespaces = await dyn.resources.get(api_version="v1", kind="Namespace")
            deployments = await dyn.resources.get(api_version="apps/v1", kind="Deployment")
            configmaps = await dyn.resources.get(api_version="v1", kind="ConfigMap")
            await dyn.server_side_apply(
                namespaces,
                body={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "bench"}},
                field_manager="bench",
            )

            async def apply_deployment(index: int) -> None:
                await dyn.server_side_apply(
                    deployments,
                    body=_deployment(index, arguments.image),
                    field_manager="bench",
                    force_conflicts=True,
                )

            count = arguments.deployments
            print(
                f"fakekube {'subprocess' if process else 'in-process'}, "
                f"{count} Deployments, concurrency {arguments.concurrency}",
                flush=True,
            )
            seconds, latencies = await _run_all(count, arguments.concurrency, apply_deployment)
            _report("apply (create)", count, seconds, latencies)

            started = time.perf_counter()
            while True:
                listed = await dyn.get(deployments, namespace="bench")
                done = sum(
                    1
                    for item in listed.items
                    if (item.status or {}).get("availableReplicas") == 1
                    and (item.status or {}).get("updatedReplicas") == 1
                )
                if done == count:
                    break
                await asyncio.sleep(0.2)
            rolled = time.perf_counter() - started
            print(f"{'all rollouts complete':<28} {count:>6} after {rolled:6.2f} s", flush=True)

            seconds, latencies = await _run_all(count, arguments.concurrency, apply_deployment)
            _report("apply (no-op)", count, seconds, latencies)

            pods = await dyn.resources.get(api_version="v1", kind="Pod")
            replica_sets = await dyn.resources.get(api_version="apps/v1", kind="ReplicaSet")
            existing = 1 + count
            existing += len((await dyn.get(pods, namespace="bench")).items)
            existing += len((await dyn.get(replica_sets, namespace="bench")).items)
            fill = max(0, arguments.objects - existing)

            async def apply_configmap(index: int) -> None:
                await dyn.server_side_apply(
                    configmaps, body=_configmap(index), field_manager="bench"
                )

            seconds, latencies = await _run_all(fill, arguments.concurrency, apply_configmap)
            if fill:
                _report("apply ConfigMaps (create)", fill, seconds, latencies)
            total = existing + fill
        gc.collect()
        if server is not None:
            stored = server.registry.store.count()
            rss = _rss_bytes() - baseline_rss
            print(
                f"memory: {rss / 2**20:.0f} MiB RSS growth with {stored} stored objects "
                f"(~{rss / max(stored, 1) / 1024:.1f} KiB/object; includes the client)",
                flush=True,
            )
        else:
            assert server_pid is not None
            rss = _rss_bytes(server_pid)
            print(
                f"memory: {rss / 2**20:.0f} MiB server RSS with about {total} objects "
                f"(~{rss / max(total, 1) / 1024:.1f} KiB/object incl. the interpreter)",
                flush=True,
            )
    finally:
        if server is not None:
            await server.stop()
        if process is not None:
            process.terminate()
            await process.wait()


def main(argv: list[str] | None = None) -> int:
    """Runs the benchmark; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deployments", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--objects", type=int, default=10_000)
    parser.add_argument("--image", default="registry.example/app:1")
    parser.add_argument("--subprocess", action="store_true", help="run fakekube in its own process")
    asyncio.run(_bench(parser.parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
