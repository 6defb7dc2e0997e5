"""assess on kinds without a rule, the rules table, and how assess names the object.

The table is gitops-engine's ``GetHealthCheckFunc`` (``pkg/health/health.go``) plus Argo CD's
bundled CustomResourceDefinition Lua check; ``GetResourceHealth`` answers "Pending deletion"
(Progressing) for any object with a deletionTimestamp before any rule runs.
"""

from __future__ import annotations

import pytest

from reconciler.cluster.health import Health, assess
from reconciler.cluster.health.rules import assess_detail, ruled_kinds
from tests.unit.cluster.health.cases import DEGRADED, HEALTHY, MISSING, PROGRESSING, Case
from tests.unit.cluster.health.objects import deployment, job_condition, merged, plain

CASES: dict[str, Case] = {
    # Everything else exists, so it is healthy.
    "configmap": Case(plain("v1", "ConfigMap"), HEALTHY),
    "secret": Case(plain("v1", "Secret"), HEALTHY),
    "cluster role": Case(plain("rbac.authorization.k8s.io/v1", "ClusterRole"), HEALTHY),
    # gitops-engine has no CronJob rule (Argo CD's Lua one judges past runs; not adopted).
    "cronjob": Case(plain("batch/v1", "CronJob"), HEALTHY),
    "namespace": Case(plain("v1", "Namespace"), HEALTHY),
    # A terminating Namespace always carries a deletionTimestamp: "Pending deletion".
    "terminating namespace": Case(
        merged(
            plain("v1", "Namespace"),
            {
                "metadata": {"deletionTimestamp": "2024-05-01T10:00:00Z"},
                "status": {"phase": "Terminating"},
            },
        ),
        PROGRESSING,
        says="pending deletion",
    ),
    # Workloads in the retired extensions group have no rule in today's gitops-engine.
    "extensions deployment": Case(plain("extensions/v1beta1", "Deployment"), HEALTHY),
    # A CRD the API server has not looked at yet (Argo CD's CRD Lua check).
    "crd without status": Case(
        plain("apiextensions.k8s.io/v1", "CustomResourceDefinition"),
        PROGRESSING,
        says="status conditions not found",
    ),
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


def test_null_status_fields_count_as_absent() -> None:
    """A JSON null reads as an absent field, like Go's zero value."""
    obj = deployment(status={"replicas": None, "updatedReplicas": None, "conditions": None})
    assert assess(obj).status == PROGRESSING


def test_malformed_status_names_the_field() -> None:
    """A wrongly typed status field gives a DEGRADED verdict that names it, not an exception."""
    health = assess(deployment(status={"replicas": "three"}))
    assert (health.status, health.reason) == (DEGRADED, "MalformedObject")
    assert health.message == (
        "Deployment web: MalformedObject: cannot assess health: "
        "status.replicas is a string 'three', expected an integer"
    )


def test_malformed_condition_names_its_index() -> None:
    """A garbled condition entry is named by its position in the list."""
    health = assess(deployment(status={"conditions": [{"type": "Progressing"}, "broken"]}))
    assert "status.conditions[1] is a string 'broken', expected a mapping" in health.message


def test_a_condition_field_of_the_wrong_type_is_named() -> None:
    """A condition whose reason is not a string is named down to the field."""
    garbled = [{"type": "Available", "status": "True"}, {"type": "Progressing", "reason": 7}]
    health = assess(deployment(status={"conditions": garbled}))
    assert (health.status, health.reason) == (DEGRADED, "MalformedObject")
    assert "status.conditions[1].reason is an integer 7, expected a string" in health.message


@pytest.mark.parametrize("obj", [[], "Deployment", None, 7], ids=repr)
def test_assess_detail_on_a_non_mapping(obj: object) -> None:
    """Something that is not an object at all gives a verdict saying so."""
    health = assess_detail(obj)  # type: ignore[arg-type]
    assert (health.status, health.reason) == (DEGRADED, "MalformedObject")
    assert "not a mapping" in health.message


def test_the_rules_table() -> None:
    """Exactly gitops-engine's built-in kinds (without Argo Workflows) plus CRDs have rules."""
    assert ruled_kinds() == {
        ("apps", "Deployment"),
        ("apps", "StatefulSet"),
        ("apps", "DaemonSet"),
        ("apps", "ReplicaSet"),
        ("extensions", "Ingress"),
        ("networking.k8s.io", "Ingress"),
        ("apiregistration.k8s.io", "APIService"),
        ("", "Service"),
        ("", "PersistentVolumeClaim"),
        ("", "Pod"),
        ("batch", "Job"),
        ("autoscaling", "HorizontalPodAutoscaler"),
        ("apiextensions.k8s.io", "CustomResourceDefinition"),
    }
