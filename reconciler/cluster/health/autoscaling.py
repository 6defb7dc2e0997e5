"""Argo CD's health rule for HorizontalPodAutoscalers (gitops-engine ``health_hpa.go``).

Where the conditions come from depends on the API version: ``autoscaling/v2`` (and the old
v2beta1/v2beta2) keep them in ``status.conditions``; ``autoscaling/v1`` has no such field, so
the API server carries them as JSON in the ``autoscaling.alpha.kubernetes.io/conditions``
annotation.  No annotation, or an empty list, means "waiting to autoscale".

The conditions are then read in the order the HPA controller wrote them, and the first one
that decides wins (gitops-engine's ``checkConditions``):

* degraded: ``AbleToScale`` with reason ``FailedGetScale`` or ``FailedUpdateScale``, or
  ``ScalingActive`` with reason ``FailedGetResourceMetric`` or ``InvalidSelector`` (reason
  only, whatever the status says);
* healthy: ``AbleToScale`` or ``ScalingLimited`` with status ``True``.

The controller writes ``AbleToScale`` first, so an autoscaler that can reach its target is
healthy even when a later ``ScalingActive`` says the metrics are missing: that is
gitops-engine's answer (its "all conditions must be healthy" fix, argoproj/gitops-engine#624,
was never merged), and parity is the point of this module.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from reconciler.cluster.health.fields import (
    Condition,
    MalformedField,
    annotation,
    conditions,
    parse_conditions,
    string,
)
from reconciler.cluster.health.verdict import Health, HealthStatus

V1_CONDITIONS_ANNOTATION = "autoscaling.alpha.kubernetes.io/conditions"

_DEGRADED = frozenset(
    {
        ("AbleToScale", "FailedGetScale"),
        ("AbleToScale", "FailedUpdateScale"),
        ("ScalingActive", "FailedGetResourceMetric"),
        ("ScalingActive", "InvalidSelector"),
    }
)
_HEALTHY_WHEN_TRUE = frozenset({"AbleToScale", "ScalingLimited"})

_WAITING = Health(HealthStatus.PROGRESSING, "waiting to autoscale")


def _v1_conditions(obj: Mapping[str, Any]) -> list[Condition]:
    raw = annotation(obj, V1_CONDITIONS_ANNOTATION)
    if raw is None:
        return []
    path = ("metadata", "annotations", V1_CONDITIONS_ANNOTATION)
    try:
        decoded = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        # RecursionError: JSON nested deeper than the parser's stack.
        problem = f"is not valid JSON ({exc})"
        raise MalformedField(path, "a JSON list of conditions", raw, problem=problem) from exc
    return parse_conditions(decoded, path)


def hpa_health(obj: Mapping[str, Any]) -> Health:
    """An HPA: the first condition that says degraded or healthy decides."""
    if string(obj, "apiVersion") == "autoscaling/v1":
        found = _v1_conditions(obj)
    else:
        found = conditions(obj)
    for condition in found:
        if (condition.type, condition.reason) in _DEGRADED:
            return Health(
                HealthStatus.DEGRADED, condition.message or condition.type, condition.reason
            )
        if condition.type in _HEALTHY_WHEN_TRUE and condition.true:
            return Health(HealthStatus.HEALTHY, condition.message or condition.reason)
    return _WAITING
