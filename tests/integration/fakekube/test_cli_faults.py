"""``python -m reconciler.testing.fakekube`` fault options: rehearsing failures without Python."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp

from tests.support.waiting import eventually

_MODULE = [sys.executable, "-m", "reconciler.testing.fakekube"]


@asynccontextmanager
async def served(tmp_path: Path, *options: str) -> AsyncIterator[str]:
    """The standalone server started with ``options``; yields its URL, stops it after."""
    process = await asyncio.create_subprocess_exec(
        *_MODULE,
        "--port",
        "0",
        "--kubeconfig",
        str(tmp_path / "kubeconfig"),
        *options,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), 30)
        yield line.decode().strip()
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 30) == 0


def _pod(name: str, image: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "app", "image": image}]},
    }


async def _waiting_reason(session: aiohttp.ClientSession, url: str, name: str) -> str | None:
    async with session.get(f"{url}/api/v1/namespaces/default/pods/{name}") as answer:
        pod = await answer.json()
    statuses = (pod.get("status") or {}).get("containerStatuses") or [{}]
    waiting = (statuses[0].get("state") or {}).get("waiting") or {}
    reason = waiting.get("reason")
    return str(reason) if reason else None


async def test_image_faults_and_latency_from_the_command_line(tmp_path: Path) -> None:
    """--crash-image, --missing-image and --latency act as the Faults knobs do."""
    options = ["--latency", "0.2", "--crash-image", "bad/*", "--missing-image", "gone/*"]
    options += ["--rollout-delay", "0.05", "--time-factor", "0.01"]
    async with served(tmp_path, *options) as url, aiohttp.ClientSession() as session:
        started = time.monotonic()
        async with session.get(f"{url}/version") as answer:
            assert answer.status == 200
        assert time.monotonic() - started >= 0.2
        pods = f"{url}/api/v1/namespaces/default/pods"
        for name, image in (("crash", "bad/app:1"), ("missing", "gone/app:1")):
            async with session.post(pods, json=_pod(name, image)) as answer:
                assert answer.status == 201
        reasons: dict[str, str | None] = {}

        async def settled() -> bool:
            for name in ("crash", "missing"):
                reasons[name] = await _waiting_reason(session, url, name)
            return reasons == {"crash": "CrashLoopBackOff", "missing": "ImagePullBackOff"}

        await eventually(settled, within=20, message=f"pods never failed as told: {reasons}")


async def test_error_and_throttle_rates_from_the_command_line(tmp_path: Path) -> None:
    """--error-rate answers 500s; --throttle-rate answers 429 with the --retry-after header."""
    async with (
        served(tmp_path / "errors", "--error-rate", "1") as failing,
        served(tmp_path / "throttled", "--throttle-rate", "1", "--retry-after", "4") as throttled,
        aiohttp.ClientSession() as session,
    ):
        async with session.get(f"{failing}/api/v1/namespaces") as answer:
            assert answer.status == 500
            assert (await answer.json())["reason"] == "InternalError"
        async with session.get(f"{throttled}/api/v1/namespaces") as answer:
            assert answer.status == 429
            assert answer.headers["Retry-After"] == "4"
            assert (await answer.json())["details"]["retryAfterSeconds"] == 4


async def test_watch_history_and_bookmark_interval_from_the_command_line(tmp_path: Path) -> None:
    """--watch-history bounds what a watch replays (then 410); --bookmark-interval paces them."""
    options = ["--watch-history", "2", "--bookmark-interval", "0.3"]
    async with served(tmp_path, *options) as url, aiohttp.ClientSession() as session:
        configmaps = f"{url}/api/v1/namespaces/default/configmaps"
        body = {"metadata": {"name": "c"}, "data": {"v": "0"}}
        async with session.post(configmaps, json=body) as answer:
            first = (await answer.json())["metadata"]["resourceVersion"]
        for value in ("1", "2", "3"):
            patch = {"data": {"v": value}}
            headers = {"Content-Type": "application/merge-patch+json"}
            async with session.patch(f"{configmaps}/c", json=patch, headers=headers) as answer:
                assert answer.status == 200
        watch = f"{configmaps}?watch=true&resourceVersion={first}"
        async with session.get(watch) as answer:
            event = json.loads(await asyncio.wait_for(answer.content.readline(), 5))
        assert (event["type"], event["object"]["code"]) == ("ERROR", 410)
        started = time.monotonic()
        async with session.get(f"{configmaps}?watch=true&allowWatchBookmarks=true") as answer:
            await asyncio.wait_for(answer.content.readline(), 5)  # the ADDED of c
            event = json.loads(await asyncio.wait_for(answer.content.readline(), 5))
        assert event["type"] == "BOOKMARK"
        assert time.monotonic() - started < 3


def test_help_documents_every_fault_option() -> None:
    """--help names each fault and watch option."""
    shown = subprocess.run([*_MODULE, "--help"], capture_output=True, text=True, check=True)
    for option in (
        "--latency",
        "--error-rate",
        "--throttle-rate",
        "--retry-after",
        "--rollout-delay",
        "--crash-image",
        "--missing-image",
        "--watch-history",
        "--bookmark-interval",
    ):
        assert option in shown.stdout


def test_a_rate_outside_0_to_1_is_refused(tmp_path: Path) -> None:
    """A rate outside 0..1 is a usage error (exit 2) naming the option."""
    refused = subprocess.run(
        [*_MODULE, "--kubeconfig", str(tmp_path / "kc"), "--error-rate", "1.5"],
        capture_output=True,
        text=True,
    )
    assert refused.returncode == 2
    assert "--error-rate" in refused.stderr
