"""`/metrics` scrape time over a converged fleet of 10,000 deployments.

    .venv/bin/python bench/metrics_scrape.py [--small] [--deployments N] [--scrapes N]
                                             [--no-objects] [--keep]

The fleet is idle.py's: converged rows written straight into the table, their inventory rows and
objects created in fakekube as the daemon would have applied them (``--no-objects``: rows
only).  A daemon on its default settings, serving HTTP on a free local port, waits until its
watches are synced and every object's health is written (its start-up full check), then is
scraped ``--scrapes`` times (default 50), one after another, as Prometheus would.  Each scrape's
wall time is from the request to the last byte of the answer; the text is parsed with
prometheus_client's parser, and the deployments-by-status gauge must add up to the fleet (a
scrape that answers fast but wrong is no result).  Goal: p50 <= 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

import aiohttp
from benchlib import (
    BenchmarkError,
    DaemonProcess,
    Pipeline,
    Workdir,
    build_fleet,
    fakekube_process,
    local_postgres,
    machine_description,
    result_line,
    run_benchmark,
    running_daemon,
    say,
    summarize_ms,
)
from idle import _create_objects, _insert_converged, _wait_health_written, _wait_watching
from prometheus_client.parser import text_string_to_metric_families

GOAL_P50_MS = 50.0
STATUS_GAUGE = "reconciler_deployments"


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="1,000 deployments")
    parser.add_argument("--deployments", type=int, help="default 10000 (1000 with --small)")
    parser.add_argument("--repos", type=int, default=20, help="ops repos (default 20)")
    parser.add_argument("--scrapes", type=int, default=50, help="scrapes to time (default 50)")
    parser.add_argument("--no-objects", action="store_true", help="rows only, nothing watched")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    return parser.parse_args()


def _deployments_counted(text: str) -> float:
    """The sum of the deployments-by-status gauge in one scrape's text."""
    total = 0.0
    for family in text_string_to_metric_families(text):
        if family.name == STATUS_GAUGE:
            total += sum(sample.value for sample in family.samples)
    return total


async def _scrape(url: str, *, times: int, expected: int) -> dict[str, Any]:
    durations: list[float] = []
    size = 0
    async with aiohttp.ClientSession() as session:
        for _ in range(times):
            began = time.perf_counter()
            async with session.get(url) as answer:
                text = await answer.text()
                status = answer.status
            durations.append((time.perf_counter() - began) * 1000)
            if status != 200:
                raise BenchmarkError(f"GET {url} answered {status}")
            counted = _deployments_counted(text)
            if counted != expected:
                raise BenchmarkError(f"{STATUS_GAUGE} adds up to {counted:g}, not {expected}")
            size = len(text.encode())
    return {"durations_ms": durations, "bytes": size}


async def _run(arguments: argparse.Namespace) -> dict[str, Any]:
    deployments = arguments.deployments or (1000 if arguments.small else 10000)
    machine = machine_description()
    with Workdir(prefix="bench-scrape-", keep=arguments.keep) as work:
        fleet = build_fleet(
            workdir=work.path, env=work.env, repos=arguments.repos, deployments=deployments
        )
        async with (
            local_postgres(work.path) as database_url,
            fakekube_process(workdir=work.path, rollout_delay_s=0.2) as kube,
            Pipeline.connect(database_url) as pipeline,
        ):
            repo_ids = await pipeline.register_repos(fleet, sync_interval_s=None)
            say(f"writing {deployments} converged rows")
            await _insert_converged(pipeline, fleet, repo_ids)
            if not arguments.no_objects:
                say("creating the inventory and the objects in fakekube")
                say(f"  {await _create_objects(pipeline, kube)}")
                await pipeline.conn.execute("UPDATE deployment_objects SET health = NULL")
            daemon = DaemonProcess(
                workdir=work.path,
                database_url=database_url,
                kubeconfig=kube.kubeconfig,
                settings={"RECONCILER_HTTP_ADDRESS": "127.0.0.1:0"},
                name="daemon-scraped",
            )
            started = time.time()
            async with running_daemon(daemon):
                listening = await daemon.wait_for_event("http_listening", timeout_s=60)
                if not arguments.no_objects:
                    await _wait_watching(kube, daemon=daemon, since=started, timeout_s=300)
                    await _wait_health_written(pipeline, daemon=daemon, since=started)
                await asyncio.sleep(3.0)  # past start-up
                url = f"http://127.0.0.1:{listening['port']}/metrics"
                say(f"scraping {url} {arguments.scrapes} times")
                scraped = await _scrape(url, times=arguments.scrapes, expected=deployments)
    return _report(deployments=deployments, scraped=scraped, machine=machine)


def _report(
    *, deployments: int, scraped: dict[str, Any], machine: dict[str, Any]
) -> dict[str, Any]:
    summary = summarize_ms(scraped["durations_ms"])
    result_line(
        f"/metrics scrape, {deployments} deployments",
        f"p50 {summary['median']:.1f} ms, p90 {summary['p90']:.1f} ms, max {summary['max']:.1f} ms "
        f"(goal p50 <= {GOAL_P50_MS:g} ms), {scraped['bytes']} bytes",
    )
    met = summary["median"] <= GOAL_P50_MS
    result_line("goal met", "yes" if met else "NO")
    return {
        "benchmark": "metrics_scrape",
        "deployments": deployments,
        "scrape_ms": summary,
        "bytes": scraped["bytes"],
        "goal_met": met,
        "machine": machine,
    }


def main() -> int:
    arguments = _arguments()
    return run_benchmark("metrics_scrape", lambda: _run(arguments))


if __name__ == "__main__":
    raise SystemExit(main())
