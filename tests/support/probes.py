"""Asking a daemon's HTTP server (``reconciler.web``) its probes and metrics, as a kubelet and
a Prometheus scraper would."""

from __future__ import annotations

from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from reconciler.daemon import Daemon
from tests.support.waiting import wait_for_value

EPHEMERAL = ("127.0.0.1", 0)
"""``http_address`` for a test daemon: any free port, on loopback only."""

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]
"""Every sample of a scrape: (name, sorted labels) -> value."""


async def port_of(daemon: Daemon, *, timeout_s: float = 10.0) -> int:
    """The port the daemon's server bound, once :meth:`Daemon.run` has started it."""
    return await wait_for_value(
        lambda: daemon.http.port if daemon.http is not None else None,
        timeout_s=timeout_s,
        interval_s=0.02,
        failure=lambda: "the daemon serves no HTTP (is http_address off?)",
    )


async def get(port: int, path: str) -> tuple[int, str]:
    """GET ``path`` on the local ``port``: the status and the body."""
    timeout = aiohttp.ClientTimeout(total=10)
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.get(f"http://127.0.0.1:{port}{path}") as response,
    ):
        return response.status, await response.text()


async def wait_for_answer(
    port: int, path: str, *, status: int, containing: str = "", timeout_s: float = 30.0
) -> str:
    """Poll ``path`` until it answers ``status`` with a body containing ``containing``."""
    last: list[Any] = [None]

    async def answered() -> str | None:
        try:
            last[0] = got = await get(port, path)
        except aiohttp.ClientError as exc:
            last[0] = repr(exc)
            return None
        return got[1] if got[0] == status and containing in got[1] else None

    return await wait_for_value(
        answered,
        timeout_s=timeout_s,
        interval_s=0.1,
        failure=lambda: f"{path} never answered {status} with {containing!r}; last: {last[0]}",
    )


async def scrape(port: int) -> Samples:
    """``/metrics``, parsed as Prometheus parses it."""
    status, body = await get(port, "/metrics")
    assert status == 200, body
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(body)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value (0 when absent: a counter not yet incremented)."""
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def total(samples: Samples, name: str) -> float:
    """The sum of every sample of ``name``, whatever its labels."""
    return sum(v for (sample_name, _labels), v in samples.items() if sample_name == name)
