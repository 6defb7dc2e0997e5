"""Argo CD's health rule for HorizontalPodAutoscalers, read from their conditions."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from reconciler.cluster.health.fields import lookup, mappings, text
from reconciler.cluster.health.verdict import Health, HealthStatus

# HPA conditions, as Argo reads them: these (type, reason) pairs mean the autoscaler is broken...
_HPA_DEGRADED = frozenset(
    {
        ("AbleToScale", "FailedGetScale"),
        ("AbleToScale", "FailedUpdateScale"),
        ("ScalingActive", "InvalidSelector"),
    }
)
# ...and these mean it has done its job at least once.
_HPA_HEALTHY = frozenset(
    {
        ("AbleToScale", "SucceededRescale"),
        ("ScalingLimited", "DesiredWithinRange"),
        ("ScalingLimited", "TooFewReplicas"),
        ("ScalingLimited", "TooManyReplicas"),
    }
)
# autoscaling/v1 has no status.conditions: the API server carries them in this annotation.
_HPA_V1_CONDITIONS_ANNOTATION = "autoscaling.alpha.kubernetes.io/conditions"


def _hpa_conditions(obj: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    conditions = mappings(lookup(obj, "status", "conditions"))
    if conditions:
        return conditions
    annotation = lookup(obj, "metadata", "annotations", _HPA_V1_CONDITIONS_ANNOTATION)
    if isinstance(annotation, str):
        try:
            return mappings(json.loads(annotation))
        except ValueError:
            # A garbled annotation is the API server's business; treat it as "no verdict yet".
            return []
    return []


def hpa_health(obj: Mapping[str, Any]) -> Health:
    """An HPA: degraded when it cannot scale or read metrics, healthy once it has scaled."""
    conditions = _hpa_conditions(obj)
    for condition in conditions:
        kind = text(condition.get("type"))
        reason = text(condition.get("reason"))
        # Argo lists FailedGetResourceMetric; the other FailedGet*Metric reasons (pods, object,
        # external, container metrics) are the same failure for other metric sources.
        broken_metrics = (
            kind == "ScalingActive"
            and reason.startswith("FailedGet")
            and condition.get("status") != "True"
        )
        if (kind, reason) in _HPA_DEGRADED or broken_metrics:
            return Health(HealthStatus.DEGRADED, text(condition.get("message")), reason)
    for condition in conditions:
        if (text(condition.get("type")), text(condition.get("reason"))) in _HPA_HEALTHY:
            return Health(HealthStatus.HEALTHY, text(condition.get("message")))
    return Health(HealthStatus.PROGRESSING, "waiting to autoscale")
