"""An in-memory :class:`reconciler.ports.Cluster`."""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any

from reconciler.model import ObjectRef

CLUSTER_SCOPED = frozenset(
    {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "StorageClass"}
)


class InMemoryCluster:
    """:class:`reconciler.ports.Cluster` over a dict.  ``rollout`` says how applied workloads
    behave: ``healthy`` at once, ``hold`` (progressing for ever) or ``deadline`` (degraded with
    ProgressDeadlineExceeded)."""

    def __init__(self, *, rollout: str = "healthy") -> None:
        self.rollout = rollout
        self.objects: dict[ObjectRef, dict[str, Any]] = {}
        self.applied: list[ObjectRef] = []
        self.scaled: list[tuple[ObjectRef, int]] = []
        self.restarted: list[ObjectRef] = []
        self.user: str | None = None
        self.applied_as: list[tuple[ObjectRef, str | None]] = []
        """Who each apply was made as (None: the daemon itself)."""
        self.dry_runs: list[ObjectRef] = []
        """Dry-run applies: answered, never stored."""

    async def apply(
        self, obj: Mapping[str, Any], *, field_manager: str, dry_run: bool = False
    ) -> dict[str, Any]:
        ref = ObjectRef.from_object(obj)
        live: dict[str, Any] = json.loads(json.dumps(obj))
        live.setdefault("metadata", {})["generation"] = 1
        if obj.get("kind") == "Deployment":
            live["status"] = self._deployment_status(live)
        if dry_run:
            self.dry_runs.append(ref)
            return live
        self.objects[ref] = live
        self.applied.append(ref)
        self.applied_as.append((ref, self.user))
        return live

    def _deployment_status(self, live: Mapping[str, Any]) -> dict[str, Any]:
        replicas = int((live.get("spec") or {}).get("replicas", 1))
        if self.rollout == "healthy":
            counts = ("replicas", "updatedReplicas", "readyReplicas", "availableReplicas")
            return {"observedGeneration": 1} | dict.fromkeys(counts, replicas)
        condition = {"type": "Progressing", "status": "Unknown", "reason": "ReplicaSetUpdated"}
        if self.rollout == "deadline":
            condition = {"type": "Progressing", "status": "False"}
            condition["reason"] = "ProgressDeadlineExceeded"
        return {
            "observedGeneration": 1,
            "replicas": replicas,
            "updatedReplicas": 0,
            "conditions": [condition],
        }

    async def get(self, ref: ObjectRef) -> dict[str, Any] | None:
        return self.objects.get(ref)

    async def list_pods(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        return []

    async def scale(self, ref: ObjectRef, *, replicas: int) -> None:
        self.objects[ref].setdefault("spec", {})["replicas"] = replicas
        self.scaled.append((ref, replicas))

    async def restart(self, ref: ObjectRef, *, at: str) -> None:
        template = self.objects[ref].setdefault("spec", {}).setdefault("template", {})
        annotations = template.setdefault("metadata", {}).setdefault("annotations", {})
        annotations["kubectl.kubernetes.io/restartedAt"] = at
        self.restarted.append(ref)

    async def is_namespaced(self, api_version: str, kind: str) -> bool | None:
        return kind not in CLUSTER_SCOPED

    def impersonating(self, user: str) -> InMemoryCluster:
        view = copy.copy(self)  # shares the objects and the logs
        view.user = user
        return view

    async def refresh_discovery(self) -> None:
        return None
