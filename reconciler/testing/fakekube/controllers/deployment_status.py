"""A Deployment's status: replica counts and the Available and Progressing conditions.

Progressing follows kube-controller-manager: NewReplicaSetCreated / FoundNewReplicaSet when the
rollout starts, ReplicaSetUpdated while it moves, NewReplicaSetAvailable when it is complete,
and ProgressDeadlineExceeded once ``progressDeadlineSeconds`` (scaled) pass without progress.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .conditions import condition
from .workload import int_or_percent

Conditions = list[dict[str, Any]]
#: (reason, message) of the Progressing condition when a rollout starts.
RolloutEvent = tuple[str, str]


def surge_and_unavailable(deployment: dict[str, Any], desired: int) -> tuple[int, int]:
    """maxSurge and maxUnavailable of a rolling update, as counts."""
    rolling = ((deployment.get("spec") or {}).get("strategy") or {}).get("rollingUpdate") or {}
    surge = int_or_percent(rolling.get("maxSurge", "25%"), desired, round_up=True)
    unavailable = int_or_percent(rolling.get("maxUnavailable", "25%"), desired, round_up=False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, min(unavailable, desired)


@dataclass(frozen=True)
class ReplicaCounts:
    """The Pods of a Deployment's ReplicaSets, counted."""

    replicas: int
    updated: int
    ready: int
    available: int
    wanted: int  # the sum of the ReplicaSets' spec.replicas

    @classmethod
    def of(cls, new_rs: dict[str, Any] | None, replica_sets: list[dict[str, Any]]) -> ReplicaCounts:
        """The counts over ``replica_sets`` (``new_rs`` gives the updated ones)."""

        def total(field: str) -> int:
            return sum(int((r.get("status") or {}).get(field, 0)) for r in replica_sets)

        return cls(
            replicas=total("replicas"),
            updated=int((new_rs.get("status") or {}).get("replicas", 0)) if new_rs else 0,
            ready=total("readyReplicas"),
            available=total("availableReplicas"),
            wanted=sum(int((r.get("spec") or {}).get("replicas", 0)) for r in replica_sets),
        )

    def status(self, generation: int) -> dict[str, Any]:
        """The count fields of the status (zero counts are left out, as the API omits them)."""
        status: dict[str, Any] = {
            "observedGeneration": generation,
            "replicas": self.replicas,
            "updatedReplicas": self.updated,
            "readyReplicas": self.ready,
            "availableReplicas": self.available,
            "unavailableReplicas": max(0, self.wanted - self.available),
        }
        for key in (
            "replicas",
            "updatedReplicas",
            "readyReplicas",
            "availableReplicas",
            "unavailableReplicas",
        ):
            if status[key] == 0:
                del status[key]
        return status

    def progressed_since(self, previous: dict[str, Any]) -> bool:
        """True when the rollout moved since the ``previous`` status."""
        return (
            self.updated > int(previous.get("updatedReplicas", 0))
            or (self.replicas - self.updated)
            < (int(previous.get("replicas", 0)) - int(previous.get("updatedReplicas", 0)))
            or self.ready > int(previous.get("readyReplicas", 0))
            or self.available > int(previous.get("availableReplicas", 0))
        )

    def complete(self, desired: int) -> bool:
        """True when every wanted Pod is updated and available, and no old one is left."""
        return self.updated == desired and self.replicas == desired and self.available == desired


def available_condition(conditions: Conditions, *, available: int, minimum: int) -> dict[str, Any]:
    """Available: True while at least ``minimum`` Pods are available."""
    if available >= minimum:
        return condition(
            conditions,
            "Available",
            "True",
            "MinimumReplicasAvailable",
            "Deployment has minimum availability.",
            update_time=True,
        )
    return condition(
        conditions,
        "Available",
        "False",
        "MinimumReplicasUnavailable",
        "Deployment does not have minimum availability.",
        update_time=True,
    )


def progressing_condition(
    conditions: Conditions,
    memory: dict[str, Any],
    *,
    now: float,
    deadline: float,
    paused: bool,
    event: RolloutEvent | None,
    complete: bool,
    progressed: bool,
    rs_name: str,
) -> dict[str, Any]:
    """Progressing; ``memory["progress_at"]`` keeps when the rollout last moved."""
    old = next((c for c in conditions if c.get("type") == "Progressing"), None)
    if paused:
        memory.pop("progress_at", None)
        return condition(
            conditions,
            "Progressing",
            "Unknown",
            "DeploymentPaused",
            "Deployment is paused",
            update_time=True,
        )
    if event is not None:
        memory["progress_at"] = now
        return condition(
            conditions, "Progressing", "True", event[0], event[1], update_time=True, touch=True
        )
    if complete:
        memory.pop("progress_at", None)
        return condition(
            conditions,
            "Progressing",
            "True",
            "NewReplicaSetAvailable",
            f'ReplicaSet "{rs_name}" has successfully progressed.',
            update_time=True,
        )
    if progressed or old is None or old.get("reason") == "NewReplicaSetAvailable":
        memory["progress_at"] = now
        return condition(
            conditions,
            "Progressing",
            "True",
            "ReplicaSetUpdated",
            f'ReplicaSet "{rs_name}" is progressing.',
            update_time=True,
            touch=True,
        )
    return _stalled(conditions, old, memory, now=now, deadline=deadline, rs_name=rs_name)


def _stalled(
    conditions: Conditions,
    old: dict[str, Any],
    memory: dict[str, Any],
    *,
    now: float,
    deadline: float,
    rs_name: str,
) -> dict[str, Any]:
    """Progressing while nothing moves: unchanged until the progress deadline passes."""
    progress_at = memory.setdefault("progress_at", now)
    if now - progress_at >= deadline:
        return condition(
            conditions,
            "Progressing",
            "False",
            "ProgressDeadlineExceeded",
            f'ReplicaSet "{rs_name}" has timed out progressing.',
            update_time=True,
        )
    return dict(old)
