"""The daemon as a process: run --once exit codes, SIGTERM mid-rollout, restart completes."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

from reconciler.db import Store, asyncpg_dsn
from reconciler.repos.layout import claim_repos_dir
from tests.support import processes
from tests.support.gitrepo import app_repo
from tests.support.processes import DaemonProcess, daemon_env, run_daemon_once
from tests.support.waiting import eventually


@dataclass
class World:
    store: Store
    env: dict[str, str]
    ops_repo_id: int
    log_path: Path
    """Where a daemon process the test starts writes its log."""


@pytest.fixture
def fakekube_process(tmp_path: Path) -> Iterator[Path]:
    """fakekube as its own process (pods take 4 s to become ready), and its kubeconfig."""
    with processes.fakekube_process(tmp_path / "kubeconfig", rollout_delay_s=4) as kubeconfig:
        yield kubeconfig


@pytest.fixture
async def world(store: Store, fakekube_process: Path, tmp_path: Path) -> AsyncIterator[World]:
    """A store with an ops repo registered, and the environment a daemon process needs."""
    ops = app_repo(tmp_path / "ops-remote")
    repo = await store.add_ops_repo(name="ops", repo_url=str(ops.path), sync_interval_s=0)
    env = daemon_env(
        database_url=store.url,
        kubeconfig=fakekube_process,
        repos_dir=tmp_path / "repos",
        poll_interval_s="1",
        health_timeout_s="30",
        shutdown_grace_s="1",
        lease_s="3",
    )
    yield World(store=store, env=env, ops_repo_id=repo.id, log_path=tmp_path / "daemon.log")


def _events(stderr: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]


async def test_run_once_exits_zero_when_all_healthy(world: World) -> None:
    """run --once applies, waits, and exits 0 with one canonical 'reconcile' line."""
    await world.store.upsert_deployment(
        project="app", environment="prod", ops_repo_id=world.ops_repo_id, image_ref="reg/app:1"
    )
    result = await run_daemon_once(world.env)
    assert result.returncode == 0, result.stderr[-3000:]
    [line] = [e for e in _events(result.stderr) if e["event"] == "reconcile"]
    assert (line["status"], line["project"], line["image_ref"]) == ("healthy", "app", "reg/app:1")
    d = await world.store.get_deployment(project="app", environment="prod")
    assert d is not None and d.current_status == "healthy"


async def test_run_once_exits_one_when_a_deployment_fails(world: World) -> None:
    """run --once exits 1 when something it touched did not end healthy."""
    await world.store.upsert_deployment(
        project="missing", environment="prod", ops_repo_id=world.ops_repo_id, image_ref="reg/app:1"
    )
    result = await run_daemon_once(world.env)
    assert result.returncode == 1
    d = await world.store.get_deployment(project="missing", environment="prod")
    assert d is not None and d.current_status == "failed"
    assert "project directory missing does not exist" in d.status_message


async def test_run_once_reports_only_what_it_reconciled_itself(world: World) -> None:
    """A failing deploy another daemon holds (a live lease) is not run --once's: it touches
    nothing and exits 0; `reconciler wait` is what reports how that deploy ends."""
    d = await world.store.upsert_deployment(
        project="missing", environment="prod", ops_repo_id=world.ops_repo_id, image_ref="reg/app:1"
    )
    conn = await asyncpg.connect(asyncpg_dsn(world.store.url))
    try:
        await conn.execute(
            "UPDATE deployments SET claimed_by = 'elsewhere', "
            "lease_expires_at = now() + interval '1 hour' WHERE id = $1",
            d.id,
        )
    finally:
        await conn.close()
    result = await run_daemon_once(world.env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert not [e for e in _events(result.stderr) if e["event"] == "reconcile"]
    after = await world.store.get_deployment(project="missing", environment="prod")
    assert after is not None
    assert (after.current_status, after.claimed_by) == ("pending", "elsewhere")


async def test_sigterm_mid_rollout_then_restart_completes(world: World) -> None:
    """SIGTERM mid-rollout exits 0 promptly, records 'interrupted'; a new daemon finishes."""
    await world.store.upsert_deployment(
        project="app", environment="prod", ops_repo_id=world.ops_repo_id, image_ref="reg/app:1"
    )
    daemon = DaemonProcess(env=world.env, log_path=world.log_path)
    await daemon.start()
    try:

        async def rolling_out() -> bool:
            d = await world.store.get_deployment(project="app", environment="prod")
            assert d is not None
            return d.current_status == "syncing"

        await eventually(
            rolling_out, within=30, message="the daemon never started the rollout", interval_s=0.05
        )
        began = time.monotonic()
        code = await daemon.terminate(timeout_s=15)
        assert code == 0
        assert time.monotonic() - began < 10
    finally:
        await daemon.stop()
    d = await world.store.get_deployment(project="app", environment="prod")
    assert d is not None
    [entry] = await world.store.history(deployment_id=d.id)
    assert entry.status == "interrupted"
    assert d.claimed_by is None and d.attempt_started_at is None

    result = await run_daemon_once(world.env)
    assert result.returncode == 0, result.stderr[-3000:]
    statuses = [h.status for h in await world.store.history(deployment_id=d.id)]
    assert statuses == ["healthy", "interrupted"]


async def test_a_second_daemon_on_the_same_repos_dir_refuses_to_start(tmp_path: Path) -> None:
    """A daemon whose RECONCILER_REPOS_DIR another daemon holds exits 1 naming dir and pid."""
    repos_dir = tmp_path / "repos"
    env = daemon_env(
        database_url="postgresql://u:pw@127.0.0.1:9/db",
        kubeconfig=tmp_path / "kubeconfig",
        repos_dir=repos_dir,
    )
    with claim_repos_dir(repos_dir):
        result = await run_daemon_once(env)
    assert result.returncode == 1, result.stderr[-3000:]
    assert (
        f"RECONCILER_REPOS_DIR {repos_dir} is in use by another reconciler daemon"
        f" (pid {os.getpid()})"
    ) in result.stderr
    assert "Traceback" not in result.stderr


async def test_ops_repo_sync_wait_reports_the_commit_the_daemon_synced(world: World) -> None:
    """ops-repo sync --wait: the running daemon syncs on the NOTIFY (no deployment makes the
    repo due) and the CLI prints the sha it recorded."""
    daemon = DaemonProcess(env=world.env, log_path=world.log_path)
    await daemon.start()
    try:
        await daemon.wait_for_event("listening")
        result = await asyncio.to_thread(
            processes.run_cli,
            "ops-repo",
            "sync",
            "ops",
            "--wait",
            "30",
            database_url=world.store.url,
        )
        repo = await world.store.get_ops_repo("ops")
        assert repo is not None and repo.last_sha is not None
        assert result.returncode == 0, result.stdout + result.stderr
        assert result.stdout.splitlines() == [
            "ops: asked the daemon to sync",
            f"ops: at {repo.last_sha}",
        ]
        snapshot = Path(world.env["RECONCILER_REPOS_DIR"]) / ".snapshots" / "ops" / repo.last_sha
        assert (snapshot / "app" / "values.yaml").is_file()
    finally:
        await daemon.stop()


async def _rolling_out(world: World, *, env: dict[str, str]) -> DaemonProcess:
    await world.store.upsert_deployment(
        project="app", environment="prod", ops_repo_id=world.ops_repo_id, image_ref="reg/app:1"
    )
    daemon = DaemonProcess(env=env, log_path=world.log_path)
    await daemon.start()

    async def rolling_out() -> bool:
        d = await world.store.get_deployment(project="app", environment="prod")
        assert d is not None
        return d.current_status == "syncing"

    await eventually(
        rolling_out, within=30, message="the daemon never started the rollout", interval_s=0.05
    )
    return daemon


async def _history_statuses(world: World) -> list[str]:
    d = await world.store.get_deployment(project="app", environment="prod")
    assert d is not None
    return [h.status for h in await world.store.history(deployment_id=d.id)]


async def test_sighup_drains_like_sigterm(world: World) -> None:
    """SIGHUP mid-rollout (a closed terminal, a supervisor's reload) drains and exits 0 with
    the attempt recorded, instead of killing the daemon."""
    daemon = await _rolling_out(world, env=world.env)
    try:
        assert await daemon.terminate(timeout_s=15, signum=signal.SIGHUP) == 0
    finally:
        await daemon.stop()
    assert await _history_statuses(world) == ["interrupted"]


async def test_a_second_signal_stops_at_once(world: World) -> None:
    """With a long shutdown grace, a second SIGTERM ends the drain at once: exit 0, the
    rollout recorded as interrupted, well before the grace is up."""
    env = {**world.env, "RECONCILER_SHUTDOWN_GRACE_S": "120"}
    daemon = await _rolling_out(world, env=env)
    try:
        daemon.send(signal.SIGTERM)
        await asyncio.sleep(1.0)
        assert daemon.alive  # draining: the rollout has 120 s to finish
        began = time.monotonic()
        assert await daemon.terminate(timeout_s=30) == 0
        assert time.monotonic() - began < 15
    finally:
        await daemon.stop()
    assert await _history_statuses(world) == ["interrupted"]
