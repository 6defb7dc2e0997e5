"""Fault 3: the Kubernetes API answers 30 % of requests with 500, 429 + Retry-After, or hangs
past the client's timeout; then it is down (503) for 20 s while rollouts start.  The daemon
runs in this process with a 1.5 s request timeout handed to Kube.connect."""

from __future__ import annotations

import asyncio
import collections
import itertools
import statistics
from collections.abc import Callable

import pytest

from reconciler.cluster.kube import Kube
from reconciler.daemon import Daemon
from reconciler.testing.fakekube import RequestRecord
from tests.support.audit import audit, converged
from tests.support.fault_table import FaultRow
from tests.support.gitrepo import add_projects
from tests.support.pipeline import Pipeline
from tests.support.waiting import wait_until

PROJECTS = [f"svc{i}" for i in range(10)]
REQUEST_TIMEOUT_S = 1.5
RETRY_AFTER_S = 1
DOWN_S = 20.0


def _key(record: RequestRecord) -> tuple[str, str, tuple[tuple[str, str], ...]]:
    return record.method, record.path, tuple(sorted(record.query.items()))


def _retries(log: list[RequestRecord], status: int) -> list[tuple[RequestRecord, float]]:
    """Each answer with ``status`` to a request about one object, and how long after it the
    same request came again.  Discovery paths are left out: several reconciles may ask for
    them at once, so the next identical request need not be a retry."""
    by_key: dict[object, list[RequestRecord]] = collections.defaultdict(list)
    for record in sorted(log, key=lambda r: r.time):
        if len(record.path.strip("/").split("/")) >= 4:
            by_key[_key(record)].append(record)
    pairs = []
    for records in by_key.values():
        for earlier, later in itertools.pairwise(records):
            if earlier.status == status:
                pairs.append((earlier, later.time - earlier.time))
    return pairs


@pytest.mark.reliability
async def test_api_errors_hangs_and_a_20s_outage(
    world: Pipeline, fault_table: Callable[[FaultRow], None]
) -> None:
    """30 % 500/429/hangs and 20 s down: backoff with jitter, Retry-After kept, all converge."""
    add_projects(world.ops, PROJECTS)
    cluster = world.fakekube
    cluster.rollout_delay_s = 0.3
    faults = cluster.faults
    faults.error_rate = 0.3
    faults.error_kinds = ("500", "429", "hang")
    faults.retry_after_s = RETRY_AFTER_S
    faults.hang_s = REQUEST_TIMEOUT_S + 2.5
    # Even the connection's discovery requests meet the faults.
    kube = await Kube.connect(kubeconfig=str(world.kubeconfig), request_timeout_s=REQUEST_TIMEOUT_S)
    daemon = Daemon(store=world.store, kube=kube, settings=world.settings)
    world.daemons.append((daemon, asyncio.create_task(daemon.run()), kube))

    for project in PROJECTS:
        await world.deploy(project, image_ref="reg/app:1")
    await wait_until(
        lambda: converged(world.store), timeout_s=120, what="convergence under 30 % faults"
    )
    flaky_log = list(cluster.request_log)

    # The API goes down just as a new image is written for everyone: the applies meet it.
    cluster.request_log.clear()
    faults.down = True
    for project in PROJECTS:
        await world.store.set_desired(project=project, environment="prod", image_ref="reg/app:2")
    await asyncio.sleep(DOWN_S)
    faults.down = False
    await wait_until(
        lambda: converged(world.store), timeout_s=120, what="convergence after the outage"
    )
    outage_log = list(cluster.request_log)
    await world.stop_daemons()

    # Failed attempts are allowed only for the injected faults; each is followed by a healthy
    # attempt of the same generation (audit checks that the last row is the healthy one).
    result = await audit(
        world.store,
        allow_failed=lambda message: (
            "fakekube faults" in message or "did not answer within" in message
        ),
    )
    statuses = collections.Counter(r.status for r in flaky_log)
    hangs = sum(1 for r in flaky_log if r.status in (499, 504))
    down_answers = sum(1 for r in outage_log if r.status == 503)
    fault_table(
        FaultRow(
            fault="3. Kubernetes API faults",
            injected=(
                f"{statuses[500]}x500, {statuses[429]}x429, {hangs} hangs of "
                f"{len(flaky_log)} requests; {DOWN_S:g}s down ({down_answers}x503)"
            ),
            converged=not result.problems,
            deployments=result.deployments,
            history_rows=result.history_rows,
            lost=result.lost,
            duplicated=result.duplicated,
            notes=f"{len(result.failed_messages)} attempts failed on the outage, then retried",
        )
    )
    assert result.problems == []
    assert result.statuses["healthy"] == 2 * len(PROJECTS)
    assert result.statuses["interrupted"] == 0
    # Every fault kind happened often enough to matter.
    assert statuses[500] >= 4 and statuses[429] >= 4 and hangs >= 3, statuses

    # Retry-After: the same request never came back sooner than the server asked.
    throttled = _retries(flaky_log, 429)
    assert len(throttled) >= 3
    too_soon = [(r.path, gap) for r, gap in throttled if gap < RETRY_AFTER_S - 0.01]
    assert too_soon == []

    # A hung request was abandoned at the client's timeout, not after the server's hang (the
    # median: a process starved of CPU on a busy machine may stretch one gap).
    hung = sorted(gap for _r, gap in _retries(flaky_log, 504) + _retries(flaky_log, 499))
    assert hung and min(hung) >= REQUEST_TIMEOUT_S
    assert hung[len(hung) // 2] < faults.hang_s

    # Backoff with jitter: 500s were retried after 0.1 to 0.2 s (0.2 s halved at most by
    # jitter), not at once, and not all after the same delay.
    after_500 = [gap for _r, gap in _retries(flaky_log, 500)]
    assert len(after_500) >= 3
    assert min(after_500) >= 0.1
    assert max(after_500) - min(after_500) > 0.005

    # During the outage each request was retried with growing delays.
    by_key: dict[object, list[float]] = collections.defaultdict(list)
    for record in sorted(outage_log, key=lambda r: r.time):
        if record.status == 503 and len(record.path.strip("/").split("/")) >= 4:
            by_key[_key(record)].append(record.time)
    runs = [times for times in by_key.values() if len(times) >= 5]
    assert len(runs) >= 3, "requests were not retried five times during the outage"
    gaps = [[later - earlier for earlier, later in itertools.pairwise(t[:5])] for t in runs]
    medians = [statistics.median(g[i] for g in gaps) for i in range(4)]
    assert medians == sorted(medians) and medians[3] > 3 * medians[0], medians
    first_gaps = sorted(round(g[0], 3) for g in gaps)
    assert len(set(first_gaps)) > 1, f"no jitter: {first_gaps}"


@pytest.mark.reliability
async def test_a_retry_after_longer_than_the_backoff_cap_is_waited_out(world: Pipeline) -> None:
    """A 429 asking for 2 s is retried after 2 s even when backoff is capped at 0.3 s."""
    kube = await Kube.connect(
        kubeconfig=str(world.kubeconfig), request_timeout_s=2.0, retry_max_s=0.3
    )
    try:
        await kube.list_pods("default", "app=none")  # discovery first, without faults
        faults = world.fakekube.faults
        faults.error_rate = 1.0
        faults.error_kinds = ("429",)
        faults.retry_after_s = 2
        world.fakekube.request_log.clear()

        async def heal() -> None:
            await asyncio.sleep(1.0)
            faults.error_rate = 0.0

        healing = asyncio.create_task(heal())
        assert await kube.list_pods("default", "app=none") == []
        await healing
    finally:
        await kube.close()
    log = [r for r in world.fakekube.request_log if r.path == "/api/v1/namespaces/default/pods"]
    assert [r.status for r in log] == [429, 200]
    assert log[1].time - log[0].time >= 2.0
