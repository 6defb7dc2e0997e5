"""The Deployment controller: ReplicaSets per pod template, rolled out step by step.

Each template gets a ReplicaSet ``name-<pod-template-hash>`` with a revision annotation; a
rolling update moves replicas from the old ReplicaSets to the new one within maxSurge and
maxUnavailable (Recreate scales the old ones down first); old ReplicaSets beyond
``revisionHistoryLimit`` are deleted.  The status is ``deployment_status``.
"""

from __future__ import annotations

from typing import Any

from ..objects import annotated, clone
from .deployment_status import (
    ReplicaCounts,
    RolloutEvent,
    available_condition,
    progressing_condition,
    surge_and_unavailable,
)
from .manager import ControllerManager
from .owners import controller_ref
from .revisions import template_hash
from .workload import WorkloadController

_TEMPLATE_HASH = "pod-template-hash"
_REVISION = "deployment.kubernetes.io/revision"


def _revision(rs: dict[str, Any]) -> int:
    value = (rs["metadata"].get("annotations") or {}).get(_REVISION, "0")
    return int(value) if str(value).isdigit() else 0


def _replicas_of(rs: dict[str, Any]) -> int:
    return int((rs.get("spec") or {}).get("replicas", 0))


def _available_of(rs: dict[str, Any]) -> int:
    return int((rs.get("status") or {}).get("availableReplicas", 0))


def _same_template(rs: dict[str, Any], template: dict[str, Any]) -> bool:
    """Whether ``rs`` runs ``template``, its pod-template-hash label aside.

    Shallow copies of the path to the labels suffice (nothing is mutated); a deep copy of
    every ReplicaSet's template on every sync was a tenth of fakekube's CPU.
    """
    rs_template = (rs.get("spec") or {}).get("template") or {}
    meta = rs_template.get("metadata")
    if not isinstance(meta, dict):
        return bool(rs_template == template)
    labels = meta.get("labels")
    if isinstance(labels, dict) and _TEMPLATE_HASH in labels:
        unhashed = {key: value for key, value in labels.items() if key != _TEMPLATE_HASH}
        rs_template = {**rs_template, "metadata": {**meta, "labels": unhashed}}
    return bool(rs_template == template)


class DeploymentController(WorkloadController):
    """The ``deployment`` controller."""

    def __init__(self, manager: ControllerManager) -> None:
        super().__init__(manager)
        self.replica_sets = self.registry.resource("apps/v1", "ReplicaSet")
        self.deployments = self.registry.resource("apps/v1", "Deployment")

    def sync(self, namespace: str, name: str) -> None:
        """One step of a rollout, then the status that describes it."""
        deployment = self.registry.find(self.deployments, namespace, name)
        if deployment is None or deployment["metadata"].get("deletionTimestamp"):
            return
        spec = deployment.get("spec") or {}
        desired = int(spec.get("replicas", 1))
        template = spec.get("template") or {}
        replica_sets = sorted(
            self.owned(deployment, self.replica_sets),
            key=lambda r: (r["metadata"].get("creationTimestamp", ""), r["metadata"]["name"]),
        )
        new_rs = next((r for r in replica_sets if _same_template(r, template)), None)
        old = [r for r in replica_sets if r is not new_rs]
        memory = self.manager.remember(deployment["metadata"]["uid"])
        event: RolloutEvent | None = None
        paused = bool(spec.get("paused"))
        max_revision = max((_revision(r) for r in old), default=0)
        if new_rs is None and not paused:
            new_rs = self._create_replica_set(deployment, template, desired, old, max_revision + 1)
            if new_rs is None:
                return
            event = (
                "NewReplicaSetCreated",
                f'Created new replica set "{new_rs["metadata"]["name"]}"',
            )
        elif new_rs is not None and _revision(new_rs) <= max_revision:
            new_rs = self._set_revision(new_rs, max_revision + 1)
            event = ("FoundNewReplicaSet", f'Found new replica set "{new_rs["metadata"]["name"]}"')
        if new_rs is not None:
            updated = self._note_revision(deployment, new_rs)
            if updated is None:
                return
            deployment = updated
        if not paused and new_rs is not None:
            strategy = (spec.get("strategy") or {}).get("type", "RollingUpdate")
            self._roll(deployment, new_rs, old, desired, strategy=strategy)
            replica_sets = [
                r
                for r in (
                    self.registry.find(self.replica_sets, namespace, rs["metadata"]["name"])
                    for rs in [*old, new_rs]
                )
                if r is not None
            ]
            new_rs = next((r for r in replica_sets if _same_template(r, template)), new_rs)
            self._clean_history(deployment, [r for r in replica_sets if r is not new_rs])
        self._write_status(deployment, new_rs, replica_sets, memory, event, paused)

    def _note_revision(
        self, deployment: dict[str, Any], new_rs: dict[str, Any]
    ) -> dict[str, Any] | None:
        """The Deployment with the new ReplicaSet's revision annotation; None when it is gone."""
        revision = str(_revision(new_rs))
        annotations = deployment["metadata"].get("annotations") or {}
        if annotations.get(_REVISION) == revision:
            return deployment
        candidate = annotated(deployment, {_REVISION: revision})
        return self.registry.write_object(self.deployments, candidate)

    def _set_revision(self, rs: dict[str, Any], revision: int) -> dict[str, Any]:
        candidate = annotated(rs, {_REVISION: str(revision)})
        return self.registry.write_object(self.replica_sets, candidate) or rs

    def _create_replica_set(
        self,
        deployment: dict[str, Any],
        template: dict[str, Any],
        desired: int,
        old: list[dict[str, Any]],
        revision: int,
    ) -> dict[str, Any] | None:
        meta = deployment["metadata"]
        spec = deployment.get("spec") or {}
        collisions = int((deployment.get("status") or {}).get("collisionCount", 0))
        hash_value = template_hash(template, collisions)
        rs_template = clone(template)
        rs_template.setdefault("metadata", {}).setdefault("labels", {})[_TEMPLATE_HASH] = hash_value
        selector = clone(spec.get("selector") or {})
        selector.setdefault("matchLabels", {})[_TEMPLATE_HASH] = hash_value
        surge, _ = surge_and_unavailable(deployment, desired)
        labels = dict(rs_template["metadata"]["labels"])
        rs: dict[str, Any] = {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": f"{meta['name']}-{hash_value}",
                "namespace": meta["namespace"],
                "labels": labels,
                "annotations": {
                    "deployment.kubernetes.io/desired-replicas": str(desired),
                    "deployment.kubernetes.io/max-replicas": str(desired + surge),
                    _REVISION: str(revision),
                },
                "ownerReferences": [controller_ref(deployment)],
            },
            "spec": {
                "replicas": _first_replicas(spec, desired, surge, old),
                "selector": selector,
                "template": rs_template,
            },
        }
        if spec.get("minReadySeconds"):
            rs["spec"]["minReadySeconds"] = spec["minReadySeconds"]
        return self.registry.create_object(self.replica_sets, rs)

    def _scale(self, rs: dict[str, Any], replicas: int, desired: int, surge: int) -> dict[str, Any]:
        if _replicas_of(rs) == replicas:
            return rs
        sizes = {
            "deployment.kubernetes.io/desired-replicas": str(desired),
            "deployment.kubernetes.io/max-replicas": str(desired + surge),
        }
        candidate = annotated(rs, sizes)
        candidate["spec"] = {**rs["spec"], "replicas": replicas}
        return self.registry.write_object(self.replica_sets, candidate) or rs

    def _roll(
        self,
        deployment: dict[str, Any],
        new_rs: dict[str, Any],
        old: list[dict[str, Any]],
        desired: int,
        *,
        strategy: str,
    ) -> None:
        """One step of the Deployment's strategy (``Recreate`` or ``RollingUpdate``)."""
        if strategy == "Recreate":
            for rs in old:
                self._scale(rs, 0, desired, 0)
            if any(int((rs.get("status") or {}).get("replicas", 0)) for rs in old):
                return
            self._scale(new_rs, desired, desired, 0)
        else:
            self._rolling_update(deployment, new_rs, old, desired)

    def _rolling_update(
        self,
        deployment: dict[str, Any],
        new_rs: dict[str, Any],
        old: list[dict[str, Any]],
        desired: int,
    ) -> None:
        surge, max_unavailable = surge_and_unavailable(deployment, desired)
        new_replicas = _replicas_of(new_rs)
        all_rs = [*old, new_rs]
        if new_replicas > desired:
            self._scale(new_rs, desired, desired, surge)
            return
        if new_replicas < desired:
            current = sum(_replicas_of(r) for r in all_rs)
            room = desired + surge - current
            if room > 0:
                target = new_replicas + min(room, desired - new_replicas)
                self._scale(new_rs, target, desired, surge)
                return
        if sum(_replicas_of(r) for r in old) == 0:
            return
        min_available = desired - max_unavailable
        new_unavailable = new_replicas - _available_of(new_rs)
        all_pods = sum(_replicas_of(r) for r in all_rs)
        max_scaled_down = all_pods - min_available - new_unavailable
        if max_scaled_down <= 0:
            return
        self._scale_down_old(
            new_rs, old, desired, surge, min_available=min_available, limit=max_scaled_down
        )

    def _scale_down_old(
        self,
        new_rs: dict[str, Any],
        old: list[dict[str, Any]],
        desired: int,
        surge: int,
        *,
        min_available: int,
        limit: int,
    ) -> None:
        """Scales old ReplicaSets down by up to ``limit``, keeping ``min_available`` Pods."""
        # Unhealthy old replicas go first, as they do not count towards availability.
        cleaned = 0
        refreshed: list[dict[str, Any]] = []
        for rs in old:
            unhealthy = _replicas_of(rs) - _available_of(rs)
            if _replicas_of(rs) == 0 or unhealthy <= 0 or cleaned >= limit:
                refreshed.append(rs)
                continue
            count = min(limit - cleaned, unhealthy)
            cleaned += count
            refreshed.append(self._scale(rs, _replicas_of(rs) - count, desired, surge))
        available = sum(_available_of(r) for r in [*refreshed, new_rs])
        budget = available - min_available
        for rs in refreshed:
            if budget <= 0:
                break
            count = min(_replicas_of(rs), budget)
            if count > 0:
                self._scale(rs, _replicas_of(rs) - count, desired, surge)
                budget -= count

    def _clean_history(self, deployment: dict[str, Any], old: list[dict[str, Any]]) -> None:
        limit = int((deployment.get("spec") or {}).get("revisionHistoryLimit", 10))
        idle = [
            r
            for r in old
            if _replicas_of(r) == 0 and int((r.get("status") or {}).get("replicas", 0)) == 0
        ]
        idle.sort(key=_revision)
        for rs in idle[: max(0, len(idle) - limit)]:
            self.delete(self.replica_sets, rs)

    def _write_status(
        self,
        deployment: dict[str, Any],
        new_rs: dict[str, Any] | None,
        replica_sets: list[dict[str, Any]],
        memory: dict[str, Any],
        event: RolloutEvent | None,
        paused: bool,
    ) -> None:
        """The status; a rollout in progress is looked at again when its deadline passes."""
        spec = deployment.get("spec") or {}
        desired = int(spec.get("replicas", 1))
        previous = deployment.get("status") or {}
        counts = ReplicaCounts.of(new_rs, replica_sets)
        status = counts.status(int(deployment["metadata"].get("generation", 1)))
        if previous.get("collisionCount"):
            status["collisionCount"] = previous["collisionCount"]
        conditions = previous.get("conditions") or []
        _, max_unavailable = surge_and_unavailable(deployment, desired)
        available = available_condition(
            conditions, available=counts.available, minimum=desired - max_unavailable
        )
        now = self.manager.now()
        complete = new_rs is not None and counts.complete(desired)
        deadline = self.manager.scaled(float(spec.get("progressDeadlineSeconds", 600)))
        progressing = progressing_condition(
            conditions,
            memory,
            now=now,
            deadline=deadline,
            paused=paused,
            event=event,
            complete=complete,
            progressed=counts.progressed_since(previous),
            rs_name=new_rs["metadata"]["name"] if new_rs is not None else "",
        )
        if not complete and not paused and progressing.get("reason") != "ProgressDeadlineExceeded":
            wait = memory.get("progress_at", now) + deadline - now
            meta = deployment["metadata"]
            self.manager.enqueue(
                "deployment", meta["namespace"], meta["name"], max(0.0, wait) + 0.001
            )
        status["conditions"] = [available, progressing]
        self.registry.write_status(self.deployments, deployment, status)


def _first_replicas(
    spec: dict[str, Any], desired: int, surge: int, old: list[dict[str, Any]]
) -> int:
    """How many replicas a new ReplicaSet starts with, by strategy and the old Pods."""
    old_pods = sum(_replicas_of(r) for r in old)
    strategy = (spec.get("strategy") or {}).get("type", "RollingUpdate")
    if old_pods == 0 and strategy != "Recreate":
        return desired
    if strategy == "Recreate":
        return 0
    return max(0, min(desired, desired + surge - old_pods))
