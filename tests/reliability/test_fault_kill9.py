"""Fault 1: the daemon process is killed with SIGKILL at 20 seeded random moments of a rollout
of 50 deployments, and restarted after each kill."""

from __future__ import annotations

import asyncio
import datetime as dt
import random
from collections.abc import Callable
from pathlib import Path

import asyncpg
import pytest

from reconciler.db import Store, asyncpg_dsn
from reconciler.testing.dbtools import counts_by_status
from reconciler.testing.fakekube import FakeKube
from tests.support.audit import audit, converged
from tests.support.database import DaemonRole
from tests.support.fault_table import FaultRow
from tests.support.gitrepo import OpsRepoDir, add_projects
from tests.support.processes import DaemonProcess, daemon_env
from tests.support.waiting import wait_until

SEED = 20240605
KILLS = 20
DEPLOYMENTS = 50


async def _open_attempts(store: Store) -> set[tuple[int, dt.datetime]]:
    conn = await asyncpg.connect(asyncpg_dsn(store.url))
    try:
        rows = await conn.fetch(
            "SELECT id, attempt_started_at FROM deployments WHERE attempt_started_at IS NOT NULL"
        )
    finally:
        await conn.close()
    return {(r["id"], r["attempt_started_at"]) for r in rows}


@pytest.mark.reliability
async def test_kill_9_at_random_moments_closes_each_interrupted_attempt_once(
    store: Store,
    cluster: FakeKube,
    kubeconfig: Path,
    ops_remote: OpsRepoDir,
    daemon_role: DaemonRole,
    daemon_processes: list[DaemonProcess],
    fault_table: Callable[[FaultRow], None],
    tmp_path: Path,
) -> None:
    """After 20 kill -9s all 50 converge; each attempt left open is closed once, interrupted."""
    rng = random.Random(SEED)
    names = [f"svc{i:02d}" for i in range(DEPLOYMENTS)]
    add_projects(ops_remote, names)
    repo = await store.add_ops_repo(name="ops", repo_url=str(ops_remote.path), sync_interval_s=0)
    for name in names:
        await store.upsert_deployment(
            project=name, environment="prod", ops_repo_id=repo.id, image_ref="reg/app:1"
        )
    # Slow enough pods, and few deployments at a time, that the rollout outlasts 20 kills.
    cluster.rollout_delay_s = 2.5

    def env(*, daemon_id: str, concurrency: int) -> dict[str, str]:
        return daemon_env(
            database_url=daemon_role.url,
            kubeconfig=kubeconfig,
            repos_dir=tmp_path / "repos",
            poll_interval_s="0.5",
            lease_s="2",
            health_timeout_s="60",
            shutdown_grace_s="2",
            concurrency=str(concurrency),
            daemon_id=daemon_id,
        )

    left_open: set[tuple[int, dt.datetime]] = set()
    kills_with_open_attempts = 0
    healthy_at_last_kill = 0
    for kill in range(KILLS):
        # Even lives come back under the same id, as a restarted container would and take their
        # rows back at once; odd lives are new Pods and must wait for the 2 s leases to expire.
        daemon_id = "pod-0" if kill % 2 == 0 else f"pod-{kill}"
        daemon = DaemonProcess(
            env=env(daemon_id=daemon_id, concurrency=2),
            log_path=tmp_path / f"daemon-{kill:02d}.log",
        )
        daemon_processes.append(daemon)
        await daemon.start()
        await daemon.wait_for_event("daemon_started")
        await asyncio.sleep(rng.uniform(0.0, 2.5))
        assert daemon.alive, f"the daemon exited by itself:\n{daemon.tail()}"
        await daemon.kill9()

        async def disconnected() -> bool:
            return await daemon_role.backends() == 0

        # Until the server has seen every connection close, a COMMIT the daemon sent just
        # before dying may still land: only then is the set of open attempts final.
        await wait_until(disconnected, timeout_s=10, what="the killed daemon's connections")
        open_now = await _open_attempts(store)
        kills_with_open_attempts += bool(open_now)
        left_open |= open_now
        healthy_at_last_kill = (await counts_by_status(store)).get("healthy", 0)

    final = DaemonProcess(
        env=env(daemon_id="pod-final", concurrency=16),
        log_path=tmp_path / "daemon-final.log",
    )
    daemon_processes.append(final)
    await final.start()
    # A SIGTERM during the interpreter's own start-up (imports) kills any program: wait until
    # the daemon handles signals before the terminate below can come.
    await final.wait_for_event("daemon_started")

    async def done() -> bool:
        return await converged(store)

    await wait_until(done, timeout_s=120, what="all 50 deployments to converge")
    assert await final.terminate() == 0, final.tail()

    result = await audit(store)
    fault_table(
        FaultRow(
            fault="1. kill -9 of the daemon process",
            injected=f"{KILLS} kills (seed {SEED}), {kills_with_open_attempts} mid-attempt",
            converged=not result.problems,
            deployments=result.deployments,
            history_rows=result.history_rows,
            lost=result.lost + len(left_open - result.interrupted),
            duplicated=result.duplicated + len(result.interrupted - left_open),
            notes=(
                f"{len(left_open)} attempts interrupted, each closed once; "
                f"{healthy_at_last_kill}/{DEPLOYMENTS} healthy at the last kill"
            ),
        )
    )
    assert result.problems == []
    assert result.deployments == DEPLOYMENTS
    assert result.statuses["healthy"] == DEPLOYMENTS
    assert result.terminal_rows == DEPLOYMENTS
    # Exactly the attempts the kills left open, each closed once as interrupted.
    assert result.interrupted == left_open
    assert result.statuses["interrupted"] == len(left_open)
    # Some kills landed in the middle of attempts.  Waiting for health holds no concurrency
    # slot, so the fleet rolls out at once and converges within the first lives; the later
    # kills hit a converged fleet, which must then stay converged (checked above).
    assert kills_with_open_attempts > 0
