"""The StatefulSet controller: Pods ``name-0..n-1`` with their claims, in order or in parallel.

Revisions are ControllerRevisions ``name-<hash>``; a rolling update replaces Pods from the
highest ordinal down to the partition, one at a time once all are Ready, and the status carries
``currentRevision``/``updateRevision`` as ``kubectl rollout status`` expects.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..objects import clone
from .manager import ControllerManager
from .owners import controller_ref
from .revisions import REVISION_HASH, ensure_revision, template_hash
from .workload import WorkloadController, is_ready


@dataclass(frozen=True)
class _Plan:
    """What one sync of a StatefulSet works towards."""

    replicas: int
    template: dict[str, Any]
    current_revision: str
    update_revision: str
    rolling: bool
    partition: int
    ordered: bool


class StatefulSetController(WorkloadController):
    """The ``statefulset`` controller."""

    def __init__(self, manager: ControllerManager) -> None:
        super().__init__(manager)
        self.stateful_sets = self.registry.resource("apps/v1", "StatefulSet")
        self.pvcs = self.registry.resource("v1", "PersistentVolumeClaim")
        self.revisions = self.registry.resource("apps/v1", "ControllerRevision")

    def sync(self, namespace: str, name: str) -> None:
        """Ordered (or parallel) Pods name-0..n-1 with claims, rolled from the top ordinal down."""
        sts = self.registry.find(self.stateful_sets, namespace, name)
        if sts is None or sts["metadata"].get("deletionTimestamp"):
            return
        spec = sts.get("spec") or {}
        template = spec.get("template") or {}
        update_revision = f"{name}-{template_hash(template)}"
        status = sts.get("status") or {}
        ensure_revision(self.registry, self.revisions, sts, update_revision, template)
        strategy = spec.get("updateStrategy") or {}
        rolling = strategy.get("type", "RollingUpdate") == "RollingUpdate"
        plan = _Plan(
            replicas=int(spec.get("replicas", 1)),
            template=template,
            current_revision=status.get("currentRevision") or update_revision,
            update_revision=update_revision,
            rolling=rolling,
            partition=int((strategy.get("rollingUpdate") or {}).get("partition", 0))
            if rolling
            else 0,
            ordered=spec.get("podManagementPolicy", "OrderedReady") == "OrderedReady",
        )
        pods: dict[int, dict[str, Any]] = {}
        for pod in self.owned(sts, self.pods):
            match = re.fullmatch(re.escape(name) + r"-(\d+)", pod["metadata"]["name"])
            if match and not pod["metadata"].get("deletionTimestamp"):
                pods[int(match.group(1))] = pod
        if not self._step(sts, pods, plan):
            return
        self._write_status(sts, list(pods.values()), plan)

    def _step(self, sts: dict[str, Any], pods: dict[int, dict[str, Any]], plan: _Plan) -> bool:
        """Creates, deletes or replaces Pods (updating ``pods``); False when a create failed."""
        acted = False
        for ordinal in range(plan.replicas):
            existing = pods.get(ordinal)
            if existing is None:
                revision = (
                    plan.current_revision if ordinal < plan.partition else plan.update_revision
                )
                if not plan.rolling:
                    revision = plan.current_revision
                created = self._stateful_pod(sts, ordinal, revision, plan)
                if created is None:
                    return False
                pods[ordinal] = created
                acted = True
                if plan.ordered:
                    break
            elif plan.ordered and not is_ready(existing):
                acted = True
                break
        if not acted:
            for ordinal in sorted((o for o in pods if o >= plan.replicas), reverse=True):
                self.delete(self.pods, pods.pop(ordinal))
                acted = True
                if plan.ordered:
                    break
        if not acted and plan.rolling and all(is_ready(p) for p in pods.values()):
            for ordinal in range(plan.replicas - 1, plan.partition - 1, -1):
                candidate = pods.get(ordinal)
                if (
                    candidate is not None
                    and candidate["metadata"]["labels"].get(REVISION_HASH) != plan.update_revision
                ):
                    self.delete(self.pods, pods.pop(ordinal))
                    break
        return True

    def _write_status(
        self, sts: dict[str, Any], live_pods: list[dict[str, Any]], plan: _Plan
    ) -> None:
        spec = sts.get("spec") or {}
        ready = sum(1 for p in live_pods if is_ready(p))
        min_ready = int(spec.get("minReadySeconds", 0))
        available = sum(1 for p in live_pods if self.available(p, min_ready)[0])
        current = sum(
            1
            for p in live_pods
            if p["metadata"]["labels"].get(REVISION_HASH) == plan.current_revision
        )
        updated = sum(
            1
            for p in live_pods
            if p["metadata"]["labels"].get(REVISION_HASH) == plan.update_revision
        )
        new_status: dict[str, Any] = {
            "observedGeneration": sts["metadata"].get("generation", 1),
            "replicas": len(live_pods),
            "readyReplicas": ready,
            "currentReplicas": current,
            "updatedReplicas": updated,
            "availableReplicas": available,
            "currentRevision": plan.current_revision,
            "updateRevision": plan.update_revision,
            "collisionCount": 0,
        }
        if plan.rolling and updated == len(live_pods) and ready == len(live_pods) == plan.replicas:
            new_status["currentRevision"] = plan.update_revision
            new_status["currentReplicas"] = updated
        for key in ("readyReplicas", "currentReplicas", "updatedReplicas", "availableReplicas"):
            if new_status[key] == 0:
                del new_status[key]
        self.registry.write_status(self.stateful_sets, sts, new_status)

    def _stateful_pod(
        self, sts: dict[str, Any], ordinal: int, revision: str, plan: _Plan
    ) -> dict[str, Any] | None:
        name = sts["metadata"]["name"]
        namespace = sts["metadata"]["namespace"]
        spec = sts.get("spec") or {}
        template = plan.template
        if revision != plan.update_revision:
            stored = self.registry.find(self.revisions, namespace, revision)
            if stored is not None:
                template = clone(stored["data"]["spec"]["template"])
                template.pop("$patch", None)
        pod_name = f"{name}-{ordinal}"
        volumes = self._claim_volumes(sts, pod_name)
        pod_spec = clone(template.get("spec") or {})
        declared = {v.get("name") for v in pod_spec.get("volumes") or ()}
        extra_volumes = [v for v in volumes if v["name"] not in declared]
        updates: dict[str, Any] = {"hostname": pod_name}
        if spec.get("serviceName"):
            updates["subdomain"] = spec["serviceName"]
        if extra_volumes:
            updates["volumes"] = [*(pod_spec.get("volumes") or []), *extra_volumes]
        return self.new_pod(
            sts,
            {"metadata": template.get("metadata") or {}, "spec": pod_spec},
            name=pod_name,
            extra_labels={
                REVISION_HASH: revision,
                "statefulset.kubernetes.io/pod-name": pod_name,
                "apps.kubernetes.io/pod-index": str(ordinal),
            },
            spec_updates=updates,
        )

    def _claim_volumes(self, sts: dict[str, Any], pod_name: str) -> list[dict[str, Any]]:
        """Creates the Pod's claims from ``volumeClaimTemplates``; the volumes that mount them."""
        namespace = sts["metadata"]["namespace"]
        spec = sts.get("spec") or {}
        volumes = []
        for claim_template in spec.get("volumeClaimTemplates") or ():
            claim_name = claim_template["metadata"]["name"]
            pvc_name = f"{claim_name}-{pod_name}"
            if self.registry.find(self.pvcs, namespace, pvc_name) is None:
                claim_spec = clone(claim_template.get("spec") or {})
                claim = {
                    "apiVersion": "v1",
                    "kind": "PersistentVolumeClaim",
                    "metadata": {
                        "name": pvc_name,
                        "namespace": namespace,
                        "labels": dict((spec.get("selector") or {}).get("matchLabels") or {}),
                    },
                    "spec": claim_spec,
                }
                policy = spec.get("persistentVolumeClaimRetentionPolicy") or {}
                if policy.get("whenDeleted") == "Delete":
                    claim["metadata"]["ownerReferences"] = [
                        controller_ref(sts) | {"controller": False}
                    ]
                self.registry.create_object(self.pvcs, claim)
            volumes.append({"name": claim_name, "persistentVolumeClaim": {"claimName": pvc_name}})
        return volumes
