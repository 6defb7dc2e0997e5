"""Garbage in every field of every rule's object: a verdict with a clear message, never a raise.

gitops-engine converts each object to its typed Go struct first and answers Unknown (with the
conversion error) when a field has the wrong type; we answer DEGRADED with reason
``MalformedObject`` and a message naming the field, and never raise.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from reconciler.cluster.health import Health, HealthStatus, pod_selector
from reconciler.cluster.health.fields import Path, api_group, dotted
from reconciler.cluster.health.rules import MALFORMED_REASON, assess_detail, ruled_kinds
from reconciler.cluster.health.workload_pods import workload_pods_detail
from tests.unit.cluster.health.objects import (
    DEADLINE_EXCEEDED,
    HPA_OK,
    Obj,
    apiservice,
    crd,
    daemonset,
    deployment,
    hpa,
    hpa_v1,
    ingress,
    job_condition,
    merged,
    pod,
    pvc,
    replicaset,
    service,
    statefulset,
)

# One realistic object per rule, with every field its rule reads present.
SAMPLES: dict[str, Obj] = {
    "deployment": deployment(spec={"paused": False}, status={"conditions": DEADLINE_EXCEEDED}),
    "deployment rolled out": deployment(),
    "statefulset": statefulset(),
    "statefulset OnDelete": statefulset(spec={"updateStrategy": {"type": "OnDelete"}}),
    "daemonset": daemonset(),
    "replicaset": replicaset(
        status={"conditions": [{"type": "ReplicaFailure", "status": "False", "reason": "x"}]}
    ),
    "job": job_condition("Failed", "BackoffLimitExceeded", "backoff"),
    "pod crash looping": pod(
        waiting=("CrashLoopBackOff", "back-off"),
        init_waiting=("ErrImagePull", "nope"),
        last_terminated={"reason": "Error", "exitCode": 1},
    ),
    "pod not ready": pod(ready=False, last_terminated={"reason": "Error", "exitCode": 1}),
    "pod failed": pod(
        phase="Failed",
        ready=False,
        status_extra={
            "reason": "Evicted",
            "containerStatuses": [
                {"name": "web", "state": {"terminated": {"reason": "Error", "exitCode": 2}}}
            ],
        },
    ),
    "pod opted in": merged(
        pod(restart_policy="Never"),
        {"metadata": {"annotations": {"argocd.argoproj.io/ignore-restart-policy": "true"}}},
    ),
    "pvc": pvc("Bound"),
    "service": service("LoadBalancer", [{"ip": "203.0.113.7"}]),
    "ingress": ingress("networking.k8s.io/v1", [{"hostname": "lb.example.com"}]),
    "hpa v2": hpa(HPA_OK),
    "hpa v1": hpa_v1(HPA_OK),
    "apiservice": apiservice(("Available", "True")),
    "crd": crd(("NamesAccepted", "True", "NoConflicts"), ("Established", "True", "Ok")),
}

GARBAGE: list[Any] = ["x", 7, -1, 3.5, True, [], ["x"], [[1]], {}, {"a": 1}, {"type": 5}]


def paths(value: Any, prefix: Path = ()) -> Iterator[Path]:
    """Every path inside ``value`` (mapping keys and list indexes), outermost first."""
    if isinstance(value, dict):
        for key, child in value.items():
            yield (*prefix, key)
            yield from paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield (*prefix, index)
            yield from paths(child, (*prefix, index))


def replaced(obj: Obj, path: Path, value: Any) -> Obj:
    """A copy of ``obj`` with the value at ``path`` replaced."""
    copy: Obj = json.loads(json.dumps(obj))
    parent: Any = copy
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = value
    return copy


def test_samples_cover_every_rule() -> None:
    """There is a sample for every kind that has a rule."""
    covered = {(api_group(obj["apiVersion"]), obj["kind"]) for obj in SAMPLES.values()}
    # extensions/Ingress shares networking.k8s.io's rule.
    assert ruled_kinds() - covered == {("extensions", "Ingress")}


def test_samples_are_well_formed() -> None:
    """Unchanged, no sample is reported malformed (so the garbage below is what is found)."""
    for name, obj in SAMPLES.items():
        assert assess_detail(obj).reason != MALFORMED_REASON, name


@pytest.mark.parametrize("name", SAMPLES)
def test_garbage_anywhere_gives_a_verdict(name: str) -> None:
    """Any wrongly typed value at any path gives a Health; a malformed one names that path."""
    sample = SAMPLES[name]
    for path in paths(sample):
        if path in (("apiVersion",), ("kind",)):
            continue  # these choose the rule; a kind without a rule is simply "exists"
        for value in GARBAGE:
            health = assess_detail(replaced(sample, path, value))
            assert isinstance(health, Health) and isinstance(health.status, HealthStatus)
            if health.reason == MALFORMED_REASON:
                assert health.status == HealthStatus.DEGRADED
                assert dotted(path) in health.message, (path, value, health)


# Fields each rule reads, and garbage there that must be reported, not silently ignored.
READ_FIELDS: list[tuple[str, Path, Any]] = [
    ("deployment", ("spec", "paused"), "yes"),
    ("deployment", ("metadata", "generation"), "4"),
    ("deployment", ("status", "conditions"), {"type": "Progressing"}),
    ("deployment", ("status", "conditions", 1, "reason"), 42),
    ("deployment rolled out", ("spec", "replicas"), 3.5),
    ("deployment rolled out", ("status", "availableReplicas"), True),
    ("statefulset", ("status", "readyReplicas"), "3"),
    ("statefulset", ("spec", "updateStrategy", "rollingUpdate"), "all"),
    ("statefulset", ("spec", "updateStrategy", "rollingUpdate", "partition"), "0"),
    ("statefulset OnDelete", ("status", "updatedReplicas"), [3]),
    ("daemonset", ("status", "numberAvailable"), {"n": 2}),
    ("replicaset", ("status", "conditions", 0, "status"), True),
    ("job", ("status", "conditions", 0), "Failed"),
    ("pod crash looping", ("status", "containerStatuses"), {"name": "web"}),
    ("pod crash looping", ("status", "containerStatuses", 0, "state", "waiting"), "yes"),
    ("pod not ready", ("status", "containerStatuses", 0, "lastState", "terminated"), "x"),
    ("pod failed", ("status", "containerStatuses", 0, "state", "terminated", "exitCode"), "2"),
    ("pod opted in", ("metadata", "annotations"), ["argocd.argoproj.io/ignore-restart-policy"]),
    ("pod opted in", ("spec", "restartPolicy"), 0),
    ("pvc", ("status", "phase"), ["Bound"]),
    ("service", ("status", "loadBalancer", "ingress"), "203.0.113.7"),
    ("service", ("status", "loadBalancer", "ingress", 0), "203.0.113.7"),
    ("ingress", ("status", "loadBalancer"), ["lb"]),
    ("hpa v2", ("status", "conditions", 0, "type"), ["AbleToScale"]),
    ("hpa v1", ("metadata", "annotations", "autoscaling.alpha.kubernetes.io/conditions"), 5),
    ("apiservice", ("status", "conditions", 0, "message"), {"m": 1}),
    ("crd", ("status",), "Established"),
]


@pytest.mark.parametrize(("name", "path", "value"), READ_FIELDS, ids=lambda x: str(x))
def test_garbage_in_a_read_field_is_reported(name: str, path: Path, value: Any) -> None:
    """Garbage in a field the rule reads is reported as malformed, naming the field."""
    health = assess_detail(replaced(SAMPLES[name], path, value))
    assert (health.status, health.reason) == (HealthStatus.DEGRADED, MALFORMED_REASON), health
    assert health.message.startswith(f"cannot assess health: {dotted(path)}"), health.message


@pytest.mark.parametrize(
    "raw",
    ["[{", "{}", '"AbleToScale"', "[1]", '[{"type": 5}]', "[" * 100_000, "\ud800"],
    ids=["truncated", "a mapping", "a string", "a number item", "a number type", "deep", "lone"],
)
def test_garbage_in_the_hpa_v1_annotation(raw: str) -> None:
    """Any undecodable or wrongly shaped v1 conditions annotation is reported, never raised."""
    obj = merged(
        hpa_v1(None),
        {"metadata": {"annotations": {"autoscaling.alpha.kubernetes.io/conditions": raw}}},
    )
    health = assess_detail(obj)
    assert (health.status, health.reason) == (HealthStatus.DEGRADED, MALFORMED_REASON), health
    assert "metadata.annotations[autoscaling.alpha.kubernetes.io/conditions]" in health.message


@pytest.mark.parametrize("value", [*GARBAGE, None], ids=repr)
def test_garbage_pods_do_not_break_the_fast_verdict(value: Any) -> None:
    """workload_pods_detail skips garbled pods and pod_selector reads a garbled selector."""
    crashing = pod(waiting=("CrashLoopBackOff", "back-off"))
    garbled = [value, *(replaced(crashing, path, value) for path in paths(crashing))]
    for candidate in garbled:
        workload_pods_detail(deployment(), [candidate])  # must not raise
    assert workload_pods_detail(deployment(), [*garbled, crashing]) is not None
    pod_selector(replaced(deployment(), ("spec", "selector"), value))
    pod_selector(
        deployment(
            spec={
                "selector": {"matchExpressions": [{"key": "a", "operator": "In", "values": value}]}
            }
        )
    )
