"""The health stage: is what we applied running as asked?

Two halves:

* Pure assessment.  :func:`assess` reads one live object and says whether it is healthy,
  following the rules of Argo CD's health assessment (gitops-engine ``pkg/health``), so ops
  engineers who know Argo get the same answers.  :func:`assess_workload_pods` adds a faster
  verdict for workloads: a Deployment only reports ``ProgressDeadlineExceeded`` after
  ``progressDeadlineSeconds`` (600 s by default), much later than our health timeout, while its
  pods say "ImagePullBackOff" within seconds.
* Waiting.  :func:`wait_healthy` polls the applied objects until they are all healthy, one is
  degraded, the timeout passes or the caller asks it to stop.  It does its I/O through injected
  callables, so this module never imports the Kubernetes client.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from reconciler.errors import KubernetesError
from reconciler.model import ObjectRef

__all__ = [
    "FAILING_WAIT_REASONS",
    "Health",
    "HealthOutcome",
    "HealthStatus",
    "ListPods",
    "ObjectRef",
    "ReadObject",
    "assess",
    "assess_workload_pods",
    "pod_selector",
    "wait_healthy",
]


class HealthStatus(StrEnum):
    """How healthy one object is, in Argo CD's vocabulary."""

    HEALTHY = "healthy"
    PROGRESSING = "progressing"
    DEGRADED = "degraded"
    SUSPENDED = "suspended"
    MISSING = "missing"


@dataclass(frozen=True)
class Health:
    """The verdict on one object.

    ``message`` is for a human ("Deployment web: 1 of 3 updated replicas are available");
    ``reason`` is the cluster's own word for a failure when there is one (``ImagePullBackOff``,
    ``ProgressDeadlineExceeded``, ``BackoffLimitExceeded``...), so callers can act on it.
    """

    status: HealthStatus
    message: str = ""
    reason: str = ""

    @classmethod
    def missing(cls, kind: str, name: str) -> Health:
        """The verdict for an object that does not exist in the cluster."""
        return cls(HealthStatus.MISSING, f"{kind} {name}: not found")

    @property
    def done(self) -> bool:
        """Whether waiting for this object is over: healthy, or suspended as the user asked."""
        return self.status in (HealthStatus.HEALTHY, HealthStatus.SUSPENDED)


# Container waiting reasons that mean the container will not start without a change.  The
# explicit names are the ones users meet; the prefix/suffix rule is Argo's, which also catches
# CreateContainerError, RunContainerError, ErrImageNeverPull and the like.
FAILING_WAIT_REASONS = frozenset(
    {
        "CrashLoopBackOff",
        "ImagePullBackOff",
        "ErrImagePull",
        "CreateContainerConfigError",
        "InvalidImageName",
    }
)

# Kinds whose pods we list to fail fast (their spec.selector picks the pods).
_WORKLOAD_KINDS = frozenset({"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"})

# HPA conditions, as Argo reads them: these (type, reason) pairs mean the autoscaler is broken...
_HPA_DEGRADED = frozenset(
    {
        ("AbleToScale", "FailedGetScale"),
        ("AbleToScale", "FailedUpdateScale"),
        ("ScalingActive", "InvalidSelector"),
    }
)
# ...and these mean it has done its job at least once.
_HPA_HEALTHY = frozenset(
    {
        ("AbleToScale", "SucceededRescale"),
        ("ScalingLimited", "DesiredWithinRange"),
        ("ScalingLimited", "TooFewReplicas"),
        ("ScalingLimited", "TooManyReplicas"),
    }
)
# autoscaling/v1 has no status.conditions: the API server carries them in this annotation.
_HPA_V1_CONDITIONS_ANNOTATION = "autoscaling.alpha.kubernetes.io/conditions"


# ---------------------------------------------------------------------------------------------
# Reading unstructured objects safely


def _path(obj: Any, *keys: str) -> Any:
    """The value at ``obj[k1][k2]...``, or None when any step is absent or not a mapping."""
    value: Any = obj
    for key in keys:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def _int(value: Any) -> int:
    """An integer count from a status field; absent (or malformed) counts as 0."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    return 0


def _optional_int(value: Any) -> int | None:
    """An integer spec field that may be absent (e.g. ``spec.replicas`` before defaulting)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return None


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _mappings(value: Any) -> list[Mapping[str, Any]]:
    """The mapping items of a list field, skipping anything malformed."""
    if not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, Mapping)]


def _condition(obj: Mapping[str, Any], condition_type: str) -> Mapping[str, Any] | None:
    for condition in _mappings(_path(obj, "status", "conditions")):
        if condition.get("type") == condition_type:
            return condition
    return None


def _condition_is_true(obj: Mapping[str, Any], condition_type: str) -> bool:
    condition = _condition(obj, condition_type)
    return condition is not None and condition.get("status") == "True"


def _api_group(api_version: str) -> str:
    """``apps/v1`` -> ``apps``; ``v1`` (the core group) -> ``""``."""
    group, slash, _version = api_version.rpartition("/")
    return group if slash else ""


def _subject(obj: Mapping[str, Any]) -> str:
    """How a message names an object: ``Deployment web``."""
    kind = _str(obj.get("kind")) or "object"
    name = _str(_path(obj, "metadata", "name")) or "(unnamed)"
    return f"{kind} {name}"


def _describe(subject: str, finding: Health) -> str:
    """``subject: reason: detail``, leaving out the parts that are empty."""
    parts = [part for part in (subject, finding.reason, finding.message) if part]
    return ": ".join(parts)


def _is_failing_wait_reason(reason: str) -> bool:
    return (
        reason in FAILING_WAIT_REASONS
        or reason.startswith("Err")
        or reason.endswith("Error")
        or reason.endswith("BackOff")
    )


# ---------------------------------------------------------------------------------------------
# Per-kind rules.  Each returns a Health whose message is the bare detail ("1 of 3 updated
# replicas are available"); assess() and wait_healthy() put the object's name in front.


def _deployment(obj: Mapping[str, Any]) -> Health:
    if _path(obj, "spec", "paused") is True:
        return Health(HealthStatus.SUSPENDED, "paused")
    generation = _int(_path(obj, "metadata", "generation"))
    observed = _int(_path(obj, "status", "observedGeneration"))
    if generation > observed:
        return Health(
            HealthStatus.PROGRESSING,
            f"waiting for the controller to observe generation {generation} (observed {observed})",
        )
    progressing = _condition(obj, "Progressing")
    if progressing is not None and progressing.get("reason") == "ProgressDeadlineExceeded":
        detail = _str(progressing.get("message"))
        message = "exceeded its progress deadline" + (f" ({detail})" if detail else "")
        return Health(HealthStatus.DEGRADED, message, "ProgressDeadlineExceeded")
    desired = _optional_int(_path(obj, "spec", "replicas"))
    replicas = _int(_path(obj, "status", "replicas"))
    updated = _int(_path(obj, "status", "updatedReplicas"))
    available = _int(_path(obj, "status", "availableReplicas"))
    if desired is not None and updated < desired:
        return Health(HealthStatus.PROGRESSING, f"{updated} of {desired} replicas updated")
    if replicas > updated:
        return Health(
            HealthStatus.PROGRESSING,
            f"{replicas - updated} old replicas are pending termination",
        )
    if available < updated:
        return Health(
            HealthStatus.PROGRESSING,
            f"{available} of {updated} updated replicas are available",
        )
    return Health(HealthStatus.HEALTHY, f"{available} replicas available")


def _statefulset(obj: Mapping[str, Any]) -> Health:
    generation = _int(_path(obj, "metadata", "generation"))
    observed = _int(_path(obj, "status", "observedGeneration"))
    if observed == 0 or generation > observed:
        return Health(
            HealthStatus.PROGRESSING,
            f"waiting for the controller to observe generation {generation} (observed {observed})",
        )
    desired = _optional_int(_path(obj, "spec", "replicas"))
    ready = _int(_path(obj, "status", "readyReplicas"))
    updated = _int(_path(obj, "status", "updatedReplicas"))
    if desired is not None and ready < desired:
        return Health(HealthStatus.PROGRESSING, f"{ready} of {desired} pods are ready")
    strategy = _str(_path(obj, "spec", "updateStrategy", "type"))
    rolling_update = _path(obj, "spec", "updateStrategy", "rollingUpdate")
    if strategy == "RollingUpdate" and isinstance(rolling_update, Mapping):
        partition = _optional_int(rolling_update.get("partition"))
        if desired is not None and partition is not None:
            # Pods below the partition ordinal deliberately stay on the old revision.
            expected = desired - partition
            if updated < expected:
                return Health(
                    HealthStatus.PROGRESSING,
                    f"partitioned rollout: {updated} of {expected} pods updated",
                )
        return Health(HealthStatus.HEALTHY, f"rollout complete: {updated} pods updated")
    if strategy == "OnDelete":
        # Pods change only when someone deletes them; nothing to wait for.
        return Health(HealthStatus.HEALTHY, f"{ready} pods ready ({updated} updated, OnDelete)")
    current_revision = _str(_path(obj, "status", "currentRevision"))
    update_revision = _str(_path(obj, "status", "updateRevision"))
    if update_revision != current_revision:
        return Health(
            HealthStatus.PROGRESSING,
            f"rolling update: {updated} pods at revision {update_revision}",
        )
    return Health(HealthStatus.HEALTHY, f"{ready} pods ready at revision {current_revision}")


def _daemonset(obj: Mapping[str, Any]) -> Health:
    generation = _int(_path(obj, "metadata", "generation"))
    observed = _int(_path(obj, "status", "observedGeneration"))
    if generation > observed:
        return Health(
            HealthStatus.PROGRESSING,
            f"waiting for the controller to observe generation {generation} (observed {observed})",
        )
    desired = _int(_path(obj, "status", "desiredNumberScheduled"))
    updated = _int(_path(obj, "status", "updatedNumberScheduled"))
    available = _int(_path(obj, "status", "numberAvailable"))
    if _path(obj, "spec", "updateStrategy", "type") == "OnDelete":
        return Health(HealthStatus.HEALTHY, f"{updated} of {desired} pods updated (OnDelete)")
    if updated < desired:
        return Health(HealthStatus.PROGRESSING, f"{updated} of {desired} pods updated")
    if available < desired:
        return Health(HealthStatus.PROGRESSING, f"{available} of {desired} updated pods available")
    return Health(HealthStatus.HEALTHY, f"{available} pods available")


def _replicaset(obj: Mapping[str, Any]) -> Health:
    generation = _int(_path(obj, "metadata", "generation"))
    observed = _int(_path(obj, "status", "observedGeneration"))
    if generation > observed:
        return Health(
            HealthStatus.PROGRESSING,
            f"waiting for the controller to observe generation {generation} (observed {observed})",
        )
    failure = _condition(obj, "ReplicaFailure")
    if failure is not None and failure.get("status") == "True":
        return Health(
            HealthStatus.DEGRADED,
            _str(failure.get("message")) or "replica failure",
            _str(failure.get("reason")) or "ReplicaFailure",
        )
    desired = _optional_int(_path(obj, "spec", "replicas"))
    available = _int(_path(obj, "status", "availableReplicas"))
    if desired is not None and available < desired:
        return Health(HealthStatus.PROGRESSING, f"{available} of {desired} replicas available")
    return Health(HealthStatus.HEALTHY, f"{available} replicas available")


def _job(obj: Mapping[str, Any]) -> Health:
    failed = _condition(obj, "Failed")
    if failed is not None and failed.get("status") == "True":
        return Health(
            HealthStatus.DEGRADED,
            _str(failed.get("message")) or "failed",
            _str(failed.get("reason")) or "Failed",
        )
    complete = _condition(obj, "Complete")
    if complete is not None and complete.get("status") == "True":
        return Health(HealthStatus.HEALTHY, _str(complete.get("message")) or "complete")
    if _path(obj, "spec", "suspend") is True or _condition_is_true(obj, "Suspended"):
        return Health(HealthStatus.SUSPENDED, "suspended")
    active = _int(_path(obj, "status", "active"))
    return Health(HealthStatus.PROGRESSING, f"running ({active} active pods)")


def _container_statuses(pod: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """Init containers first: when one of them fails, the others never start."""
    return _mappings(_path(pod, "status", "initContainerStatuses")) + _mappings(
        _path(pod, "status", "containerStatuses")
    )


def _images_by_container(pod_spec: Any) -> dict[str, str]:
    images: dict[str, str] = {}
    for field in ("initContainers", "containers"):
        for container in _mappings(_path(pod_spec, field)):
            images[_str(container.get("name"))] = _str(container.get("image"))
    return images


def _failing_container(pod: Mapping[str, Any]) -> Health | None:
    """The first container waiting for a reason that will not clear up by itself."""
    images = _images_by_container(pod.get("spec"))
    pod_name = _str(_path(pod, "metadata", "name"))
    for status in _container_statuses(pod):
        waiting = _path(status, "state", "waiting")
        reason = _str(_path(waiting, "reason"))
        if not reason or not _is_failing_wait_reason(reason):
            continue
        container = _str(status.get("name"))
        image = images.get(container) or _str(status.get("image"))
        parts = [f"pod {pod_name}", f"container {container}", f"image {image}"]
        kubelet_message = _str(_path(waiting, "message"))
        if kubelet_message:
            parts.append(kubelet_message)
        last_exit = _last_exit(status)
        if reason == "CrashLoopBackOff" and last_exit:
            # The back-off message says nothing useful; how the container died does.
            parts.append(f"last exit: {last_exit}")
        return Health(HealthStatus.DEGRADED, ": ".join(parts), reason)
    return None


def _last_exit(container_status: Mapping[str, Any]) -> str:
    terminated = _path(container_status, "lastState", "terminated")
    if not isinstance(terminated, Mapping):
        return ""
    reason = _str(terminated.get("reason")) or "terminated"
    return f"{reason} (exit code {_int(terminated.get('exitCode'))})"


def _pod_failure(pod: Mapping[str, Any]) -> Health:
    """Why a pod in phase Failed failed, as precisely as its status says."""
    status_reason = _str(_path(pod, "status", "reason"))
    status_message = _str(_path(pod, "status", "message"))
    if status_message:
        return Health(HealthStatus.DEGRADED, status_message, status_reason)
    for container in _container_statuses(pod):
        terminated = _path(container, "state", "terminated")
        if not isinstance(terminated, Mapping):
            continue
        name = _str(container.get("name"))
        reason = _str(terminated.get("reason"))
        exit_code = _int(terminated.get("exitCode"))
        message = _str(terminated.get("message"))
        if message:
            return Health(HealthStatus.DEGRADED, f"container {name}: {message}", reason)
        if reason == "OOMKilled" or exit_code != 0:
            return Health(
                HealthStatus.DEGRADED,
                f"container {name} failed with exit code {exit_code}",
                reason or status_reason,
            )
    return Health(HealthStatus.DEGRADED, "failed", status_reason)


def _pod(obj: Mapping[str, Any]) -> Health:
    restart_policy = _str(_path(obj, "spec", "restartPolicy")) or "Always"
    # Only pods that restart forever are judged by their waiting containers, as Argo does:
    # a run-once pod (a hook, a Job's pod) is judged by how it ends.
    if restart_policy == "Always":
        failing = _failing_container(obj)
        if failing is not None:
            return failing
    phase = _str(_path(obj, "status", "phase"))
    status_message = _str(_path(obj, "status", "message"))
    if phase == "Pending":
        return Health(HealthStatus.PROGRESSING, status_message or "pending")
    if phase == "Succeeded":
        return Health(HealthStatus.HEALTHY, status_message or "succeeded")
    if phase == "Failed":
        return _pod_failure(obj)
    if phase == "Running":
        if restart_policy != "Always":
            return Health(HealthStatus.PROGRESSING, status_message or "running")
        if _condition_is_true(obj, "Ready"):
            return Health(HealthStatus.HEALTHY, status_message or "running and ready")
        for container in _mappings(_path(obj, "status", "containerStatuses")):
            last_exit = _last_exit(container)
            if last_exit:
                name = _str(container.get("name"))
                reason = _str(_path(container, "lastState", "terminated", "reason"))
                return Health(
                    HealthStatus.DEGRADED,
                    f"container {name} is not ready after it restarted; last exit: {last_exit}",
                    reason,
                )
        return Health(HealthStatus.PROGRESSING, status_message or "running, not ready")
    # Phase Unknown (node unreachable) or not reported yet: it may still come right.
    return Health(HealthStatus.PROGRESSING, status_message or f"phase {phase or 'not reported'}")


def _pvc(obj: Mapping[str, Any]) -> Health:
    phase = _str(_path(obj, "status", "phase"))
    if phase == "Bound":
        return Health(HealthStatus.HEALTHY, "bound")
    if phase == "Lost":
        return Health(HealthStatus.DEGRADED, "its volume was lost", "ClaimLost")
    return Health(HealthStatus.PROGRESSING, f"phase {phase or 'not reported'}")


def _has_load_balancer_ingress(obj: Mapping[str, Any]) -> bool:
    return bool(_mappings(_path(obj, "status", "loadBalancer", "ingress")))


def _service(obj: Mapping[str, Any]) -> Health:
    if _path(obj, "spec", "type") == "LoadBalancer" and not _has_load_balancer_ingress(obj):
        return Health(HealthStatus.PROGRESSING, "waiting for a load balancer address")
    return Health(HealthStatus.HEALTHY)


def _ingress(obj: Mapping[str, Any]) -> Health:
    if not _has_load_balancer_ingress(obj):
        return Health(
            HealthStatus.PROGRESSING, "waiting for the ingress controller to publish an address"
        )
    return Health(HealthStatus.HEALTHY)


def _hpa_conditions(obj: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    conditions = _mappings(_path(obj, "status", "conditions"))
    if conditions:
        return conditions
    annotation = _path(obj, "metadata", "annotations", _HPA_V1_CONDITIONS_ANNOTATION)
    if isinstance(annotation, str):
        try:
            return _mappings(json.loads(annotation))
        except ValueError:
            # A garbled annotation is the API server's business; treat it as "no verdict yet".
            return []
    return []


def _hpa(obj: Mapping[str, Any]) -> Health:
    conditions = _hpa_conditions(obj)
    for condition in conditions:
        kind = _str(condition.get("type"))
        reason = _str(condition.get("reason"))
        # Argo lists FailedGetResourceMetric; the other FailedGet*Metric reasons (pods, object,
        # external, container metrics) are the same failure for other metric sources.
        broken_metrics = (
            kind == "ScalingActive"
            and reason.startswith("FailedGet")
            and condition.get("status") != "True"
        )
        if (kind, reason) in _HPA_DEGRADED or broken_metrics:
            return Health(HealthStatus.DEGRADED, _str(condition.get("message")), reason)
    for condition in conditions:
        if (_str(condition.get("type")), _str(condition.get("reason"))) in _HPA_HEALTHY:
            return Health(HealthStatus.HEALTHY, _str(condition.get("message")))
    return Health(HealthStatus.PROGRESSING, "waiting to autoscale")


_RULES: dict[tuple[str, str], Callable[[Mapping[str, Any]], Health]] = {
    ("apps", "Deployment"): _deployment,
    ("apps", "StatefulSet"): _statefulset,
    ("apps", "DaemonSet"): _daemonset,
    ("apps", "ReplicaSet"): _replicaset,
    ("batch", "Job"): _job,
    ("", "Pod"): _pod,
    ("", "PersistentVolumeClaim"): _pvc,
    ("", "Service"): _service,
    ("networking.k8s.io", "Ingress"): _ingress,
    ("extensions", "Ingress"): _ingress,
    ("autoscaling", "HorizontalPodAutoscaler"): _hpa,
}


def _assess_detail(obj: Mapping[str, Any]) -> Health:
    """Like :func:`assess`, with the bare detail as message (no object name in front)."""
    if _path(obj, "metadata", "deletionTimestamp"):
        return Health(HealthStatus.PROGRESSING, "pending deletion")
    key = (_api_group(_str(obj.get("apiVersion"))), _str(obj.get("kind")))
    rule = _RULES.get(key)
    if rule is None:
        # ConfigMaps, Secrets, RBAC, CRDs, custom resources...: existing is all we can check.
        return Health(HealthStatus.HEALTHY, "exists")
    return rule(obj)


def assess(obj: Mapping[str, Any]) -> Health:
    """The health of one live object (as read from the API server), by Argo CD's rules.

    Kinds without a rule are healthy once they exist.  For an absent object use
    :meth:`Health.missing`.
    """
    finding = _assess_detail(obj)
    return Health(finding.status, _describe(_subject(obj), finding), finding.reason)


# ---------------------------------------------------------------------------------------------
# Failing fast on a workload's pods


def pod_selector(workload: Mapping[str, Any]) -> str | None:
    """The workload's ``spec.selector`` as a label selector string (``app=web,tier=front``).

    None for kinds that do not own pods through a selector, and for an empty selector, which
    would select every pod in the namespace.
    """
    if _str(workload.get("kind")) not in _WORKLOAD_KINDS:
        return None
    selector = _path(workload, "spec", "selector")
    if not isinstance(selector, Mapping):
        return None
    terms: list[str] = []
    match_labels = selector.get("matchLabels")
    if isinstance(match_labels, Mapping):
        terms.extend(f"{key}={value}" for key, value in sorted(match_labels.items()))
    for expression in _mappings(selector.get("matchExpressions")):
        key = _str(expression.get("key"))
        operator = _str(expression.get("operator"))
        values = ",".join(str(value) for value in expression.get("values") or [])
        if operator == "In":
            terms.append(f"{key} in ({values})")
        elif operator == "NotIn":
            terms.append(f"{key} notin ({values})")
        elif operator == "Exists":
            terms.append(key)
        elif operator == "DoesNotExist":
            terms.append(f"!{key}")
    return ",".join(terms) or None


def _env_by_name(container: Mapping[str, Any]) -> dict[str, Any]:
    return {_str(item.get("name")): item for item in _mappings(container.get("env"))}


def _is_subset(expected: Any, actual: Any) -> bool:
    """Whether ``actual`` holds everything ``expected`` does (the API server adds defaults)."""
    if isinstance(expected, Mapping):
        return isinstance(actual, Mapping) and all(
            key in actual and _is_subset(value, actual[key]) for key, value in expected.items()
        )
    return bool(expected == actual)


def _runs_container(template: Mapping[str, Any], running: Mapping[str, Any]) -> bool:
    """Whether a pod's container was made from this template container.

    Image, command and args must match, and every variable of the template's env must be there
    with the same value: a rollout that only fixes an environment variable must not be failed
    by the crashing pods of the old template.  Extra variables, like injected sidecars, are
    tolerated because admission webhooks add them.
    """
    if template.get("image") != running.get("image"):
        return False
    for field in ("command", "args"):
        if (template.get(field) or []) != (running.get(field) or []):
            return False
    running_env = _env_by_name(running)
    for name, item in _env_by_name(template).items():
        if name not in running_env or not _is_subset(item, running_env[name]):
            return False
    running_env_from = _mappings(running.get("envFrom"))
    return all(
        any(_is_subset(source, candidate) for candidate in running_env_from)
        for source in _mappings(template.get("envFrom"))
    )


def _runs_current_template(workload: Mapping[str, Any], pod: Mapping[str, Any]) -> bool:
    template_spec = _path(workload, "spec", "template", "spec")
    for field in ("initContainers", "containers"):
        running = {
            _str(container.get("name")): container
            for container in _mappings(_path(pod, "spec", field))
        }
        for container in _mappings(_path(template_spec, field)):
            match = running.get(_str(container.get("name")))
            if match is None or not _runs_container(container, match):
                return False
    return True


def _workload_pods_detail(
    workload: Mapping[str, Any], pods: Sequence[Mapping[str, Any]]
) -> Health | None:
    for pod in pods:
        if not _runs_current_template(workload, pod):
            continue
        failing = _failing_container(pod)
        if failing is not None:
            return failing
    return None


def assess_workload_pods(
    workload: Mapping[str, Any], pods: Sequence[Mapping[str, Any]]
) -> Health | None:
    """DEGRADED when a pod of the workload's *current* template cannot start its containers.

    Pods made from an older template are ignored, so a crashing old ReplicaSet does not fail a
    good rollout.  The message names the pod, the container, its image and the reason
    (``CrashLoopBackOff``, ``ImagePullBackOff``, ``ErrImagePull``,
    ``CreateContainerConfigError``, ``InvalidImageName``...).  None when no such pod is seen.
    """
    finding = _workload_pods_detail(workload, pods)
    if finding is None:
        return None
    return Health(finding.status, _describe(_subject(workload), finding), finding.reason)


# ---------------------------------------------------------------------------------------------
# Waiting


ReadObject = Callable[[ObjectRef], Awaitable[dict[str, Any] | None]]
"""Reads the live object, or None when it does not exist; raises KubernetesError."""

ListPods = Callable[[str, str], Awaitable[list[dict[str, Any]]]]
"""Lists the pods of a namespace matching a label selector: ``(namespace, selector)``."""


@dataclass(frozen=True)
class HealthOutcome:
    """How waiting ended.

    ``status`` is HEALTHY (every object healthy or suspended), DEGRADED (one failed: waiting
    stopped at once) or PROGRESSING (gave up at the timeout, or was stopped).  ``message`` is
    for the deployment's status_message; ``reason`` is the cluster's reason for a degraded
    object, ``Timeout`` or ``Stopped``.
    """

    status: HealthStatus
    message: str
    reason: str = ""
    timed_out: bool = False
    stopped: bool = False


async def _poll(
    ref: ObjectRef, *, read_object: ReadObject, list_pods: ListPods
) -> Health | KubernetesError:
    """One look at one object (and, while a workload rolls out, at its pods).

    A transient API error is returned rather than raised, so the caller retries it next poll;
    a permanent one propagates.
    """
    try:
        obj = await read_object(ref)
        if obj is None:
            return Health(HealthStatus.MISSING, "not found")
        finding = _assess_detail(obj)
        if finding.status != HealthStatus.PROGRESSING or ref.namespace is None:
            return finding
        selector = pod_selector(obj)
        if selector is None:
            return finding
        pods = await list_pods(ref.namespace, selector)
        return _workload_pods_detail(obj, pods) or finding
    except KubernetesError as exc:
        if exc.permanent:
            raise
        return exc


def _pending_summary(pending: Sequence[ObjectRef], latest: Mapping[ObjectRef, Health]) -> str:
    described: list[str] = []
    for ref in pending:
        health = latest.get(ref)
        detail = health.message if health is not None else ""
        described.append(f"{ref} ({detail})" if detail else str(ref))
    return "; ".join(described)


async def wait_healthy(
    *,
    refs: Sequence[ObjectRef],
    read_object: ReadObject,
    list_pods: ListPods,
    timeout_s: float,
    poll_interval_s: float = 0.5,
    should_stop: Callable[[], Awaitable[bool]] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> HealthOutcome:
    """Poll ``refs`` until all are healthy (or suspended), one is degraded, time runs out or
    ``should_stop()`` says so.

    Objects already healthy are not read again.  Transient KubernetesErrors from the callables
    are retried on the next poll; permanent ones propagate.
    """
    pending = list(dict.fromkeys(refs))
    latest: dict[ObjectRef, Health] = {}
    deadline = clock() + timeout_s
    while True:
        if should_stop is not None and await should_stop():
            return HealthOutcome(
                HealthStatus.PROGRESSING,
                f"stopped while waiting for: {_pending_summary(pending, latest)}",
                reason="Stopped",
                stopped=True,
            )
        if not pending:
            return HealthOutcome(HealthStatus.HEALTHY, "all objects are healthy")
        # A hung API call must not hold the rollout past its timeout, but every poll gets a
        # fair chance even when the deadline is close.
        budget = max(deadline - clock(), poll_interval_s, 1.0)
        results: list[Health | KubernetesError]
        poll_scope = asyncio.timeout(budget)
        try:
            async with poll_scope:
                results = await asyncio.gather(
                    *(_poll(ref, read_object=read_object, list_pods=list_pods) for ref in pending)
                )
        except TimeoutError:
            if not poll_scope.expired():
                raise  # a TimeoutError of the callables' own, not our budget running out
            for ref in pending:
                latest[ref] = Health(HealthStatus.PROGRESSING, "the API server did not answer")
            results = [latest[ref] for ref in pending]
        for ref, result in zip(pending, results, strict=True):
            if isinstance(result, KubernetesError):
                latest[ref] = Health(HealthStatus.PROGRESSING, f"could not be read: {result}")
                continue
            latest[ref] = result
            if result.status == HealthStatus.DEGRADED:
                return HealthOutcome(
                    HealthStatus.DEGRADED, _describe(str(ref), result), reason=result.reason
                )
        pending = [ref for ref in pending if not latest[ref].done]
        if not pending:
            return HealthOutcome(HealthStatus.HEALTHY, "all objects are healthy")
        remaining = deadline - clock()
        if remaining <= 0:
            return HealthOutcome(
                HealthStatus.PROGRESSING,
                f"timed out after {timeout_s:g}s waiting for: {_pending_summary(pending, latest)}",
                reason="Timeout",
                timed_out=True,
            )
        await asyncio.sleep(min(poll_interval_s, remaining))
