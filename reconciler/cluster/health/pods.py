"""Pods: Argo CD's rule for a Pod, and the container findings it rests on (a container waiting
on CrashLoopBackOff, ImagePullBackOff and the like, or one that exited with an error)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reconciler.cluster.health.fields import condition_is_true, count, lookup, mappings, text
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


def _is_failing_wait_reason(reason: str) -> bool:
    return (
        reason in FAILING_WAIT_REASONS
        or reason.startswith("Err")
        or reason.endswith("Error")
        or reason.endswith("BackOff")
    )


def _container_statuses(pod: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """Init containers first: when one of them fails, the others never start."""
    return mappings(lookup(pod, "status", "initContainerStatuses")) + mappings(
        lookup(pod, "status", "containerStatuses")
    )


def _images_by_container(pod_spec: Any) -> dict[str, str]:
    images: dict[str, str] = {}
    for field in ("initContainers", "containers"):
        for container in mappings(lookup(pod_spec, field)):
            images[text(container.get("name"))] = text(container.get("image"))
    return images


def failing_container(pod: Mapping[str, Any]) -> Health | None:
    """The first container waiting for a reason that will not clear up by itself."""
    images = _images_by_container(pod.get("spec"))
    pod_name = text(lookup(pod, "metadata", "name"))
    for status in _container_statuses(pod):
        waiting = lookup(status, "state", "waiting")
        reason = text(lookup(waiting, "reason"))
        if not reason or not _is_failing_wait_reason(reason):
            continue
        container = text(status.get("name"))
        image = images.get(container) or text(status.get("image"))
        parts = [f"pod {pod_name}", f"container {container}", f"image {image}"]
        kubelet_message = text(lookup(waiting, "message"))
        if kubelet_message:
            parts.append(kubelet_message)
        last_exit = _last_exit(status)
        if reason == "CrashLoopBackOff" and last_exit:
            # The back-off message says nothing useful; how the container died does.
            parts.append(f"last exit: {last_exit}")
        return Health(HealthStatus.DEGRADED, ": ".join(parts), reason)
    return None


def _last_exit(container_status: Mapping[str, Any]) -> str:
    terminated = lookup(container_status, "lastState", "terminated")
    if not isinstance(terminated, Mapping):
        return ""
    reason = text(terminated.get("reason")) or "terminated"
    return f"{reason} (exit code {count(terminated.get('exitCode'))})"


def _pod_failure(pod: Mapping[str, Any]) -> Health:
    """Why a pod in phase Failed failed, as precisely as its status says."""
    status_reason = text(lookup(pod, "status", "reason"))
    status_message = text(lookup(pod, "status", "message"))
    if status_message:
        return Health(HealthStatus.DEGRADED, status_message, status_reason)
    for container in _container_statuses(pod):
        terminated = lookup(container, "state", "terminated")
        if not isinstance(terminated, Mapping):
            continue
        name = text(container.get("name"))
        reason = text(terminated.get("reason"))
        exit_code = count(terminated.get("exitCode"))
        message = text(terminated.get("message"))
        if message:
            return Health(HealthStatus.DEGRADED, f"container {name}: {message}", reason)
        if reason == "OOMKilled" or exit_code != 0:
            return Health(
                HealthStatus.DEGRADED,
                f"container {name} failed with exit code {exit_code}",
                reason or status_reason,
            )
    return Health(HealthStatus.DEGRADED, "failed", status_reason)


def _running_pod(pod: Mapping[str, Any], *, restart_policy: str) -> Health:
    """A pod in phase Running: ready, restarting after a failure, or not ready yet."""
    status_message = text(lookup(pod, "status", "message"))
    if restart_policy != "Always":
        return Health(HealthStatus.PROGRESSING, status_message or "running")
    if condition_is_true(pod, "Ready"):
        return Health(HealthStatus.HEALTHY, status_message or "running and ready")
    for container in mappings(lookup(pod, "status", "containerStatuses")):
        last_exit = _last_exit(container)
        if last_exit:
            name = text(container.get("name"))
            reason = text(lookup(container, "lastState", "terminated", "reason"))
            return Health(
                HealthStatus.DEGRADED,
                f"container {name} is not ready after it restarted; last exit: {last_exit}",
                reason,
            )
    return Health(HealthStatus.PROGRESSING, status_message or "running, not ready")


def pod_health(obj: Mapping[str, Any]) -> Health:
    """A Pod, judged by its waiting containers when it restarts forever, else by its phase."""
    restart_policy = text(lookup(obj, "spec", "restartPolicy")) or "Always"
    # Only pods that restart forever are judged by their waiting containers, as Argo does:
    # a run-once pod (a hook, a Job's pod) is judged by how it ends.
    if restart_policy == "Always":
        failing = failing_container(obj)
        if failing is not None:
            return failing
    phase = text(lookup(obj, "status", "phase"))
    status_message = text(lookup(obj, "status", "message"))
    if phase == "Pending":
        return Health(HealthStatus.PROGRESSING, status_message or "pending")
    if phase == "Succeeded":
        return Health(HealthStatus.HEALTHY, status_message or "succeeded")
    if phase == "Failed":
        return _pod_failure(obj)
    if phase == "Running":
        return _running_pod(obj, restart_policy=restart_policy)
    # Phase Unknown (node unreachable) or not reported yet: it may still come right.
    return Health(HealthStatus.PROGRESSING, status_message or f"phase {phase or 'not reported'}")
