"""Fixtures for the fault-injection tests (their helpers are in tests/support).

- fakekube runs in the test's own event loop, so tests can turn its fault knobs and read its
  request log while daemons (in this process or as processes) talk to it over HTTP;
- a daemon process connects as a database role of its own, so a test can see when every
  connection of a killed daemon is gone (and nothing it sent can still commit);
- each test adds a row to the fault table, printed at the end of the run.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from reconciler.db import Store
from reconciler.testing.fakekube import FakeKube
from tests.support import database
from tests.support.database import DaemonRole
from tests.support.fault_table import FaultRow, FaultTable
from tests.support.gitrepo import OpsRepoDir, app_repo
from tests.support.pipeline import Pipeline, open_pipeline
from tests.support.processes import DaemonProcess

_TABLE = FaultTable()


@pytest.fixture
def fault_table(request: pytest.FixtureRequest) -> Callable[[FaultRow], None]:
    """Record this test's row of the fault table (printed after the run)."""

    def record(row: FaultRow) -> None:
        _TABLE.add(row, nodeid=request.node.nodeid)

    return record


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    # Wall time of a test: setup (fakekube, PostgreSQL, daemons) + call + teardown.
    _TABLE.add_duration(report.nodeid, report.duration)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _TABLE.rows:
        return
    terminalreporter.section("fault table")
    for line in _TABLE.lines():
        terminalreporter.write_line(line)


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
    return app_repo(tmp_path / "ops-remote")


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


@pytest.fixture
async def daemon_role(store: Store) -> AsyncIterator[DaemonRole]:
    """A login role for daemon processes on this test's database."""
    async with database.daemon_role(store.url) as role:
        yield role


@pytest.fixture
async def daemon_processes() -> AsyncIterator[list[DaemonProcess]]:
    """Daemon processes a test starts; any still running afterwards are killed."""
    started: list[DaemonProcess] = []
    yield started
    for daemon in started:
        await daemon.stop()
