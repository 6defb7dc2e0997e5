"""assess on batch/v1 Jobs.

Rules pinned here: gitops-engine ``pkg/health/health_job.go`` (identical to Argo CD's
``resource_customizations/batch/Job/health.lua``) and its fixtures ``job-running.yaml``,
``job-failed.yaml``, ``job-succeeded.yaml``, ``job-suspended.yaml``.  The conditions are
Kubernetes' (https://kubernetes.io/docs/concepts/workloads/controllers/job/
#terminal-job-conditions and #suspending-a-job).
"""

from __future__ import annotations

import pytest

from reconciler.cluster.health import assess
from tests.unit.cluster.health.cases import DEGRADED, HEALTHY, PROGRESSING, SUSPENDED, Case
from tests.unit.cluster.health.objects import Obj, job, job_condition


def job_with(*conditions: tuple[str, str, str]) -> Obj:
    """A Job reporting (type, status, reason) conditions in this order."""
    listed = [
        {"type": kind, "status": status, "reason": reason, "message": f"{kind} {reason}"}
        for kind, status, reason in conditions
    ]
    return job(status={"active": 0, "conditions": listed})


CASES: dict[str, Case] = {
    # No Failed, Complete or Suspended condition: still running.
    "job running": Case(job(), PROGRESSING, says="1 active"),
    "job complete": Case(
        job_condition("Complete", "CompletionsReached", "Reached expected number of succeeded"),
        HEALTHY,
        says="Reached expected number",
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
    # Kubernetes 1.31+ writes FailureTarget first, then Failed once the pods are gone;
    # gitops-engine only reads Failed, so FailureTarget alone is still progressing.
    "job failure target only": Case(
        job_with(("FailureTarget", "True", "BackoffLimitExceeded")),
        PROGRESSING,
        says="failing, waiting for its pods to terminate (BackoffLimitExceeded",
    ),
    "job failure target, then failed": Case(
        job_with(
            ("FailureTarget", "True", "BackoffLimitExceeded"),
            ("Failed", "True", "BackoffLimitExceeded"),
        ),
        DEGRADED,
        reason="BackoffLimitExceeded",
    ),
    # SuccessCriteriaMet is the interim condition before Complete: not a verdict.
    "job success criteria met only": Case(
        job_with(("SuccessCriteriaMet", "True", "CompletionsReached")), PROGRESSING
    ),
    # Failed wins over Complete whatever the order.
    "job complete and failed": Case(
        job_with(("Complete", "True", "CompletionsReached"), ("Failed", "True", "PodFailure")),
        DEGRADED,
        reason="PodFailure",
    ),
    # Suspended=True is Suspended (fixture job-suspended.yaml); spec.suspend alone is not
    # read: the verdict waits for the controller's condition.
    "job suspended condition": Case(
        job_condition("Suspended", "JobSuspended", "Job suspended"), SUSPENDED
    ),
    "job suspended in spec, no condition yet": Case(job(spec={"suspend": True}), PROGRESSING),
    # gitops-engine counts any Suspended condition as "finished": a resumed Job
    # (Suspended=False, reason JobResumed) reads as Healthy.  Parity, quirk included.
    "job resumed (Suspended=False)": Case(
        job_with(("Suspended", "False", "JobResumed")), HEALTHY, says="Suspended JobResumed"
    ),
    # Failed and Complete end the Job whatever their status field says.
    "job failed condition with status False": Case(
        job_with(("Failed", "False", "BackoffLimitExceeded")),
        DEGRADED,
        reason="BackoffLimitExceeded",
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_assess(case: Case) -> None:
    """assess gives each kind's status, cluster reason and message by Argo CD's rules."""
    health = assess(case.obj)
    assert (health.status, health.reason) == (case.status, case.reason), health
    assert case.says in health.message
