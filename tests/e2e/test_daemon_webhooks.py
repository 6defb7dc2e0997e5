"""``reconciler run`` as a process delivers signed webhooks, and SIGTERM ends it promptly while
a receiver hangs."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.db import Store
from tests.support import processes
from tests.support.gitrepo import app_repo
from tests.support.processes import DaemonProcess, daemon_env
from tests.support.waiting import eventually
from tests.support.webhooks import receiving


@pytest.fixture
def fakekube_process(tmp_path: Path) -> Iterator[Path]:
    """fakekube as its own process with quick rollouts, and its kubeconfig."""
    with processes.fakekube_process(tmp_path / "kubeconfig", rollout_delay_s=0.2) as kubeconfig:
        yield kubeconfig


async def test_a_daemon_process_delivers_and_stops_with_a_receiver_hanging(
    store: Store, fakekube_process: Path, tmp_path: Path
) -> None:
    """The healthy transition reaches the signed webhook; with another receiver hanging
    (timeout 60 s), SIGTERM still ends the daemon with exit 0 and gives that row back."""
    ops = app_repo(tmp_path / "ops-remote")
    repo = await store.add_ops_repo(name="ops", repo_url=str(ops.path), sync_interval_s=0)
    env = daemon_env(
        database_url=store.url,
        kubeconfig=fakekube_process,
        repos_dir=tmp_path / "repos",
        poll_interval_s="1",
        shutdown_grace_s="1",
        webhook_timeout_s="60",
    )
    daemon = DaemonProcess(env=env, log_path=tmp_path / "daemon.log")
    async with receiving() as receiver:
        receiver.hanging.add("/hang")
        await store.add_webhook(
            name="ci", url=receiver.url("/ci"), secret="s3cret", statuses=["healthy"]
        )
        await store.add_webhook(name="hang", url=receiver.url("/hang"), statuses=["healthy"])
        await daemon.start()
        try:
            await store.upsert_deployment(
                project="app", environment="prod", ops_repo_id=repo.id, image_ref="reg/app:1"
            )
            await eventually(lambda: len(receiver.on("/ci")) == 1, within=60)
            await eventually(lambda: receiver.waiting == 1, within=30)
            assert await daemon.terminate(timeout_s=15) == 0
        finally:
            await daemon.stop()
    [request] = receiver.on("/ci")
    assert request.json()["to"] == "healthy"
    assert request.signed_by("s3cret", now=time.time())
    [hanging] = await store.recent_deliveries(webhook="hang")
    assert (hanging["status"], hanging["attempts"]) == ("pending", 0)
    assert hanging["last_error"] == "the daemon shut down before the receiver answered"
