"""The DaemonSet controller: one Pod on the one node (when its nodeSelector allows), replaced
when the template changes."""

from __future__ import annotations

from typing import Any

from ..defaults import NODE_NAME
from ..objects import random_suffix
from .manager import ControllerManager
from .revisions import REVISION_HASH, ensure_revision, template_hash
from .workload import WorkloadController, is_ready


class DaemonSetController(WorkloadController):
    """The ``daemonset`` controller."""

    def __init__(self, manager: ControllerManager) -> None:
        super().__init__(manager)
        self.daemon_sets = self.registry.resource("apps/v1", "DaemonSet")
        self.revisions = self.registry.resource("apps/v1", "ControllerRevision")
        self.nodes = self.registry.resource("v1", "Node")

    def sync(self, namespace: str, name: str) -> None:
        """One Pod on the one node (when its nodeSelector allows), replaced on template changes."""
        ds = self.registry.find(self.daemon_sets, namespace, name)
        if ds is None or ds["metadata"].get("deletionTimestamp"):
            return
        spec = ds.get("spec") or {}
        template = spec.get("template") or {}
        revision_hash = template_hash(template)
        ensure_revision(self.registry, self.revisions, ds, f"{name}-{revision_hash}", template)
        node = self.registry.find(self.nodes, "", NODE_NAME)
        node_labels = (node or {}).get("metadata", {}).get("labels") or {}
        selector = (template.get("spec") or {}).get("nodeSelector") or {}
        desired = 1 if all(node_labels.get(k) == v for k, v in selector.items()) else 0
        pods = [p for p in self.owned(ds, self.pods) if not p["metadata"].get("deletionTimestamp")]
        if desired == 0:
            for pod in pods:
                self.delete(self.pods, pod)
            pods = []
        else:
            stale = [p for p in pods if p["metadata"]["labels"].get(REVISION_HASH) != revision_hash]
            for pod in stale:
                self.delete(self.pods, pod)
            pods = [p for p in pods if p not in stale]
            if not pods:
                created = self.new_pod(
                    ds,
                    template,
                    name=f"{name}-{random_suffix()}",
                    extra_labels={
                        REVISION_HASH: revision_hash,
                        "pod-template-generation": str(ds["metadata"].get("generation", 1)),
                    },
                )
                if created is None:
                    return
                pods = [created]
        self._write_status(ds, pods, desired=desired, revision_hash=revision_hash)

    def _write_status(
        self, ds: dict[str, Any], pods: list[dict[str, Any]], *, desired: int, revision_hash: str
    ) -> None:
        ready = sum(1 for p in pods if is_ready(p))
        min_ready = int((ds.get("spec") or {}).get("minReadySeconds", 0))
        available = sum(1 for p in pods if self.available(p, min_ready)[0])
        updated = sum(
            1 for p in pods if p["metadata"]["labels"].get(REVISION_HASH) == revision_hash
        )
        status: dict[str, Any] = {
            "currentNumberScheduled": len(pods),
            "desiredNumberScheduled": desired,
            "numberMisscheduled": 0,
            "numberReady": ready,
            "observedGeneration": ds["metadata"].get("generation", 1),
            "updatedNumberScheduled": updated,
            "numberAvailable": available,
        }
        if desired - available > 0:
            status["numberUnavailable"] = desired - available
        if not available:
            del status["numberAvailable"]
        if not updated:
            del status["updatedNumberScheduled"]
        self.registry.write_status(self.daemon_sets, ds, status)
