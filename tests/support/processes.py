"""The daemon, the CLI and fakekube as processes: started, stopped, killed with SIGKILL."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from tests.support.waiting import wait_for_value

_POLL_S = 0.05


class DaemonProcess:
    """``python -m reconciler run`` with JSON logs in a file; killed or stopped by its pid."""

    def __init__(self, *, env: dict[str, str], log_path: Path) -> None:
        self.env = env
        self.log_path = log_path
        self.process: asyncio.subprocess.Process | None = None
        self._log_file: IO[bytes] | None = None

    def _open_log(self) -> IO[bytes]:
        return self.log_path.open("ab")

    async def start(self) -> None:
        self._log_file = self._open_log()
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "reconciler",
            "run",
            env=self.env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=self._log_file,
            # Its own process group: the render workers it spawns can be found and ended.
            start_new_session=True,
        )

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.returncode is None

    async def kill9(self) -> None:
        """SIGKILL the daemon.  Its render workers do not notice their parent died; in a Pod
        the runtime kills the whole container, so the rest of its process group goes too."""
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(signal.SIGKILL)
        await self.process.wait()
        self._end_group()

    def send(self, signum: int) -> None:
        """Send the daemon a signal (and do not wait)."""
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(signum)

    async def terminate(self, *, timeout_s: float = 30.0, signum: int = signal.SIGTERM) -> int:
        """Send ``signum`` (SIGTERM) and wait; returns the exit code."""
        assert self.process is not None
        if self.process.returncode is None:
            self.process.send_signal(signum)
        try:
            code = await asyncio.wait_for(self.process.wait(), timeout=timeout_s)
        finally:
            if self.process.returncode is None:
                self.process.kill()
                await self.process.wait()
            self._end_group()
        return code

    def _end_group(self) -> None:
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGKILL)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def events(self) -> list[dict[str, Any]]:
        """The JSON log lines written so far (other lines, such as tracebacks, are skipped)."""
        if not self.log_path.exists():
            return []
        events = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                with contextlib.suppress(ValueError):
                    events.append(json.loads(line))
        return events

    def count(self, event: str) -> int:
        return sum(1 for e in self.events() if e.get("event") == event)

    def tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    async def wait_for_event(self, event: str, *, count: int = 1, timeout_s: float = 30.0) -> None:
        """Wait until the log holds ``count`` lines of ``event``; fail with the log's tail."""

        def logged() -> bool:
            if self.count(event) >= count:
                return True
            if not self.alive:
                raise AssertionError(f"the daemon exited; its log ends:\n{self.tail()}")
            return False

        await wait_for_value(
            logged,
            timeout_s=timeout_s,
            interval_s=_POLL_S,
            failure=lambda: f"no {event!r} #{count} in the daemon's log:\n{self.tail()}",
        )

    async def stop(self) -> None:
        """End the daemon if it still runs (SIGKILL), and whatever is left of its group."""
        if self.alive:
            await self.kill9()
        self._end_group()


def daemon_env(
    *, database_url: str, kubeconfig: Path, repos_dir: Path, **settings: str
) -> dict[str, str]:
    """The environment of a daemon process: this one's, minus RECONCILER_*, plus ``settings``
    given as RECONCILER_<NAME> (``poll_interval_s="1"`` -> RECONCILER_POLL_INTERVAL_S=1)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECONCILER_")}
    env.update(
        {
            "DATABASE_URL": database_url,
            "KUBECONFIG": str(kubeconfig),
            "RECONCILER_REPOS_DIR": str(repos_dir),
            "RECONCILER_LOG_FORMAT": "json",
            # Several daemons run at once: none binds the default port unless a test asks.
            "RECONCILER_HTTP_ADDRESS": "off",
        }
    )
    env.update({f"RECONCILER_{name.upper()}": value for name, value in settings.items()})
    return env


async def run_daemon_once(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``python -m reconciler run --once`` in ``env``, off the event loop; its output captured."""
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "reconciler", "run", "--once"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def run_cli(*args: str, database_url: str | None, **env: str) -> subprocess.CompletedProcess[str]:
    """``python -m reconciler ARGS`` with DATABASE_URL set to ``database_url`` (unset for
    None) and ``env`` added; its output captured."""
    environ = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    if database_url is not None:
        environ["DATABASE_URL"] = database_url
    environ.update(env)
    return subprocess.run(
        [sys.executable, "-m", "reconciler", *args],
        capture_output=True,
        text=True,
        env=environ,
        timeout=60,
        check=False,
    )


@contextlib.contextmanager
def fakekube_process(kubeconfig: Path, *, rollout_delay_s: float) -> Iterator[Path]:
    """fakekube as its own process, its kubeconfig written to ``kubeconfig``; terminated at
    the end."""
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
            f"{rollout_delay_s:g}",
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
