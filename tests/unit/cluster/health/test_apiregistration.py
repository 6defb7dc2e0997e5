"""assess on aggregated APIServices.

Rule pinned here: gitops-engine ``pkg/health/health_apiservice.go``: the first ``Available``
condition decides, True -> Healthy, anything else -> Progressing (fixtures
``apiservice-v1-true.yaml``, ``apiservice-v1-false.yaml``, ``apiservice-v1beta1-*.yaml``);
no Available condition -> Progressing "Waiting to be processed".  The condition is Kubernetes'
(https://kubernetes.io/docs/tasks/extend-kubernetes/configure-aggregation-layer/).
"""

from __future__ import annotations

import pytest

from reconciler.cluster.health import assess
from tests.unit.cluster.health.cases import HEALTHY, PROGRESSING, Case
from tests.unit.cluster.health.objects import apiservice

CASES: dict[str, Case] = {
    "apiservice available": Case(apiservice(("Available", "True")), HEALTHY, says="ReasonTrue"),
    "apiservice v1beta1 available": Case(
        apiservice(("Available", "True"), api_version="v1beta1"), HEALTHY
    ),
    # Available=False is Progressing, not Degraded (fixture apiservice-v1-false.yaml).
    "apiservice not available": Case(
        apiservice(("Available", "False")), PROGRESSING, says="ReasonFalse: says"
    ),
    "apiservice availability unknown": Case(apiservice(("Available", "Unknown")), PROGRESSING),
    "apiservice without conditions": Case(
        apiservice(), PROGRESSING, says="waiting to be processed"
    ),
    "apiservice with other conditions only": Case(
        apiservice(("Other", "True")), PROGRESSING, says="waiting to be processed"
    ),
    # The first Available condition decides.
    "apiservice first available condition wins": Case(
        apiservice(("Available", "False"), ("Available", "True")), PROGRESSING
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_assess(case: Case) -> None:
    """assess gives each kind's status, cluster reason and message by Argo CD's rules."""
    health = assess(case.obj)
    assert (health.status, health.reason) == (case.status, case.reason), health
    assert case.says in health.message
