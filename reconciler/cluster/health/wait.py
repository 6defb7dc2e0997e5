"""Waiting: :func:`wait_healthy` polls the applied objects until they are all healthy, one is
degraded, the timeout passes or the caller asks it to stop.

It does its I/O through injected callables, so this package never imports the Kubernetes client.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from reconciler.cluster.health.rules import assess_detail
from reconciler.cluster.health.verdict import Health, HealthStatus, describe
from reconciler.cluster.health.workload_pods import pod_selector, workload_pods_detail
from reconciler.errors import KubernetesError
from reconciler.model import ObjectRef

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


_ALL_HEALTHY = HealthOutcome(HealthStatus.HEALTHY, "all objects are healthy")


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
        finding = assess_detail(obj)
        if finding.status != HealthStatus.PROGRESSING or ref.namespace is None:
            return finding
        selector = pod_selector(obj)
        if selector is None:
            return finding
        pods = await list_pods(ref.namespace, selector)
        return workload_pods_detail(obj, pods) or finding
    except KubernetesError as exc:
        if exc.permanent:
            raise
        return exc


async def _look(
    pending: Sequence[ObjectRef], *, read_object: ReadObject, list_pods: ListPods
) -> list[Health | KubernetesError]:
    if len(pending) == 1:  # most polls: no task to start for one look
        return [await _poll(pending[0], read_object=read_object, list_pods=list_pods)]
    return await asyncio.gather(
        *(_poll(ref, read_object=read_object, list_pods=list_pods) for ref in pending)
    )


async def _poll_all(
    pending: Sequence[ObjectRef],
    *,
    read_object: ReadObject,
    list_pods: ListPods,
    budget_s: float | None,
) -> list[Health | KubernetesError]:
    """One concurrent look at every pending object, cut off after ``budget_s`` (None: reads
    that cannot hang, from memory, need no timer)."""
    if budget_s is None:
        return await _look(pending, read_object=read_object, list_pods=list_pods)
    poll_scope = asyncio.timeout(budget_s)
    try:
        async with poll_scope:
            return await _look(pending, read_object=read_object, list_pods=list_pods)
    except TimeoutError:
        if not poll_scope.expired():
            raise  # a TimeoutError of the callables' own, not our budget running out
        return [Health(HealthStatus.PROGRESSING, "the API server did not answer") for _ in pending]


def _record(
    pending: Sequence[ObjectRef],
    results: Sequence[Health | KubernetesError],
    latest: dict[ObjectRef, Health],
) -> HealthOutcome | None:
    """Note each result in ``latest``; the outcome when one object is degraded, else None."""
    for ref, result in zip(pending, results, strict=True):
        if isinstance(result, KubernetesError):
            latest[ref] = Health(HealthStatus.PROGRESSING, f"could not be read: {result}")
            continue
        latest[ref] = result
        if result.status == HealthStatus.DEGRADED:
            return HealthOutcome(
                HealthStatus.DEGRADED, describe(str(ref), result), reason=result.reason
            )
    return None


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
    pause: Callable[[float], Awaitable[None]] = asyncio.sleep,
    reads_can_hang: bool = True,
) -> HealthOutcome:
    """Poll ``refs`` until all are healthy (or suspended), one is degraded, time runs out or
    ``should_stop()`` says so.

    Objects already healthy are not read again.  Transient KubernetesErrors from the callables
    are retried on the next poll; permanent ones propagate.  ``pause`` waits between polls (a
    watch cache's wait for a change, instead of a fixed sleep).  ``reads_can_hang=False`` (the
    callables read memory) drops the per-poll timer that keeps a hung API call from holding
    the rollout past its timeout.
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
            return _ALL_HEALTHY
        # A hung API call must not hold the rollout past its timeout, but every poll gets a
        # fair chance even when the deadline is close.
        budget_s = max(deadline - clock(), poll_interval_s, 1.0) if reads_can_hang else None
        results = await _poll_all(
            pending, read_object=read_object, list_pods=list_pods, budget_s=budget_s
        )
        degraded = _record(pending, results, latest)
        if degraded is not None:
            return degraded
        pending = [ref for ref in pending if not latest[ref].done]
        if not pending:
            return _ALL_HEALTHY
        remaining = deadline - clock()
        if remaining <= 0:
            return HealthOutcome(
                HealthStatus.PROGRESSING,
                f"timed out after {timeout_s:g}s waiting for: {_pending_summary(pending, latest)}",
                reason="Timeout",
                timed_out=True,
            )
        await pause(min(poll_interval_s, remaining))
