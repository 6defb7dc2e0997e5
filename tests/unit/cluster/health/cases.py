"""One expected verdict of assess, and short names for the statuses."""

from __future__ import annotations

from dataclasses import dataclass

from reconciler.cluster.health import HealthStatus
from tests.unit.cluster.health.objects import Obj

HEALTHY = HealthStatus.HEALTHY
PROGRESSING = HealthStatus.PROGRESSING
DEGRADED = HealthStatus.DEGRADED
SUSPENDED = HealthStatus.SUSPENDED
MISSING = HealthStatus.MISSING


@dataclass(frozen=True)
class Case:
    obj: Obj
    status: HealthStatus
    reason: str = ""
    # Words the message must contain, so a branch is identified by more than its status.
    says: str = ""
