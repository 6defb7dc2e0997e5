"""assess on CustomResourceDefinitions.

Rule pinned here: Argo CD's bundled
``resource_customizations/apiextensions.k8s.io/CustomResourceDefinition/health.lua`` (gitops-engine
itself has no CRD rule) and its fixtures ``crd-v1-healthy.yaml``,
``crd-v1-names-not-accepted-degraded.yaml``, ``crd-v1-non-structual-degraded.yaml``,
``crd-v1-not-established-degraded.yaml``, ``crd-v1-installing-progressing.yaml``,
``crd-v1-terminating-{condition,timestamp}-progressing.yaml``,
``crd-v1-no-conditions-progressing.yaml``.  The conditions are Kubernetes'
(https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/
#create-a-customresourcedefinition: the CRD is served once Established).
"""

from __future__ import annotations

import pytest

from reconciler.cluster.health import assess
from tests.unit.cluster.health.cases import DEGRADED, HEALTHY, PROGRESSING, Case
from tests.unit.cluster.health.objects import crd, merged

NAMES_OK = ("NamesAccepted", "True", "NoConflicts")
ESTABLISHED = ("Established", "True", "InitialNamesAccepted")


CASES: dict[str, Case] = {
    "crd established": Case(crd(NAMES_OK, ESTABLISHED), HEALTHY),
    "crd without conditions": Case(crd(), PROGRESSING, says="status conditions not found"),
    "crd without a status": Case(
        crd() | {"status": None}, PROGRESSING, says="status conditions not found"
    ),
    # The API server's naming controller writes Established=False/Installing first.
    "crd being installed": Case(
        crd(NAMES_OK, ("Established", "False", "Installing")), PROGRESSING, says="installed"
    ),
    "crd names not accepted": Case(
        crd(("NamesAccepted", "False", "MultipleNamesNotAllowed"), ESTABLISHED),
        DEGRADED,
        reason="MultipleNamesNotAllowed",
        says="MultipleNamesNotAllowed said",
    ),
    "crd not established": Case(
        crd(("NamesAccepted", "False", "NoConflicts"), ("Established", "False", "NotReady")),
        DEGRADED,
        reason="NoConflicts",
    ),
    "crd established false, not installing": Case(
        crd(NAMES_OK, ("Established", "False", "Other")), DEGRADED, reason="NotEstablished"
    ),
    "crd with only names accepted": Case(crd(NAMES_OK), DEGRADED, reason="NotEstablished"),
    "crd with a non-structural schema": Case(
        crd(NAMES_OK, ESTABLISHED, ("NonStructuralSchema", "True", "Violations")),
        DEGRADED,
        reason="Violations",
        says="schema violations",
    ),
    "crd terminating condition": Case(
        crd(NAMES_OK, ESTABLISHED, ("Terminating", "True", "InstanceDeletionInProgress")),
        PROGRESSING,
        says="terminating",
    ),
    "crd with a deletion timestamp": Case(
        merged(crd(NAMES_OK, ESTABLISHED), {"metadata": {"deletionTimestamp": "2024-05-01T00Z"}}),
        PROGRESSING,
        says="pending deletion",
    ),
    # The first decisive condition in the list wins.
    "crd terminating before names not accepted": Case(
        crd(("Terminating", "True", "Deleting"), ("NamesAccepted", "False", "Clash")),
        PROGRESSING,
    ),
    "crd installing before non-structural schema": Case(
        crd(("Established", "False", "Installing"), ("NonStructuralSchema", "True", "Bad")),
        PROGRESSING,
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_assess(case: Case) -> None:
    """assess gives each kind's status, cluster reason and message by Argo CD's rules."""
    health = assess(case.obj)
    assert (health.status, health.reason) == (case.status, case.reason), health
    assert case.says in health.message
