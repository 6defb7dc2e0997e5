"""Pods: Argo CD's rule for a Pod (gitops-engine ``pkg/health/health_pod.go``), and the
container findings it rests on (a container waiting on CrashLoopBackOff, ImagePullBackOff and
the like, or one that exited with an error)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reconciler.cluster.health.fields import (
    Path,
    annotation,
    count,
    field,
    first_condition,
    located,
    string,
    within,
)
from reconciler.cluster.health.verdict import Health, HealthStatus

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

# Argo CD's opt-in (argo-cd PR #28249): judge a Never/OnFailure pod as if it restarted forever,
# for pods an operator runs as services.  Ignored on Argo hook pods, which are run-once by design.
IGNORE_RESTART_POLICY_ANNOTATION = "argocd.argoproj.io/ignore-restart-policy"
ARGO_HOOK_ANNOTATION = "argocd.argoproj.io/hook"


def _is_failing_wait_reason(reason: str) -> bool:
    return (
        reason in FAILING_WAIT_REASONS
        or reason.startswith("Err")
        or reason.endswith("Error")
        or reason.endswith("BackOff")
    )


def _statuses(pod: Mapping[str, Any], *, init: bool) -> list[tuple[Path, Mapping[str, Any]]]:
    """Container statuses with their paths; init containers first when ``init`` is set."""
    fields = ("initContainerStatuses", "containerStatuses") if init else ("containerStatuses",)
    return [entry for name in fields for entry in located(pod, "status", name)]


def _images_by_container(pod: Mapping[str, Any]) -> dict[str, str]:
    images: dict[str, str] = {}
    for name in ("initContainers", "containers"):
        for path, container in located(pod, "spec", name):
            with within(path):
                images[string(container, "name")] = string(container, "image")
    return images


def failing_container(pod: Mapping[str, Any], *, init: bool = True) -> Health | None:
    """The first container waiting for a reason that will not clear up by itself.

    gitops-engine looks at the app containers only (``init=False``); the fast verdict on a
    workload's pods also looks at init containers, since when one of them fails the others
    never start.  Raises MalformedField on a garbled status.
    """
    images = _images_by_container(pod)
    pod_name = string(pod, "metadata", "name")
    for path, status in _statuses(pod, init=init):
        with within(path):
            finding = _waiting_finding(status, pod_name=pod_name, images=images)
        if finding is not None:
            return finding
    return None


def _waiting_finding(
    status: Mapping[str, Any], *, pod_name: str, images: Mapping[str, str]
) -> Health | None:
    """DEGRADED when this container waits for a failing reason, naming pod, container, image."""
    reason = string(status, "state", "waiting", "reason")
    if not reason or not _is_failing_wait_reason(reason):
        return None
    container = string(status, "name")
    image = images.get(container) or string(status, "image")
    parts = [f"pod {pod_name}", f"container {container}", f"image {image}"]
    kubelet_message = string(status, "state", "waiting", "message")
    if kubelet_message:
        parts.append(kubelet_message)
    last_exit = _last_exit(status)
    if reason == "CrashLoopBackOff" and last_exit:
        # The back-off message says nothing useful; how the container died does.
        parts.append(f"last exit: {last_exit}")
    return Health(HealthStatus.DEGRADED, ": ".join(parts), reason)


def _last_exit(container_status: Mapping[str, Any]) -> str:
    """How the container's previous run ended, or "" if it has not run before."""
    if field(container_status, "lastState", "terminated") is None:
        return ""
    reason = string(container_status, "lastState", "terminated", "reason") or "terminated"
    exit_code = count(container_status, "lastState", "terminated", "exitCode")
    return f"{reason} (exit code {exit_code})"


def _pod_failure(pod: Mapping[str, Any]) -> Health:
    """Why a pod in phase Failed failed, as precisely as its status says."""
    status_reason = string(pod, "status", "reason")
    status_message = string(pod, "status", "message")
    if status_message:
        return Health(HealthStatus.DEGRADED, status_message, status_reason)
    for path, container in _statuses(pod, init=True):
        with within(path):
            finding = _terminated_finding(container, status_reason=status_reason)
        if finding is not None:
            return finding
    return Health(HealthStatus.DEGRADED, "failed", status_reason)


def _terminated_finding(container: Mapping[str, Any], *, status_reason: str) -> Health | None:
    """DEGRADED when this container ended badly (gitops-engine's ``getFailMessage``)."""
    if field(container, "state", "terminated") is None:
        return None
    name = string(container, "name")
    reason = string(container, "state", "terminated", "reason")
    exit_code = count(container, "state", "terminated", "exitCode")
    message = string(container, "state", "terminated", "message")
    if message:
        return Health(HealthStatus.DEGRADED, f"container {name}: {message}", reason)
    if reason == "OOMKilled" or exit_code != 0:
        return Health(
            HealthStatus.DEGRADED,
            f"container {name} failed with exit code {exit_code}",
            reason or status_reason,
        )
    return None


def _running_pod(pod: Mapping[str, Any], *, restarts_forever: bool) -> Health:
    """A pod in phase Running: ready, restarting after a failure, or not ready yet."""
    status_message = string(pod, "status", "message")
    if not restarts_forever:
        # Run-once pods (hooks, a Job's pods) have a finite life: running is not done yet.
        return Health(HealthStatus.PROGRESSING, status_message or "running")
    ready = first_condition(pod, "Ready")
    if ready is not None and ready.true:
        return Health(HealthStatus.HEALTHY, status_message or "running and ready")
    for path, container in _statuses(pod, init=False):
        with within(path):
            last_exit = _last_exit(container)
            name = string(container, "name")
            reason = string(container, "lastState", "terminated", "reason")
        if last_exit:
            return Health(
                HealthStatus.DEGRADED,
                f"container {name} is not ready after it restarted; last exit: {last_exit}",
                reason,
            )
    return Health(HealthStatus.PROGRESSING, status_message or "running, not ready")


def _restarts_forever(pod: Mapping[str, Any]) -> bool:
    """restartPolicy Always (the API server's default), or Argo's opt-in annotation."""
    restart_policy = string(pod, "spec", "restartPolicy") or "Always"
    if restart_policy == "Always":
        return True
    opted_in = annotation(pod, IGNORE_RESTART_POLICY_ANNOTATION) is not None
    return opted_in and annotation(pod, ARGO_HOOK_ANNOTATION) is None


def pod_health(obj: Mapping[str, Any]) -> Health:
    """A Pod, judged by its waiting containers when it restarts forever, else by its phase."""
    restarts_forever = _restarts_forever(obj)
    # Only pods that restart forever are judged by their waiting containers, as Argo does:
    # a run-once pod (a hook, a Job's pod) is judged by how it ends.
    if restarts_forever:
        failing = failing_container(obj, init=False)
        if failing is not None:
            return failing
    phase = string(obj, "status", "phase")
    status_message = string(obj, "status", "message")
    if phase == "Pending":
        return Health(HealthStatus.PROGRESSING, status_message or "pending")
    if phase == "Succeeded":
        return Health(HealthStatus.HEALTHY, status_message or "succeeded")
    if phase == "Failed":
        return _pod_failure(obj)
    if phase == "Running":
        return _running_pod(obj, restarts_forever=restarts_forever)
    # Phase Unknown (node unreachable) or not reported yet: Argo says Unknown; we keep waiting.
    return Health(HealthStatus.PROGRESSING, status_message or f"phase {phase or 'not reported'}")
