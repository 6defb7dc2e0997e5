"""Hostile neighbours: good deployments' COMMIT -> healthy with and without looping templates.

    .venv/bin/python bench/hostile_neighbours.py [--small] [--deployments N] [--hostile K]
                                                 [--keep]

A daemon process with default settings (2 render workers, 10 s render deadline, concurrency 32)
serves N good deployments (default 20: 10 projects in prod and staging, the throughput fleet's
templates) and K hostile ones (default 4) from one ops repo.  A hostile project's templates hold
``{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}``, which the
sandbox lets through: only the render deadline stops it.  The hostile rows are the oldest (the
lowest ids), so the daemon claims, and queues their renders, first: the worst case.

Control round: one transaction updates the good rows' image_ref; the clock is read just before
COMMIT, and each good deployment's latency ends at its healthy history row's finished_at.
Hostile round: one transaction updates every row, so the K loops render at the same time as the
N good renders.  The render stage of each good attempt is taken from the daemon's canonical
``reconcile`` event (its end and duration_ms give when the attempt began) and the history row's
started_at (recorded once rendering and admission are done): it includes waiting for a free
render worker.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

from benchlib import (
    BenchmarkError,
    DaemonProcess,
    OpsRemote,
    Pipeline,
    Workdir,
    build_fleet,
    fakekube_process,
    local_postgres,
    machine_description,
    percentile,
    result_line,
    run_benchmark,
    running_daemon,
    say,
)

ROLLOUT_DELAY_S = 0.2
HOSTILE_PREFIX = "hostile"
LOOP_TEMPLATE = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}\n"
_GOOD = f"project NOT LIKE '{HOSTILE_PREFIX}%'"


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="10 good and 2 hostile deployments")
    parser.add_argument("--deployments", type=int, help="good deployments (default 20, 10 small)")
    parser.add_argument("--hostile", type=int, help="hostile deployments (default 4, 2 small)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    return parser.parse_args()


def _add_hostile(remote: OpsRemote, count: int) -> list[str]:
    names = [f"{HOSTILE_PREFIX}{k}" for k in range(count)]
    for name in names:
        remote.add_project(name, with_service=False)
        (remote.path / name / "loop.yaml.j2").write_text(LOOP_TEMPLATE, encoding="utf-8")
    remote.commit(f"{count} looping projects")
    return names


async def _insert_hostile(pipeline: Pipeline, names: Sequence[str], *, repo_id: int) -> None:
    for name in names:
        await pipeline.conn.execute(
            "INSERT INTO deployments (project, environment, ops_repo_id, image_ref) "
            "VALUES ($1, 'prod', $2, 'reg.bench/app:0')",
            name,
            repo_id,
        )


async def _update(pipeline: Pipeline, image_ref: str, *, where: str) -> float:
    """One UPDATE of image_ref in an explicit transaction; time.time() just before COMMIT."""
    conn = pipeline.conn
    await conn.execute("BEGIN")
    await conn.execute(f"UPDATE deployments SET image_ref = $1 WHERE {where}", image_ref)
    commit_at = time.time()
    await conn.execute("COMMIT")
    return commit_at


async def _wait_settled(
    pipeline: Pipeline, *, image_ref: str, hostile: int, timeout_s: float
) -> None:
    """Until every good row is healthy at ``image_ref`` and every hostile row has failed at
    its own generation (the daemon is idle again)."""
    deadline = time.monotonic() + timeout_s
    while True:
        row = await pipeline.conn.fetchrow(
            f"""
            SELECT count(*) FILTER (WHERE {_GOOD} AND current_status = 'healthy'
                                      AND current_image_ref = $1
                                      AND observed_generation = generation) AS good,
                   count(*) FILTER (WHERE {_GOOD}) AS goods,
                   count(*) FILTER (WHERE NOT ({_GOOD}) AND current_status = 'failed'
                                      AND observed_generation = generation) AS bad
            FROM deployments
            """,
            image_ref,
        )
        assert row is not None
        if row["good"] == row["goods"] and row["bad"] == hostile:
            return
        if time.monotonic() > deadline:
            raise BenchmarkError(
                f"not settled at {image_ref} after {timeout_s:g}s: {row['good']}/{row['goods']}"
                f" good healthy, {row['bad']}/{hostile} hostile failed; "
                f"e.g. {await pipeline.failure_samples()}"
            )
        await asyncio.sleep(0.1)


async def _good_rows(pipeline: Pipeline, image_ref: str) -> list[Mapping[str, Any]]:
    """(deployment id, started_at, finished_at) of the good ones' healthy rows at image_ref."""
    rows = await pipeline.conn.fetch(
        f"""
        SELECT h.deployment_id, extract(epoch FROM h.started_at) AS started,
               extract(epoch FROM h.finished_at) AS finished
        FROM deployment_history h JOIN deployments d ON d.id = h.deployment_id
        WHERE h.image_ref = $1 AND h.status = 'healthy' AND d.{_GOOD}
        """,
        image_ref,
    )
    return [dict(r) for r in rows]


def _round_figures(
    rows: Sequence[Mapping[str, Any]],
    *,
    commit_at: float,
    events: Sequence[Mapping[str, Any]],
    image_ref: str,
) -> dict[str, Any]:
    """Latencies (COMMIT -> healthy row) and render stages (attempt start -> started_at), ms."""
    began = {
        int(e["deployment_id"]): float(e["t"]) - float(e["duration_ms"]) / 1000
        for e in events
        if e.get("event") == "reconcile" and e.get("image_ref") == image_ref
    }
    latencies = [(float(r["finished"]) - commit_at) * 1000 for r in rows]
    stages = [
        (float(r["started"]) - began[int(r["deployment_id"])]) * 1000
        for r in rows
        if int(r["deployment_id"]) in began
    ]
    return {
        "n": len(latencies),
        "p50_ms": round(percentile(latencies, 0.50), 1),
        "p95_ms": round(percentile(latencies, 0.95), 1),
        "max_ms": round(max(latencies), 1),
        "render_stage_p50_ms": round(statistics.median(stages), 1) if stages else None,
        "render_stage_max_ms": round(max(stages), 1) if stages else None,
    }


async def _run(arguments: argparse.Namespace) -> dict[str, Any]:
    good = arguments.deployments or (10 if arguments.small else 20)
    hostile = arguments.hostile if arguments.hostile is not None else (2 if arguments.small else 4)
    machine = machine_description()
    with Workdir(prefix="bench-hostile-", keep=arguments.keep) as work:
        say(f"work directory {work.path}")
        fleet = build_fleet(workdir=work.path, env=work.env, repos=1, deployments=good)
        [(repo_name, remote)] = fleet.repos.items()
        hostile_names = _add_hostile(remote, hostile)
        async with (
            local_postgres(work.path) as database_url,
            fakekube_process(workdir=work.path, rollout_delay_s=ROLLOUT_DELAY_S) as kube,
            Pipeline.connect(database_url) as pipeline,
        ):
            repo_ids = await pipeline.register_repos(fleet)
            # The hostile rows first: the lowest ids, claimed and queued for rendering first.
            await _insert_hostile(pipeline, hostile_names, repo_id=repo_ids[repo_name])
            await pipeline.insert_deployments(fleet, repo_ids=repo_ids, image_ref="reg.bench/app:0")
            daemon = DaemonProcess(
                workdir=work.path,
                database_url=database_url,
                kubeconfig=kube.kubeconfig,
                settings={},  # every setting at its default
            )
            async with running_daemon(daemon):
                say(f"converging {good} good deployments beside {hostile} looping ones")
                await _wait_settled(
                    pipeline, image_ref="reg.bench/app:0", hostile=hostile, timeout_s=300
                )
                rounds: dict[str, dict[str, Any]] = {}
                for label, image_ref, where in (
                    ("alone", "reg.bench/app:1", _GOOD),
                    ("with_hostile", "reg.bench/app:2", "true"),
                ):
                    say(f"round {label}: {image_ref}")
                    commit_at = await _update(pipeline, image_ref, where=where)
                    await _wait_settled(
                        pipeline, image_ref=image_ref, hostile=hostile, timeout_s=300
                    )
                    rounds[label] = _round_figures(
                        await _good_rows(pipeline, image_ref),
                        commit_at=commit_at,
                        events=daemon.events(),
                        image_ref=image_ref,
                    )
                warnings = daemon.warnings()
    return _report(
        rounds,
        good=good,
        hostile=hostile,
        warnings=dict(warnings),
        machine=machine,
        small=arguments.small,
    )


def _report(
    rounds: Mapping[str, Mapping[str, Any]],
    *,
    good: int,
    hostile: int,
    warnings: Mapping[str, int],
    machine: Mapping[str, Any],
    small: bool,
) -> dict[str, Any]:
    print(
        f"hostile neighbours: {good} good deployments, COMMIT -> healthy, alone and beside "
        f"{hostile} templates looping until the 10 s render deadline (2 render workers)"
    )
    for label, figures in rounds.items():
        result_line(
            f"{label}: p50 / p95 / max",
            f"{figures['p50_ms']:8.1f} / {figures['p95_ms']:.1f} / {figures['max_ms']:.1f} ms",
        )
        result_line(
            f"{label}: render stage p50 / max",
            f"{figures['render_stage_p50_ms']} / {figures['render_stage_max_ms']} ms"
            "  (attempt start -> rendered and admitted)",
        )
    if warnings:
        result_line("daemon warnings", str(dict(warnings)))
    return {
        "bench": "hostile_neighbours",
        "small": small,
        "good": good,
        "hostile": hostile,
        "alone": dict(rounds["alone"]),
        "with_hostile": dict(rounds["with_hostile"]),
        "daemon_warnings": dict(warnings),
        "machine": dict(machine),
    }


def main() -> int:
    arguments = _arguments()
    return run_benchmark("hostile_neighbours", lambda: _run(arguments))


if __name__ == "__main__":
    sys.exit(main())
