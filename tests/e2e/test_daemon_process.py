"""The daemon as a process: run --once exit codes, SIGTERM mid-rollout, restart completes."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from reconciler.db import Store
from tests.integration.conftest import OpsRepoDir


@dataclass
class World:
    store: Store
    env: dict[str, str]
    ops_repo_id: int


@pytest.fixture
def fakekube_process(tmp_path: Path) -> Iterator[Path]:
    """fakekube as its own process (pods take 4 s to become ready), and its kubeconfig."""
    kubeconfig = tmp_path / "kubeconfig"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "reconciler.testing.fakekube",
            "--port",
            "0",
            "--kubeconfig",
            str(kubeconfig),
            "--rollout-delay",
            "4",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    try:
        url = process.stdout.readline().strip()
        assert url.startswith("http://"), f"fakekube did not start: {url!r}"
        yield kubeconfig
    finally:
        process.terminate()
        process.wait(timeout=10)
        process.stdout.close()


@pytest.fixture
async def world(store: Store, fakekube_process: Path, tmp_path: Path) -> AsyncIterator[World]:
    """A store with an ops repo registered, and the environment a daemon process needs."""
    ops = OpsRepoDir(tmp_path / "ops-remote")
    ops.write_project("app")
    ops.commit("app")
    repo = await store.add_ops_repo(name="ops", repo_url=str(ops.path), sync_interval_s=0)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECONCILER_")}
    env.update(
        {
            "DATABASE_URL": store.url,
            "KUBECONFIG": str(fakekube_process),
            "RECONCILER_REPOS_DIR": str(tmp_path / "repos"),
            "RECONCILER_POLL_INTERVAL_S": "1",
            "RECONCILER_HEALTH_TIMEOUT_S": "30",
            "RECONCILER_SHUTDOWN_GRACE_S": "1",
            "RECONCILER_LOG_FORMAT": "json",
            "RECONCILER_LEASE_S": "3",
        }
    )
    yield World(store=store, env=env, ops_repo_id=repo.id)


def _events(stderr: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]


async def _run_once(world: World) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "reconciler", "run", "--once"],
        env=world.env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def test_run_once_exits_zero_when_all_healthy(world: World) -> None:
    """run --once applies, waits, and exits 0 with one canonical 'reconcile' line."""
    await world.store.upsert_deployment(
        project="app", environment="prod", ops_repo_id=world.ops_repo_id, image_ref="reg/app:1"
    )
    result = await _run_once(world)
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
    result = await _run_once(world)
    assert result.returncode == 1
    d = await world.store.get_deployment(project="missing", environment="prod")
    assert d is not None and d.current_status == "failed"
    assert "project directory missing does not exist" in d.status_message


async def test_sigterm_mid_rollout_then_restart_completes(world: World) -> None:
    """SIGTERM mid-rollout exits 0 promptly, records 'interrupted'; a new daemon finishes."""
    await world.store.upsert_deployment(
        project="app", environment="prod", ops_repo_id=world.ops_repo_id, image_ref="reg/app:1"
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "reconciler",
        "run",
        env=world.env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            d = await world.store.get_deployment(project="app", environment="prod")
            assert d is not None
            if d.current_status == "syncing":
                break
            assert time.monotonic() < deadline, "the daemon never started the rollout"
            await asyncio.sleep(0.05)
        began = time.monotonic()
        process.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(process.wait(), timeout=15)
        assert code == 0
        assert time.monotonic() - began < 10
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    d = await world.store.get_deployment(project="app", environment="prod")
    assert d is not None
    [entry] = await world.store.history(deployment_id=d.id)
    assert entry.status == "interrupted"
    assert d.claimed_by is None and d.attempt_started_at is None

    result = await _run_once(world)
    assert result.returncode == 0, result.stderr[-3000:]
    statuses = [h.status for h in await world.store.history(deployment_id=d.id)]
    assert statuses == ["healthy", "interrupted"]
