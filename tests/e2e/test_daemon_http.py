"""``reconciler run`` as a process serves its probes on RECONCILER_HTTP_ADDRESS and stops
serving them when it exits."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from reconciler.db import Store
from tests.support import processes
from tests.support.gitrepo import app_repo
from tests.support.own_postgres import own_postgres
from tests.support.probes import get, scrape, value, wait_for_answer
from tests.support.processes import DaemonProcess, daemon_env


@pytest.fixture
def fakekube_process(tmp_path: Path) -> Iterator[Path]:
    """fakekube as its own process, and its kubeconfig."""
    with processes.fakekube_process(tmp_path / "kubeconfig", rollout_delay_s=0.2) as kubeconfig:
        yield kubeconfig


async def test_a_daemon_process_serves_probes_until_sigterm(
    store: Store, fakekube_process: Path, tmp_path: Path
) -> None:
    """The variable is read, the bound port logged, /readyz and /metrics answer, and SIGTERM
    ends the process with 0 and the port closed."""
    ops = app_repo(tmp_path / "ops-remote")
    await store.add_ops_repo(name="ops", repo_url=str(ops.path), sync_interval_s=0)
    daemon = DaemonProcess(
        env=daemon_env(
            database_url=store.url,
            kubeconfig=fakekube_process,
            repos_dir=tmp_path / "repos",
            poll_interval_s="1",
            shutdown_grace_s="1",
            http_address="127.0.0.1:0",
        ),
        log_path=tmp_path / "daemon.log",
    )
    await daemon.start()
    try:
        await daemon.wait_for_event("http_listening")
        [listening] = [e for e in daemon.events() if e["event"] == "http_listening"]
        port = int(listening["port"])
        body = await wait_for_answer(port, "/readyz", status=200)
        assert json.loads(body) == {"database": "ok", "listen": "ok", "cluster": "ok"}
        samples = await scrape(port)
        assert value(samples, "reconciler_deployments", status="pending") == 0
        assert ("reconciler_in_flight", (("state", "applying"),)) in samples
        assert await daemon.terminate(timeout_s=15) == 0, daemon.tail()
    finally:
        await daemon.stop()
    with pytest.raises(aiohttp.ClientConnectionError):
        await get(port, "/livez")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_a_daemon_waiting_for_its_database_answers_its_probes(
    fakekube_process: Path, tmp_path: Path
) -> None:
    """Started while PostgreSQL is down, the daemon answers on its fixed port at once (/livez
    200, /readyz 503 naming the database, so a kubelet does not restart it); once PostgreSQL is
    up, its own server takes the same port over and /readyz answers 200."""
    async with own_postgres() as server:
        url = server.url("reconciler")
        await asyncio.to_thread(server.kill)
        port = _free_port()
        daemon = DaemonProcess(
            env=daemon_env(
                database_url=url,
                kubeconfig=fakekube_process,
                repos_dir=tmp_path / "repos",
                poll_interval_s="1",
                shutdown_grace_s="1",
                http_address=f"127.0.0.1:{port}",
            ),
            log_path=tmp_path / "daemon.log",
        )
        await daemon.start()
        try:
            body = await wait_for_answer(port, "/readyz", status=503, containing="database")
            assert json.loads(body) == {"starting": "error: connecting to the database"}
            status, text = await get(port, "/livez")
            assert (status, text.startswith("ok")) == (200, True), text
            assert (await get(port, "/metrics"))[0] == 503
            await daemon.wait_for_event("database_unavailable")

            await asyncio.to_thread(server.restart)
            body = await wait_for_answer(port, "/readyz", status=200, timeout_s=60)
            assert json.loads(body) == {"database": "ok", "listen": "ok", "cluster": "ok"}
            assert await get(port, "/livez") == (200, "ok\n")
            assert await daemon.terminate(timeout_s=15) == 0, daemon.tail()
        finally:
            await daemon.stop()
