"""What the workload controllers share: owned objects, readiness, availability, new Pods."""

from __future__ import annotations

import math
import re
from typing import Any

from ..defaults import NODE_NAME
from ..resource_types import ResourceType
from .manager import ControllerManager
from .owners import controller_ref, delete_if_present, owned


def is_ready(pod: dict[str, Any]) -> bool:
    """True when the Pod's Ready condition is True."""
    for cond in (pod.get("status") or {}).get("conditions") or ():
        if cond.get("type") == "Ready":
            return bool(cond.get("status") == "True")
    return False


def is_terminated(pod: dict[str, Any]) -> bool:
    """True once the Pod has Succeeded or Failed."""
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def int_or_percent(value: Any, total: int, *, round_up: bool) -> int:
    """An IntOrString such as maxSurge: a count, or a percentage of ``total``."""
    if isinstance(value, int):
        return value
    text = str(value or "0")
    if text.endswith("%"):
        share = total * int(text[:-1]) / 100
        return math.ceil(share) if round_up else math.floor(share)
    return int(text) if re.fullmatch(r"\d+", text) else 0


class WorkloadController:
    """A controller of Pods (directly or through ReplicaSets), sharing the manager's memory."""

    def __init__(self, manager: ControllerManager) -> None:
        self.manager = manager
        self.registry = manager.registry
        self.pods = self.registry.resource("v1", "Pod")

    def owned(self, owner: dict[str, Any], resource: ResourceType) -> list[dict[str, Any]]:
        """The objects of ``resource`` that ``owner`` controls."""
        return owned(self.registry, owner, resource)

    def available(self, pod: dict[str, Any], min_ready_seconds: int) -> tuple[bool, float]:
        """(available now, seconds until it will be) for a Pod under ``minReadySeconds``."""
        if not is_ready(pod):
            return False, 0.0
        if min_ready_seconds <= 0:
            return True, 0.0
        ready_at = self.manager.remember(pod["metadata"]["uid"]).get("ready_at")
        if ready_at is None:
            return True, 0.0
        wait = ready_at + self.manager.scaled(min_ready_seconds) - self.manager.now()
        return wait <= 0, max(0.0, wait)

    def delete(self, resource: ResourceType, obj: dict[str, Any]) -> None:
        """Deletes ``obj`` unless it is gone already."""
        meta = obj["metadata"]
        delete_if_present(self.registry, resource, meta.get("namespace", ""), meta["name"])

    def new_pod(
        self,
        owner: dict[str, Any],
        template: dict[str, Any],
        *,
        name: str,
        extra_labels: dict[str, str] | None = None,
        extra_annotations: dict[str, str] | None = None,
        spec_updates: dict[str, Any] | None = None,
    ) -> dict[str, Any] | None:
        """Creates a Pod from ``template`` owned by ``owner``; None when it cannot be."""
        template_meta = template.get("metadata") or {}
        labels = dict(template_meta.get("labels") or {})
        labels.update(extra_labels or {})
        meta: dict[str, Any] = {
            "name": name,
            "namespace": owner["metadata"]["namespace"],
            "labels": labels,
            "ownerReferences": [controller_ref(owner)],
        }
        annotations = dict(template_meta.get("annotations") or {})
        annotations.update(extra_annotations or {})
        if annotations:
            meta["annotations"] = annotations
        spec = dict(template.get("spec") or {})  # the create decodes and copies the rest
        spec["nodeName"] = NODE_NAME
        spec.update(spec_updates or {})
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}
        return self.registry.create_object(self.pods, pod)
