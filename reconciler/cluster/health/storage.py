"""Argo CD's health rule for PersistentVolumeClaims."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reconciler.cluster.health.fields import lookup, text
from reconciler.cluster.health.verdict import Health, HealthStatus


def pvc_health(obj: Mapping[str, Any]) -> Health:
    """A PersistentVolumeClaim: healthy when Bound, degraded when its volume was Lost."""
    phase = text(lookup(obj, "status", "phase"))
    if phase == "Bound":
        return Health(HealthStatus.HEALTHY, "bound")
    if phase == "Lost":
        return Health(HealthStatus.DEGRADED, "its volume was lost", "ClaimLost")
    return Health(HealthStatus.PROGRESSING, f"phase {phase or 'not reported'}")
