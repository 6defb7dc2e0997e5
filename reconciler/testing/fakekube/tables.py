"""``meta.k8s.io/v1`` Table responses, which ``kubectl get`` asks for.

The columns follow kubectl's printers for the common kinds; other kinds get NAME and AGE (or
CREATED AT), as a real apiserver prints kinds it has no printer for.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from .resource_types import ResourceType

Column = tuple[str, str, int, Callable[[dict[str, Any]], Any]]  # name, type, priority, cell


def wants_table(accept: str) -> bool:
    """True when the Accept header asks for a Table."""
    return "as=Table" in accept


def _age(obj: dict[str, Any]) -> str:
    stamp = obj["metadata"].get("creationTimestamp")
    if not stamp:
        return "<unknown>"
    created = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
    return human_duration(max(0.0, time.time() - created))


def human_duration(seconds: float) -> str:
    """A duration as kubectl prints ages (``45s``, ``3m20s``, ``5h``, ``2d3h``)."""
    total = int(seconds)
    if total < 120:
        return f"{total}s"
    minutes = total // 60
    if minutes < 10:
        rest = total % 60
        return f"{minutes}m{rest}s" if rest else f"{minutes}m"
    hours = total // 3600
    if hours < 3:
        return f"{minutes}m"
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h{rest}m" if rest else f"{hours}h"
    days = hours // 24
    if hours < 48:
        return f"{hours}h"
    if days < 8:
        rest = hours % 24
        return f"{days}d{rest}h" if rest else f"{days}d"
    return f"{days}d"


def _get(obj: Any, *path: str, default: Any = None) -> Any:
    for part in path:
        if not isinstance(obj, dict):
            return default
        obj = obj.get(part)
    return default if obj is None else obj


def _ratio(obj: dict[str, Any], part: tuple[str, ...], whole: tuple[str, ...], default: int) -> str:
    return f"{_get(obj, *part, default=0)}/{_get(obj, *whole, default=default)}"


def _containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    return list(_get(obj, "spec", "template", "spec", "containers", default=[]))


def _selector(obj: dict[str, Any]) -> str:
    labels = _get(obj, "spec", "selector", "matchLabels", default={})
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items())) or "<none>"


def _pod_status(pod: dict[str, Any]) -> str:
    if pod["metadata"].get("deletionTimestamp"):
        return "Terminating"
    status = pod.get("status") or {}
    reason = str(status.get("reason") or status.get("phase") or "Unknown")
    for container in status.get("containerStatuses") or ():
        state = container.get("state") or {}
        if "waiting" in state and state["waiting"].get("reason"):
            reason = state["waiting"]["reason"]
        elif "terminated" in state:
            reason = (
                state["terminated"].get("reason")
                or f"ExitCode:{state['terminated'].get('exitCode')}"
            )
    return reason


def _pod_ready(pod: dict[str, Any]) -> str:
    statuses = _get(pod, "status", "containerStatuses", default=[])
    total = len(_get(pod, "spec", "containers", default=[]))
    ready = sum(1 for s in statuses if s.get("ready"))
    return f"{ready}/{total}"


def _restarts(pod: dict[str, Any]) -> int:
    return sum(
        int(s.get("restartCount", 0)) for s in _get(pod, "status", "containerStatuses", default=[])
    )


def _ports(service: dict[str, Any]) -> str:
    parts = []
    for port in _get(service, "spec", "ports", default=[]):
        text = str(port.get("port"))
        if port.get("nodePort"):
            text += f":{port['nodePort']}"
        parts.append(f"{text}/{port.get('protocol', 'TCP')}")
    return ",".join(parts) or "<none>"


def _external_ip(service: dict[str, Any]) -> str:
    ingress = _get(service, "status", "loadBalancer", "ingress", default=[])
    addresses = [i.get("ip") or i.get("hostname") for i in ingress]
    if addresses:
        return ",".join(str(a) for a in addresses)
    if _get(service, "spec", "type") == "LoadBalancer":
        return "<pending>"
    return "<none>"


def _job_status(job: dict[str, Any]) -> str:
    for cond in _get(job, "status", "conditions", default=[]):
        if cond.get("status") == "True" and cond.get("type") in ("Complete", "Failed", "Suspended"):
            return str(cond["type"])
    return "Running"


_NAME: Column = ("Name", "string", 0, lambda o: o["metadata"]["name"])
_AGE: Column = ("Age", "string", 0, _age)

_COLUMNS: dict[tuple[str, str], list[Column]] = {
    ("apps", "Deployment"): [
        _NAME,
        (
            "Ready",
            "string",
            0,
            lambda o: _ratio(o, ("status", "readyReplicas"), ("spec", "replicas"), 0),
        ),
        ("Up-to-date", "integer", 0, lambda o: _get(o, "status", "updatedReplicas", default=0)),
        ("Available", "integer", 0, lambda o: _get(o, "status", "availableReplicas", default=0)),
        _AGE,
        ("Containers", "string", 1, lambda o: ",".join(c.get("name", "") for c in _containers(o))),
        ("Images", "string", 1, lambda o: ",".join(c.get("image", "") for c in _containers(o))),
        ("Selector", "string", 1, _selector),
    ],
    ("apps", "ReplicaSet"): [
        _NAME,
        ("Desired", "integer", 0, lambda o: _get(o, "spec", "replicas", default=0)),
        ("Current", "integer", 0, lambda o: _get(o, "status", "replicas", default=0)),
        ("Ready", "integer", 0, lambda o: _get(o, "status", "readyReplicas", default=0)),
        _AGE,
        ("Containers", "string", 1, lambda o: ",".join(c.get("name", "") for c in _containers(o))),
        ("Images", "string", 1, lambda o: ",".join(c.get("image", "") for c in _containers(o))),
        ("Selector", "string", 1, _selector),
    ],
    ("apps", "StatefulSet"): [
        _NAME,
        (
            "Ready",
            "string",
            0,
            lambda o: _ratio(o, ("status", "readyReplicas"), ("spec", "replicas"), 0),
        ),
        _AGE,
        ("Containers", "string", 1, lambda o: ",".join(c.get("name", "") for c in _containers(o))),
        ("Images", "string", 1, lambda o: ",".join(c.get("image", "") for c in _containers(o))),
    ],
    ("apps", "DaemonSet"): [
        _NAME,
        ("Desired", "integer", 0, lambda o: _get(o, "status", "desiredNumberScheduled", default=0)),
        ("Current", "integer", 0, lambda o: _get(o, "status", "currentNumberScheduled", default=0)),
        ("Ready", "integer", 0, lambda o: _get(o, "status", "numberReady", default=0)),
        (
            "Up-to-date",
            "integer",
            0,
            lambda o: _get(o, "status", "updatedNumberScheduled", default=0),
        ),
        ("Available", "integer", 0, lambda o: _get(o, "status", "numberAvailable", default=0)),
        (
            "Node Selector",
            "string",
            0,
            lambda o: (
                ",".join(
                    f"{k}={v}"
                    for k, v in sorted(
                        _get(o, "spec", "template", "spec", "nodeSelector", default={}).items()
                    )
                )
                or "<none>"
            ),
        ),
        _AGE,
    ],
    ("", "Pod"): [
        _NAME,
        ("Ready", "string", 0, _pod_ready),
        ("Status", "string", 0, _pod_status),
        ("Restarts", "string", 0, lambda o: str(_restarts(o))),
        _AGE,
        ("IP", "string", 1, lambda o: _get(o, "status", "podIP", default="<none>")),
        ("Node", "string", 1, lambda o: _get(o, "spec", "nodeName", default="<none>")),
    ],
    ("", "Service"): [
        _NAME,
        ("Type", "string", 0, lambda o: _get(o, "spec", "type", default="ClusterIP")),
        ("Cluster-IP", "string", 0, lambda o: _get(o, "spec", "clusterIP", default="<none>")),
        ("External-IP", "string", 0, _external_ip),
        ("Port(s)", "string", 0, _ports),
        _AGE,
        (
            "Selector",
            "string",
            1,
            lambda o: (
                ",".join(
                    f"{k}={v}" for k, v in sorted(_get(o, "spec", "selector", default={}).items())
                )
                or "<none>"
            ),
        ),
    ],
    ("", "Namespace"): [
        _NAME,
        ("Status", "string", 0, lambda o: _get(o, "status", "phase", default="")),
        _AGE,
    ],
    ("", "ConfigMap"): [
        _NAME,
        ("Data", "integer", 0, lambda o: len(o.get("data") or {}) + len(o.get("binaryData") or {})),
        _AGE,
    ],
    ("", "Secret"): [
        _NAME,
        ("Type", "string", 0, lambda o: o.get("type", "Opaque")),
        ("Data", "integer", 0, lambda o: len(o.get("data") or {})),
        _AGE,
    ],
    ("", "PersistentVolumeClaim"): [
        _NAME,
        ("Status", "string", 0, lambda o: _get(o, "status", "phase", default="")),
        ("Volume", "string", 0, lambda o: _get(o, "spec", "volumeName", default="")),
        ("Capacity", "string", 0, lambda o: _get(o, "status", "capacity", "storage", default="")),
        (
            "Access Modes",
            "string",
            0,
            lambda o: ",".join(
                {
                    "ReadWriteOnce": "RWO",
                    "ReadOnlyMany": "ROX",
                    "ReadWriteMany": "RWX",
                    "ReadWriteOncePod": "RWOP",
                }.get(m, m)
                for m in _get(o, "status", "accessModes", default=[])
            ),
        ),
        (
            "StorageClass",
            "string",
            0,
            lambda o: _get(o, "spec", "storageClassName", default="<unset>"),
        ),
        _AGE,
    ],
    ("batch", "Job"): [
        _NAME,
        ("Status", "string", 0, _job_status),
        (
            "Completions",
            "string",
            0,
            lambda o: _ratio(o, ("status", "succeeded"), ("spec", "completions"), 1),
        ),
        _AGE,
    ],
    ("batch", "CronJob"): [
        _NAME,
        ("Schedule", "string", 0, lambda o: _get(o, "spec", "schedule", default="")),
        ("Suspend", "boolean", 0, lambda o: bool(_get(o, "spec", "suspend", default=False))),
        ("Active", "integer", 0, lambda o: len(_get(o, "status", "active", default=[]))),
        _AGE,
    ],
}


def table_for(
    resource: ResourceType, items: list[dict[str, Any]], list_meta: dict[str, Any], query: Any
) -> dict[str, Any]:
    """A Table of ``items`` with PartialObjectMetadata (or the object) in each row."""
    columns = (
        _COLUMNS.get((resource.group, resource.kind), [_NAME, _AGE])
        if not resource.custom
        else [_NAME, _AGE]
    )
    include = query.get("includeObject", "Metadata") if query is not None else "Metadata"
    rows = []
    for obj in items:
        row: dict[str, Any] = {"cells": [cell(obj) for _, _, _, cell in columns]}
        if include == "Object":
            row["object"] = obj
        elif include != "None":
            row["object"] = {
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": obj["metadata"],
            }
        rows.append(row)
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": dict(list_meta),
        "columnDefinitions": [
            {
                "name": name,
                "type": kind,
                "format": "name" if name == "Name" else "",
                "description": "",
                "priority": priority,
            }
            for name, kind, priority, _ in columns
        ],
        "rows": rows,
    }
