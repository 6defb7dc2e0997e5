"""assess on PersistentVolumeClaims.

Rule pinned here: gitops-engine ``pkg/health/health_pvc.go`` (Bound -> Healthy, Pending ->
Progressing, Lost -> Degraded, anything else Unknown, which we keep waiting on) and its
fixtures ``pvc-bound.yaml``, ``pvc-pending.yaml``.  Phases are Kubernetes'
(https://kubernetes.io/docs/concepts/storage/persistent-volumes/#phase).
"""

from __future__ import annotations

import pytest

from reconciler.cluster.health import assess
from tests.unit.cluster.health.cases import DEGRADED, HEALTHY, PROGRESSING, Case
from tests.unit.cluster.health.objects import pvc

CASES: dict[str, Case] = {
    # PersistentVolumeClaim
    "pvc bound": Case(pvc("Bound"), HEALTHY),
    "pvc pending": Case(pvc("Pending"), PROGRESSING),
    "pvc lost": Case(pvc("Lost"), DEGRADED, reason="ClaimLost"),
    "pvc without phase": Case(pvc(None), PROGRESSING, says="not reported"),
    "pvc with an unknown phase": Case(pvc("Resizing"), PROGRESSING, says="phase Resizing"),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_assess(case: Case) -> None:
    """assess gives each kind's status, cluster reason and message by Argo CD's rules."""
    health = assess(case.obj)
    assert (health.status, health.reason) == (case.status, case.reason), health
    assert case.says in health.message
