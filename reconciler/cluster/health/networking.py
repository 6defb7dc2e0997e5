"""Argo CD's health rules for Services and Ingresses (gitops-engine ``health_service.go`` and
``health_ingress.go``): waiting for a load balancer address."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reconciler.cluster.health.fields import entries, string
from reconciler.cluster.health.verdict import Health, HealthStatus


def _load_balancer_addresses(obj: Mapping[str, Any]) -> int:
    # Any entry counts, even an empty one: gitops-engine checks only the list's length.
    return len(entries(obj, "status", "loadBalancer", "ingress"))


def service_health(obj: Mapping[str, Any]) -> Health:
    """A Service: a LoadBalancer waits for its address; every other type is healthy."""
    if string(obj, "spec", "type") != "LoadBalancer":
        return Health(HealthStatus.HEALTHY)
    if _load_balancer_addresses(obj) == 0:
        return Health(HealthStatus.PROGRESSING, "waiting for a load balancer address")
    return Health(HealthStatus.HEALTHY, "load balancer address assigned")


def ingress_health(obj: Mapping[str, Any]) -> Health:
    """An Ingress: healthy once the ingress controller has published an address."""
    if _load_balancer_addresses(obj) == 0:
        return Health(
            HealthStatus.PROGRESSING, "waiting for the ingress controller to publish an address"
        )
    return Health(HealthStatus.HEALTHY, "address published")
