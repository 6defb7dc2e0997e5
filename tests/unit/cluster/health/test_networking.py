"""assess on Services and Ingresses."""

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
    "service load balancer assigned": Case(
        service("LoadBalancer", [{"ip": "203.0.113.7"}]), HEALTHY
    ),
    # Ingress
    "ingress with address": Case(
        ingress("networking.k8s.io/v1", [{"hostname": "lb.example.com"}]), HEALTHY
    ),
    "ingress without address": Case(ingress("networking.k8s.io/v1", None), PROGRESSING),
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
