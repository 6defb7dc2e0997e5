"""assess on Services and Ingresses.

Rules pinned here: gitops-engine ``pkg/health/health_service.go`` (only type LoadBalancer waits,
for a non-empty ``status.loadBalancer.ingress``) and ``health_ingress.go`` (every Ingress waits
for one), with fixtures ``svc-loadbalancer*.yaml``, ``ingress*.yaml``; the dispatch in
``health.go`` covers Ingress in ``networking.k8s.io`` and ``extensions``.  See
https://kubernetes.io/docs/concepts/services-networking/service/#loadbalancer.
"""

from __future__ import annotations

import pytest

from reconciler.cluster.health import assess
from tests.unit.cluster.health.cases import HEALTHY, PROGRESSING, Case
from tests.unit.cluster.health.objects import ingress, service

CASES: dict[str, Case] = {
    # Service
    "service cluster ip": Case(service("ClusterIP"), HEALTHY),
    "service load balancer pending": Case(service("LoadBalancer"), PROGRESSING),
    "service load balancer empty list": Case(service("LoadBalancer", []), PROGRESSING),
    "service node port": Case(service("NodePort"), HEALTHY),
    "service external name": Case(service("ExternalName"), HEALTHY),
    # gitops-engine counts entries, not their contents.
    "service load balancer with an empty entry": Case(service("LoadBalancer", [{}]), HEALTHY),
    "service load balancer assigned": Case(
        service("LoadBalancer", [{"ip": "203.0.113.7"}]), HEALTHY
    ),
    # Ingress
    "ingress with address": Case(
        ingress("networking.k8s.io/v1", [{"hostname": "lb.example.com"}]), HEALTHY
    ),
    "ingress without address": Case(ingress("networking.k8s.io/v1", None), PROGRESSING),
    "ingress with an empty list": Case(ingress("networking.k8s.io/v1", []), PROGRESSING),
    "v1beta1 ingress with address": Case(
        ingress("networking.k8s.io/v1beta1", [{"ip": "203.0.113.9"}]), HEALTHY
    ),
    "legacy extensions ingress without address": Case(
        ingress("extensions/v1beta1", []), PROGRESSING
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_assess(case: Case) -> None:
    """assess gives each kind's status, cluster reason and message by Argo CD's rules."""
    health = assess(case.obj)
    assert (health.status, health.reason) == (case.status, case.reason), health
    assert case.says in health.message
