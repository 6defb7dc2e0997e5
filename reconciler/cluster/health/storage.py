"""Argo CD's health rule for PersistentVolumeClaims (gitops-engine ``health_pvc.go``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reconciler.cluster.health.fields import string
from reconciler.cluster.health.verdict import Health, HealthStatus


def pvc_health(obj: Mapping[str, Any]) -> Health:
    """A PersistentVolumeClaim: healthy when Bound, degraded when its volume was Lost."""
    phase = string(obj, "status", "phase")
    if phase == "Bound":
        return Health(HealthStatus.HEALTHY, "bound")
    if phase == "Lost":
        return Health(HealthStatus.DEGRADED, "its volume was lost", "ClaimLost")
    if phase == "Pending":
        return Health(HealthStatus.PROGRESSING, "pending")
    # gitops-engine says Unknown for any other phase; we have no Unknown, so we keep waiting.
    return Health(HealthStatus.PROGRESSING, f"phase {phase or 'not reported'}")
