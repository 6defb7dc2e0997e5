"""Argo CD's health rule for batch/v1 Jobs (gitops-engine ``pkg/health/health_job.go``; Argo CD
ships the same logic as ``resource_customizations/batch/Job/health.lua``).

The verdict comes from the Job's conditions only, read the way gitops-engine reads them: a
``Failed`` or ``Complete`` condition ends the Job whatever its status says, and any
``Suspended`` condition counts as "finished" too, suspended only while it is ``True``.
``spec.suspend`` alone decides nothing until the Job controller reports ``Suspended``.
``FailureTarget`` (Kubernetes 1.31+: the Job will fail once its pods have terminated) is not a
verdict in gitops-engine; we keep waiting for ``Failed`` but say why in the message.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reconciler.cluster.health.fields import Condition, conditions, count
from reconciler.cluster.health.verdict import Health, HealthStatus


def job_health(obj: Mapping[str, Any]) -> Health:
    """A Job: failed, complete, suspended, or still running."""
    failed: Condition | None = None
    finished: Condition | None = None
    suspended = False
    failure_target: Condition | None = None
    for condition in conditions(obj):
        if condition.type == "Failed":
            failed = finished = condition
        elif condition.type in ("Complete", "Suspended"):
            finished = condition
            suspended = suspended or (condition.type == "Suspended" and condition.true)
        elif condition.type == "FailureTarget" and condition.true:
            failure_target = condition
    if finished is None:
        return _running(obj, failure_target)
    if failed is not None:
        return Health(HealthStatus.DEGRADED, failed.message or "failed", failed.reason or "Failed")
    if suspended:
        return Health(HealthStatus.SUSPENDED, finished.message or "suspended")
    return Health(HealthStatus.HEALTHY, finished.message or "complete")


def _running(obj: Mapping[str, Any], failure_target: Condition | None) -> Health:
    if failure_target is not None:
        detail = ": ".join(part for part in (failure_target.reason, failure_target.message) if part)
        return Health(
            HealthStatus.PROGRESSING,
            "failing, waiting for its pods to terminate" + (f" ({detail})" if detail else ""),
        )
    active = count(obj, "status", "active")
    return Health(HealthStatus.PROGRESSING, f"running ({active} active pods)")
