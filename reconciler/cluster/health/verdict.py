"""The verdict on one object: its health status, a message for a human and the cluster's reason."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from reconciler.cluster.health.fields import lookup, text


class HealthStatus(StrEnum):
    """How healthy one object is, in Argo CD's vocabulary."""

    HEALTHY = "healthy"
    PROGRESSING = "progressing"
    DEGRADED = "degraded"
    SUSPENDED = "suspended"
    MISSING = "missing"


@dataclass(frozen=True)
class Health:
    """The verdict on one object.

    ``message`` is for a human ("Deployment web: 1 of 3 updated replicas are available");
    ``reason`` is the cluster's own word for a failure when there is one (``ImagePullBackOff``,
    ``ProgressDeadlineExceeded``, ``BackoffLimitExceeded``...), so callers can act on it.
    """

    status: HealthStatus
    message: str = ""
    reason: str = ""

    @classmethod
    def missing(cls, kind: str, name: str) -> Health:
        """The verdict for an object that does not exist in the cluster."""
        return cls(HealthStatus.MISSING, f"{kind} {name}: not found")

    @property
    def done(self) -> bool:
        """Whether waiting for this object is over: healthy, or suspended as the user asked."""
        return self.status in (HealthStatus.HEALTHY, HealthStatus.SUSPENDED)


def subject_of(obj: Mapping[str, Any]) -> str:
    """How a message names an object: ``Deployment web``."""
    kind = text(lookup(obj, "kind")) or "object"
    name = text(lookup(obj, "metadata", "name")) or "(unnamed)"
    return f"{kind} {name}"


def describe(subject: str, finding: Health) -> str:
    """``subject: reason: detail``, leaving out the parts that are empty."""
    parts = [part for part in (subject, finding.reason, finding.message) if part]
    return ": ".join(parts)


def named(subject: str, finding: Health) -> Health:
    """``finding`` (whose message is the bare detail) with ``subject`` and reason in front."""
    return Health(finding.status, describe(subject, finding), finding.reason)
