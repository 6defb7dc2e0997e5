"""Argo CD's health rule for batch/v1 Jobs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reconciler.cluster.health.fields import condition_is_true, count, find_condition, lookup, text
from reconciler.cluster.health.verdict import Health, HealthStatus


def job_health(obj: Mapping[str, Any]) -> Health:
    """A Job: failed, complete, suspended, or still running."""
    failed = find_condition(obj, "Failed")
    if failed is not None and failed.get("status") == "True":
        return Health(
            HealthStatus.DEGRADED,
            text(failed.get("message")) or "failed",
            text(failed.get("reason")) or "Failed",
        )
    complete = find_condition(obj, "Complete")
    if complete is not None and complete.get("status") == "True":
        return Health(HealthStatus.HEALTHY, text(complete.get("message")) or "complete")
    if lookup(obj, "spec", "suspend") is True or condition_is_true(obj, "Suspended"):
        return Health(HealthStatus.SUSPENDED, "suspended")
    active = count(lookup(obj, "status", "active"))
    return Health(HealthStatus.PROGRESSING, f"running ({active} active pods)")
