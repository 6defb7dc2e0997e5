"""jsonschema-rs's quick verdict agrees with jsonschema's on the bundled Kubernetes schemas, for
valid objects of many kinds and for every small way of breaking them."""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reconciler.render import load_project, render
from reconciler.render.validation import SchemaError, _quick_check, _validator, validate_objects

EXAMPLE_REPO = Path(__file__).resolve().parents[3] / "ops_repos_example"
VERSION = "1.32"
LABELS = {"app": "web"}
POD_SPEC = {
    "containers": [
        {
            "name": "app",
            "image": "reg/web:1",
            "ports": [{"containerPort": 8080, "protocol": "TCP"}],
            "env": [{"name": "MODE", "value": "prod"}],
            "resources": {"limits": {"cpu": "500m", "memory": "256Mi"}},
        }
    ],
    "restartPolicy": "Always",
}
TEMPLATE = {"metadata": {"labels": LABELS}, "spec": POD_SPEC}
WORKLOAD_SPEC = {"replicas": 2, "selector": {"matchLabels": LABELS}, "template": TEMPLATE}
META = {"name": "web", "namespace": "web-prod", "labels": LABELS, "annotations": {"a": "b"}}


def _object(api_version: str, kind: str, **fields: Any) -> dict[str, Any]:
    return {"apiVersion": api_version, "kind": kind, "metadata": dict(META), **fields}


HAND_WRITTEN = [
    _object("apps/v1", "Deployment", spec=WORKLOAD_SPEC),
    _object("apps/v1", "StatefulSet", spec={**WORKLOAD_SPEC, "serviceName": "web"}),
    _object(
        "apps/v1", "DaemonSet", spec={"selector": {"matchLabels": LABELS}, "template": TEMPLATE}
    ),
    _object(
        "batch/v1",
        "Job",
        spec={"template": {**TEMPLATE, "spec": {**POD_SPEC, "restartPolicy": "Never"}}},
    ),
    _object(
        "v1", "Service", spec={"selector": LABELS, "ports": [{"port": 80, "targetPort": "http"}]}
    ),
    _object("v1", "ConfigMap", data={"key": "value"}),
    _object("v1", "Secret", stringData={"password": "x"}, type="Opaque"),
    _object(
        "v1",
        "PersistentVolumeClaim",
        spec={"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    ),
    _object(
        "autoscaling/v2",
        "HorizontalPodAutoscaler",
        spec={
            "scaleTargetRef": {"kind": "Deployment", "name": "web"},
            "maxReplicas": 5,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": 80},
                    },
                }
            ],
        },
    ),
    _object(
        "networking.k8s.io/v1",
        "Ingress",
        spec={
            "rules": [
                {
                    "host": "web.example",
                    "http": {
                        "paths": [
                            {
                                "path": "/",
                                "pathType": "Prefix",
                                "backend": {"service": {"name": "web", "port": {"number": 80}}},
                            }
                        ]
                    },
                }
            ]
        },
    ),
    _object(
        "policy/v1",
        "PodDisruptionBudget",
        spec={"minAvailable": 1, "selector": {"matchLabels": LABELS}},
    ),
    _object(
        "rbac.authorization.k8s.io/v1",
        "Role",
        rules=[{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}],
    ),
]
WRONG_VALUES: list[Any] = [7, "seven", 1.5, True, None, [], {}, ["x"], {"k": "v"}, -1, 2**40]


def _example_objects() -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for project in ("web", "worker"):
        for environment in ("staging", "prod"):
            sources = load_project(
                checkout=EXAMPLE_REPO, path="", project=project, environment=environment
            )
            rendered = render(
                sources,
                project=project,
                environment=environment,
                namespace=f"{project}-{environment}",
                image_ref=f"reg/{project}:1",
                values_override={},
            )
            found.extend(dict(obj) for obj in rendered.objects)
    return found


def _mutations(obj: Any) -> Iterator[Any]:
    """Every copy of ``obj`` with one value replaced by a value of another shape, or one
    unknown field added to one mapping, or one field removed."""
    paths: list[list[Any]] = []

    def walk(node: Any, path: list[Any]) -> None:
        paths.append(path)
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, [*path, key])
        elif isinstance(node, list):
            for index, value in enumerate(node):
                walk(value, [*path, index])

    walk(obj, [])
    for path in paths:
        node = _at(obj, path)
        if path:
            for wrong in WRONG_VALUES:
                if type(wrong) is not type(node):
                    yield _changed(
                        obj, path, lambda parent, last, w=wrong: parent.__setitem__(last, w)
                    )
            if isinstance(path[-1], str):
                yield _changed(obj, path, lambda parent, last: parent.__delitem__(last))
        if isinstance(node, dict):
            yield _changed(
                obj, [*path, "zzUnknown"], lambda parent, last: parent.__setitem__(last, 1)
            )


def _at(obj: Any, path: list[Any]) -> Any:
    for part in path:
        obj = obj[part]
    return obj


def _changed(obj: Any, path: list[Any], change: Any) -> Any:
    copied = copy.deepcopy(obj)
    change(_at(copied, path[:-1]), path[-1])
    return copied


def _corpus() -> list[dict[str, Any]]:
    return HAND_WRITTEN + _example_objects()


def test_every_corpus_object_is_valid_for_both() -> None:
    """Each object of the corpus passes both validators (the corpus is meaningful)."""
    for obj in _corpus():
        validator = _validator(VERSION, obj["apiVersion"], obj["kind"])
        quick = _quick_check(VERSION, obj["apiVersion"], obj["kind"])
        assert validator is not None and quick is not None, obj["kind"]
        assert validator.is_valid(obj), obj
        assert quick(obj), obj


@pytest.mark.parametrize("index", range(len(HAND_WRITTEN) + 8))
def test_the_verdicts_agree_on_every_mutation(index: int) -> None:
    """For every one-change mutation of a valid object, both validators give the same verdict."""
    corpus = _corpus()
    if index >= len(corpus):
        pytest.skip("the example repo renders fewer objects")
    obj = corpus[index]
    validator = _validator(VERSION, obj["apiVersion"], obj["kind"])
    quick = _quick_check(VERSION, obj["apiVersion"], obj["kind"])
    assert validator is not None and quick is not None
    checked = refused = 0
    for mutated in _mutations(obj):
        expected = validator.is_valid(mutated)
        assert quick(mutated) == expected, mutated
        checked += 1
        refused += not expected
    assert refused > 0 and checked > refused  # both verdicts were exercised


def test_values_json_cannot_hold_are_left_to_jsonschema() -> None:
    """A value that is not JSON (a date, bytes) fails the quick check without raising, and the
    refusal carries jsonschema's message."""
    quick = _quick_check(VERSION, "v1", "ConfigMap")
    assert quick is not None
    for value in (dt.date(2026, 12, 1), b"bytes", object()):
        obj = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "c"},
            "data": {"k": value},
        }
        assert quick(obj) is False
        with pytest.raises(SchemaError, match=r"data\.k: .* is not of type 'string'"):
            validate_objects((obj,), kubernetes_version=VERSION)


def test_integers_beyond_64_bits_agree() -> None:
    """An integer beyond 64 bits is an integer to both (formats such as int32 are not asserted)."""
    obj = copy.deepcopy(HAND_WRITTEN[0])
    obj["spec"]["replicas"] = 2**70
    validator = _validator(VERSION, "apps/v1", "Deployment")
    quick = _quick_check(VERSION, "apps/v1", "Deployment")
    assert quick is not None and quick(obj) is validator.is_valid(obj) is True
