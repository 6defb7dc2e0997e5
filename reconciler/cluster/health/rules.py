"""Which rule judges which kind, and :func:`assess`: the health of one live object.

The table follows gitops-engine's ``GetHealthCheckFunc`` (``pkg/health/health.go``), plus the
CustomResourceDefinition check Argo CD ships as Lua.  Kinds without a rule are healthy once
they exist.  A rule that meets a field of the wrong type (which gitops-engine's typed
conversion rejects with Unknown) gives a DEGRADED verdict naming the field, never an exception.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from reconciler.cluster.health.apiregistration import apiservice_health
from reconciler.cluster.health.autoscaling import hpa_health
from reconciler.cluster.health.batch import job_health
from reconciler.cluster.health.extensions import crd_health
from reconciler.cluster.health.fields import MalformedField, api_group, field, text
from reconciler.cluster.health.networking import ingress_health, service_health
from reconciler.cluster.health.pods import pod_health
from reconciler.cluster.health.storage import pvc_health
from reconciler.cluster.health.verdict import Health, HealthStatus, named, subject_of
from reconciler.cluster.health.workloads import (
    daemonset_health,
    deployment_health,
    replicaset_health,
    statefulset_health,
)

Rule = Callable[[Mapping[str, Any]], Health]

_RULES: dict[tuple[str, str], Rule] = {
    ("apps", "Deployment"): deployment_health,
    ("apps", "StatefulSet"): statefulset_health,
    ("apps", "DaemonSet"): daemonset_health,
    ("apps", "ReplicaSet"): replicaset_health,
    ("batch", "Job"): job_health,
    ("", "Pod"): pod_health,
    ("", "PersistentVolumeClaim"): pvc_health,
    ("", "Service"): service_health,
    ("networking.k8s.io", "Ingress"): ingress_health,
    ("extensions", "Ingress"): ingress_health,
    ("autoscaling", "HorizontalPodAutoscaler"): hpa_health,
    ("apiregistration.k8s.io", "APIService"): apiservice_health,
    ("apiextensions.k8s.io", "CustomResourceDefinition"): crd_health,
}

MALFORMED_REASON = "MalformedObject"


def ruled_kinds() -> frozenset[tuple[str, str]]:
    """Every (API group, kind) that has a rule of its own."""
    return frozenset(_RULES)


def rule_for(api_version: str, kind: str) -> Rule | None:
    """The rule that judges objects of this apiVersion and kind, if there is one."""
    return _RULES.get((api_group(api_version), kind))


def assess_detail(obj: Mapping[str, Any]) -> Health:
    """Like :func:`assess`, with the bare detail as message (no object name in front)."""
    if not isinstance(obj, Mapping):
        return Health(
            HealthStatus.DEGRADED,
            f"cannot assess health: the object is a {type(obj).__name__}, not a mapping",
            MALFORMED_REASON,
        )
    try:
        if field(obj, "metadata", "deletionTimestamp"):
            return Health(HealthStatus.PROGRESSING, "pending deletion")
        rule = rule_for(text(obj.get("apiVersion")), text(obj.get("kind")))
        if rule is None:
            # ConfigMaps, Secrets, RBAC, CronJobs, custom resources...: existing is all we check.
            return Health(HealthStatus.HEALTHY, "exists")
        return rule(obj)
    except MalformedField as exc:
        return Health(HealthStatus.DEGRADED, f"cannot assess health: {exc}", MALFORMED_REASON)


def assess(obj: Mapping[str, Any]) -> Health:
    """The health of one live object (as read from the API server), by Argo CD's rules.

    Kinds without a rule are healthy once they exist.  For an absent object use
    :meth:`Health.missing`.
    """
    return named(subject_of(obj), assess_detail(obj))
