"""Idle cost: a converged fleet of 10,000 deployments, and a daemon with nothing to do.

    .venv/bin/python bench/idle.py [--small] [--deployments N] [--cpu-window S]
                                   [--sync-interval S] [--keep]

10,000 deployments over 20 ops repos (registered with the default 60 s sync interval) are
written straight into the table as converged: healthy, ``observed_generation = generation``,
``current_sha`` = the tip of their ops repo, so nothing needs applying.  Then:

1. cycle time: a daemon with RECONCILER_POLL_INTERVAL_S=1 clones every repo, settles, then
   runs 30 passes; each "pass" event's ``duration_ms`` is one poll cycle (the query for repos
   due, starting their syncs, the claim query).
2. CPU and memory: a fresh daemon at the default poll interval (10 s) runs for 60 s
   (``--cpu-window``); its CPU share is the growth of utime+stime in /proc/PID/stat over the
   window, its memory VmRSS from /proc/PID/status at the end.  Git processes it ran (reaped
   children: cutime+cstime) are reported apart, with how many repo syncs fell in the window.

The benchmark fails if either daemon claims anything: the fleet was not converged.
Goals: a cycle <= 20 ms, CPU <= 2 % of a core, RSS <= 200 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from typing import Any

from benchlib import (
    BenchmarkError,
    DaemonProcess,
    Fleet,
    Pipeline,
    Workdir,
    build_fleet,
    fakekube_process,
    local_postgres,
    machine_description,
    pass_events,
    result_line,
    run_benchmark,
    running_daemon,
    say,
    summarize_ms,
    tree_cpu,
    tree_memory_kib,
)

GOAL_CYCLE_MS = 20.0
GOAL_CPU_SHARE = 0.02
GOAL_RSS_MB = 200.0


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--small", action="store_true", help="1,000 deployments, 10 s CPU window, 10 passes"
    )
    parser.add_argument("--deployments", type=int, help="default 10000 (1000 with --small)")
    parser.add_argument("--repos", type=int, default=20, help="ops repos (default 20)")
    parser.add_argument(
        "--cpu-window", type=float, help="seconds of idle CPU to measure (default 60; 10 small)"
    )
    parser.add_argument("--passes", type=int, help="passes to time (default 30; 10 small)")
    parser.add_argument(
        "--sync-interval",
        type=int,
        help="ops_repos.sync_interval_s of every repo (default: the column default, 60)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    return parser.parse_args()


async def _insert_converged(pipeline: Pipeline, fleet: Fleet, repo_ids: dict[str, int]) -> None:
    """Rows as a converged daemon would have left them, written directly."""
    async with pipeline.conn.transaction():
        await pipeline.insert_deployments(fleet, repo_ids=repo_ids, image_ref="reg.bench/app:1")
        for name, repo_id in repo_ids.items():
            # Only the daemon's columns change, so the trigger keeps generation as it is.
            await pipeline.conn.execute(
                """
                UPDATE deployments
                SET current_status = 'healthy', observed_generation = generation,
                    current_image_ref = image_ref, current_values = '{}'::jsonb,
                    current_sha = $1, deployed_at = now(), applied_digest = 'bench-converged'
                WHERE ops_repo_id = $2
                """,
                fleet.shas[name],
                repo_id,
            )
    await pipeline.conn.execute("ANALYZE deployments")


async def _wait_all_synced(pipeline: Pipeline, *, daemon: DaemonProcess, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while await pipeline.conn.fetchval(
        "SELECT count(*) FROM ops_repos WHERE last_synced_at IS NULL OR last_error IS NOT NULL"
    ):
        if daemon.exited() or time.monotonic() > deadline:
            raise BenchmarkError(f"the ops repos were not all synced: {daemon.log_tail()}")
        await asyncio.sleep(0.1)


def _claimed(events: list[dict[str, Any]]) -> int:
    return sum(int(e.get("claimed", 0)) for e in pass_events(events))


async def _run(arguments: argparse.Namespace) -> dict[str, Any]:
    deployments = arguments.deployments or (1000 if arguments.small else 10000)
    window_s = arguments.cpu_window or (10.0 if arguments.small else 60.0)
    passes_wanted = arguments.passes or (10 if arguments.small else 30)
    machine = machine_description()
    with Workdir(prefix="bench-idle-", keep=arguments.keep) as work:
        say(f"work directory {work.path}")
        say(f"building {arguments.repos} ops repos for {deployments} deployments")
        fleet = build_fleet(
            workdir=work.path, env=work.env, repos=arguments.repos, deployments=deployments
        )
        async with (
            local_postgres(work.path) as database_url,
            fakekube_process(workdir=work.path, rollout_delay_s=0.2) as kube,
            Pipeline.connect(database_url) as pipeline,
        ):
            repo_ids = await pipeline.register_repos(fleet, sync_interval_s=arguments.sync_interval)
            say(f"writing {deployments} converged rows")
            await _insert_converged(pipeline, fleet, repo_ids)

            say(f"cycle time: a daemon polling every second, {passes_wanted} passes")
            fast = DaemonProcess(
                workdir=work.path,
                database_url=database_url,
                kubeconfig=kube.kubeconfig,
                settings={"RECONCILER_POLL_INTERVAL_S": "1"},
                name="daemon-fast-poll",
            )
            async with running_daemon(fast):
                started_at = time.time()
                # The first passes only start the clones, which run beside later passes: time
                # the cycle once every repo is on disk and the loop has settled.
                await _wait_all_synced(pipeline, daemon=fast, timeout_s=300)
                initial_sync_s = time.time() - started_at
                await asyncio.sleep(2.0)
                settled_at = time.time()
                while len(pass_events(fast.events(), since=settled_at)) < passes_wanted:
                    if fast.exited():
                        raise BenchmarkError(f"the daemon exited: {fast.log_tail()}")
                    await asyncio.sleep(0.5)
                fast_events = fast.events()
            cycles = pass_events(fast_events, since=settled_at)
            if _claimed(fast_events):
                raise BenchmarkError(
                    f"the daemon claimed {_claimed(fast_events)} deployments: not converged"
                )

            say(f"CPU and memory: a daemon at the default poll interval, {window_s:g} s")
            idle = DaemonProcess(
                workdir=work.path,
                database_url=database_url,
                kubeconfig=kube.kubeconfig,
                settings={},
                name="daemon-default",
            )
            async with running_daemon(idle):
                await asyncio.sleep(3.0)  # past start-up: imports, connections, discovery
                startup = tree_cpu(idle.pid)
                window_start = time.time()
                await asyncio.sleep(window_s)
                used = tree_cpu(idle.pid) - startup
                window_end = time.time()
                memory = tree_memory_kib(idle.pid)
                idle_events = idle.events()
            if _claimed(idle_events):
                raise BenchmarkError(
                    f"the daemon claimed {_claimed(idle_events)} deployments: not converged"
                )
    return _report(
        deployments=deployments,
        repos=arguments.repos,
        cycles=cycles,
        initial_sync_s=initial_sync_s,
        window_s=window_end - window_start,
        used_main_s=used.main_s,
        used_children_s=used.reaped_s + used.helpers_s,
        window_passes=pass_events(idle_events, since=window_start, until=window_end),
        memory=memory,
        machine=machine,
        small=arguments.small,
    )


def _report(
    *,
    deployments: int,
    repos: int,
    cycles: list[Any],
    initial_sync_s: float,
    window_s: float,
    used_main_s: float,
    used_children_s: float,
    window_passes: list[Any],
    memory: dict[str, int],
    machine: dict[str, Any],
    small: bool,
) -> dict[str, Any]:
    plain = [float(p["duration_ms"]) for p in cycles]
    cycle = summarize_ms(plain)
    share = used_main_s / window_s
    rss_mb = memory["main_rss"] / 1024
    synced_in_window = sum(int(p.get("repos_synced", 0)) for p in window_passes)
    print(f"idle: {deployments} converged deployments over {repos} ops repos")
    result_line(
        "poll cycle (one pass), median",
        f"{cycle.get('median', float('nan')):8.2f} ms   (goal <= {GOAL_CYCLE_MS:g} ms)",
    )
    result_line(
        "poll cycle p90 / p99 / max",
        f"{cycle.get('p90', float('nan')):.2f} / {cycle.get('p99', float('nan')):.2f} / "
        f"{cycle.get('max', float('nan')):.2f} ms  ({cycle['n']} passes)",
    )
    result_line("start-up: every repo cloned after", f"{initial_sync_s:8.1f} s")
    result_line(
        "idle CPU, daemon process",
        f"{share * 100:8.2f} %   of one core over {window_s:.0f} s"
        f" (goal <= {GOAL_CPU_SHARE * 100:g} %)",
    )
    result_line(
        "idle CPU, its git processes",
        f"{used_children_s / window_s * 100:8.2f} %   ({synced_in_window} repo syncs in window)",
    )
    result_line("passes in the window", f"{len(window_passes):8d}")
    result_line(
        "RSS (VmRSS) / peak (VmHWM)",
        f"{rss_mb:8.0f} MB / {memory['main_peak_rss'] / 1024:.0f} MB   (goal <= {GOAL_RSS_MB:g} MB;"
        f" {memory['helpers']} helper processes)",
    )
    met = (
        cycle.get("median", float("inf")) <= GOAL_CYCLE_MS
        and share <= GOAL_CPU_SHARE
        and rss_mb <= GOAL_RSS_MB
    )
    result_line("goals met", "yes" if met else "NO")
    return {
        "bench": "idle",
        "small": small,
        "deployments": deployments,
        "repos": repos,
        "cycle_ms": cycle,
        "initial_sync_s": round(initial_sync_s, 2),
        "cpu_window_s": round(window_s, 1),
        "cpu_share": round(share, 4),
        "git_cpu_share": round(used_children_s / window_s, 4),
        "repo_syncs_in_window": synced_in_window,
        "passes_in_window": len(window_passes),
        "rss_mb": round(rss_mb, 1),
        "peak_rss_mb": round(memory["main_peak_rss"] / 1024, 1),
        "goals": {"cycle_ms": GOAL_CYCLE_MS, "cpu_share": GOAL_CPU_SHARE, "rss_mb": GOAL_RSS_MB},
        "goals_met": met,
        "machine": machine,
    }


def main() -> int:
    arguments = _arguments()
    return run_benchmark("idle", lambda: _run(arguments))


if __name__ == "__main__":
    sys.exit(main())
