"""Failing fast on a workload's pods.

A Deployment only reports ``ProgressDeadlineExceeded`` after ``progressDeadlineSeconds`` (600 s
by default), much later than our health timeout, while its pods say "ImagePullBackOff" within
seconds: :func:`assess_workload_pods` reads that verdict from the pods of the current template.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from reconciler.cluster.health.fields import MalformedField, lookup, mappings, text
from reconciler.cluster.health.pods import failing_container
from reconciler.cluster.health.verdict import Health, named, subject_of

# Kinds whose pods we list to fail fast (their spec.selector picks the pods).
_WORKLOAD_KINDS = frozenset({"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"})


def pod_selector(workload: Mapping[str, Any]) -> str | None:
    """The workload's ``spec.selector`` as a label selector string (``app=web,tier=front``).

    None for kinds that do not own pods through a selector, and for an empty selector, which
    would select every pod in the namespace.
    """
    if text(lookup(workload, "kind")) not in _WORKLOAD_KINDS:
        return None
    selector = lookup(workload, "spec", "selector")
    if not isinstance(selector, Mapping):
        return None
    terms: list[str] = []
    match_labels = selector.get("matchLabels")
    if isinstance(match_labels, Mapping):
        terms.extend(f"{key}={value}" for key, value in sorted(match_labels.items()))
    for expression in mappings(selector.get("matchExpressions")):
        term = _expression_term(expression)
        if term is not None:
            terms.append(term)
    return ",".join(terms) or None


def _expression_term(expression: Mapping[str, Any]) -> str | None:
    """One ``matchExpressions`` entry in label selector syntax; None for an unknown operator."""
    key = text(expression.get("key"))
    operator = text(expression.get("operator"))
    raw_values = expression.get("values")
    values = ",".join(str(value) for value in raw_values) if isinstance(raw_values, list) else ""
    if operator == "In":
        return f"{key} in ({values})"
    if operator == "NotIn":
        return f"{key} notin ({values})"
    if operator == "Exists":
        return key
    if operator == "DoesNotExist":
        return f"!{key}"
    return None


def _env_by_name(container: Mapping[str, Any]) -> dict[str, Any]:
    return {text(item.get("name")): item for item in mappings(container.get("env"))}


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
    running_env_from = mappings(running.get("envFrom"))
    return all(
        any(_is_subset(source, candidate) for candidate in running_env_from)
        for source in mappings(template.get("envFrom"))
    )


def _runs_current_template(workload: Mapping[str, Any], pod: Mapping[str, Any]) -> bool:
    template_spec = lookup(workload, "spec", "template", "spec")
    for field in ("initContainers", "containers"):
        running = {
            text(container.get("name")): container
            for container in mappings(lookup(pod, "spec", field))
        }
        for container in mappings(lookup(template_spec, field)):
            match = running.get(text(container.get("name")))
            if match is None or not _runs_container(container, match):
                return False
    return True


def workload_pods_detail(
    workload: Mapping[str, Any], pods: Sequence[Mapping[str, Any]]
) -> Health | None:
    """Like :func:`assess_workload_pods`, with the bare detail as message."""
    for pod in pods:
        if not isinstance(pod, Mapping) or not _runs_current_template(workload, pod):
            continue
        try:
            failing = failing_container(pod)
        except MalformedField:
            # A garbled pod tells us nothing; the workload's own status still decides.
            continue
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
    finding = workload_pods_detail(workload, pods)
    if finding is None:
        return None
    return named(subject_of(workload), finding)
