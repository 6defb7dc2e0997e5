"""Realistic objects, as the API server returns them (trimmed to what matters)."""

from __future__ import annotations

import copy
import json
from typing import Any

Obj = dict[str, Any]


def merged(base: Obj, changes: Obj) -> Obj:
    """A deep copy of base with changes merged in (mappings merge, anything else replaces)."""
    result = copy.deepcopy(base)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merged(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


def pod_template(image: str = "reg/web:sha-new", env_value: str = "new") -> Obj:
    return {
        "metadata": {"labels": {"app": "web"}},
        "spec": {
            "containers": [
                {
                    "name": "web",
                    "image": image,
                    "env": [{"name": "MODE", "value": env_value}],
                    "ports": [{"containerPort": 8080}],
                }
            ]
        },
    }


def deployment(**changes: Any) -> Obj:
    base: Obj = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "web-prod", "generation": 4},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "web"}},
            "template": pod_template(),
            "strategy": {"type": "RollingUpdate"},
        },
        "status": {
            "observedGeneration": 4,
            "replicas": 3,
            "updatedReplicas": 3,
            "readyReplicas": 3,
            "availableReplicas": 3,
            "conditions": [
                {
                    "type": "Available",
                    "status": "True",
                    "reason": "MinimumReplicasAvailable",
                },
                {
                    "type": "Progressing",
                    "status": "True",
                    "reason": "NewReplicaSetAvailable",
                    "message": 'ReplicaSet "web-5f8d7c9b6" has successfully progressed.',
                },
            ],
        },
    }
    return merged(base, changes)


DEADLINE_EXCEEDED = [
    {"type": "Available", "status": "False", "reason": "MinimumReplicasUnavailable"},
    {
        "type": "Progressing",
        "status": "False",
        "reason": "ProgressDeadlineExceeded",
        "message": 'ReplicaSet "web-7c9d" has timed out progressing.',
    },
]


def statefulset(**changes: Any) -> Obj:
    base: Obj = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "db", "namespace": "web-prod", "generation": 2},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "db"}},
            "template": pod_template("reg/db:15"),
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
        },
        "status": {
            "observedGeneration": 2,
            "replicas": 3,
            "readyReplicas": 3,
            "currentReplicas": 3,
            "updatedReplicas": 3,
            "currentRevision": "db-6b7f",
            "updateRevision": "db-6b7f",
        },
    }
    return merged(base, changes)


def daemonset(**changes: Any) -> Obj:
    base: Obj = {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": "agent", "namespace": "web-prod", "generation": 3},
        "spec": {
            "selector": {"matchLabels": {"app": "agent"}},
            "template": pod_template("reg/agent:1"),
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}},
        },
        "status": {
            "observedGeneration": 3,
            "desiredNumberScheduled": 2,
            "currentNumberScheduled": 2,
            "updatedNumberScheduled": 2,
            "numberReady": 2,
            "numberAvailable": 2,
        },
    }
    return merged(base, changes)


def replicaset(**changes: Any) -> Obj:
    base: Obj = {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {"name": "web-5f8d7c9b6", "namespace": "web-prod", "generation": 1},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web", "pod-template-hash": "5f8d7c9b6"}},
            "template": pod_template(),
        },
        "status": {
            "observedGeneration": 1,
            "replicas": 2,
            "readyReplicas": 2,
            "availableReplicas": 2,
        },
    }
    return merged(base, changes)


def job(**changes: Any) -> Obj:
    base: Obj = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "migrate", "namespace": "web-prod", "generation": 1},
        "spec": {
            "backoffLimit": 2,
            "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "0f9c"}},
            "template": pod_template("reg/migrate:7"),
        },
        "status": {"active": 1, "startTime": "2024-05-01T10:00:00Z"},
    }
    return merged(base, changes)


def job_condition(condition_type: str, reason: str = "", message: str = "") -> Obj:
    return job(
        status={
            "active": 0,
            "conditions": [
                {"type": condition_type, "status": "True", "reason": reason, "message": message}
            ],
        }
    )


def pod(
    *,
    name: str = "web-5f8d7c9b6-x2x4q",
    phase: str = "Running",
    ready: bool = True,
    restart_policy: str = "Always",
    template: Obj | None = None,
    waiting: tuple[str, str] | None = None,
    init_waiting: tuple[str, str] | None = None,
    last_terminated: Obj | None = None,
    status_extra: Obj | None = None,
) -> Obj:
    """A pod as the kubelet reports it; ``waiting`` is (reason, message) for container web."""
    spec = copy.deepcopy((template or pod_template())["spec"])
    spec["restartPolicy"] = restart_policy
    for container in spec["containers"]:
        container.setdefault("imagePullPolicy", "IfNotPresent")
        container.setdefault("terminationMessagePath", "/dev/termination-log")
    state: Obj = {"running": {"startedAt": "2024-05-01T10:00:05Z"}}
    if waiting is not None:
        state = {"waiting": {"reason": waiting[0], "message": waiting[1]}}
    container_status: Obj = {
        "name": "web",
        "image": spec["containers"][0]["image"],
        "ready": ready and waiting is None,
        "restartCount": 0 if last_terminated is None else 3,
        "state": state,
        "lastState": {} if last_terminated is None else {"terminated": last_terminated},
    }
    status: Obj = {
        "phase": phase,
        "conditions": [
            {"type": "PodScheduled", "status": "True"},
            {"type": "Ready", "status": "True" if ready and waiting is None else "False"},
        ],
        "containerStatuses": [container_status],
    }
    if init_waiting is not None:
        spec["initContainers"] = [{"name": "init-db", "image": "reg/init:1"}]
        status["initContainerStatuses"] = [
            {
                "name": "init-db",
                "image": "reg/init:1",
                "ready": False,
                "restartCount": 0,
                "state": {"waiting": {"reason": init_waiting[0], "message": init_waiting[1]}},
            }
        ]
    status.update(status_extra or {})
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "web-prod", "labels": {"app": "web"}},
        "spec": spec,
        "status": status,
    }


def pvc(phase: str | None) -> Obj:
    obj: Obj = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "data", "namespace": "web-prod"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
        "status": {},
    }
    if phase is not None:
        obj["status"]["phase"] = phase
    return obj


def service(service_type: str, ingress: list[Obj] | None = None) -> Obj:
    obj: Obj = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web", "namespace": "web-prod"},
        "spec": {"type": service_type, "ports": [{"port": 80, "targetPort": 8080}]},
        "status": {"loadBalancer": {}},
    }
    if ingress is not None:
        obj["status"]["loadBalancer"]["ingress"] = ingress
    return obj


def ingress(api_version: str, addresses: list[Obj] | None) -> Obj:
    obj: Obj = {
        "apiVersion": api_version,
        "kind": "Ingress",
        "metadata": {"name": "web", "namespace": "web-prod"},
        "spec": {"rules": [{"host": "web.example.com"}]},
        "status": {"loadBalancer": {}},
    }
    if addresses is not None:
        obj["status"]["loadBalancer"]["ingress"] = addresses
    return obj


def hpa_condition(condition_type: str, status: str, reason: str, message: str = "") -> Obj:
    return {"type": condition_type, "status": status, "reason": reason, "message": message}


HPA_OK = [
    hpa_condition("AbleToScale", "True", "ReadyForNewScale", "recommended size matches"),
    hpa_condition("ScalingActive", "True", "ValidMetricFound", "the HPA was able to compute"),
    hpa_condition("ScalingLimited", "False", "DesiredWithinRange", "the desired count is within"),
]


def hpa(conditions: list[Obj] | None, api_version: str = "autoscaling/v2") -> Obj:
    obj: Obj = {
        "apiVersion": api_version,
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web", "namespace": "web-prod"},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "minReplicas": 2,
            "maxReplicas": 5,
        },
        "status": {"currentReplicas": 2, "desiredReplicas": 2},
    }
    if conditions is not None:
        obj["status"]["conditions"] = conditions
    return obj


def hpa_v1(conditions: list[Obj] | None) -> Obj:
    obj = hpa(None, api_version="autoscaling/v1")
    if conditions is not None:
        obj["metadata"]["annotations"] = {
            "autoscaling.alpha.kubernetes.io/conditions": json.dumps(conditions)
        }
    return obj


def plain(api_version: str, kind: str, name: str = "thing") -> Obj:
    return {"apiVersion": api_version, "kind": kind, "metadata": {"name": name}}


def apiservice(*conditions: tuple[str, str], api_version: str = "v1") -> Obj:
    """An APIService reporting (type, status) conditions in this order."""
    return {
        "apiVersion": f"apiregistration.k8s.io/{api_version}",
        "kind": "APIService",
        "metadata": {"name": "v1beta1.metrics.k8s.io"},
        "spec": {"group": "metrics.k8s.io", "version": "v1beta1"},
        "status": {
            "conditions": [
                {"type": kind, "status": status, "reason": f"Reason{status}", "message": "says"}
                for kind, status in conditions
            ]
        },
    }


def crd(*conditions: tuple[str, str, str]) -> Obj:
    """A CRD reporting (type, status, reason) conditions in this order."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "examples.example.io"},
        "spec": {"group": "example.io", "names": {"kind": "Example", "plural": "examples"}},
        "status": {
            "conditions": [
                {"type": kind, "status": status, "reason": reason, "message": f"{reason} said"}
                for kind, status, reason in conditions
            ]
        },
    }


NEW_TEMPLATE = pod_template("reg/web:sha-new")
OLD_TEMPLATE = pod_template("reg/web:sha-old")
