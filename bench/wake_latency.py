"""Wake latency: from a pipeline's COMMIT of a new image_ref to the first server-side apply.

    .venv/bin/python bench/wake_latency.py [--small] [--updates N] [--keep]

A daemon process with default settings (poll interval 10 s, so a missed NOTIFY would show as
seconds) serves 10 deployments from one ops repo (registered with the default 60 s sync
interval).  The benchmark updates one deployment's image_ref at a time (round-robin), reads the
clock just before sending COMMIT, waits until that rollout is healthy, and takes the first
``PATCH application/apply-patch+yaml`` request into that deployment's namespace from fakekube's
request log.  A random pause of 0-300 ms after each rollout keeps the updates from arriving at
the same phase of the daemon's loop every time.

The daemon's "pass" events split each latency into: commit -> the pass that claimed it starts
(NOTIFY delivery and wake-up), the pass itself (starting due repo syncs, the claim), and pass end ->
first apply (render, recording the attempt's start, the HTTP request).
Goal: p50 <= 100 ms, p99 <= 500 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
from typing import Any

from benchlib import (
    BenchmarkError,
    DaemonProcess,
    Pipeline,
    Workdir,
    build_fleet,
    fakekube_process,
    local_postgres,
    machine_description,
    pass_events,
    percentile,
    result_line,
    run_benchmark,
    running_daemon,
    say,
)

GOAL_P50_MS = 100.0
GOAL_P99_MS = 500.0


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="10 updates instead of 100")
    parser.add_argument("--updates", type=int, help="how many updates to time")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--seed", type=int, default=1, help="seed of the random pauses")
    return parser.parse_args()


async def _wait_row_healthy(
    pipeline: Pipeline, *, project: str, environment: str, image_ref: str, timeout_s: float
) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        row = await pipeline.conn.fetchrow(
            "SELECT current_status, current_image_ref, generation, observed_generation, "
            "status_message FROM deployments WHERE project = $1 AND environment = $2",
            project,
            environment,
        )
        assert row is not None
        if (
            row["current_status"] == "healthy"
            and row["current_image_ref"] == image_ref
            and row["generation"] == row["observed_generation"]
        ):
            return
        if time.monotonic() > deadline:
            raise BenchmarkError(
                f"{project}/{environment} not healthy at {image_ref} after {timeout_s:g}s: "
                f"{row['current_status']} {row['status_message']}"
            )
        await asyncio.sleep(0.02)


async def _run(arguments: argparse.Namespace) -> dict[str, Any]:
    updates = arguments.updates or (10 if arguments.small else 100)
    rng = random.Random(arguments.seed)
    machine = machine_description()
    with Workdir(prefix="bench-wake-", keep=arguments.keep) as work:
        say(f"work directory {work.path}")
        fleet = build_fleet(workdir=work.path, env=work.env, repos=1, deployments=10)
        async with (
            local_postgres(work.path) as database_url,
            fakekube_process(workdir=work.path, rollout_delay_s=0.2) as kube,
            Pipeline.connect(database_url) as pipeline,
        ):
            repo_ids = await pipeline.register_repos(fleet)
            await pipeline.insert_deployments(fleet, repo_ids=repo_ids, image_ref="reg.bench/app:0")
            daemon = DaemonProcess(
                workdir=work.path,
                database_url=database_url,
                kubeconfig=kube.kubeconfig,
                settings={},  # every setting at its default
            )
            async with running_daemon(daemon):
                say("converging the first rollout of 10 deployments")
                await pipeline.wait_converged(image_ref="reg.bench/app:0", timeout_s=120)
                await asyncio.sleep(1.0)
                samples: list[dict[str, float]] = []
                say(f"timing {updates} updates")
                for index in range(updates):
                    project, environment, _repo = fleet.rows[index % len(fleet.rows)]
                    image_ref = f"reg.bench/app:{index + 1}"
                    commit_at = await pipeline.update_image(
                        project=project, environment=environment, image_ref=image_ref
                    )
                    await _wait_row_healthy(
                        pipeline,
                        project=project,
                        environment=environment,
                        image_ref=image_ref,
                        timeout_s=60,
                    )
                    first = await kube.first_apply(
                        since=commit_at, path_contains=f"/namespaces/{project}-{environment}"
                    )
                    if first is None:
                        raise BenchmarkError(f"no apply reached fakekube for update {index + 1}")
                    samples.append({"commit_at": commit_at, "apply_at": first.time})
                    await asyncio.sleep(rng.uniform(0.0, 0.3))
                events = daemon.events()
                warnings = daemon.warnings()
    return _report(
        samples, events=events, warnings=dict(warnings), machine=machine, small=arguments.small
    )


def _report(
    samples: list[dict[str, float]],
    *,
    events: list[dict[str, Any]],
    warnings: dict[str, int],
    machine: dict[str, Any],
    small: bool,
) -> dict[str, Any]:
    latencies = [(s["apply_at"] - s["commit_at"]) * 1000 for s in samples]
    to_pass: list[float] = []
    in_pass: list[float] = []
    after_pass: list[float] = []
    syncing_passes = 0
    claiming = [e for e in pass_events(events) if int(e.get("claimed", 0)) > 0]
    for sample in samples:
        # The pass that claimed this update: the first claiming pass to end after the commit.
        match = next((e for e in claiming if e["t"] >= sample["commit_at"]), None)
        if match is None or match["t"] > sample["apply_at"]:
            continue
        began = match["t"] - float(match["duration_ms"]) / 1000
        to_pass.append((began - sample["commit_at"]) * 1000)
        in_pass.append(float(match["duration_ms"]))
        after_pass.append((sample["apply_at"] - match["t"]) * 1000)
        syncing_passes += int(match.get("repos_synced", 0)) > 0
    p50 = percentile(latencies, 0.50)
    p99 = percentile(latencies, 0.99)
    print(f"wake latency: COMMIT -> first server-side apply, {len(latencies)} updates")
    result_line("p50", f"{p50:8.1f} ms   (goal <= {GOAL_P50_MS:g} ms)")
    result_line("p99", f"{p99:8.1f} ms   (goal <= {GOAL_P99_MS:g} ms)")
    result_line(
        "mean / min / max",
        f"{statistics.fmean(latencies):.1f} / {min(latencies):.1f} / {max(latencies):.1f} ms",
    )
    if in_pass:
        result_line(
            "median: commit -> pass starts",
            f"{statistics.median(to_pass):8.1f} ms  (NOTIFY delivery, wake-up)",
        )
        result_line(
            "median: the pass (start due syncs, claim)", f"{statistics.median(in_pass):8.1f} ms"
        )
        result_line(
            "median: pass end -> first apply",
            f"{statistics.median(after_pass):8.1f} ms  (render, start_attempt, HTTP)",
        )
        result_line(
            "claiming passes that also started syncs",
            f"{syncing_passes} of {len(in_pass)} (sync interval 60 s)",
        )
    if warnings:
        result_line("daemon warnings", str(warnings))
    met = p50 <= GOAL_P50_MS and p99 <= GOAL_P99_MS
    result_line("goals met", "yes" if met else "NO")
    return {
        "bench": "wake_latency",
        "small": small,
        "updates": len(latencies),
        "p50_ms": round(p50, 2),
        "p99_ms": round(p99, 2),
        "mean_ms": round(statistics.fmean(latencies), 2),
        "max_ms": round(max(latencies), 2),
        "median_commit_to_pass_ms": round(statistics.median(to_pass), 2) if to_pass else None,
        "median_pass_ms": round(statistics.median(in_pass), 2) if in_pass else None,
        "median_pass_to_apply_ms": round(statistics.median(after_pass), 2) if after_pass else None,
        "claiming_passes_with_git_sync": syncing_passes,
        "daemon_warnings": warnings,
        "goals": {"p50_ms": GOAL_P50_MS, "p99_ms": GOAL_P99_MS},
        "goals_met": met,
        "machine": machine,
    }


def main() -> int:
    arguments = _arguments()
    return run_benchmark("wake_latency", lambda: _run(arguments))


if __name__ == "__main__":
    sys.exit(main())
