"""Argo CD's health rules for the apps/v1 workloads: Deployment, StatefulSet, DaemonSet and
ReplicaSet.

Each rule returns a Health whose message is the bare detail ("1 of 3 updated replicas are
available"); :func:`reconciler.cluster.health.rules.assess` puts the object's name in front.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reconciler.cluster.health.fields import count, find_condition, lookup, optional_int, text
from reconciler.cluster.health.verdict import Health, HealthStatus


def _generation_pending(obj: Mapping[str, Any], *, never_observed: bool = False) -> Health | None:
    """PROGRESSING while the controller has not observed the latest spec (or, with
    ``never_observed``, any spec at all); None once it has."""
    generation = count(lookup(obj, "metadata", "generation"))
    observed = count(lookup(obj, "status", "observedGeneration"))
    if generation > observed or (never_observed and observed == 0):
        return Health(
            HealthStatus.PROGRESSING,
            f"waiting for the controller to observe generation {generation} (observed {observed})",
        )
    return None


def deployment_health(obj: Mapping[str, Any]) -> Health:
    """A Deployment: paused, rolling out, past its progress deadline or available."""
    if lookup(obj, "spec", "paused") is True:
        return Health(HealthStatus.SUSPENDED, "paused")
    pending = _generation_pending(obj)
    if pending is not None:
        return pending
    progressing = find_condition(obj, "Progressing")
    if progressing is not None and progressing.get("reason") == "ProgressDeadlineExceeded":
        detail = text(progressing.get("message"))
        message = "exceeded its progress deadline" + (f" ({detail})" if detail else "")
        return Health(HealthStatus.DEGRADED, message, "ProgressDeadlineExceeded")
    desired = optional_int(lookup(obj, "spec", "replicas"))
    replicas = count(lookup(obj, "status", "replicas"))
    updated = count(lookup(obj, "status", "updatedReplicas"))
    available = count(lookup(obj, "status", "availableReplicas"))
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
    desired = optional_int(lookup(obj, "spec", "replicas"))
    ready = count(lookup(obj, "status", "readyReplicas"))
    if desired is not None and ready < desired:
        return Health(HealthStatus.PROGRESSING, f"{ready} of {desired} pods are ready")
    strategy = text(lookup(obj, "spec", "updateStrategy", "type"))
    rolling_update = lookup(obj, "spec", "updateStrategy", "rollingUpdate")
    if strategy == "RollingUpdate" and isinstance(rolling_update, Mapping):
        return _partitioned_rollout(obj, desired=desired, rolling_update=rolling_update)
    updated = count(lookup(obj, "status", "updatedReplicas"))
    if strategy == "OnDelete":
        # Pods change only when someone deletes them; nothing to wait for.
        return Health(HealthStatus.HEALTHY, f"{ready} pods ready ({updated} updated, OnDelete)")
    current_revision = text(lookup(obj, "status", "currentRevision"))
    update_revision = text(lookup(obj, "status", "updateRevision"))
    if update_revision != current_revision:
        return Health(
            HealthStatus.PROGRESSING,
            f"rolling update: {updated} pods at revision {update_revision}",
        )
    return Health(HealthStatus.HEALTHY, f"{ready} pods ready at revision {current_revision}")


def _partitioned_rollout(
    obj: Mapping[str, Any], *, desired: int | None, rolling_update: Mapping[str, Any]
) -> Health:
    """A StatefulSet's RollingUpdate, done once every pod at or above the partition is updated."""
    updated = count(lookup(obj, "status", "updatedReplicas"))
    partition = optional_int(rolling_update.get("partition"))
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
    desired = count(lookup(obj, "status", "desiredNumberScheduled"))
    updated = count(lookup(obj, "status", "updatedNumberScheduled"))
    available = count(lookup(obj, "status", "numberAvailable"))
    if lookup(obj, "spec", "updateStrategy", "type") == "OnDelete":
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
    failure = find_condition(obj, "ReplicaFailure")
    if failure is not None and failure.get("status") == "True":
        return Health(
            HealthStatus.DEGRADED,
            text(failure.get("message")) or "replica failure",
            text(failure.get("reason")) or "ReplicaFailure",
        )
    desired = optional_int(lookup(obj, "spec", "replicas"))
    available = count(lookup(obj, "status", "availableReplicas"))
    if desired is not None and available < desired:
        return Health(HealthStatus.PROGRESSING, f"{available} of {desired} replicas available")
    return Health(HealthStatus.HEALTHY, f"{available} replicas available")
