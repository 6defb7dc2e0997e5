"""Throughput: one bulk image update of 1,000 deployments, from COMMIT to all healthy.

    .venv/bin/python bench/throughput.py [--small] [--concurrency N] [--deployments N]
                                         [--repos N] [--sync-interval S] [--profile FILE]
                                         [--keep]

1,000 deployments (500 projects in prod and staging) over 20 ops repos, 2 or 3 objects each
(a ConfigMap and a Deployment of 1 replica; every other project also a Service).  fakekube
answers every request after 20 ms (``faults.latency_s``) and a Pod takes 1 s to become Ready.
The daemon runs as a process with RECONCILER_CONCURRENCY=N (default 64; see bench/README.md).

First every deployment is converged (the creates, timed too), then one ``UPDATE deployments
SET image_ref = ...`` of all rows is committed and timed until every row is healthy at the new
image (the end is the last history row's finished_at).  In that window we count fakekube's
requests per deployment, the daemon's passes and their ``repos_synced``, and every git process
the daemon started (a counting ``git`` wrapper first on its PATH), peak database connections,
and CPU: the daemon's own, its render workers' and git children's, fakekube's, the machine's.
Goal: <= 60 s on 2 cores.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import time
from pathlib import Path
from typing import Any

from benchlib import (
    BenchmarkError,
    DaemonProcess,
    MachineCpu,
    Pipeline,
    Workdir,
    build_fleet,
    cpu_times,
    fakekube_process,
    git_counting_wrapper,
    git_invocations,
    local_postgres,
    machine_description,
    pass_events,
    request_kinds,
    result_line,
    run_benchmark,
    running_daemon,
    say,
    tree_cpu,
    tree_memory_kib,
)

GOAL_S = 60.0
LATENCY_S = 0.02
ROLLOUT_DELAY_S = 1.0
DEFAULT_CONCURRENCY = 64


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="100 deployments over 2 repos")
    parser.add_argument("--deployments", type=int, help="default 1000 (100 with --small)")
    parser.add_argument("--repos", type=int, help="default 20 (2 with --small)")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=DEFAULT_CONCURRENCY,
        help=f"RECONCILER_CONCURRENCY (default {DEFAULT_CONCURRENCY})",
    )
    parser.add_argument(
        "--sync-interval",
        type=int,
        help="ops_repos.sync_interval_s of every repo (default: the column default, 60)",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="FILE",
        help="record the daemon with py-spy during the bulk update (collapsed stacks to FILE)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    return parser.parse_args()


async def _start_profiler(pid: int, output: Path) -> asyncio.subprocess.Process:
    """py-spy sampling the daemon and its render workers at 200 Hz until interrupted."""
    py_spy = Path(sys.executable).with_name("py-spy")
    if not py_spy.exists():
        raise BenchmarkError(
            f"--profile needs py-spy: {py_spy} does not exist (pip install py-spy)"
        )
    return await asyncio.create_subprocess_exec(
        str(py_spy),
        "record",
        "--pid",
        str(pid),
        "--rate",
        "200",
        "--subprocesses",
        "--gil",  # only threads holding the GIL: CPU, not threads parked on a lock
        "--format",
        "raw",
        "--output",
        str(output),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )


async def _stop_profiler(profiler: asyncio.subprocess.Process | None) -> None:
    if profiler is None:
        return
    profiler.send_signal(signal.SIGINT)
    try:
        await asyncio.wait_for(profiler.wait(), timeout=30)
    except TimeoutError:
        profiler.kill()
        await profiler.wait()


async def _run(arguments: argparse.Namespace) -> dict[str, Any]:
    deployments = arguments.deployments or (100 if arguments.small else 1000)
    repos = arguments.repos or (2 if arguments.small else 20)
    machine = machine_description()
    with Workdir(prefix="bench-throughput-", keep=arguments.keep) as work:
        say(f"work directory {work.path}")
        say(f"building {repos} ops repos for {deployments} deployments")
        fleet = build_fleet(workdir=work.path, env=work.env, repos=repos, deployments=deployments)
        git_log = work.path / "git-invocations.log"
        git_bin = work.path / "git-bin"
        git_counting_wrapper(bin_dir=git_bin, log_path=git_log)
        async with (
            local_postgres(work.path) as database_url,
            fakekube_process(
                workdir=work.path, rollout_delay_s=ROLLOUT_DELAY_S, latency_s=LATENCY_S
            ) as kube,
            Pipeline.connect(database_url) as pipeline,
        ):
            repo_ids = await pipeline.register_repos(fleet, sync_interval_s=arguments.sync_interval)
            daemon = DaemonProcess(
                workdir=work.path,
                database_url=database_url,
                kubeconfig=kube.kubeconfig,
                settings={"RECONCILER_CONCURRENCY": str(arguments.concurrency)},
                extra_path=[git_bin],
            )
            async with running_daemon(daemon):
                say(f"inserting {deployments} deployments and converging them (creates)")
                created_at = time.time()
                await pipeline.insert_deployments(
                    fleet, repo_ids=repo_ids, image_ref="reg.bench/app:1"
                )
                await pipeline.wait_converged(
                    image_ref="reg.bench/app:1", timeout_s=1800, daemon=daemon
                )
                create_s = (
                    await pipeline.last_finish(since=created_at) or time.time()
                ) - created_at
                say(f"converged in {create_s:.1f} s; settling for 3 s")
                await asyncio.sleep(3.0)

                say("bulk update: one UPDATE of every row's image_ref")
                daemon_cpu = tree_cpu(daemon.pid)
                kube_cpu = cpu_times(kube.pid)
                profiler = None
                if arguments.profile is not None:
                    profiler = await _start_profiler(daemon.pid, arguments.profile)
                    await asyncio.sleep(1.0)  # py-spy attaches
                pipeline.peak_other_connections = 0
                pipeline.peak_busy_connections = 0
                machine_cpu = MachineCpu()
                commit_at = await pipeline.update_all_images("reg.bench/app:2")
                try:
                    await pipeline.wait_converged(
                        image_ref="reg.bench/app:2", timeout_s=1800, daemon=daemon
                    )
                finally:
                    await _stop_profiler(profiler)
                busy = machine_cpu.busy_share()
                daemon_used = tree_cpu(daemon.pid) - daemon_cpu
                kube_used = cpu_times(kube.pid) - kube_cpu
                done_at = await pipeline.last_finish(since=commit_at) or time.time()
                memory = tree_memory_kib(daemon.pid)
                peak_connections = pipeline.peak_other_connections
                peak_busy = pipeline.peak_busy_connections
                statuses = await pipeline.history_statuses(since=commit_at)
                requests = await kube.requests(since=commit_at, until=done_at)
                events = daemon.events()
                warnings = daemon.warnings()
            git = git_invocations(git_log, since=commit_at, until=done_at + 0.5)
    elapsed = done_at - commit_at
    passes = pass_events(events, since=commit_at, until=done_at + 0.5)
    synced = [int(p.get("repos_synced", 0)) for p in passes]
    kinds = request_kinds(requests)
    fetches = git["fetch"] + git["clone"]
    print(
        f"throughput: bulk image update of {deployments} deployments over {repos} ops repos, "
        f"RECONCILER_CONCURRENCY={arguments.concurrency}, fakekube latency "
        f"{LATENCY_S * 1000:g} ms, rollouts {ROLLOUT_DELAY_S:g} s"
    )
    result_line("initial converge (creates)", f"{create_s:8.1f} s")
    result_line("bulk update: COMMIT -> all healthy", f"{elapsed:8.1f} s   (goal <= {GOAL_S:g} s)")
    result_line("deployments per second", f"{deployments / elapsed:8.1f}")
    result_line(
        "API requests per deployment",
        f"{len(requests) / deployments:8.1f}   ({len(requests)} requests)",
    )
    for kind, count in kinds.most_common():
        result_line(f"  {kind}", f"{count / deployments:8.2f} per deployment")
    result_line("daemon passes in the window", f"{len(passes):8d}")
    result_line(
        "repo syncs (sum of repos_synced)",
        f"{sum(synced):8d}   in {sum(1 for s in synced if s)} passes,"
        f" at most {max(synced, default=0)} per pass ({repos} repos)",
    )
    result_line(
        "git processes the daemon started",
        f"{sum(git.values()):8d}   ({', '.join(f'{k} {v}' for k, v in git.most_common())})",
    )
    result_line(
        "git fetches+clones per pass that synced",
        f"{fetches / max(1, sum(1 for s in synced if s)):8.1f}",
    )
    result_line(
        "CPU: daemon / its render workers / git",
        f"{daemon_used.main_s:.1f} s / {daemon_used.helpers_s:.1f} s / {daemon_used.reaped_s:.1f} s"
        f"   ({daemon_used.total_s * 1000 / deployments:.1f} ms per deployment)",
    )
    result_line("CPU: fakekube", f"{kube_used.own_s:.1f} s")
    result_line("CPU: whole machine busy", f"{busy * 100:8.0f} % of all cores")
    result_line(
        "daemon RSS / peak; workers' RSS; tree PSS",
        f"{memory['main_rss'] / 1024:.0f} / {memory['main_peak_rss'] / 1024:.0f} MiB; "
        f"{memory['helpers_rss'] / 1024:.0f} MiB ({memory['helpers']} processes); "
        f"{memory['tree_pss'] / 1024:.0f} MiB",
    )
    result_line(
        "peak database connections: open / busy",
        f"{peak_connections:8d} / {peak_busy}   (sampled 4 times a second, not counting ours)",
    )
    result_line("history rows in the window", str(dict(statuses)))
    if warnings:
        result_line("daemon warnings", str(dict(warnings)))
    met = elapsed <= GOAL_S
    result_line("goal met", "yes" if met else "NO")
    return {
        "bench": "throughput",
        "small": arguments.small,
        "deployments": deployments,
        "repos": repos,
        "concurrency": arguments.concurrency,
        "sync_interval_s": arguments.sync_interval if arguments.sync_interval is not None else 60,
        "create_s": round(create_s, 2),
        "bulk_update_s": round(elapsed, 2),
        "requests_per_deployment": round(len(requests) / deployments, 2),
        "requests_by_kind": dict(kinds),
        "passes": len(passes),
        "repo_syncs": sum(synced),
        "passes_with_syncs": sum(1 for s in synced if s),
        "max_repo_syncs_per_pass": max(synced, default=0),
        "git_processes": dict(git),
        "daemon_cpu_s": round(daemon_used.main_s, 2),
        "daemon_render_workers_cpu_s": round(daemon_used.helpers_s, 2),
        "daemon_reaped_children_cpu_s": round(daemon_used.reaped_s, 2),
        "fakekube_cpu_s": round(kube_used.own_s, 2),
        "machine_busy_share": round(busy, 3),
        "daemon_memory_kib": memory,
        "peak_db_connections": peak_connections,
        "peak_busy_db_connections": peak_busy,
        "history": dict(statuses),
        "daemon_warnings": dict(warnings),
        "goal_s": GOAL_S,
        "goal_met": met,
        "machine": machine,
    }


def main() -> int:
    arguments = _arguments()
    return run_benchmark("throughput", lambda: _run(arguments))


if __name__ == "__main__":
    sys.exit(main())
