"""Throughput: one bulk image update of 1,000 deployments, from COMMIT to all healthy.

    .venv/bin/python bench/throughput.py [--small] [--concurrency N] [--deployments N]
                                         [--repos N] [--sync-interval S] [--profile FILE]
                                         [--sample FILE] [--keep]

1,000 deployments (500 projects in prod and staging) over 20 ops repos, 2 or 3 objects each
(a ConfigMap and a Deployment of 1 replica; every other project also a Service).  fakekube
answers every request after 20 ms (``faults.latency_s``) and a Pod takes 1 s to become Ready.
The daemon runs as a process on its default settings (RECONCILER_CONCURRENCY is set only with
``--concurrency``).

First every deployment is converged (the creates, timed too), then one ``UPDATE deployments
SET image_ref = ...`` of all rows is committed and timed until every row is healthy at the new
image (the end is the last history row's finished_at).  In that window we count fakekube's
requests per deployment (applies, dry-run applies, GETs, LISTs by resource; WATCHes apart:
each is one long-lived stream, not a per-deployment cost), the daemon's passes and their
``repos_synced``, every git process the daemon started (a counting ``git`` wrapper first on its
PATH), peak database connections, CPU per deployment (the daemon's own, its render workers',
its git children's, fakekube's; the machine's share), and where each deployment's time went:
COMMIT -> its attempt started (queued for a slot), attempt start -> history ``started_at``
(render, schema, policy, inventory), ``started_at`` -> ``finished_at`` (apply, health wait,
prune, record).  Goal: <= 5 s on 2 cores; <= 4.5 requests per deployment; <= 10 ms of CPU per
deployment, daemon + render workers + fakekube.

``--profile FILE`` runs the daemon under cProfile (``bench/profiled_daemon.py``), profiling
only the bulk update window; FILE gets the pstats dump and FILE.txt the top functions.  It
slows the daemon: take its timings from a run without it.  ``--sample FILE`` runs it under a
sampling profiler instead (``bench/sampled_daemon.py``: stacks every 5 ms of CPU, no cost per
call), FILE the collapsed stacks and FILE.txt a summary; fakekube's go to FILE.fakekube and
FILE.fakekube.txt.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import statistics
import sys
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from benchlib import (
    REQUEST_CLASSES,
    DaemonProcess,
    FakeKubeProcess,
    Fleet,
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
    percentile,
    postgres_pid,
    request_breakdown,
    request_kinds,
    result_line,
    run_benchmark,
    running_daemon,
    say,
    tree_cpu,
    tree_memory_kib,
)

from reconciler.settings import Settings

GOAL_S = 5.0
GOAL_REQUESTS_PER_DEPLOYMENT = 4.5
GOAL_CPU_MS_PER_DEPLOYMENT = 10.0
LATENCY_S = 0.02
ROLLOUT_DELAY_S = 1.0
DAEMON_DEFAULT_CONCURRENCY = Settings().concurrency


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="100 deployments over 2 repos")
    parser.add_argument("--deployments", type=int, help="default 1000 (100 with --small)")
    parser.add_argument("--repos", type=int, help="default 20 (2 with --small)")
    parser.add_argument(
        "--concurrency",
        type=int,
        help=f"set RECONCILER_CONCURRENCY (default: not set, the daemon's default "
        f"{DAEMON_DEFAULT_CONCURRENCY})",
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
        help="run the daemon under cProfile for the bulk update (pstats to FILE, text to "
        "FILE.txt); it slows the daemon",
    )
    parser.add_argument(
        "--sample",
        type=Path,
        metavar="FILE",
        help="run the daemon and fakekube under a sampling profiler for the bulk update "
        "(collapsed stacks to FILE and FILE.fakekube, summaries to FILE.txt and "
        "FILE.fakekube.txt)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    arguments = parser.parse_args()
    if arguments.profile is not None and arguments.sample is not None:
        parser.error("--profile and --sample exclude each other")
    return arguments


def _fakekube_samples(arguments: argparse.Namespace) -> Path | None:
    if arguments.sample is None:
        return None
    sample: Path = arguments.sample.resolve()
    return sample.with_name(sample.name + ".fakekube")


def _daemon(
    arguments: argparse.Namespace, *, work: Workdir, database_url: str, kubeconfig: Path
) -> DaemonProcess:
    settings = {}
    if arguments.concurrency is not None:
        settings["RECONCILER_CONCURRENCY"] = str(arguments.concurrency)
    command = None
    if arguments.profile is not None:
        profiled = Path(__file__).with_name("profiled_daemon.py")
        command = [sys.executable, str(profiled), str(arguments.profile.resolve())]
    elif arguments.sample is not None:
        sampled = Path(__file__).with_name("sampled_daemon.py")
        command = [sys.executable, str(sampled), str(arguments.sample.resolve())]
    return DaemonProcess(
        workdir=work.path,
        database_url=database_url,
        kubeconfig=kubeconfig,
        settings=settings,
        extra_path=[work.path / "git-bin"],
        command=command,
    )


async def _attempt_phases(
    pipeline: Pipeline, *, events: Sequence[Mapping[str, Any]], commit_at: float
) -> dict[str, dict[str, float]]:
    """Where each deployment's time went, in seconds after the COMMIT: when its attempt
    began (the ``reconcile`` event's time minus its duration), when its history row started
    (render and admission done) and when it finished."""
    began = {
        int(e["deployment_id"]): float(e["t"]) - float(e["duration_ms"]) / 1000
        for e in events
        if e.get("event") == "reconcile" and float(e.get("t", 0)) >= commit_at
    }
    rows = await pipeline.conn.fetch(
        "SELECT deployment_id, extract(epoch FROM started_at) AS started, "
        "extract(epoch FROM finished_at) AS finished FROM deployment_history "
        "WHERE finished_at >= to_timestamp($1)",
        commit_at,
    )
    spans: dict[str, list[float]] = {"queued": [], "render_admit": [], "apply_to_healthy": []}
    starts: list[float] = []
    for row in rows:
        start = began.get(int(row["deployment_id"]))
        started, finished = float(row["started"]), float(row["finished"])
        if start is None:
            continue
        starts.append(start - commit_at)
        spans["queued"].append(start - commit_at)
        spans["render_admit"].append(started - start)
        spans["apply_to_healthy"].append(finished - started)
    summary = {name: _seconds(values) for name, values in spans.items()}
    summary["attempt_start_spread"] = {
        "first": round(min(starts, default=0.0), 3),
        "last": round(max(starts, default=0.0), 3),
    }
    return summary


def _seconds(values: Sequence[float]) -> dict[str, float]:
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "p50": round(statistics.median(values), 3),
        "p90": round(percentile(values, 0.90), 3),
        "max": round(max(values), 3),
    }


async def _transactions(pipeline: Pipeline) -> tuple[int, int]:
    """Transactions committed or rolled back in the database so far (every client's; ours are
    the few progress queries, 4 a second), and sessions opened (PostgreSQL 14 and later: each
    a new server backend)."""
    row = await pipeline.conn.fetchrow(
        "SELECT xact_commit + xact_rollback AS transactions, sessions FROM pg_stat_database "
        "WHERE datname = current_database()"
    )
    assert row is not None
    return int(row["transactions"]), int(row["sessions"])


async def _converge(
    pipeline: Pipeline, *, daemon: DaemonProcess, fleet: Fleet, repo_ids: dict[str, int]
) -> float:
    """Insert every deployment and wait for all to be healthy: the creates' duration."""
    created_at = time.time()
    await pipeline.insert_deployments(fleet, repo_ids=repo_ids, image_ref="reg.bench/app:1")
    await pipeline.wait_converged(image_ref="reg.bench/app:1", timeout_s=1800, daemon=daemon)
    return (await pipeline.last_finish(since=created_at) or time.time()) - created_at


async def _bulk_update(
    pipeline: Pipeline,
    *,
    daemon: DaemonProcess,
    kube: FakeKubeProcess,
    postgres: int,
    profiling: bool,
) -> dict[str, Any]:
    """The timed update and what it cost."""
    daemon_cpu = tree_cpu(daemon.pid)
    postgres_cpu = tree_cpu(postgres)
    kube_cpu = cpu_times(kube.pid)
    if profiling:
        daemon.signal(signal.SIGUSR1)
        kube.signal(signal.SIGUSR1)
    pipeline.peak_other_connections = 0
    pipeline.peak_busy_connections = 0
    transactions, sessions = await _transactions(pipeline)
    machine_cpu = MachineCpu()
    commit_at = await pipeline.update_all_images("reg.bench/app:2")
    try:
        await pipeline.wait_converged(image_ref="reg.bench/app:2", timeout_s=1800, daemon=daemon)
    finally:
        if profiling:
            daemon.signal(signal.SIGUSR2)
            kube.signal(signal.SIGUSR2)
    busy = machine_cpu.busy_share()
    transactions_after, sessions_after = await _transactions(pipeline)
    transactions = transactions_after - transactions
    daemon_used = tree_cpu(daemon.pid) - daemon_cpu
    kube_used = cpu_times(kube.pid) - kube_cpu
    postgres_used = tree_cpu(postgres) - postgres_cpu
    done_at = await pipeline.last_finish(since=commit_at) or time.time()
    events = daemon.events()
    return {
        "commit_at": commit_at,
        "done_at": done_at,
        "busy": busy,
        "daemon_used": daemon_used,
        "kube_used": kube_used,
        "memory": tree_memory_kib(daemon.pid),
        "peak_connections": pipeline.peak_other_connections,
        "peak_busy": pipeline.peak_busy_connections,
        "statuses": await pipeline.history_statuses(since=commit_at),
        "requests": await kube.requests(since=commit_at, until=done_at),
        "events": events,
        "warnings": daemon.warnings(),
        "phases": await _attempt_phases(pipeline, events=events, commit_at=commit_at),
        "transactions": transactions,
        "sessions": sessions_after - sessions,
        "postgres_used": postgres_used,
    }


async def _run(arguments: argparse.Namespace) -> dict[str, Any]:
    deployments = arguments.deployments or (100 if arguments.small else 1000)
    repos = arguments.repos or (2 if arguments.small else 20)
    machine = machine_description()
    with Workdir(prefix="bench-throughput-", keep=arguments.keep) as work:
        say(f"work directory {work.path}")
        say(f"building {repos} ops repos for {deployments} deployments")
        fleet = build_fleet(workdir=work.path, env=work.env, repos=repos, deployments=deployments)
        git_log = work.path / "git-invocations.log"
        git_counting_wrapper(bin_dir=work.path / "git-bin", log_path=git_log)
        async with (
            local_postgres(work.path) as database_url,
            fakekube_process(
                workdir=work.path,
                rollout_delay_s=ROLLOUT_DELAY_S,
                latency_s=LATENCY_S,
                sample=_fakekube_samples(arguments),
            ) as kube,
            Pipeline.connect(database_url) as pipeline,
        ):
            repo_ids = await pipeline.register_repos(fleet, sync_interval_s=arguments.sync_interval)
            daemon = _daemon(
                arguments, work=work, database_url=database_url, kubeconfig=kube.kubeconfig
            )
            async with running_daemon(daemon):
                say(f"inserting {deployments} deployments and converging them (creates)")
                create_s = await _converge(pipeline, daemon=daemon, fleet=fleet, repo_ids=repo_ids)
                say(f"converged in {create_s:.1f} s; settling for 3 s")
                await asyncio.sleep(3.0)
                say("bulk update: one UPDATE of every row's image_ref")
                window = await _bulk_update(
                    pipeline,
                    daemon=daemon,
                    kube=kube,
                    postgres=postgres_pid(work.path),
                    profiling=arguments.profile is not None or arguments.sample is not None,
                )
            window["git"] = git_invocations(
                git_log, since=window["commit_at"], until=window["done_at"] + 0.5
            )
    return _report(
        arguments,
        deployments=deployments,
        repos=repos,
        create_s=create_s,
        window=window,
        machine=machine,
    )


def _request_lines(breakdown: Mapping[str, Counter[str]], *, deployments: int) -> dict[str, Any]:
    """Print requests per deployment by class and resource; the figures for the JSON line."""
    per_class: dict[str, Any] = {}
    order = [c for c in REQUEST_CLASSES if c in breakdown]
    order += sorted(c for c in breakdown if c not in REQUEST_CLASSES)
    for name in order:
        counts = breakdown[name]
        total = sum(counts.values())
        resources = ", ".join(f"{r} {n / deployments:.2f}" for r, n in counts.most_common())
        if name == "watch":
            # A watch is one long-lived stream serving every deployment: a count, not a rate.
            opened = ", ".join(f"{r} {n}" for r, n in counts.most_common())
            result_line(
                "  watch (long-lived, not per deployment)", f"{total:8d}   opened: {opened}"
            )
        else:
            result_line(f"  {name}", f"{total / deployments:8.2f} per deployment   ({resources})")
        per_class[name] = {
            "total": total,
            "per_deployment": round(total / deployments, 3),
            "by_resource": dict(counts),
        }
    return per_class


def _report(
    arguments: argparse.Namespace,
    *,
    deployments: int,
    repos: int,
    create_s: float,
    window: dict[str, Any],
    machine: dict[str, Any],
) -> dict[str, Any]:
    commit_at, done_at = window["commit_at"], window["done_at"]
    elapsed = done_at - commit_at
    requests = window["requests"]
    breakdown = request_breakdown(requests)
    watches = sum(breakdown.get("watch", Counter()).values())
    non_watch = len(requests) - watches
    passes = pass_events(window["events"], since=commit_at, until=done_at + 0.5)
    synced = [int(p.get("repos_synced", 0)) for p in passes]
    git: Counter[str] = window["git"]
    daemon_used, kube_used = window["daemon_used"], window["kube_used"]
    per = 1000 / deployments
    cpu_ms = {
        "daemon": round(daemon_used.main_s * per, 2),
        "render_workers": round(daemon_used.helpers_s * per, 2),
        "git_and_reaped": round(daemon_used.reaped_s * per, 2),
        "fakekube": round(kube_used.own_s * per, 2),
        "postgres": round(window["postgres_used"].total_s * per, 2),
    }
    cpu_goal_ms = cpu_ms["daemon"] + cpu_ms["render_workers"] + cpu_ms["fakekube"]
    concurrency = (
        f"RECONCILER_CONCURRENCY={arguments.concurrency} (--concurrency)"
        if arguments.concurrency is not None
        else f"daemon default settings (concurrency {DAEMON_DEFAULT_CONCURRENCY}, not set)"
    )
    print(
        f"throughput: bulk image update of {deployments} deployments over {repos} ops repos, "
        f"{concurrency}, fakekube latency {LATENCY_S * 1000:g} ms, rollouts "
        f"{ROLLOUT_DELAY_S:g} s"
        + (", PROFILED (cProfile): timings slowed" if arguments.profile else "")
    )
    result_line("initial converge (creates)", f"{create_s:8.1f} s")
    result_line("bulk update: COMMIT -> all healthy", f"{elapsed:8.1f} s   (goal <= {GOAL_S:g} s)")
    result_line("deployments per second", f"{deployments / elapsed:8.1f}")
    result_line(
        "API requests per deployment, no watches",
        f"{non_watch / deployments:8.2f}   ({non_watch} requests; goal <= "
        f"{GOAL_REQUESTS_PER_DEPLOYMENT:g}, applies only)",
    )
    per_class = _request_lines(breakdown, deployments=deployments)
    phases = window["phases"]
    for name, label in (
        ("queued", "COMMIT -> attempt start (queued)"),
        ("render_admit", "attempt start -> started_at (render..)"),
        ("apply_to_healthy", "started_at -> finished_at (apply..record)"),
    ):
        figures = phases[name]
        p50, p90, top = (figures.get(k, float("nan")) for k in ("p50", "p90", "max"))
        result_line(
            f"  {label}", f"p50 {p50:.2f} s, p90 {p90:.2f} s, max {top:.2f} s  (n={figures['n']})"
        )
    spread = phases["attempt_start_spread"]
    result_line(
        "  attempts started between",
        f"{spread['first']:.2f} s and {spread['last']:.2f} s after the COMMIT",
    )
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
        "CPU per deployment: daemon / render workers",
        f"{cpu_ms['daemon']:.2f} ms / {cpu_ms['render_workers']:.2f} ms"
        f"   (git and reaped children {cpu_ms['git_and_reaped']:.2f} ms)",
    )
    result_line("CPU per deployment: fakekube", f"{cpu_ms['fakekube']:8.2f} ms")
    result_line("CPU per deployment: PostgreSQL (not in goal)", f"{cpu_ms['postgres']:8.2f} ms")
    result_line(
        "CPU per deployment: daemon+workers+fakekube",
        f"{cpu_goal_ms:8.2f} ms   (goal <= {GOAL_CPU_MS_PER_DEPLOYMENT:g} ms)",
    )
    result_line(
        "CPU in the window: daemon / workers / git / fakekube",
        f"{daemon_used.main_s:.1f} s / {daemon_used.helpers_s:.1f} s / "
        f"{daemon_used.reaped_s:.1f} s / {kube_used.own_s:.1f} s",
    )
    result_line("CPU: whole machine busy", f"{window['busy'] * 100:8.0f} % of all cores")
    memory = window["memory"]
    result_line(
        "daemon RSS / peak; workers' RSS; tree PSS",
        f"{memory['main_rss'] / 1024:.0f} / {memory['main_peak_rss'] / 1024:.0f} MiB; "
        f"{memory['helpers_rss'] / 1024:.0f} MiB ({memory['helpers']} processes); "
        f"{memory['tree_pss'] / 1024:.0f} MiB",
    )
    result_line(
        "database transactions per deployment",
        f"{window['transactions'] / deployments:8.1f}   (pg_stat_database, all clients; the "
        "benchmark's own progress queries included)",
    )
    result_line(
        "database sessions opened in the window",
        f"{window['sessions']:8d}   (pg_stat_database: each a new server backend)",
    )
    result_line(
        "peak database connections: open / busy",
        f"{window['peak_connections']:8d} / {window['peak_busy']}"
        "   (sampled 4 times a second, not counting ours)",
    )
    statuses = window["statuses"]
    result_line("history rows in the window", str(dict(statuses)))
    if window["warnings"]:
        result_line("daemon warnings", str(dict(window["warnings"])))
    goals = {
        "bulk_update": elapsed <= GOAL_S,
        "requests_per_deployment": non_watch / deployments <= GOAL_REQUESTS_PER_DEPLOYMENT,
        "cpu_per_deployment": cpu_goal_ms <= GOAL_CPU_MS_PER_DEPLOYMENT,
    }
    result_line("goals met", ", ".join(f"{k} {'yes' if v else 'NO'}" for k, v in goals.items()))
    if arguments.profile is not None:
        result_line("profile", f"{arguments.profile} (pstats), {arguments.profile}.txt")
    if arguments.sample is not None:
        result_line("samples", f"{arguments.sample} (collapsed stacks), {arguments.sample}.txt")
        result_line("fakekube's samples", f"{_fakekube_samples(arguments)}(.txt)")
    return {
        "bench": "throughput",
        "small": arguments.small,
        "deployments": deployments,
        "repos": repos,
        "concurrency": arguments.concurrency or DAEMON_DEFAULT_CONCURRENCY,
        "concurrency_default": arguments.concurrency is None,
        "profiled": arguments.profile is not None,
        "sampled": arguments.sample is not None,
        "sync_interval_s": arguments.sync_interval if arguments.sync_interval is not None else 60,
        "create_s": round(create_s, 2),
        "bulk_update_s": round(elapsed, 2),
        "requests_per_deployment": round(non_watch / deployments, 2),
        "watch_requests": watches,
        "requests": per_class,
        "requests_by_kind": dict(request_kinds(requests)),
        "phases_s": phases,
        "passes": len(passes),
        "repo_syncs": sum(synced),
        "passes_with_syncs": sum(1 for s in synced if s),
        "max_repo_syncs_per_pass": max(synced, default=0),
        "git_processes": dict(git),
        "cpu_ms_per_deployment": cpu_ms,
        "daemon_cpu_s": round(daemon_used.main_s, 2),
        "daemon_render_workers_cpu_s": round(daemon_used.helpers_s, 2),
        "daemon_reaped_children_cpu_s": round(daemon_used.reaped_s, 2),
        "fakekube_cpu_s": round(kube_used.own_s, 2),
        "machine_busy_share": round(window["busy"], 3),
        "daemon_memory_kib": memory,
        "db_transactions_per_deployment": round(window["transactions"] / deployments, 2),
        "db_sessions_opened": window["sessions"],
        "peak_db_connections": window["peak_connections"],
        "peak_busy_db_connections": window["peak_busy"],
        "history": dict(statuses),
        "daemon_warnings": dict(window["warnings"]),
        "goals": {
            "bulk_update_s": GOAL_S,
            "requests_per_deployment": GOAL_REQUESTS_PER_DEPLOYMENT,
            "cpu_ms_per_deployment": GOAL_CPU_MS_PER_DEPLOYMENT,
        },
        "goals_met": goals,
        "goal_met": all(goals.values()),
        "machine": machine,
    }


def main() -> int:
    arguments = _arguments()
    return run_benchmark("throughput", lambda: _run(arguments))


if __name__ == "__main__":
    sys.exit(main())
