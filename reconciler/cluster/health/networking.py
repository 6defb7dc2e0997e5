"""Argo CD's health rules for Services and Ingresses: waiting for a load balancer address."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reconciler.cluster.health.fields import lookup, mappings
from reconciler.cluster.health.verdict import Health, HealthStatus


def _has_load_balancer_ingress(obj: Mapping[str, Any]) -> bool:
    return bool(mappings(lookup(obj, "status", "loadBalancer", "ingress")))


def service_health(obj: Mapping[str, Any]) -> Health:
    """A Service: a LoadBalancer waits for its address; every other type is healthy."""
    if lookup(obj, "spec", "type") == "LoadBalancer" and not _has_load_balancer_ingress(obj):
        return Health(HealthStatus.PROGRESSING, "waiting for a load balancer address")
    return Health(HealthStatus.HEALTHY)


def ingress_health(obj: Mapping[str, Any]) -> Health:
    """An Ingress: healthy once the ingress controller has published an address."""
    if not _has_load_balancer_ingress(obj):
        return Health(
            HealthStatus.PROGRESSING, "waiting for the ingress controller to publish an address"
        )
    return Health(HealthStatus.HEALTHY)
