"""assess on kinds without a rule, and how assess names the object in its message."""

from __future__ import annotations

import pytest

from reconciler.cluster.health import Health, assess
from tests.unit.cluster.health.cases import HEALTHY, MISSING, PROGRESSING, Case
from tests.unit.cluster.health.objects import deployment, job_condition, plain

CASES: dict[str, Case] = {
    # Everything else exists, so it is healthy.
    "configmap": Case(plain("v1", "ConfigMap"), HEALTHY),
    "secret": Case(plain("v1", "Secret"), HEALTHY),
    "cluster role": Case(plain("rbac.authorization.k8s.io/v1", "ClusterRole"), HEALTHY),
    "crd": Case(plain("apiextensions.k8s.io/v1", "CustomResourceDefinition"), HEALTHY),
    "custom resource": Case(plain("monitoring.coreos.com/v1", "ServiceMonitor"), HEALTHY),
    "custom resource named like a built-in kind": Case(
        plain("example.com/v1", "Deployment"), HEALTHY
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_assess(case: Case) -> None:
    """assess gives each kind's status, cluster reason and message by Argo CD's rules."""
    health = assess(case.obj)
    assert (health.status, health.reason) == (case.status, case.reason), health
    assert case.says in health.message


def test_assess_message_names_the_object() -> None:
    """The message starts with the kind and name, then the detail."""
    health = assess(deployment(status={"availableReplicas": 1}))
    assert health.message == "Deployment web: 1 of 3 updated replicas are available"


def test_assess_message_puts_the_reason_before_the_detail() -> None:
    """A degraded object's message carries the cluster's reason."""
    health = assess(job_condition("Failed", "BackoffLimitExceeded", "backoff limit reached"))
    assert health.message == "Job migrate: BackoffLimitExceeded: backoff limit reached"


def test_health_missing() -> None:
    """Health.missing describes an absent object."""
    assert Health.missing("Deployment", "web") == Health(MISSING, "Deployment web: not found")


def test_assess_tolerates_malformed_status() -> None:
    """Wrongly typed status fields count as absent instead of raising."""
    obj = deployment(status={"replicas": "three", "conditions": "none", "updatedReplicas": None})
    assert assess(obj).status == PROGRESSING
