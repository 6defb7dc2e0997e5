"""A/B in one process: the daemon's CPU per server-side apply through the kubernetes client's
dynamic client (the old path) and through Kube's lean path (``reconciler/cluster/kube_http``).

    .venv/bin/python bench/lean_apply.py [--applies 2000] [--rounds 4] [--concurrency 8]

fakekube runs in a process of its own (bench/fakekube_server.py), so only the client's CPU is
counted: ``time.process_time()`` of this process around each batch of ``--applies`` applies of a
small ConfigMap (its data changes every apply, so each one writes), ``--concurrency`` in
flight.  Three variants, alternating within each round (the order reversed every other round)
so the machine's load drifts over all alike, all with the same retries (``Kube._call``):

* ``old``: as before kube_http: the dynamic client, on a session that looks up the
  environment's proxy and ``~/.netrc`` on every request (a connection made with
  ``settle_environment`` switched off);
* ``old-settled``: the dynamic client on the session as it is now (environment settled once);
* ``lean``: ``Kube.apply`` as it is (lean path, settled session).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from benchlib import Workdir, fakekube_process, machine_description, result_line, run_benchmark, say

from reconciler.cluster import kube as kube_module
from reconciler.cluster.kube import Kube
from reconciler.cluster.server_fields import strip_server_fields
from reconciler.model import ObjectRef

MANAGER = "reconciler"
Apply = Callable[[Kube, Mapping[str, Any]], Awaitable[dict[str, Any]]]


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--applies", type=int, default=2000, help="applies per path per round")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=8)
    return parser.parse_args()


def _configmap(index: int, generation: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": f"cm-{index:04d}",
            "namespace": "default",
            "labels": {"app": f"cm-{index:04d}", "reconciler.dev/deployment": "bench"},
            "annotations": {"reconciler.dev/revision": str(generation)},
        },
        "data": {"environment": "prod", "log_level": "info", "generation": str(generation)},
    }


def _raw(_client: object, data: Any) -> Any:
    return data


async def old_apply(kube: Kube, obj: Mapping[str, Any]) -> dict[str, Any]:
    """Kube.apply as it was before kube_http (before 4472ef6): DynamicClient.server_side_apply.
    Reaches into Kube's privates, which only a benchmark may."""
    body = strip_server_fields(obj)
    ref = ObjectRef.from_object(body)

    async def call() -> dict[str, Any]:
        resource = await kube._resource(ref.api_version, ref.kind)
        result: dict[str, Any] = await kube._dynamic.server_side_apply(
            resource,
            body=body,
            name=ref.name,
            namespace=ref.namespace if resource.namespaced else None,
            field_manager=MANAGER,
            force_conflicts=True,
            dry_run=None,
            serializer=_raw,
            _request_timeout=kube._request_timeout_s,
            header_params=dict(kube._headers),
        )
        return result

    return await kube._call(f"apply {ref}", call)


async def lean_apply(kube: Kube, obj: Mapping[str, Any]) -> dict[str, Any]:
    """Kube.apply as it is."""
    return await kube.apply(obj, field_manager=MANAGER)


async def _batch(kube: Kube, apply: Apply, *, applies: int, concurrency: int, start: int) -> float:
    """CPU seconds of this process for ``applies`` applies, ``concurrency`` at a time."""
    objects = [_configmap(i % 500, start + i) for i in range(applies)]
    queue = iter(objects)

    async def worker() -> None:
        for obj in queue:
            await apply(kube, obj)

    gc.collect()
    cpu = time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.process_time() - cpu


async def _run() -> Mapping[str, Any]:
    arguments = _arguments()
    machine = machine_description()
    per_apply_ms: dict[str, list[float]] = {"old": [], "old-settled": [], "lean": []}
    with Workdir(prefix="lean-apply-") as workdir:
        async with fakekube_process(workdir=workdir.path, rollout_delay_s=0.2) as server:
            settle = kube_module.settle_environment
            kube_module.settle_environment = lambda _configuration: None  # type: ignore[assignment]
            unsettled = await Kube.connect(kubeconfig=str(server.kubeconfig))
            kube_module.settle_environment = settle
            kube = await Kube.connect(kubeconfig=str(server.kubeconfig))
            variants: dict[str, tuple[Kube, Apply]] = {
                "old": (unsettled, old_apply),
                "old-settled": (kube, old_apply),
                "lean": (kube, lean_apply),
            }
            try:
                generation = 0
                for connection, apply in variants.values():  # warm-up: discovery, creates
                    generation += 500
                    await _batch(connection, apply, applies=500, concurrency=8, start=generation)
                for round_ in range(arguments.rounds):
                    order = list(variants) if round_ % 2 == 0 else list(reversed(variants))
                    for name in order:
                        connection, apply = variants[name]
                        generation += arguments.applies
                        cpu_s = await _batch(
                            connection,
                            apply,
                            applies=arguments.applies,
                            concurrency=arguments.concurrency,
                            start=generation,
                        )
                        per_apply_ms[name].append(cpu_s * 1000 / arguments.applies)
                        say(f"round {round_ + 1} {name}: {per_apply_ms[name][-1]:.3f} ms/apply")
            finally:
                await unsettled.close()
                await kube.close()
    medians = {name: statistics.median(values) for name, values in per_apply_ms.items()}
    for name, values in per_apply_ms.items():
        shown = " ".join(f"{v:.3f}" for v in values)
        result_line(f"client CPU per apply, {name}", f"{medians[name]:.3f} ms  ({shown})")
    saved = medians["old"] - medians["lean"]
    result_line("saved per apply, old -> lean", f"{saved:.3f} ms ({saved / medians['old']:.0%})")
    return {
        "benchmark": "lean_apply",
        "machine": machine,
        "applies": arguments.applies,
        "concurrency": arguments.concurrency,
        "per_apply_ms": per_apply_ms,
        "median_ms": medians,
    }


def main() -> int:
    return run_benchmark("lean_apply", _run)


if __name__ == "__main__":
    raise SystemExit(main())
