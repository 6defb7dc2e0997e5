"""reconciler.web over in-memory fakes: the setting, binding, liveness, readiness, metrics."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import socket

import pytest
from yarl import URL

from reconciler.cluster.kube_requests import request_verb
from reconciler.daemon import Daemon
from reconciler.errors import ConfigError, DatabaseUnavailable
from reconciler.settings import Settings, from_env
from reconciler.testing.memory import (
    InMemoryCluster,
    InMemoryFetcher,
    InMemoryListener,
    InMemoryRenderer,
    InMemoryStore,
)
from reconciler.web import serve
from reconciler.web.server import liveness_problem, readiness
from tests.support.probes import EPHEMERAL, get, port_of, scrape
from tests.support.waiting import eventually


def _daemon(store: InMemoryStore | None = None, **settings: object) -> Daemon:
    return Daemon(
        store=store or InMemoryStore(),
        kube=InMemoryCluster(),
        settings=dataclasses.replace(
            Settings(), daemon_id="unit", poll_interval_s=0.05, **settings
        ),
        renderer=InMemoryRenderer(),
        fetcher=InMemoryFetcher(),
        listener=InMemoryListener,
    )


@pytest.mark.parametrize(
    ("raw", "parsed"),
    [
        ("0.0.0.0:8080", ("0.0.0.0", 8080)),
        ("127.0.0.1:0", ("127.0.0.1", 0)),
        ("[::]:9090", ("::", 9090)),
        ("OFF", None),
    ],
)
def test_the_http_address_setting_parses(raw: str, parsed: tuple[str, int] | None) -> None:
    """RECONCILER_HTTP_ADDRESS takes host:port (IPv6 in brackets) or off."""
    assert from_env({"RECONCILER_HTTP_ADDRESS": raw}).http_address == parsed


def test_the_http_address_defaults_to_every_interface_on_8080() -> None:
    """Unset, the daemon serves on 0.0.0.0:8080."""
    assert from_env({}).http_address == ("0.0.0.0", 8080)


@pytest.mark.parametrize("raw", ["8080", ":8080", "host:", "host:70000", "host:http", "a b:1"])
def test_a_bad_http_address_is_refused_naming_the_variable(raw: str) -> None:
    """A value that is not host:port nor off is an error naming the variable and the value."""
    with pytest.raises(ConfigError, match=r"RECONCILER_HTTP_ADDRESS must be host:port"):
        from_env({"RECONCILER_HTTP_ADDRESS": raw})


async def test_a_port_in_use_is_an_error_naming_the_setting() -> None:
    """A port another process holds makes serve() fail with the setting named, not a trace."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        daemon = _daemon(http_address=("127.0.0.1", port))
        with pytest.raises(ConfigError, match=rf"RECONCILER_HTTP_ADDRESS 127.0.0.1:{port}"):
            await serve(daemon)


async def test_off_serves_nothing() -> None:
    """http_address None: no server."""
    assert await serve(_daemon(http_address=None)) is None


def test_liveness_follows_the_loop_heartbeat() -> None:
    """Alive while the loop runs and turned lately; not when it stopped or stalled."""
    daemon = _daemon()
    daemon.looping = True
    daemon.heartbeat = 1000.0
    assert liveness_problem(daemon, now=1001.0) is None
    stalled = liveness_problem(daemon, now=1000.0 + 3600)
    assert stalled is not None and "has not turned" in stalled
    daemon.looping = False
    assert liveness_problem(daemon, now=1001.0) == "the loop is not running"


async def test_readiness_names_each_failed_check() -> None:
    """The database refusing and no LISTEN connection are both named; the cluster is ok."""
    store = InMemoryStore()
    store.faults["ping"] = [DatabaseUnavailable("cannot reach PostgreSQL at db:5432")]
    checks = await readiness(_daemon(store))
    assert checks == {
        "database": "error: cannot reach PostgreSQL at db:5432",
        "listen": "error: the LISTEN connection is not established",
        "cluster": "ok",
    }


async def test_a_running_daemon_serves_probes_and_stops_them() -> None:
    """Daemon.run serves /livez, /readyz and /metrics, and closes the port when it stops."""
    store = InMemoryStore()
    store.add_repo()
    store.add_deployment(project="app", environment="prod", image_ref="reg/app:1")
    daemon = _daemon(store, http_address=EPHEMERAL)
    task = asyncio.create_task(daemon.run())
    try:
        port = await port_of(daemon)
        await eventually(lambda: daemon.listener is not None and daemon.listener.connected.is_set())
        status, body = await get(port, "/readyz")
        assert (status, json.loads(body)) == (
            200,
            {"database": "ok", "listen": "ok", "cluster": "ok"},
        )
        assert (await get(port, "/livez"))[0] == 200
        samples = await scrape(port)
        assert (
            sum(v for (name, _labels), v in samples.items() if name == "reconciler_deployments")
            == 1
        )
        assert ("reconciler_in_flight", (("state", "waiting"),)) in samples
    finally:
        daemon.stop()
        assert await asyncio.wait_for(task, timeout=10) == 0
    with pytest.raises(OSError):
        await get(port, "/livez")


def test_a_watch_is_its_own_verb() -> None:
    """GET with watch=true counts as watch; other requests by their HTTP method."""
    assert request_verb("GET", URL("https://k/api/v1/pods?watch=true")) == "watch"
    assert request_verb("GET", URL("https://k/api/v1/pods")) == "get"
    assert request_verb("PATCH", URL("https://k/apis/apps/v1/x")) == "patch"
