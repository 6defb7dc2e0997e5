"""Argo CD's health rules for the apps/v1 workloads: Deployment, StatefulSet, DaemonSet and
ReplicaSet (gitops-engine ``pkg/health/health_{deployment,statefulset,daemonset,replicaset}.go``,
themselves borrowed from ``kubectl rollout status``).

Each rule returns a Health whose message is the bare detail ("1 of 3 updated replicas are
available"); :func:`reconciler.cluster.health.rules.assess` puts the object's name in front.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reconciler.cluster.health.fields import count, field, first_condition, flag, integer, string
from reconciler.cluster.health.verdict import Health, HealthStatus


def _generation_pending(obj: Mapping[str, Any], *, never_observed: bool = False) -> Health | None:
    """PROGRESSING while the controller has not observed the latest spec (or, with
    ``never_observed``, any spec at all); None once it has."""
    generation = count(obj, "metadata", "generation")
    observed = count(obj, "status", "observedGeneration")
    if generation > observed or (never_observed and observed == 0):
        return Health(
            HealthStatus.PROGRESSING,
            f"waiting for the controller to observe generation {generation} (observed {observed})",
        )
    return None


def deployment_health(obj: Mapping[str, Any]) -> Health:
    """A Deployment: paused, rolling out, past its progress deadline or available."""
    if flag(obj, "spec", "paused"):
        return Health(HealthStatus.SUSPENDED, "paused")
    pending = _generation_pending(obj)
    if pending is not None:
        return pending
    progressing = first_condition(obj, "Progressing")
    if progressing is not None and progressing.reason == "ProgressDeadlineExceeded":
        detail = progressing.message
        message = "exceeded its progress deadline" + (f" ({detail})" if detail else "")
        return Health(HealthStatus.DEGRADED, message, "ProgressDeadlineExceeded")
    desired = integer(obj, "spec", "replicas")
    replicas = count(obj, "status", "replicas")
    updated = count(obj, "status", "updatedReplicas")
    available = count(obj, "status", "availableReplicas")
    if desired is not None and updated < desired:
        return Health(HealthStatus.PROGRESSING, f"{updated} of {desired} replicas updated")
    if replicas > updated:
        return Health(
            HealthStatus.PROGRESSING,
            f"{replicas - updated} old replicas are pending termination",
        )
    if available < updated:
        return Health(
            HealthStatus.PROGRESSING,
            f"{available} of {updated} updated replicas are available",
        )
    return Health(HealthStatus.HEALTHY, f"{available} replicas available")


def statefulset_health(obj: Mapping[str, Any]) -> Health:
    """A StatefulSet: pods ready, then the rollout judged by its update strategy."""
    pending = _generation_pending(obj, never_observed=True)
    if pending is not None:
        return pending
    desired = integer(obj, "spec", "replicas")
    ready = count(obj, "status", "readyReplicas")
    if desired is not None and ready < desired:
        return Health(HealthStatus.PROGRESSING, f"{ready} of {desired} pods are ready")
    strategy = string(obj, "spec", "updateStrategy", "type")
    rolling_update = field(obj, "spec", "updateStrategy", "rollingUpdate")
    updated = count(obj, "status", "updatedReplicas")
    if strategy == "RollingUpdate" and rolling_update is not None:
        partition = integer(obj, "spec", "updateStrategy", "rollingUpdate", "partition")
        return _partitioned_rollout(updated=updated, desired=desired, partition=partition)
    if strategy == "OnDelete":
        # Pods change only when someone deletes them; nothing to wait for.
        return Health(HealthStatus.HEALTHY, f"{ready} pods ready ({updated} updated, OnDelete)")
    current_revision = string(obj, "status", "currentRevision")
    update_revision = string(obj, "status", "updateRevision")
    if update_revision != current_revision:
        return Health(
            HealthStatus.PROGRESSING,
            f"rolling update: {updated} pods at revision {update_revision}",
        )
    return Health(HealthStatus.HEALTHY, f"{ready} pods ready at revision {current_revision}")


def _partitioned_rollout(*, updated: int, desired: int | None, partition: int | None) -> Health:
    """A StatefulSet's RollingUpdate, done once every pod at or above the partition is updated.

    gitops-engine trusts the counts here, not the revisions: without a partition (which the API
    server defaults to 0) the rollout counts as complete.
    """
    if desired is not None and partition is not None:
        # Pods below the partition ordinal deliberately stay on the old revision.
        expected = desired - partition
        if updated < expected:
            return Health(
                HealthStatus.PROGRESSING,
                f"partitioned rollout: {updated} of {expected} pods updated",
            )
    return Health(HealthStatus.HEALTHY, f"rollout complete: {updated} pods updated")


def daemonset_health(obj: Mapping[str, Any]) -> Health:
    """A DaemonSet: its pods updated and available on every node it is scheduled to."""
    pending = _generation_pending(obj)
    if pending is not None:
        return pending
    desired = count(obj, "status", "desiredNumberScheduled")
    updated = count(obj, "status", "updatedNumberScheduled")
    available = count(obj, "status", "numberAvailable")
    if string(obj, "spec", "updateStrategy", "type") == "OnDelete":
        return Health(HealthStatus.HEALTHY, f"{updated} of {desired} pods updated (OnDelete)")
    if updated < desired:
        return Health(HealthStatus.PROGRESSING, f"{updated} of {desired} pods updated")
    if available < desired:
        return Health(HealthStatus.PROGRESSING, f"{available} of {desired} updated pods available")
    return Health(HealthStatus.HEALTHY, f"{available} pods available")


def replicaset_health(obj: Mapping[str, Any]) -> Health:
    """A ReplicaSet: degraded on ReplicaFailure, else healthy once its replicas are available."""
    pending = _generation_pending(obj)
    if pending is not None:
        return pending
    failure = first_condition(obj, "ReplicaFailure")
    if failure is not None and failure.true:
        return Health(
            HealthStatus.DEGRADED,
            failure.message or "replica failure",
            failure.reason or "ReplicaFailure",
        )
    desired = integer(obj, "spec", "replicas")
    available = count(obj, "status", "availableReplicas")
    if desired is not None and available < desired:
        return Health(HealthStatus.PROGRESSING, f"{available} of {desired} replicas available")
    return Health(HealthStatus.HEALTHY, f"{available} replicas available")
