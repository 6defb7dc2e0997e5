"""Fault 2: PostgreSQL restarted in the middle of rollouts, then stopped for 10 s while
rollouts finish.  The daemon runs as a process with a 60 s poll interval, so whatever it picks
up quickly after an outage it learned from a NOTIFY on its re-established LISTEN."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import asyncpg
import pytest

from reconciler.db import Store, asyncpg_dsn
from reconciler.errors import DatabaseError
from reconciler.localpg import LocalPostgres
from reconciler.testing.fakekube import FakeKube
from tests.support.audit import audit, converged
from tests.support.database import url_with_user
from tests.support.fault_table import FaultRow
from tests.support.gitrepo import OpsRepoDir
from tests.support.processes import DaemonProcess, daemon_env
from tests.support.waiting import wait_until

POLL_INTERVAL_S = 60.0
OUTAGE_S = 10.0
PROJECTS = [f"svc{i}" for i in range(6)]


@pytest.fixture
async def own_postgres() -> AsyncIterator[LocalPostgres]:
    """A PostgreSQL server of this test's own (the session's is shared and must not restart),
    with a migrated database 'reconciler'."""
    root = Path(tempfile.mkdtemp(prefix="rpg-fault-"))
    server = LocalPostgres(data_dir=root / "data", keep_data=False)
    await asyncio.to_thread(server.start)
    try:
        conn = await asyncpg.connect(asyncpg_dsn(server.url()))
        try:
            await conn.execute("CREATE DATABASE reconciler")
        finally:
            await conn.close()
        store = await Store.connect(server.url("reconciler"), pool_size=2)
        try:
            await store.migrate()
        finally:
            await store.close()
        yield server
    finally:
        await asyncio.to_thread(server.stop)
        shutil.rmtree(root, ignore_errors=True)


async def _open_attempts(store: Store, generation: int) -> bool:
    return all(
        d.attempt_started_at is not None and d.attempt_generation == generation
        for d in await store.list_deployments()
    )


async def _notify_is_heard(store: Store, *, project: str, image_ref: str) -> float:
    """Write a new image for one deployment; return how long until the daemon claims it."""
    written = await store.set_desired(project=project, environment="prod", image_ref=image_ref)

    async def claimed() -> bool:
        d = await store.get_deployment(project=project, environment="prod")
        assert d is not None
        return d.attempt_generation == written.generation or (
            d.observed_generation == written.generation
        )

    return await wait_until(
        claimed, timeout_s=POLL_INTERVAL_S / 2, what=f"the daemon to pick up {image_ref}"
    )


@pytest.mark.reliability
async def test_postgres_restart_and_outage_mid_rollout(
    own_postgres: LocalPostgres,
    cluster: FakeKube,
    kubeconfig: Path,
    ops_remote: OpsRepoDir,
    daemon_processes: list[DaemonProcess],
    fault_table: Callable[[FaultRow], None],
    tmp_path: Path,
) -> None:
    """PostgreSQL restarted, then down 10 s, mid-rollout: logged, retried, relistened, none lost."""
    for project in PROJECTS:
        ops_remote.write_project(project)
    ops_remote.commit("projects")
    url = own_postgres.url("reconciler")
    store = await Store.connect(url, pool_size=2)
    try:
        repo = await store.add_ops_repo(
            name="ops", repo_url=str(ops_remote.path), sync_interval_s=0
        )
        for project in PROJECTS:
            await store.upsert_deployment(
                project=project, environment="prod", ops_repo_id=repo.id, image_ref="reg/app:1"
            )
        cluster.rollout_delay_s = 3.0
        daemon = DaemonProcess(
            env=daemon_env(
                database_url=url,
                kubeconfig=kubeconfig,
                repos_dir=tmp_path / "repos",
                poll_interval_s=str(POLL_INTERVAL_S),
                lease_s="30",
                health_timeout_s="60",
                shutdown_grace_s="2",
                daemon_id="daemon-pg",
            ),
            log_path=tmp_path / "daemon.log",
        )
        daemon_processes.append(daemon)
        await daemon.start()
        await daemon.wait_for_event("listening")

        # 1. Restart while every deployment is mid-rollout.
        await wait_until(
            lambda: _open_attempts(store, 1), timeout_s=30, what="rollouts of generation 1"
        )
        await asyncio.to_thread(own_postgres.restart)
        await daemon.wait_for_event("listening", count=2)
        await wait_until(lambda: converged(store), timeout_s=30, what="generation 1 to converge")
        heard_after_restart = await _notify_is_heard(store, project="svc0", image_ref="reg/app:2")
        await wait_until(lambda: converged(store), timeout_s=30, what="svc0 to converge")

        # 2. Stop for 10 s while every deployment is mid-rollout: the rollouts finish while
        # the database is away, and their outcomes must still be recorded, once.
        for project in PROJECTS:
            await store.set_desired(project=project, environment="prod", image_ref="reg/app:3")
        generations = {d.project: d.generation for d in await store.list_deployments()}

        async def all_rolling() -> bool:
            return all(
                d.attempt_started_at is not None and d.attempt_generation == generations[d.project]
                for d in await store.list_deployments()
            )

        await wait_until(all_rolling, timeout_s=30, what="rollouts of reg/app:3")
        await asyncio.to_thread(own_postgres.kill)
        stopped_at = time.monotonic()
        await asyncio.sleep(OUTAGE_S)
        assert daemon.alive, f"the daemon exited while PostgreSQL was down:\n{daemon.tail()}"
        await asyncio.to_thread(own_postgres.restart)
        outage_s = time.monotonic() - stopped_at
        await daemon.wait_for_event("listening", count=3)
        await wait_until(lambda: converged(store), timeout_s=30, what="reg/app:3 to converge")
        heard_after_outage = await _notify_is_heard(store, project="svc1", image_ref="reg/app:4")
        await wait_until(lambda: converged(store), timeout_s=30, what="svc1 to converge")

        assert daemon.alive, daemon.tail()
        assert await daemon.terminate() == 0, daemon.tail()
        result = await audit(store)
    finally:
        await store.close()

    events = daemon.events()
    lost_listen = [e for e in events if e["event"] == "listen_lost"]
    retries = [e for e in events if e["event"] in ("record_retry", "database_unavailable")]
    fault_table(
        FaultRow(
            fault="2. PostgreSQL restart + stop",
            injected=f"1 restart, 1 stop of {outage_s:.1f}s, both mid-rollout",
            converged=not result.problems,
            deployments=result.deployments,
            history_rows=result.history_rows,
            lost=result.lost + result.statuses["interrupted"],
            duplicated=result.duplicated,
            notes=(
                f"NOTIFY heard {heard_after_restart:.2f}s / {heard_after_outage:.2f}s after the"
                f" outages (poll {POLL_INTERVAL_S:g}s); {len(lost_listen)} LISTEN retries,"
                f" {len(retries)} write retries"
            ),
        )
    )
    assert result.problems == []
    # Every generation was rolled out once, by a daemon that never died: nothing interrupted.
    assert dict(result.statuses) == {"healthy": len(PROJECTS) * 2 + 2}
    # A NOTIFY after each outage was heard long before the next poll.
    assert heard_after_restart < POLL_INTERVAL_S / 6
    assert heard_after_outage < POLL_INTERVAL_S / 6
    # The outage was logged, and the LISTEN connection was retried with growing delays.
    delays = [float(e["retry_in_s"]) for e in lost_listen]
    assert len(delays) >= 3, daemon.tail()
    assert max(delays) >= 4 * min(delays), delays
    assert retries, "no retry of a database write was logged"


@pytest.mark.reliability
async def test_database_errors_tell_a_retry_from_a_refusal(own_postgres: LocalPostgres) -> None:
    """A refused statement is a permanent DatabaseError; an unreachable server a transient one."""
    url = own_postgres.url("reconciler")
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        await conn.execute("CREATE ROLE outsider LOGIN")  # no privileges on the tables
    finally:
        await conn.close()
    store = await Store.connect(url_with_user(url, "outsider"), pool_size=1)
    try:
        with pytest.raises(DatabaseError) as refused:
            await store.list_deployments()
        assert refused.value.permanent
        assert "permission denied for table deployments" in str(refused.value)
        await asyncio.to_thread(own_postgres.kill)
        with pytest.raises(DatabaseError) as away:
            await store.list_deployments()
        assert not away.value.permanent
        assert str(away.value).startswith("cannot reach PostgreSQL at ")
    finally:
        await store.close()
