"""The ReplicaSet controller: ``spec.replicas`` Pods, and how many are ready and available."""

from __future__ import annotations

from typing import Any

from ..objects import random_suffix
from ..store import LabelSelector
from .manager import ControllerManager
from .workload import WorkloadController, is_ready, is_terminated


class ReplicaSetController(WorkloadController):
    """The ``replicaset`` controller."""

    def __init__(self, manager: ControllerManager) -> None:
        super().__init__(manager)
        self.replica_sets = self.registry.resource("apps/v1", "ReplicaSet")

    def sync(self, namespace: str, name: str) -> None:
        """Keeps ``spec.replicas`` Pods and reports how many are ready and available."""
        rs = self.registry.find(self.replica_sets, namespace, name)
        if rs is None or rs["metadata"].get("deletionTimestamp"):
            return
        spec = rs.get("spec") or {}
        wanted = int(spec.get("replicas", 1))
        pods = [
            p
            for p in self.owned(rs, self.pods)
            if not p["metadata"].get("deletionTimestamp") and not is_terminated(p)
        ]
        template = spec.get("template") or {}
        if len(pods) < wanted:
            for _ in range(wanted - len(pods)):
                created = self.new_pod(rs, template, name=f"{name}-{random_suffix()}")
                if created is None:
                    return
                pods.append(created)
        elif len(pods) > wanted:
            doomed = sorted(pods, key=_deletion_rank)[: len(pods) - wanted]
            for pod in doomed:
                self.delete(self.pods, pod)
            pods = [p for p in pods if p not in doomed]
        self._write_status(rs, pods)

    def _write_status(self, rs: dict[str, Any], pods: list[dict[str, Any]]) -> None:
        min_ready = int((rs.get("spec") or {}).get("minReadySeconds", 0))
        ready = sum(1 for p in pods if is_ready(p))
        available = 0
        wait_for = None
        for pod in pods:
            now_available, wait = self.available(pod, min_ready)
            if now_available:
                available += 1
            elif wait > 0:
                wait_for = wait if wait_for is None else min(wait_for, wait)
        selector = LabelSelector.from_label_selector((rs.get("spec") or {}).get("selector"))
        status: dict[str, Any] = {
            "replicas": len(pods),
            "fullyLabeledReplicas": sum(
                1 for p in pods if selector.matches(p["metadata"].get("labels") or {})
            ),
            "readyReplicas": ready,
            "availableReplicas": available,
            "observedGeneration": rs["metadata"].get("generation", 1),
        }
        for key in ("readyReplicas", "availableReplicas", "fullyLabeledReplicas"):
            if status[key] == 0:
                del status[key]
        self.registry.write_status(self.replica_sets, rs, status)
        if wait_for is not None:
            meta = rs["metadata"]
            self.manager.enqueue("replicaset", meta["namespace"], meta["name"], wait_for + 0.001)


def _deletion_rank(pod: dict[str, Any]) -> tuple[int, str]:
    """The order a scale-down deletes Pods in: Pending, then not Ready, then by creation time."""
    phase = (pod.get("status") or {}).get("phase")
    order = 0 if phase == "Pending" else 1 if not is_ready(pod) else 2
    return (order, "~" + pod["metadata"].get("creationTimestamp", ""))
