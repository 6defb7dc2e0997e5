"""Argo CD's health rule for aggregated APIServices (gitops-engine ``health_apiservice.go``).

The first ``Available`` condition decides: ``True`` is healthy, anything else (``False``,
``Unknown``) is still progressing, as gitops-engine's ``apiservice-v1-false`` fixture pins: an
extension API server that is not answering yet may still come up.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reconciler.cluster.health.fields import first_condition
from reconciler.cluster.health.verdict import Health, HealthStatus


def apiservice_health(obj: Mapping[str, Any]) -> Health:
    """An APIService: healthy once the aggregator reports it Available."""
    available = first_condition(obj, "Available")
    if available is None:
        return Health(HealthStatus.PROGRESSING, "waiting to be processed")
    detail = ": ".join(part for part in (available.reason, available.message) if part)
    if available.true:
        return Health(HealthStatus.HEALTHY, detail or "available")
    return Health(HealthStatus.PROGRESSING, f"not available yet: {detail or available.status}")
