"""Which rule judges which kind, and :func:`assess`: the health of one live object."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from reconciler.cluster.health.autoscaling import hpa_health
from reconciler.cluster.health.batch import job_health
from reconciler.cluster.health.fields import api_group, lookup, text
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

_RULES: dict[tuple[str, str], Callable[[Mapping[str, Any]], Health]] = {
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
}


def assess_detail(obj: Mapping[str, Any]) -> Health:
    """Like :func:`assess`, with the bare detail as message (no object name in front)."""
    if lookup(obj, "metadata", "deletionTimestamp"):
        return Health(HealthStatus.PROGRESSING, "pending deletion")
    key = (api_group(text(obj.get("apiVersion"))), text(obj.get("kind")))
    rule = _RULES.get(key)
    if rule is None:
        # ConfigMaps, Secrets, RBAC, CRDs, custom resources...: existing is all we can check.
        return Health(HealthStatus.HEALTHY, "exists")
    return rule(obj)


def assess(obj: Mapping[str, Any]) -> Health:
    """The health of one live object (as read from the API server), by Argo CD's rules.

    Kinds without a rule are healthy once they exist.  For an absent object use
    :meth:`Health.missing`.
    """
    return named(subject_of(obj), assess_detail(obj))
