"""assess on HorizontalPodAutoscalers (v2 conditions and the v1 annotation).

Rules pinned here: gitops-engine ``pkg/health/health_hpa.go`` (``checkConditions``: the first
condition that is degraded or healthy decides, in the order the controller wrote them) and its
fixtures ``hpa-v2-*.yaml``, ``hpa-v1-*.yaml``.  The conditions themselves are Kubernetes'
(https://kubernetes.io/docs/tasks/run-application/horizontal-pod-autoscale-walkthrough/
#appendix-horizontal-pod-autoscaler-status-conditions): the controller writes AbleToScale, then
ScalingActive, then ScalingLimited.
"""

from __future__ import annotations

import json

import pytest

from reconciler.cluster.health import assess
from tests.unit.cluster.health.cases import DEGRADED, HEALTHY, PROGRESSING, Case
from tests.unit.cluster.health.objects import HPA_OK, hpa, hpa_condition, hpa_v1, merged

ANNOTATION = "autoscaling.alpha.kubernetes.io/conditions"
METRICS_MISSING = hpa_condition(
    "ScalingActive", "False", "FailedGetResourceMetric", "unable to get metrics for resource cpu"
)


def hpa_v1_annotated(raw: str) -> dict[str, object]:
    """An autoscaling/v1 HPA whose conditions annotation holds ``raw`` verbatim."""
    return merged(hpa_v1(None), {"metadata": {"annotations": {ANNOTATION: raw}}})


CASES: dict[str, Case] = {
    # isHealthy: AbleToScale or ScalingLimited with status True (gitops-engine#369 made it
    # "type and status only", so ReadyForNewScale counts: fixture hpa-v2-healthy.yaml).
    "hpa within range": Case(hpa(HPA_OK), HEALTHY, says="recommended size matches"),
    "hpa at its minimum (hpa-v1-healthy-toofew)": Case(
        hpa([hpa_condition("ScalingLimited", "True", "TooFewReplicas", "below the minimum")]),
        HEALTHY,
        says="below the minimum",
    ),
    "hpa just rescaled": Case(
        hpa([hpa_condition("AbleToScale", "True", "SucceededRescale", "scaled to 3")]), HEALTHY
    ),
    # Order decides: AbleToScale=True comes first, so missing metrics later do not degrade it
    # (gitops-engine returns on the first healthy condition; #624, which would change that,
    # is unmerged; fixture hpa-v2-degraded-partially.yaml is its, not upstream's).
    "hpa able to scale, metrics missing later in the list": Case(
        hpa([hpa_condition("AbleToScale", "True", "SucceededGetScale"), METRICS_MISSING]),
        HEALTHY,
    ),
    # isDegraded, first in the list (fixture hpa-v2-degraded.yaml).
    "hpa cannot read resource metrics": Case(
        hpa([METRICS_MISSING, HPA_OK[2]]),
        DEGRADED,
        reason="FailedGetResourceMetric",
        says="unable to get metrics",
    ),
    "hpa cannot get the target's scale": Case(
        hpa([hpa_condition("AbleToScale", "False", "FailedGetScale", "deployments not found")]),
        DEGRADED,
        reason="FailedGetScale",
        says="deployments not found",
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
    # isDegraded matches type and reason only, whatever the status says.
    "hpa degraded reason with status True": Case(
        hpa([hpa_condition("AbleToScale", "True", "FailedGetScale")]),
        DEGRADED,
        reason="FailedGetScale",
    ),
    # Degraded only for the four listed reasons: other metric failures keep it waiting.
    "hpa cannot read pod metrics (not in Argo's list)": Case(
        hpa([hpa_condition("ScalingActive", "False", "FailedGetPodsMetric"), HPA_OK[2]]),
        PROGRESSING,
        says="waiting to autoscale",
    ),
    # Neither: progressingStatus "Waiting to Autoscale" (fixture hpa-v2-progressing.yaml).
    "hpa without conditions yet": Case(hpa(None), PROGRESSING, says="waiting to autoscale"),
    "hpa with only undecided conditions": Case(
        hpa([hpa_condition("ScalingActive", "True", "ValidMetricFound"), HPA_OK[2]]),
        PROGRESSING,
    ),
    "hpa able to scale false without a degraded reason": Case(
        hpa([hpa_condition("AbleToScale", "False", "BackoffBoth")]), PROGRESSING
    ),
    # autoscaling/v1: the conditions live in the annotation (fixtures hpa-v1-*.yaml).
    "hpa v1 healthy through the annotation": Case(hpa_v1(HPA_OK), HEALTHY),
    "hpa v1 degraded through the annotation": Case(
        hpa_v1([METRICS_MISSING]), DEGRADED, reason="FailedGetResourceMetric"
    ),
    "hpa v1 without the annotation (hpa-v1-progressing-with-no-annotations)": Case(
        hpa_v1(None), PROGRESSING, says="waiting to autoscale"
    ),
    "hpa v1 with an empty list": Case(hpa_v1([]), PROGRESSING),
    "hpa v1 with a JSON null": Case(hpa_v1_annotated("null"), PROGRESSING),
    # v1 reads only the annotation: status.conditions (which v1 does not have) is ignored...
    "hpa v1 ignores status.conditions": Case(
        merged(hpa_v1(None), {"status": {"conditions": [METRICS_MISSING]}}), PROGRESSING
    ),
    # ...and v2 reads only status.conditions.
    "hpa v2 ignores the v1 annotation": Case(
        merged(hpa(None), {"metadata": {"annotations": {ANNOTATION: json.dumps(HPA_OK)}}}),
        PROGRESSING,
    ),
    "hpa v2beta2 reads status.conditions": Case(
        hpa(HPA_OK, api_version="autoscaling/v2beta2"), HEALTHY
    ),
    # gitops-engine fails json.Unmarshal and answers Unknown; we name the annotation.
    "hpa v1 with a garbled annotation": Case(
        hpa_v1_annotated("[{"), DEGRADED, reason="MalformedObject", says="not valid JSON"
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_assess(case: Case) -> None:
    """assess gives each kind's status, cluster reason and message by Argo CD's rules."""
    health = assess(case.obj)
    assert (health.status, health.reason) == (case.status, case.reason), health
    assert case.says in health.message


def test_garbled_annotation_message_names_the_annotation() -> None:
    """A v1 annotation that is not JSON gives a message naming the annotation."""
    health = assess(hpa_v1_annotated("[{"))
    assert f"metadata.annotations[{ANNOTATION}]" in health.message
