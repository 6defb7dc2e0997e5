"""Fixtures for the fault-injection tests.

- fakekube runs in the test's own event loop, so tests can turn its fault knobs and read its
  request log while daemons (in this process or as processes) talk to it over HTTP;
- a daemon process connects as a database role of its own, so a test can see when every
  connection of a killed daemon is gone (and nothing it sent can still commit);
- :func:`audit` checks the history invariants every fault test asserts;
- each test adds a row to the fault table, printed at the end of the run.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import datetime as dt
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from reconciler.db import Store, asyncpg_dsn
from reconciler.testing.fakekube import FakeKube
from tests.integration.conftest import OpsRepoDir, Pipeline, open_pipeline

# ------------------------------------------------------------------ the fault table


@dataclasses.dataclass
class FaultRow:
    """One line of the fault table: what was injected and what the history says about it."""

    fault: str
    injected: str
    converged: bool
    deployments: int
    history_rows: int
    lost: int
    duplicated: int
    notes: str = ""
    nodeid: str = ""


_FAULT_ROWS: list[FaultRow] = []
_DURATIONS: dict[str, float] = collections.defaultdict(float)


@pytest.fixture
def fault_table(request: pytest.FixtureRequest) -> Callable[[FaultRow], None]:
    """Record this test's row of the fault table (printed after the run)."""

    def record(row: FaultRow) -> None:
        row.nodeid = request.node.nodeid
        _FAULT_ROWS.append(row)

    return record


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    # Wall time of a test: setup (fakekube, PostgreSQL, daemons) + call + teardown.
    _DURATIONS[report.nodeid] += report.duration


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _FAULT_ROWS:
        return
    terminalreporter.section("fault table")
    header = ("fault", "injected", "converged", "deps", "rows", "lost", "dup", "wall s", "notes")
    lines = [header]
    for row in _FAULT_ROWS:
        lines.append(
            (
                row.fault,
                row.injected,
                "yes" if row.converged else "NO",
                str(row.deployments),
                str(row.history_rows),
                str(row.lost),
                str(row.duplicated),
                f"{_DURATIONS.get(row.nodeid, 0.0):.1f}",
                row.notes,
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header) - 1)]
    for line in lines:
        cells = [cell.ljust(width) for cell, width in zip(line, widths, strict=False)]
        terminalreporter.write_line(" | ".join([*cells, line[-1]]))


# ------------------------------------------------------------------ history audit


@dataclasses.dataclass
class Audit:
    """What the database says after a fault: the figures and every broken invariant."""

    deployments: int
    history_rows: int
    terminal_rows: int
    interrupted: set[tuple[int, dt.datetime]]
    """(deployment id, started_at) of every 'interrupted' row."""
    failed_messages: list[str]
    duplicated: int
    """Attempts recorded more than once (same deployment and start time)."""
    lost: int
    """Generations a deployment reached with no row saying how they ended."""
    statuses: collections.Counter[str]
    problems: list[str]


async def audit(
    store: Store, *, allow_failed: Callable[[str], bool] = lambda _message: False
) -> Audit:
    """Check what every fault test asserts: each deployment converged (healthy on its image,
    its generation observed, no claim, no open attempt, never left 'syncing'); its latest
    generation ended in exactly one healthy row, its last; no generation has two outcomes from
    one commit; no attempt is recorded twice.  Failed rows are problems unless
    ``allow_failed(message)``."""
    conn = await asyncpg.connect(asyncpg_dsn(store.url))
    try:
        deployments = await conn.fetch(
            "SELECT id, project, environment, generation, observed_generation, current_status,"
            " claimed_by, attempt_started_at, image_ref, current_image_ref, status_message"
            " FROM deployments ORDER BY id"
        )
        history = await conn.fetch(
            "SELECT id, deployment_id, generation, status, sha, started_at, message"
            " FROM deployment_history ORDER BY id"
        )
    finally:
        await conn.close()
    problems: list[str] = []
    by_deployment: dict[int, list[asyncpg.Record]] = collections.defaultdict(list)
    for row in history:
        by_deployment[row["deployment_id"]].append(row)
    attempts = collections.Counter((r["deployment_id"], r["started_at"]) for r in history)
    duplicated = sum(count - 1 for count in attempts.values() if count > 1)
    if duplicated:
        problems.append(f"{duplicated} attempts recorded more than once")
    lost = 0
    failed_messages: list[str] = []
    for d in deployments:
        name = f"{d['project']}/{d['environment']}"
        if d["current_status"] != "healthy" or d["current_image_ref"] != d["image_ref"]:
            problems.append(
                f"{name} is {d['current_status']} on {d['current_image_ref']} "
                f"(wanted {d['image_ref']}): {d['status_message']}"
            )
        if d["generation"] != d["observed_generation"]:
            problems.append(f"{name}: generation {d['generation']} not observed")
        if d["claimed_by"] is not None or d["attempt_started_at"] is not None:
            problems.append(f"{name}: still claimed by {d['claimed_by']} or with an open attempt")
        rows = by_deployment.get(d["id"], [])
        # A generation may be deployed again from a new commit; from the same commit, never.
        outcomes: dict[tuple[int, str | None], list[str]] = collections.defaultdict(list)
        for r in rows:
            if r["status"] in ("healthy", "superseded"):
                outcomes[(r["generation"], r["sha"])].append(r["status"])
            elif r["status"] == "failed":
                failed_messages.append(r["message"])
                if not allow_failed(r["message"]):
                    problems.append(f"{name}: unexpected failed attempt: {r['message']}")
            elif r["status"] != "interrupted":
                problems.append(f"{name}: unexpected {r['status']} row")
        for (generation, sha), ended in outcomes.items():
            if len(ended) > 1:
                problems.append(
                    f"{name}: generation {generation} at {sha} ended {len(ended)} times"
                )
        final = [r for r in rows if r["generation"] == d["generation"] and r["status"] == "healthy"]
        if len(final) != 1:
            lost += 1
            problems.append(f"{name}: {len(final)} healthy rows for generation {d['generation']}")
        elif rows[-1]["id"] != final[0]["id"]:
            problems.append(f"{name}: the healthy row of its generation is not its last row")
    return Audit(
        deployments=len(deployments),
        history_rows=len(history),
        terminal_rows=sum(1 for r in history if r["status"] != "interrupted"),
        interrupted={
            (r["deployment_id"], r["started_at"]) for r in history if r["status"] == "interrupted"
        },
        failed_messages=failed_messages,
        duplicated=duplicated,
        lost=lost,
        statuses=collections.Counter(r["status"] for r in history),
        problems=problems,
    )


async def wait_until(
    condition: Callable[[], Awaitable[bool]],
    *,
    timeout_s: float,
    what: str,
    interval_s: float = 0.1,
) -> float:
    """Poll ``condition`` until it holds; returns how long that took.  Fails naming ``what``."""
    began = time.monotonic()
    while not await condition():
        if time.monotonic() - began > timeout_s:
            raise AssertionError(f"timed out after {timeout_s:g}s waiting for {what}")
        await asyncio.sleep(interval_s)
    return time.monotonic() - began


async def converged(store: Store) -> bool:
    """Every deployment observed its generation, ended healthy, and is free of claims."""
    for d in await store.list_deployments():
        if (
            d.generation != d.observed_generation
            or d.current_status != "healthy"
            or d.claimed_by is not None
        ):
            return False
    return True


# ------------------------------------------------------------------ the cluster and the repo


@pytest.fixture
async def cluster() -> AsyncIterator[FakeKube]:
    """fakekube in this event loop; real time (progress deadlines as written)."""
    async with FakeKube(rollout_delay_s=0.2) as kube:
        yield kube


@pytest.fixture
def kubeconfig(cluster: FakeKube, tmp_path: Path) -> Path:
    return cluster.write_kubeconfig(tmp_path / "kubeconfig")


@pytest.fixture
def ops_remote(tmp_path: Path) -> OpsRepoDir:
    """An ops repo remote with project 'app' committed."""
    ops = OpsRepoDir(tmp_path / "ops-remote")
    ops.write_project("app")
    ops.commit("app")
    return ops


def add_projects(ops: OpsRepoDir, names: list[str]) -> None:
    """Commit one project folder per name (the example app's templates)."""
    for name in names:
        ops.write_project(name)
    ops.commit(f"{len(names)} projects")


def applies_per_object(cluster: FakeKube, *, plural: str = "deployments") -> dict[str, int]:
    """Server-side applies of one kind that fakekube accepted or refused, per namespace/name."""
    counts: dict[str, int] = collections.Counter()
    for record in cluster.request_log:
        if record.method != "PATCH" or record.content_type != "application/apply-patch+yaml":
            continue
        parts = record.path.strip("/").split("/")
        if len(parts) >= 4 and parts[-2] == plural and parts[-4] == "namespaces":
            counts[f"{parts[-3]}/{parts[-1]}"] += 1
    return dict(counts)


# ------------------------------------------------------------------ in-process daemons


@pytest.fixture
async def world(
    store: Store, cluster: FakeKube, kubeconfig: Path, ops_remote: OpsRepoDir, tmp_path: Path
) -> AsyncIterator[Pipeline]:
    """The integration Pipeline (store, fakekube, ops repo, daemons in this process) with
    short intervals; daemons are stopped afterwards."""
    async with open_pipeline(
        store=store,
        kube=cluster,
        kubeconfig=kubeconfig,
        ops=ops_remote,
        tmp_path=tmp_path,
        poll_interval_s=0.5,
        health_timeout_s=60.0,
        max_attempts=5,
        retry_base_s=1.0,
        retry_max_s=2.0,
        git_timeout_s=20.0,
    ) as pipeline:
        yield pipeline


# ------------------------------------------------------------------ daemon processes


def url_with_user(url: str, user: str) -> str:
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}@{host}"))


@dataclasses.dataclass
class DaemonRole:
    """The database role daemon processes log in as, and the URL that does it."""

    name: str
    url: str
    admin_url: str

    async def backends(self) -> int:
        """Server processes serving this role now (a killed daemon's linger for a moment)."""
        conn = await asyncpg.connect(asyncpg_dsn(self.admin_url))
        try:
            count: int = await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE usename = $1", self.name
            )
        finally:
            await conn.close()
        return count


@pytest.fixture
async def daemon_role(store: Store) -> AsyncIterator[DaemonRole]:
    """A login role for daemon processes on this test's database."""
    database = urlsplit(store.url).path.lstrip("/")
    name = f"daemon_{database}"
    conn = await asyncpg.connect(asyncpg_dsn(store.url))
    try:
        await conn.execute(f'CREATE ROLE "{name}" LOGIN SUPERUSER')
    finally:
        await conn.close()
    try:
        yield DaemonRole(name=name, url=url_with_user(store.url, name), admin_url=store.url)
    finally:
        conn = await asyncpg.connect(asyncpg_dsn(store.url))
        try:
            await conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1", name
            )
            await conn.execute(f'DROP ROLE IF EXISTS "{name}"')
        finally:
            await conn.close()


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

    async def terminate(self, *, timeout_s: float = 30.0) -> int:
        """SIGTERM and wait; returns the exit code."""
        assert self.process is not None
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
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
        deadline = time.monotonic() + timeout_s
        while self.count(event) < count:
            if not self.alive:
                raise AssertionError(f"the daemon exited; its log ends:\n{self.tail()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no {event!r} #{count} in the daemon's log:\n{self.tail()}")
            await asyncio.sleep(0.05)


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
        }
    )
    env.update({f"RECONCILER_{name.upper()}": value for name, value in settings.items()})
    return env


@pytest.fixture
async def daemon_processes() -> AsyncIterator[list[DaemonProcess]]:
    """Daemon processes a test starts; any still running afterwards are killed."""
    started: list[DaemonProcess] = []
    yield started
    for daemon in started:
        if daemon.process is not None and daemon.process.returncode is None:
            await daemon.kill9()
        daemon._end_group()
