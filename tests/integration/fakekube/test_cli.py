"""``python -m reconciler.testing.fakekube``: URL on stdout, kubeconfig, clean stop."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import aiohttp
import yaml


async def test_module_prints_url_writes_kubeconfig_and_stops_on_sigterm(tmp_path: Path) -> None:
    """The server prints its URL, serves it, writes a kubeconfig for it, and exits on SIGTERM."""
    kubeconfig = tmp_path / "kc"
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "reconciler.testing.fakekube",
        "--port",
        "0",
        "--kubeconfig",
        str(kubeconfig),
        "--rollout-delay",
        "0.05",
        "--time-factor",
        "0.1",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), 30)
        url = line.decode().strip()
        assert url.startswith("http://127.0.0.1:")
        config = yaml.safe_load(kubeconfig.read_text())
        assert config["clusters"][0]["cluster"]["server"] == url
        assert config["current-context"] == "fakekube"
        async with aiohttp.ClientSession() as session, session.get(f"{url}/version") as answer:
            assert answer.status == 200
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(process.wait(), 30)
    assert code == 0


async def test_module_reports_a_port_in_use(tmp_path: Path) -> None:
    """Binding a port that is taken fails with a message and exit status 1."""
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "reconciler.testing.fakekube",
            "--port",
            str(port),
            "--kubeconfig",
            str(tmp_path / "kc"),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        _, stderr = await asyncio.wait_for(process.communicate(), 30)
    finally:
        server.close()
        await server.wait_closed()
    assert process.returncode == 1
    assert b"cannot listen" in stderr
