"""fakekube in a process of its own, steered by the benchmarks over stdin/stdout.

    python bench/fakekube_server.py --kubeconfig PATH [--rollout-delay S] [--latency S]
                                    [--sample FILE]

The first stdout line is ``{"url": ...}``.  Then each stdin line is a JSON command and gets one
JSON line back:

* ``{"command": "requests", "since": T, "until": T|null}``: the request log in a time window;
* ``{"command": "first_apply", "since": T, "path_contains": S}``: the first server-side apply
  at or after T whose path contains S (or null);
* ``{"command": "set_latency", "latency_s": S}``: change ``faults.latency_s``;
* ``{"command": "object", "api_version": V, "kind": K, "namespace": N, "name": M}``: the stored
  object as that version shows it (or null);
* ``{"command": "apply", "objects": [...], "field_manager": M}``: server-side apply each object
  (the code path of ``PATCH application/apply-patch+yaml``, without HTTP): how bench/idle.py
  creates 25,000 objects that look like the daemon's own in seconds, not minutes;
* ``{"command": "count", "api_version": V, "kind": K, "label_selector": S|null}``: how many
  objects of a kind are stored (all namespaces);
* ``{"command": "ping"}``.

End of stdin stops the server.  With ``--sample FILE`` SIGUSR1 and SIGUSR2 start and stop a
sampling profiler whose stacks are written to FILE at exit (see ``sampler.py``).

``python -m reconciler.testing.fakekube`` takes fault options on its command line too, but it
cannot change them while it runs and offers no way to read its request log from outside, hence
this wrapper.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

import uvloop
from sampler import finish, install

from reconciler import collector
from reconciler.testing.fakekube import FakeKube
from reconciler.testing.fakekube.api_errors import ApiError
from reconciler.testing.fakekube.resource_types import ResourceType

_APPLY = "application/apply-patch+yaml"


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kubeconfig", type=Path, required=True)
    parser.add_argument("--rollout-delay", type=float, default=0.2)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--sample", type=Path, default=None)
    return parser.parse_args()


def _answer(fakekube: FakeKube, command: dict[str, Any]) -> dict[str, Any]:
    name = command.get("command")
    if name == "ping":
        return {"ok": True}
    if name == "object":
        return {
            "object": fakekube.get_object(
                api_version=str(command["api_version"]),
                kind=str(command["kind"]),
                namespace=command.get("namespace"),
                name=str(command["name"]),
            )
        }
    if name == "apply":
        return {"applied": _apply(fakekube, command["objects"], str(command["field_manager"]))}
    if name == "count":
        resource = _resource(fakekube, str(command["api_version"]), str(command["kind"]))
        listed = fakekube.registry.list_objects(
            resource, None, label_selector=command.get("label_selector")
        )
        return {"count": len(listed["items"])}
    if name == "set_latency":
        fakekube.faults.latency_s = float(command["latency_s"])
        return {"ok": True}
    if name == "requests":
        since = float(command.get("since") or 0.0)
        until = command.get("until")
        end = float(until) if until is not None else float("inf")
        return {
            "requests": [
                dataclasses.asdict(r) for r in fakekube.request_log if since <= r.time <= end
            ]
        }
    if name == "first_apply":
        since = float(command["since"])
        needle = str(command["path_contains"])
        for record in fakekube.request_log:
            if (
                record.time >= since
                and record.method == "PATCH"
                and record.content_type == _APPLY
                and needle in record.path
            ):
                return {"request": dataclasses.asdict(record)}
        return {"request": None}
    return {"error": f"unknown command {name!r}"}


def _resource(fakekube: FakeKube, api_version: str, kind: str) -> ResourceType:
    resource = fakekube.registry.types.by_kind(api_version, kind)
    if resource is None:
        raise KeyError(f"fakekube does not serve {kind} ({api_version})")
    return resource


def _apply(fakekube: FakeKube, objects: list[dict[str, Any]], manager: str) -> int:
    for obj in objects:
        resource = _resource(fakekube, str(obj["apiVersion"]), str(obj["kind"]))
        metadata = obj["metadata"]
        namespace = str(metadata.get("namespace") or "") if resource.namespaced else ""
        fakekube.registry.apply(resource, namespace, str(metadata["name"]), obj, manager=manager)
    return len(objects)


async def _serve(arguments: argparse.Namespace) -> None:
    fakekube = FakeKube(rollout_delay_s=arguments.rollout_delay, time_factor=1.0)
    fakekube.faults.latency_s = arguments.latency
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1024 * 1024)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    async with fakekube:
        fakekube.write_kubeconfig(arguments.kubeconfig)
        collector.settle()  # as `python -m reconciler.testing.fakekube` does
        print(json.dumps({"url": fakekube.url}), flush=True)
        while line := await reader.readline():
            try:
                answer = _answer(fakekube, json.loads(line))
            except ApiError as exc:
                answer = {"error": f"fakekube refused it: {exc}"}
            except (ValueError, KeyError, TypeError) as exc:
                answer = {"error": f"bad command {line[:200]!r}: {exc}"}
            sys.stdout.write(json.dumps(answer) + "\n")
            sys.stdout.flush()


def main() -> int:
    arguments = _arguments()
    if arguments.sample is None:
        uvloop.run(_serve(arguments))
        return 0
    sampler = install()
    try:
        uvloop.run(_serve(arguments))
    finally:
        finish(sampler, arguments.sample)
    return 0


if __name__ == "__main__":
    sys.exit(main())
