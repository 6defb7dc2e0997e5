"""Tests for reconciler.health: the per-kind health rules, pod fail-fast and wait_healthy."""

from __future__ import annotations

import asyncio
import copy
import json
from dataclasses import dataclass, field
from typing import Any

import pytest

from reconciler.cluster.health import (
    Health,
    HealthStatus,
    assess,
    assess_workload_pods,
    pod_selector,
    wait_healthy,
)
from reconciler.errors import KubernetesError, RenderError, kubernetes_error
from reconciler.model import ObjectRef

Obj = dict[str, Any]

HEALTHY = HealthStatus.HEALTHY
PROGRESSING = HealthStatus.PROGRESSING
DEGRADED = HealthStatus.DEGRADED
SUSPENDED = HealthStatus.SUSPENDED
MISSING = HealthStatus.MISSING


# ---------------------------------------------------------------------------------------------
# Realistic objects, as the API server returns them (trimmed to what matters)


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


# ---------------------------------------------------------------------------------------------
# assess: every kind, every branch


@dataclass(frozen=True)
class Case:
    obj: Obj
    status: HealthStatus
    reason: str = ""
    # Words the message must contain, so a branch is identified by more than its status.
    says: str = ""


CASES: dict[str, Case] = {
    # Deployment
    "deployment rolled out": Case(deployment(), HEALTHY, says="3 replicas available"),
    "deployment paused": Case(deployment(spec={"paused": True}), SUSPENDED, says="paused"),
    "deployment paused wins over a pending rollout": Case(
        deployment(metadata={"generation": 5}, spec={"paused": True}), SUSPENDED
    ),
    "deployment generation not observed": Case(
        deployment(metadata={"generation": 5}), PROGRESSING, says="generation 5 (observed 4)"
    ),
    "deployment without status yet": Case(
        deployment() | {"status": {}},
        PROGRESSING,
        says="observed 0",
    ),
    "deployment progress deadline exceeded": Case(
        deployment(
            status={"updatedReplicas": 1, "availableReplicas": 2, "conditions": DEADLINE_EXCEEDED}
        ),
        DEGRADED,
        reason="ProgressDeadlineExceeded",
        says='ReplicaSet "web-7c9d" has timed out progressing.',
    ),
    "deployment deadline exceeded but new generation not observed yet": Case(
        deployment(metadata={"generation": 5}, status={"conditions": DEADLINE_EXCEEDED}),
        PROGRESSING,
    ),
    "deployment replicas not all updated": Case(
        deployment(status={"updatedReplicas": 1, "replicas": 4, "availableReplicas": 3}),
        PROGRESSING,
        says="1 of 3 replicas updated",
    ),
    "deployment old replicas pending termination": Case(
        deployment(status={"replicas": 4}), PROGRESSING, says="1 old replicas are pending"
    ),
    "deployment updated replicas not available": Case(
        deployment(status={"availableReplicas": 1}),
        PROGRESSING,
        says="1 of 3 updated replicas are available",
    ),
    "deployment scaled to zero": Case(
        deployment(
            spec={"replicas": 0},
            status={"replicas": 0, "updatedReplicas": 0, "availableReplicas": 0},
        ),
        HEALTHY,
    ),
    "deployment being deleted": Case(
        deployment(metadata={"deletionTimestamp": "2024-05-01T10:00:00Z"}),
        PROGRESSING,
        says="pending deletion",
    ),
    # StatefulSet
    "statefulset rolled out": Case(statefulset(), HEALTHY),
    "statefulset never observed": Case(
        statefulset(status={"observedGeneration": 0}), PROGRESSING, says="generation"
    ),
    "statefulset generation not observed": Case(
        statefulset(metadata={"generation": 3}), PROGRESSING, says="generation 3 (observed 2)"
    ),
    "statefulset pods not ready": Case(
        statefulset(status={"readyReplicas": 1}), PROGRESSING, says="1 of 3 pods are ready"
    ),
    "statefulset rolling update in progress": Case(
        statefulset(status={"updatedReplicas": 1, "updateRevision": "db-7c8d"}),
        PROGRESSING,
        says="1 of 3 pods updated",
    ),
    "statefulset partitioned rollout done": Case(
        statefulset(
            spec={"updateStrategy": {"rollingUpdate": {"partition": 2}}},
            status={"updatedReplicas": 1, "currentReplicas": 2, "updateRevision": "db-7c8d"},
        ),
        HEALTHY,
    ),
    "statefulset partitioned rollout waiting": Case(
        statefulset(
            spec={"replicas": 5, "updateStrategy": {"rollingUpdate": {"partition": 2}}},
            status={"replicas": 5, "readyReplicas": 5, "updatedReplicas": 2},
        ),
        PROGRESSING,
        says="2 of 3 pods updated",
    ),
    "statefulset OnDelete with old pods": Case(
        statefulset(
            spec={"updateStrategy": {"type": "OnDelete", "rollingUpdate": None}},
            status={"updatedReplicas": 0, "updateRevision": "db-7c8d"},
        ),
        HEALTHY,
        says="OnDelete",
    ),
    "statefulset without rollingUpdate block, revisions differ": Case(
        statefulset(
            spec={"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": None}},
            status={"updateRevision": "db-7c8d"},
        ),
        PROGRESSING,
        says="revision db-7c8d",
    ),
    "statefulset without rollingUpdate block, revisions equal": Case(
        statefulset(spec={"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": None}}),
        HEALTHY,
    ),
    # DaemonSet
    "daemonset rolled out": Case(daemonset(), HEALTHY),
    "daemonset generation not observed": Case(
        daemonset(metadata={"generation": 4}), PROGRESSING, says="generation 4"
    ),
    "daemonset pods not updated": Case(
        daemonset(status={"updatedNumberScheduled": 1}), PROGRESSING, says="1 of 2 pods updated"
    ),
    "daemonset pods not available": Case(
        daemonset(status={"numberAvailable": 1}), PROGRESSING, says="1 of 2 updated pods"
    ),
    "daemonset OnDelete with old pods": Case(
        daemonset(
            spec={"updateStrategy": {"type": "OnDelete", "rollingUpdate": None}},
            status={"updatedNumberScheduled": 0},
        ),
        HEALTHY,
    ),
    # ReplicaSet
    "replicaset available": Case(replicaset(), HEALTHY),
    "replicaset generation not observed": Case(replicaset(metadata={"generation": 2}), PROGRESSING),
    "replicaset replica failure": Case(
        replicaset(
            status={
                "availableReplicas": 0,
                "conditions": [
                    {
                        "type": "ReplicaFailure",
                        "status": "True",
                        "reason": "FailedCreate",
                        "message": 'pods "web-5f8d7c9b6-" is forbidden: exceeded quota',
                    }
                ],
            }
        ),
        DEGRADED,
        reason="FailedCreate",
        says="exceeded quota",
    ),
    "replicaset replica failure cleared": Case(
        replicaset(
            status={"conditions": [{"type": "ReplicaFailure", "status": "False"}]},
        ),
        HEALTHY,
    ),
    "replicaset replicas not available": Case(
        replicaset(status={"availableReplicas": 1}), PROGRESSING, says="1 of 2 replicas"
    ),
    # Job
    "job running": Case(job(), PROGRESSING, says="1 active"),
    "job complete": Case(
        job_condition("Complete", "CompletionsReached", "Reached expected number of succeeded"),
        HEALTHY,
    ),
    "job failed on backoff limit": Case(
        job_condition("Failed", "BackoffLimitExceeded", "Job has reached the specified backoff"),
        DEGRADED,
        reason="BackoffLimitExceeded",
        says="specified backoff",
    ),
    "job failed on deadline": Case(
        job_condition("Failed", "DeadlineExceeded", "Job was active longer than specified"),
        DEGRADED,
        reason="DeadlineExceeded",
    ),
    "job suspended in spec": Case(job(spec={"suspend": True}), SUSPENDED),
    "job suspended condition": Case(job_condition("Suspended", "JobSuspended"), SUSPENDED),
    # Pod
    "pod running and ready": Case(pod(), HEALTHY),
    "pod pending": Case(
        pod(phase="Pending", ready=False, waiting=("ContainerCreating", "")), PROGRESSING
    ),
    "pod running, not ready yet": Case(pod(ready=False), PROGRESSING, says="not ready"),
    "pod running, not ready after a restart": Case(
        pod(ready=False, last_terminated={"reason": "Error", "exitCode": 1}),
        DEGRADED,
        reason="Error",
        says="exit code 1",
    ),
    "pod crash looping": Case(
        pod(
            waiting=("CrashLoopBackOff", "back-off 40s restarting failed container"),
            last_terminated={"reason": "OOMKilled", "exitCode": 137},
        ),
        DEGRADED,
        reason="CrashLoopBackOff",
        says="last exit: OOMKilled (exit code 137)",
    ),
    "pod image pull back-off": Case(
        pod(
            phase="Pending",
            waiting=("ImagePullBackOff", 'Back-off pulling image "reg/web:sha-new"'),
        ),
        DEGRADED,
        reason="ImagePullBackOff",
        says="image reg/web:sha-new",
    ),
    "pod image pull error": Case(
        pod(phase="Pending", waiting=("ErrImagePull", "manifest unknown")),
        DEGRADED,
        reason="ErrImagePull",
    ),
    "pod config error": Case(
        pod(phase="Pending", waiting=("CreateContainerConfigError", 'secret "db" not found')),
        DEGRADED,
        reason="CreateContainerConfigError",
        says='secret "db" not found',
    ),
    "pod invalid image name": Case(
        pod(phase="Pending", waiting=("InvalidImageName", 'couldn\'t parse image "reg/Web"')),
        DEGRADED,
        reason="InvalidImageName",
    ),
    "pod run container error (Argo's suffix rule)": Case(
        pod(waiting=("RunContainerError", "exec: not found")), DEGRADED, reason="RunContainerError"
    ),
    "pod init container image pull back-off": Case(
        pod(phase="Pending", ready=False, init_waiting=("ImagePullBackOff", "Back-off")),
        DEGRADED,
        reason="ImagePullBackOff",
        says="container init-db",
    ),
    "run-once pod waiting on an image is judged by its phase": Case(
        pod(phase="Pending", restart_policy="Never", waiting=("ImagePullBackOff", "Back-off")),
        PROGRESSING,
    ),
    "run-once pod running": Case(pod(restart_policy="OnFailure"), PROGRESSING),
    "pod succeeded": Case(pod(phase="Succeeded", restart_policy="Never", ready=False), HEALTHY),
    "pod evicted": Case(
        pod(
            phase="Failed",
            ready=False,
            status_extra={"reason": "Evicted", "message": "The node was low on memory."},
        ),
        DEGRADED,
        reason="Evicted",
        says="low on memory",
    ),
    "pod failed, container exit code": Case(
        pod(
            phase="Failed",
            restart_policy="Never",
            ready=False,
            status_extra={
                "containerStatuses": [
                    {
                        "name": "web",
                        "state": {"terminated": {"reason": "Error", "exitCode": 2}},
                    }
                ]
            },
        ),
        DEGRADED,
        reason="Error",
        says="container web failed with exit code 2",
    ),
    "pod failed, termination message": Case(
        pod(
            phase="Failed",
            restart_policy="Never",
            ready=False,
            status_extra={
                "containerStatuses": [
                    {
                        "name": "web",
                        "state": {
                            "terminated": {
                                "reason": "Error",
                                "exitCode": 1,
                                "message": "migration 42 failed",
                            }
                        },
                    }
                ]
            },
        ),
        DEGRADED,
        reason="Error",
        says="migration 42 failed",
    ),
    "pod phase unknown": Case(pod(phase="Unknown", ready=False), PROGRESSING),
    # PersistentVolumeClaim
    "pvc bound": Case(pvc("Bound"), HEALTHY),
    "pvc pending": Case(pvc("Pending"), PROGRESSING),
    "pvc lost": Case(pvc("Lost"), DEGRADED, reason="ClaimLost"),
    "pvc without phase": Case(pvc(None), PROGRESSING),
    # Service
    "service cluster ip": Case(service("ClusterIP"), HEALTHY),
    "service load balancer pending": Case(service("LoadBalancer"), PROGRESSING),
    "service load balancer empty list": Case(service("LoadBalancer", []), PROGRESSING),
    "service load balancer assigned": Case(
        service("LoadBalancer", [{"ip": "203.0.113.7"}]), HEALTHY
    ),
    # Ingress
    "ingress with address": Case(
        ingress("networking.k8s.io/v1", [{"hostname": "lb.example.com"}]), HEALTHY
    ),
    "ingress without address": Case(ingress("networking.k8s.io/v1", None), PROGRESSING),
    "legacy extensions ingress without address": Case(
        ingress("extensions/v1beta1", []), PROGRESSING
    ),
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


# ---------------------------------------------------------------------------------------------
# pod_selector


@pytest.mark.parametrize(
    ("workload", "expected"),
    [
        (deployment(), "app=web"),
        (statefulset(), "app=db"),
        (daemonset(), "app=agent"),
        (replicaset(), "app=web,pod-template-hash=5f8d7c9b6"),
        (job(), "batch.kubernetes.io/controller-uid=0f9c"),
        (
            deployment(
                spec={
                    "selector": {
                        "matchLabels": {"tier": "front", "app": "web"},
                        "matchExpressions": [
                            {"key": "env", "operator": "In", "values": ["prod", "stage"]},
                            {"key": "canary", "operator": "NotIn", "values": ["true"]},
                            {"key": "team", "operator": "Exists"},
                            {"key": "legacy", "operator": "DoesNotExist"},
                        ],
                    }
                }
            ),
            "app=web,tier=front,env in (prod,stage),canary notin (true),team,!legacy",
        ),
        (deployment() | {"spec": {"selector": {"matchLabels": {}}}}, None),
        (deployment(spec={"selector": None}), None),
        (service("ClusterIP"), None),
        (plain("v1", "ConfigMap"), None),
    ],
    ids=[
        "deployment",
        "statefulset",
        "daemonset",
        "replicaset",
        "job",
        "expressions",
        "empty selector",
        "no selector",
        "service",
        "configmap",
    ],
)
def test_pod_selector(workload: Obj, expected: str | None) -> None:
    """pod_selector turns a workload's spec.selector into a label selector string."""
    assert pod_selector(workload) == expected


# ---------------------------------------------------------------------------------------------
# assess_workload_pods

NEW_TEMPLATE = pod_template("reg/web:sha-new")
OLD_TEMPLATE = pod_template("reg/web:sha-old")


def test_workload_pods_image_pull_back_off_fails_fast() -> None:
    """A current pod that cannot pull its image degrades the workload, naming all the facts."""
    pods = [
        pod(name="web-new-1", template=NEW_TEMPLATE, ready=False),
        pod(
            name="web-new-2",
            template=NEW_TEMPLATE,
            phase="Pending",
            waiting=("ImagePullBackOff", 'Back-off pulling image "reg/web:sha-new"'),
        ),
    ]
    health = assess_workload_pods(deployment(), pods)
    assert health == Health(
        DEGRADED,
        "Deployment web: ImagePullBackOff: pod web-new-2: container web: image reg/web:sha-new: "
        'Back-off pulling image "reg/web:sha-new"',
        "ImagePullBackOff",
    )


@pytest.mark.parametrize(
    "reason",
    [
        "CrashLoopBackOff",
        "ImagePullBackOff",
        "ErrImagePull",
        "CreateContainerConfigError",
        "InvalidImageName",
    ],
)
def test_workload_pods_failing_reasons(reason: str) -> None:
    """Each waiting reason that will not clear by itself degrades the workload."""
    pods = [pod(template=NEW_TEMPLATE, waiting=(reason, "details"))]
    health = assess_workload_pods(deployment(), pods)
    assert health is not None
    assert (health.status, health.reason) == (DEGRADED, reason)


def test_workload_pods_of_an_old_template_are_ignored() -> None:
    """A crashing pod of the previous image does not fail a good rollout."""
    pods = [
        pod(name="web-old", template=OLD_TEMPLATE, waiting=("CrashLoopBackOff", "back-off")),
        pod(name="web-new", template=NEW_TEMPLATE, ready=False),
    ]
    assert assess_workload_pods(deployment(), pods) is None


def test_workload_pods_of_an_old_env_are_ignored() -> None:
    """A rollout that only fixes an environment variable is not failed by the old pods."""
    broken = pod(
        template=pod_template("reg/web:sha-new", env_value="broken"),
        waiting=("CrashLoopBackOff", "back-off"),
    )
    assert assess_workload_pods(deployment(), [broken]) is None


def test_workload_pods_with_injected_sidecar_still_count() -> None:
    """Containers and env added by admission webhooks do not hide a failing current pod."""
    injected = pod(template=NEW_TEMPLATE, waiting=("ErrImagePull", "not found"))
    injected["spec"]["containers"].append({"name": "istio-proxy", "image": "istio/proxyv2:1.22"})
    injected["spec"]["containers"][0]["env"].append({"name": "INJECTED", "value": "1"})
    health = assess_workload_pods(deployment(), [injected])
    assert health is not None and health.reason == "ErrImagePull"


def test_workload_pods_healthy_or_starting_give_no_verdict() -> None:
    """Pods that are running or still creating containers leave the verdict to the workload."""
    pods = [
        pod(template=NEW_TEMPLATE),
        pod(template=NEW_TEMPLATE, phase="Pending", waiting=("ContainerCreating", "")),
    ]
    assert assess_workload_pods(deployment(), pods) is None


def test_workload_pods_crash_loop_reports_the_last_exit() -> None:
    """A crash loop's message says how the container last died."""
    crashing = pod(
        template=NEW_TEMPLATE,
        waiting=("CrashLoopBackOff", "back-off 20s restarting failed container"),
        last_terminated={"reason": "Error", "exitCode": 3},
    )
    health = assess_workload_pods(deployment(), [crashing])
    assert health is not None
    assert health.message.endswith("last exit: Error (exit code 3)")


def test_workload_pods_init_container_failure() -> None:
    """A failing init container of a current pod degrades the workload."""
    workload = deployment()
    workload["spec"]["template"]["spec"]["initContainers"] = [
        {"name": "init-db", "image": "reg/init:1"}
    ]
    stuck = pod(template=NEW_TEMPLATE, phase="Pending", init_waiting=("ErrImagePull", "denied"))
    health = assess_workload_pods(workload, [stuck])
    assert health is not None
    assert "container init-db: image reg/init:1" in health.message


def test_workload_pods_of_a_run_once_job() -> None:
    """A Job's pod (restartPolicy Never) stuck on its image fails fast too."""
    template = pod_template("reg/migrate:7")
    stuck = pod(
        template=template, restart_policy="Never", phase="Pending", waiting=("ErrImagePull", "")
    )
    health = assess_workload_pods(job(), [stuck])
    assert health is not None and health.reason == "ErrImagePull"


# ---------------------------------------------------------------------------------------------
# ObjectRef


def test_object_ref_from_object_and_str() -> None:
    """ObjectRef reads identity from an object and prints kind namespace/name."""
    ref = ObjectRef.from_object(deployment())
    assert ref == ObjectRef("apps/v1", "Deployment", "web", "web-prod")
    assert str(ref) == "Deployment web-prod/web"


def test_object_ref_cluster_scoped() -> None:
    """A cluster-scoped object has no namespace and prints kind name."""
    ref = ObjectRef.from_object(plain("rbac.authorization.k8s.io/v1", "ClusterRole", "viewer"))
    assert ref.namespace is None
    assert str(ref) == "ClusterRole viewer"


def test_object_ref_without_identity() -> None:
    """A document without apiVersion, kind or name is a RenderError."""
    with pytest.raises(RenderError, match=r"metadata\.name"):
        ObjectRef.from_object({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}})


# ---------------------------------------------------------------------------------------------
# wait_healthy, against scripted test doubles of the injected callables

Scripted = Obj | None | KubernetesError


@dataclass
class FakeCluster:
    """Scripted answers: each read returns the next item for that object, then repeats the last.

    Every read advances the fake clock, so timeouts happen after a known number of polls.
    """

    objects: dict[ObjectRef, list[Scripted]] = field(default_factory=dict)
    pods: list[list[Obj] | KubernetesError] = field(default_factory=list)
    now: float = 1000.0
    seconds_per_poll: float = 10.0
    reads: dict[ObjectRef, int] = field(default_factory=dict)
    pod_queries: list[tuple[str, str]] = field(default_factory=list)

    def add(self, obj: Obj, *later: Scripted) -> ObjectRef:
        ref = ObjectRef.from_object(obj)
        self.objects[ref] = [obj, *later]
        return ref

    def clock(self) -> float:
        return self.now

    async def read_object(self, ref: ObjectRef) -> Obj | None:
        count = self.reads.get(ref, 0)
        self.reads[ref] = count + 1
        script = self.objects[ref]
        answer = script[min(count, len(script) - 1)]
        if isinstance(answer, KubernetesError):
            raise answer
        return copy.deepcopy(answer)

    async def list_pods(self, namespace: str, selector: str) -> list[Obj]:
        self.pod_queries.append((namespace, selector))
        if not self.pods:
            return []
        answer = self.pods[0] if len(self.pods) == 1 else self.pods.pop(0)
        if isinstance(answer, KubernetesError):
            raise answer
        return answer

    async def tick(self) -> bool:
        """Used as should_stop: time passes once per poll."""
        self.now += self.seconds_per_poll
        return False


async def wait(cluster: FakeCluster, refs: list[ObjectRef], **overrides: Any) -> Any:
    arguments: dict[str, Any] = {
        "refs": refs,
        "read_object": cluster.read_object,
        "list_pods": cluster.list_pods,
        "timeout_s": 300,
        "poll_interval_s": 0,
        "should_stop": cluster.tick,
        "clock": cluster.clock,
    }
    arguments.update(overrides)
    return await wait_healthy(**arguments)


ROLLING = deployment(metadata={"generation": 5})
HALFWAY = deployment(
    metadata={"generation": 5},
    status={"observedGeneration": 5, "updatedReplicas": 3, "availableReplicas": 1},
)
DONE = deployment(metadata={"generation": 5}, status={"observedGeneration": 5})


async def test_wait_until_all_healthy() -> None:
    """Waiting ends HEALTHY once every object is, and healthy objects are not read again."""
    cluster = FakeCluster()
    web = cluster.add(ROLLING, HALFWAY, DONE)
    config = cluster.add(plain("v1", "ConfigMap", "web-config"))
    outcome = await wait(cluster, [web, config, web])
    assert (outcome.status, outcome.timed_out, outcome.stopped) == (HEALTHY, False, False)
    assert cluster.reads == {web: 3, config: 1}


async def test_wait_with_no_objects() -> None:
    """Nothing to wait for is healthy at once."""
    outcome = await wait(FakeCluster(), [])
    assert outcome.status == HEALTHY


async def test_wait_suspended_counts_as_done() -> None:
    """A paused Deployment is what the user asked for, so waiting ends."""
    cluster = FakeCluster()
    web = cluster.add(deployment(spec={"paused": True}, status={"availableReplicas": 0}))
    outcome = await wait(cluster, [web])
    assert outcome.status == HEALTHY


async def test_wait_fails_fast_on_progress_deadline() -> None:
    """A degraded object ends waiting at once with the cluster's reason."""
    cluster = FakeCluster()
    web = cluster.add(ROLLING, merged(HALFWAY, {"status": {"conditions": DEADLINE_EXCEEDED}}))
    outcome = await wait(cluster, [web])
    assert (outcome.status, outcome.reason) == (DEGRADED, "ProgressDeadlineExceeded")
    assert outcome.message.startswith(
        "Deployment web-prod/web: ProgressDeadlineExceeded: exceeded its progress deadline"
    )
    assert not outcome.timed_out


async def test_wait_fails_fast_on_pods() -> None:
    """Pods of the rolling workload stuck on their image end waiting long before the deadline."""
    stuck = pod(
        name="web-7c9d-abcde",
        template=NEW_TEMPLATE,
        phase="Pending",
        waiting=("ImagePullBackOff", 'Back-off pulling image "reg/web:sha-new"'),
    )
    cluster = FakeCluster(pods=[[], [stuck]])
    web = cluster.add(HALFWAY)
    outcome = await wait(cluster, [web])
    assert outcome.status == DEGRADED
    assert outcome.reason == "ImagePullBackOff"
    assert outcome.message == (
        "Deployment web-prod/web: ImagePullBackOff: pod web-7c9d-abcde: container web: "
        'image reg/web:sha-new: Back-off pulling image "reg/web:sha-new"'
    )
    assert cluster.pod_queries == [("web-prod", "app=web"), ("web-prod", "app=web")]


async def test_wait_does_not_list_pods_of_healthy_or_non_workloads() -> None:
    """Pods are listed only for workloads still progressing."""
    cluster = FakeCluster()
    refs = [cluster.add(DONE), cluster.add(service("LoadBalancer"), service("LoadBalancer", []))]
    cluster.objects[refs[1]].append(service("LoadBalancer", [{"ip": "203.0.113.7"}]))
    outcome = await wait(cluster, refs)
    assert outcome.status == HEALTHY
    assert cluster.pod_queries == []


async def test_wait_reports_a_degraded_object_among_healthy_ones() -> None:
    """One degraded object fails the whole wait."""
    cluster = FakeCluster()
    config = cluster.add(plain("v1", "ConfigMap", "web-config"))
    claim = cluster.add(pvc("Pending"), pvc("Lost"))
    outcome = await wait(cluster, [config, claim])
    assert (outcome.status, outcome.reason) == (DEGRADED, "ClaimLost")
    assert outcome.message == "PersistentVolumeClaim web-prod/data: ClaimLost: its volume was lost"


async def test_wait_times_out() -> None:
    """At the timeout waiting ends PROGRESSING, naming what is still pending and why."""
    cluster = FakeCluster()
    web = cluster.add(HALFWAY)
    ready = cluster.add(plain("v1", "ConfigMap", "ready"))
    outcome = await wait(cluster, [web, ready])
    assert (outcome.status, outcome.timed_out, outcome.reason) == (PROGRESSING, True, "Timeout")
    assert outcome.message == (
        "timed out after 300s waiting for: "
        "Deployment web-prod/web (1 of 3 updated replicas are available)"
    )
    # 300 s at 10 s a poll.
    assert cluster.reads[web] == 30


async def test_wait_missing_object_keeps_waiting() -> None:
    """An object that is not there yet is waited for, and named if it never shows up."""
    cluster = FakeCluster()
    late = cluster.add(plain("v1", "ConfigMap", "late"))
    cluster.objects[late] = [None, None, plain("v1", "ConfigMap", "late")]
    never = cluster.add(plain("v1", "Secret", "never"))
    cluster.objects[never] = [None]
    outcome = await wait(cluster, [late, never], timeout_s=60)
    assert outcome.timed_out
    assert outcome.message == "timed out after 60s waiting for: Secret never (not found)"
    assert cluster.reads[late] == 3


async def test_wait_retries_transient_errors() -> None:
    """A transient API error is retried on the next poll."""
    cluster = FakeCluster()
    web = cluster.add(HALFWAY)
    cluster.objects[web] = [
        kubernetes_error("GET deployments/web: 503 Service Unavailable", status=503),
        kubernetes_error("connection refused", status=0),
        DONE,
    ]
    outcome = await wait(cluster, [web])
    assert outcome.status == HEALTHY
    assert cluster.reads[web] == 3


async def test_wait_names_a_transient_error_at_the_timeout() -> None:
    """When an object could never be read, the timeout message says why."""
    cluster = FakeCluster()
    web = cluster.add(HALFWAY)
    cluster.objects[web] = [kubernetes_error("429 Too Many Requests", status=429)]
    outcome = await wait(cluster, [web], timeout_s=30)
    assert outcome.timed_out
    assert "Deployment web-prod/web (could not be read: 429 Too Many Requests)" in outcome.message


async def test_wait_propagates_permanent_errors() -> None:
    """A permanent API error (403) is raised, not retried."""
    cluster = FakeCluster()
    web = cluster.add(HALFWAY)
    cluster.objects[web] = [kubernetes_error("deployments is forbidden", status=403)]
    with pytest.raises(KubernetesError, match="forbidden"):
        await wait(cluster, [web])
    assert cluster.reads[web] == 1


async def test_wait_retries_transient_pod_list_errors() -> None:
    """A transient error listing pods is retried like a read."""
    stuck = pod(template=NEW_TEMPLATE, waiting=("CrashLoopBackOff", "back-off"))
    cluster = FakeCluster(pods=[kubernetes_error("timeout", status=504), [stuck]])
    web = cluster.add(HALFWAY)
    outcome = await wait(cluster, [web])
    assert (outcome.status, outcome.reason) == (DEGRADED, "CrashLoopBackOff")


async def test_wait_propagates_permanent_pod_list_errors() -> None:
    """A permanent error listing pods (no RBAC to list them) is raised."""
    cluster = FakeCluster(pods=[kubernetes_error("pods is forbidden", status=403)])
    web = cluster.add(HALFWAY)
    with pytest.raises(KubernetesError, match="pods is forbidden"):
        await wait(cluster, [web])


async def test_wait_stops_when_asked() -> None:
    """should_stop ends waiting with stopped=True, checked on every poll."""
    cluster = FakeCluster()
    web = cluster.add(HALFWAY)
    polls = 0

    async def stop_on_third_poll() -> bool:
        nonlocal polls
        polls += 1
        return polls == 3

    outcome = await wait(cluster, [web], should_stop=stop_on_third_poll)
    assert (outcome.status, outcome.stopped, outcome.timed_out) == (PROGRESSING, True, False)
    assert outcome.reason == "Stopped"
    assert "Deployment web-prod/web (1 of 3 updated replicas are available)" in outcome.message
    assert cluster.reads[web] == 2


async def test_wait_reads_objects_concurrently() -> None:
    """All pending objects are read in the same poll, concurrently."""
    cluster = FakeCluster()
    refs = [cluster.add(plain("v1", "ConfigMap", f"config-{index}")) for index in range(3)]
    in_flight = 0
    most_in_flight = 0

    async def read_slowly(ref: ObjectRef) -> Obj | None:
        nonlocal in_flight, most_in_flight
        in_flight += 1
        most_in_flight = max(most_in_flight, in_flight)
        # Yield to the loop so that concurrent reads overlap here; sequential ones cannot.
        for _ in range(3):
            await asyncio.sleep(0)
        in_flight -= 1
        return await cluster.read_object(ref)

    outcome = await wait(cluster, refs, read_object=read_slowly)
    assert outcome.status == HEALTHY
    assert most_in_flight == len(refs)


async def test_wait_does_not_mistake_a_callable_timeout_for_its_own() -> None:
    """A TimeoutError raised by read_object itself propagates (it breaks the contract)."""

    async def broken_read(ref: ObjectRef) -> Obj | None:
        raise TimeoutError("client-side timeout")

    ref = ObjectRef("v1", "ConfigMap", "web-config", "web-prod")
    with pytest.raises(TimeoutError, match="client-side"):
        await wait(FakeCluster(), [ref], read_object=broken_read)


async def test_wait_gives_up_on_a_hung_api_call() -> None:
    """A read that never answers does not hold the rollout past its timeout."""
    never = asyncio.Event()

    async def hang(ref: ObjectRef) -> Obj | None:
        await never.wait()
        return None

    ref = ObjectRef("apps/v1", "Deployment", "web", "web-prod")
    outcome = await wait_healthy(
        refs=[ref],
        read_object=hang,
        list_pods=FakeCluster().list_pods,
        timeout_s=0.01,
        poll_interval_s=0.01,
    )
    assert outcome.timed_out
    assert "Deployment web-prod/web (the API server did not answer)" in outcome.message
