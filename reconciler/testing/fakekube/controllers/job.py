"""The Job controller: Pods run to completion, NonIndexed or Indexed.

A Job ends ``Complete`` (after ``SuccessCriteriaMet``) once enough Pods succeeded, or
``Failed`` (after ``FailureTarget``) past its backoff limit or its active deadline; a suspended
Job has no Pods; a finished one is deleted ``ttlSecondsAfterFinished`` (scaled) later.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..objects import now_iso, random_suffix
from .conditions import condition
from .manager import ControllerManager
from .workload import WorkloadController, is_ready, is_terminated

_COMPLETION_INDEX = "batch.kubernetes.io/job-completion-index"

#: (condition type, reason, message) of a Job's end.
Terminal = tuple[str, str, str]


@dataclass
class _JobPods:
    """A Job's Pods that are not being deleted, by phase."""

    succeeded: list[dict[str, Any]]
    failed: list[dict[str, Any]]
    active: list[dict[str, Any]]

    @classmethod
    def of(cls, pods: list[dict[str, Any]]) -> _JobPods:
        """``pods`` sorted by phase."""
        return cls(
            succeeded=[p for p in pods if (p.get("status") or {}).get("phase") == "Succeeded"],
            failed=[p for p in pods if (p.get("status") or {}).get("phase") == "Failed"],
            active=[p for p in pods if not is_terminated(p)],
        )

    def failures(self, spec: dict[str, Any]) -> int:
        """Failed Pods, plus container restarts when the Pods restart ``OnFailure``."""
        restarts = sum(
            int(s.get("restartCount", 0))
            for p in self.active
            for s in (p.get("status") or {}).get("containerStatuses") or ()
        )
        on_failure = spec.get("template", {}).get("spec", {}).get("restartPolicy") == "OnFailure"
        return len(self.failed) + (restarts if on_failure else 0)


class JobController(WorkloadController):
    """The ``job`` controller."""

    def __init__(self, manager: ControllerManager) -> None:
        super().__init__(manager)
        self.jobs = self.registry.resource("batch/v1", "Job")

    def sync(self, namespace: str, name: str) -> None:
        """Runs Pods to completion; Complete or Failed (backoff limit, deadline)."""
        job = self.registry.find(self.jobs, namespace, name)
        if job is None or job["metadata"].get("deletionTimestamp"):
            return
        spec = job.get("spec") or {}
        status = dict(job.get("status") or {})
        conditions = status.get("conditions") or []
        memory = self.manager.remember(job["metadata"]["uid"])
        now = self.manager.now()
        if any(
            c.get("type") in ("Complete", "Failed") and c.get("status") == "True"
            for c in conditions
        ):
            self._expire(job, memory, now)
            return
        pods = _JobPods.of(
            [p for p in self.owned(job, self.pods) if not p["metadata"].get("deletionTimestamp")]
        )
        failed = pods.failures(spec)
        started = memory.setdefault("started", now)
        status.setdefault("startTime", now_iso())
        terminal: Terminal | None = None
        if spec.get("suspend"):
            for pod in pods.active:
                self.delete(self.pods, pod)
            pods.active = []
        else:
            terminal = self._terminal(spec, pods, failed=failed, elapsed=now - started)
            if terminal is None and not self._run(job, pods, started=started, now=now):
                return
        _count(status, spec, pods)
        if terminal is not None:
            self._end(status, conditions, pods, terminal)
            memory["finished"] = now
        elif spec.get("suspend"):
            status["conditions"] = [
                *(c for c in conditions if c.get("type") != "Suspended"),
                condition(conditions, "Suspended", "True", "JobSuspended", "Job suspended"),
            ]
        self.registry.write_status(self.jobs, job, status)
        if terminal is not None:
            self._expire(job, memory, now)

    def _terminal(
        self, spec: dict[str, Any], pods: _JobPods, *, failed: int, elapsed: float
    ) -> Terminal | None:
        """How the Job ends now, if it does."""
        completions = spec.get("completions")
        deadline = spec.get("activeDeadlineSeconds")
        succeeded = len(pods.succeeded)
        if failed > int(spec.get("backoffLimit", 6)):
            return ("Failed", "BackoffLimitExceeded", "Job has reached the specified backoff limit")
        if deadline is not None and elapsed >= self.manager.scaled(float(deadline)):
            return ("Failed", "DeadlineExceeded", "Job was active longer than specified deadline")
        if (completions is not None and succeeded >= int(completions)) or (
            completions is None and succeeded >= 1 and not pods.active
        ):
            return ("Complete", "CompletionsReached", "Reached expected number of succeeded pods")
        return None

    def _run(self, job: dict[str, Any], pods: _JobPods, *, started: float, now: float) -> bool:
        """Starts the Pods parallelism asks for; False when one could not be created."""
        spec = job.get("spec") or {}
        name = job["metadata"]["name"]
        completions = spec.get("completions")
        parallelism = int(spec.get("parallelism", 1))
        remaining = (
            int(completions) - len(pods.succeeded) if completions is not None else parallelism
        )
        wanted = min(parallelism, remaining) - len(pods.active)
        indexed = spec.get("completionMode") == "Indexed"
        taken = {
            (p["metadata"].get("annotations") or {}).get(_COMPLETION_INDEX)
            for p in [*pods.active, *pods.succeeded]
        }
        next_index = 0
        for _ in range(max(0, wanted)):
            extra_labels: dict[str, str] = {}
            annotations: dict[str, str] = {}
            updates: dict[str, Any] = {}
            pod_name = f"{name}-{random_suffix()}"
            if indexed:
                while str(next_index) in taken:
                    next_index += 1
                taken.add(str(next_index))
                annotations[_COMPLETION_INDEX] = str(next_index)
                extra_labels[_COMPLETION_INDEX] = str(next_index)
                updates["hostname"] = f"{name}-{next_index}"
                pod_name = f"{name}-{next_index}-{random_suffix()}"
            created = self.new_pod(
                job,
                spec.get("template") or {},
                name=pod_name,
                extra_labels=extra_labels,
                extra_annotations=annotations,
                spec_updates=updates,
            )
            if created is None:
                return False
            pods.active.append(created)
        deadline = spec.get("activeDeadlineSeconds")
        if deadline is not None:
            wait = started + self.manager.scaled(float(deadline)) - now
            self.manager.enqueue("job", job["metadata"]["namespace"], name, max(0.0, wait) + 0.001)
        return True

    def _end(
        self,
        status: dict[str, Any],
        conditions: list[dict[str, Any]],
        pods: _JobPods,
        terminal: Terminal,
    ) -> None:
        """Deletes the active Pods; the interim and final conditions of the Job's end."""
        kind, reason, message = terminal
        for pod in pods.active:
            self.delete(self.pods, pod)
        status.pop("active", None)
        status["ready"] = 0
        interim = "SuccessCriteriaMet" if kind == "Complete" else "FailureTarget"
        status["conditions"] = [
            *(c for c in conditions if c.get("type") not in (interim, kind)),
            {
                **condition(conditions, interim, "True", reason, message),
                "lastProbeTime": now_iso(),
            },
            {
                **condition(conditions, kind, "True", reason, message),
                "lastProbeTime": now_iso(),
            },
        ]
        if kind == "Complete":
            status["completionTime"] = now_iso()

    def _expire(self, job: dict[str, Any], memory: dict[str, Any], now: float) -> None:
        ttl = (job.get("spec") or {}).get("ttlSecondsAfterFinished")
        if ttl is None:
            return
        finished = memory.setdefault("finished", now)
        wait = finished + self.manager.scaled(float(ttl)) - now
        meta = job["metadata"]
        if wait > 0:
            self.manager.enqueue("job", meta["namespace"], meta["name"], wait)
            return
        self.delete(self.jobs, job)


def _count(status: dict[str, Any], spec: dict[str, Any], pods: _JobPods) -> None:
    """The Pod counts of the status (zero counts left out), and the completed indexes."""
    status["active"] = len(pods.active)
    status["succeeded"] = len(pods.succeeded)
    status["failed"] = len(pods.failed)
    status["ready"] = sum(1 for p in pods.active if is_ready(p))
    status["terminating"] = 0
    status["uncountedTerminatedPods"] = {}
    if spec.get("completionMode") == "Indexed":
        done = sorted(
            int(idx)
            for p in pods.succeeded
            if (idx := (p["metadata"].get("annotations") or {}).get(_COMPLETION_INDEX)) is not None
        )
        if done:
            status["completedIndexes"] = _ranges(done)
    for key in ("active", "succeeded", "failed"):
        if status[key] == 0:
            del status[key]


def _ranges(numbers: list[int]) -> str:
    parts: list[str] = []
    start = previous = numbers[0]
    for number in numbers[1:]:
        if number == previous + 1:
            previous = number
            continue
        parts.append(f"{start}-{previous}" if start != previous else str(start))
        start = previous = number
    parts.append(f"{start}-{previous}" if start != previous else str(start))
    return ",".join(parts)
