"""assess on HorizontalPodAutoscalers (v2 conditions and the v1 annotation)."""

from __future__ import annotations

import pytest

from reconciler.cluster.health import assess
from tests.unit.cluster.health.cases import DEGRADED, HEALTHY, PROGRESSING, Case
from tests.unit.cluster.health.objects import HPA_OK, hpa, hpa_condition, hpa_v1, merged

CASES: dict[str, Case] = {
    # HorizontalPodAutoscaler
    "hpa within range": Case(hpa(HPA_OK), HEALTHY),
    "hpa at its minimum": Case(
        hpa([*HPA_OK[:2], hpa_condition("ScalingLimited", "True", "TooFewReplicas")]), HEALTHY
    ),
    "hpa at its maximum": Case(
        hpa([*HPA_OK[:2], hpa_condition("ScalingLimited", "True", "TooManyReplicas")]), HEALTHY
    ),
    "hpa just rescaled": Case(
        hpa([hpa_condition("AbleToScale", "True", "SucceededRescale")]), HEALTHY
    ),
    "hpa cannot read resource metrics": Case(
        hpa(
            [
                hpa_condition("AbleToScale", "True", "SucceededGetScale"),
                hpa_condition(
                    "ScalingActive",
                    "False",
                    "FailedGetResourceMetric",
                    "unable to get metrics for resource cpu",
                ),
                HPA_OK[2],
            ]
        ),
        DEGRADED,
        reason="FailedGetResourceMetric",
        says="unable to get metrics",
    ),
    "hpa cannot read pod metrics": Case(
        hpa([hpa_condition("ScalingActive", "False", "FailedGetPodsMetric"), HPA_OK[2]]),
        DEGRADED,
        reason="FailedGetPodsMetric",
    ),
    "hpa cannot get the target's scale": Case(
        hpa([hpa_condition("AbleToScale", "False", "FailedGetScale", "deployments not found")]),
        DEGRADED,
        reason="FailedGetScale",
    ),
    "hpa cannot update the target's scale": Case(
        hpa([hpa_condition("AbleToScale", "False", "FailedUpdateScale")]),
        DEGRADED,
        reason="FailedUpdateScale",
    ),
    "hpa with an invalid selector": Case(
        hpa([hpa_condition("ScalingActive", "False", "InvalidSelector")]),
        DEGRADED,
        reason="InvalidSelector",
    ),
    "hpa without conditions yet": Case(hpa(None), PROGRESSING, says="waiting to autoscale"),
    "hpa without a healthy condition": Case(hpa(HPA_OK[:2]), PROGRESSING),
    "hpa v1 healthy through the annotation": Case(hpa_v1(HPA_OK), HEALTHY),
    "hpa v1 degraded through the annotation": Case(
        hpa_v1([hpa_condition("ScalingActive", "False", "FailedGetResourceMetric")]),
        DEGRADED,
        reason="FailedGetResourceMetric",
    ),
    "hpa v1 without the annotation": Case(hpa_v1(None), PROGRESSING),
    "hpa v1 with a garbled annotation": Case(
        merged(
            hpa_v1(None),
            {"metadata": {"annotations": {"autoscaling.alpha.kubernetes.io/conditions": "[{"}}},
        ),
        PROGRESSING,
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_assess(case: Case) -> None:
    """assess gives each kind's status, cluster reason and message by Argo CD's rules."""
    health = assess(case.obj)
    assert (health.status, health.reason) == (case.status, case.reason), health
    assert case.says in health.message
