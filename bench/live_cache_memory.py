"""Memory of a LiveCache holding 25,000 Deployment-sized objects.

    .venv/bin/python bench/live_cache_memory.py [--objects N] [--via list|watch]

Each object is a Deployment as kube-apiserver returns it after a server-side apply and a
rollout: two managedFields entries (the applier's and the controller's status), kubectl's
last-applied annotation, a pod template with env, resources and probes, and a status with
conditions (about 5 KB of JSON).  They reach the cache as the real client hands them over:
decoded from JSON page by page (``--via list``, 500 per page) or one watch event at a time
(``--via watch``, every key string its own).  Prints VmRSS before and after, and one JSON line.
Goal: well under 400 MB for 25,000.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from reconciler.cluster.live import LiveCache
from reconciler.model import ObjectRef

LABELS = {"reconciler.io/project": "app", "reconciler.io/environment": "prod"}


def deployment(index: int) -> dict[str, Any]:
    """One Deployment as the server shows it, unique where real ones are."""
    name = f"web-{index}"
    env = [{"name": f"SETTING_{n}", "value": f"value-{n}-{index}"} for n in range(6)]
    container = {
        "name": "app",
        "image": f"registry.example.com/team/app:1.{index % 97}.0",
        "ports": [{"containerPort": 8080, "name": "http", "protocol": "TCP"}],
        "env": env,
        "resources": {
            "requests": {"cpu": "100m", "memory": "128Mi"},
            "limits": {"memory": "256Mi"},
        },
        "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080, "scheme": "HTTP"}},
        "imagePullPolicy": "IfNotPresent",
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File",
    }
    spec = {
        "replicas": 2,
        "selector": {"matchLabels": {"app": name}},
        "strategy": {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
        },
        "revisionHistoryLimit": 10,
        "progressDeadlineSeconds": 600,
        "template": {
            "metadata": {"labels": LABELS | {"app": name}},
            "spec": {
                "containers": [container],
                "restartPolicy": "Always",
                "terminationGracePeriodSeconds": 30,
                "dnsPolicy": "ClusterFirst",
                "schedulerName": "default-scheduler",
                "securityContext": {},
            },
        },
    }
    manifest = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": spec,
    }
    applied_fields = {
        "f:metadata": {"f:labels": {f"f:{key}": {} for key in LABELS}},
        "f:spec": {
            "f:replicas": {},
            "f:selector": {},
            "f:template": {
                "f:metadata": {"f:labels": {f"f:{key}": {} for key in [*LABELS, "app"]}},
                "f:spec": {
                    "f:containers": {
                        'k:{"name":"app"}': {
                            ".": {},
                            "f:env": {
                                f'k:{{"name":"SETTING_{n}"}}': {
                                    ".": {},
                                    "f:name": {},
                                    "f:value": {},
                                }
                                for n in range(6)
                            },
                            "f:image": {},
                            "f:name": {},
                            "f:ports": {
                                'k:{"containerPort":8080,"protocol":"TCP"}': {
                                    ".": {},
                                    "f:containerPort": {},
                                    "f:name": {},
                                }
                            },
                            "f:readinessProbe": {"f:httpGet": {"f:path": {}, "f:port": {}}},
                            "f:resources": {
                                "f:limits": {"f:memory": {}},
                                "f:requests": {"f:cpu": {}, "f:memory": {}},
                            },
                        }
                    }
                },
            },
        },
    }
    status_fields = {
        "f:metadata": {"f:annotations": {"f:deployment.kubernetes.io/revision": {}}},
        "f:status": {
            "f:availableReplicas": {},
            "f:conditions": {
                'k:{"type":"Available"}': {".": {}, "f:status": {}, "f:type": {}},
                'k:{"type":"Progressing"}': {".": {}, "f:status": {}, "f:type": {}},
            },
            "f:observedGeneration": {},
            "f:readyReplicas": {},
            "f:replicas": {},
            "f:updatedReplicas": {},
        },
    }
    when = f"2026-12-01T{index % 24:02d}:{index % 60:02d}:{index % 59:02d}Z"
    condition = {"lastTransitionTime": when, "lastUpdateTime": when, "status": "True"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "namespace": f"team-{index % 250}",
            "uid": f"6f1c2a3e-0000-4000-8000-{index:012d}",
            "resourceVersion": str(100000 + index),
            "generation": 3,
            "creationTimestamp": when,
            "labels": dict(LABELS),
            "annotations": {
                "deployment.kubernetes.io/revision": "3",
                "kubectl.kubernetes.io/last-applied-configuration": json.dumps(manifest),
            },
            "managedFields": [
                {
                    "manager": "reconciler",
                    "operation": "Apply",
                    "apiVersion": "apps/v1",
                    "time": when,
                    "fieldsType": "FieldsV1",
                    "fieldsV1": applied_fields,
                },
                {
                    "manager": "kube-controller-manager",
                    "operation": "Update",
                    "apiVersion": "apps/v1",
                    "time": when,
                    "fieldsType": "FieldsV1",
                    "fieldsV1": status_fields,
                    "subresource": "status",
                },
            ],
        },
        "spec": spec,
        "status": {
            "observedGeneration": 3,
            "replicas": 2,
            "updatedReplicas": 2,
            "readyReplicas": 2,
            "availableReplicas": 2,
            "conditions": [
                condition
                | {
                    "type": "Available",
                    "reason": "MinimumReplicasAvailable",
                    "message": "Deployment has minimum availability.",
                },
                condition
                | {
                    "type": "Progressing",
                    "reason": "NewReplicaSetAvailable",
                    "message": f'ReplicaSet "{name}-7d9f8b6c5d" has successfully progressed.',
                },
            ],
        },
    }


class Source:
    """Hands the objects over as encoded JSON, decoded the way the client decodes them."""

    def __init__(self, count: int, via: str) -> None:
        self.count = count
        self.via = via
        self.size_bytes = 0

    def _encoded(self, index: int) -> bytes:
        encoded = json.dumps(deployment(index)).encode()
        self.size_bytes += len(encoded)
        return encoded

    async def list_objects(
        self, *, api_version: str, kind: str, label_selector: str
    ) -> tuple[list[dict[str, Any]], str]:
        items: list[dict[str, Any]] = []
        async for page, _ in self.list_pages(
            api_version=api_version, kind=kind, label_selector=label_selector
        ):
            items.extend(page)
        return items, "1"

    async def list_pages(
        self, *, api_version: str, kind: str, label_selector: str
    ) -> AsyncIterator[tuple[list[dict[str, Any]], str]]:
        """Pages of 500, each decoded from one JSON document, as Kube.list_pages hands them."""
        if self.via != "list":
            yield [], "1"
            return
        for start in range(0, self.count, 500):
            chunk = range(start, min(start + 500, self.count))
            yield json.loads(b"[" + b",".join(self._encoded(i) for i in chunk) + b"]"), "1"

    async def watch_objects(
        self,
        *,
        api_version: str,
        kind: str,
        label_selector: str,
        resource_version: str,
        timeout_s: float,
    ) -> AsyncIterator[dict[str, Any]]:
        if self.via == "watch":
            for index in range(self.count):
                yield {"type": "ADDED", "object": json.loads(self._encoded(index))}
            self.via = "done"
        await asyncio.sleep(timeout_s)


def rss_mb() -> float:
    """VmRSS of this process, in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--objects", type=int, default=25_000)
    parser.add_argument("--via", choices=("list", "watch"), default="list")
    args = parser.parse_args()
    json.loads(json.dumps(deployment(0)))  # warm up what every later object shares
    gc.collect()
    before = rss_mb()
    source = Source(args.objects, args.via)
    began = time.monotonic()
    cache = LiveCache(source, label_selector="", watch_timeout_s=3600)
    cache.track("apps/v1", "Deployment")
    await cache.wait_synced(timeout_s=600)
    while cache.size < args.objects:  # noqa: ASYNC110 - the watch fills it in the background
        await asyncio.sleep(0.05)
    filled_s = time.monotonic() - began
    gc.collect()
    after = rss_mb()
    refs = [
        ObjectRef(
            api_version="apps/v1", kind="Deployment", name=f"web-{i}", namespace=f"team-{i % 250}"
        )
        for i in range(0, args.objects, max(1, args.objects // 1000))
    ]
    timer = time.perf_counter()
    assert all(cache.get(ref) is not None for ref in refs)
    get_us = (time.perf_counter() - timer) / len(refs) * 1e6
    await cache.close()
    each_kb = source.size_bytes / args.objects / 1024
    print(f"{args.objects} Deployments via {args.via}: {each_kb:.1f} KB JSON each")
    print(f"filled in {filled_s:.1f}s; get() decodes a copy in {get_us:.0f} us")
    print(
        f"RSS {before:.0f} MB before, {after:.0f} MB after: {after - before:.0f} MB for the cache"
    )
    print(
        json.dumps(
            {
                "objects": args.objects,
                "via": args.via,
                "rss_before_mb": round(before),
                "rss_after_mb": round(after),
                "json_bytes_per_object": source.size_bytes // args.objects,
                "fill_s": round(filled_s, 2),
                "get_us": round(get_us),
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
