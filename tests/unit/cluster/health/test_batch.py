"""assess on batch/v1 Jobs."""

from __future__ import annotations

import pytest

from reconciler.cluster.health import assess
from tests.unit.cluster.health.cases import DEGRADED, HEALTHY, PROGRESSING, SUSPENDED, Case
from tests.unit.cluster.health.objects import job, job_condition

CASES: dict[str, Case] = {
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
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_assess(case: Case) -> None:
    """assess gives each kind's status, cluster reason and message by Argo CD's rules."""
    health = assess(case.obj)
    assert (health.status, health.reason) == (case.status, case.reason), health
    assert case.says in health.message
