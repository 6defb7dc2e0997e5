"""Idle cost: a converged fleet of 10,000 deployments, its objects watched, nothing to do.

    .venv/bin/python bench/idle.py [--small] [--deployments N] [--cpu-window S]
                                   [--sync-interval S] [--no-objects] [--keep]

10,000 deployments over 20 ops repos (registered with the default 60 s sync interval) are
written straight into the table as converged: healthy, ``observed_generation = generation``,
``current_sha`` = the tip of their ops repo, so nothing needs applying.  Each also gets its
inventory rows (``deployment_objects``: a ConfigMap, a Deployment and, for every other project,
a Service: 25,000 rows) and those objects are created in fakekube as the daemon would have
applied them (its templates rendered, ``reconciler.io/project`` / ``environment`` labels on them
and on the pod template, server-side apply with the daemon's field manager, after a Namespace
each), through fakekube_server's in-process apply (the HTTP path would take minutes).
fakekube's controllers then make a ReplicaSet and a Pod per Deployment.  ``--no-objects``
measures the fleet without them (rows only), as before.  Then:

1. cycle time: a daemon with RECONCILER_POLL_INTERVAL_S=1 clones every repo, settles, then
   runs 30 passes; each "pass" event's ``duration_ms`` is one poll cycle (the query for repos
   due, starting their syncs, the claim query).
2. CPU and memory: a fresh daemon at its default settings waits until its watches are synced
   (a WATCH request for ConfigMaps, Deployments, Services and Pods has reached fakekube, which
   it sends after each kind's first list) and 5 s more, then runs for 60 s (``--cpu-window``);
   its CPU share is the growth of utime+stime in /proc/PID/stat over the window, its memory
   VmRSS from /proc/PID/status at the end; fakekube's the same way.  Git processes it ran
   (reaped children: cutime+cstime) are reported apart, with how many repo syncs fell in the
   window.  The periodic full drift check (every 300 s by default) is not in a 60 s window.

The benchmark fails if either daemon claims anything: the fleet was not converged, or the
objects did not look like the daemon's own (a heal was asked for).
Goals: a cycle <= 20 ms, CPU <= 2 % of a core, RSS <= 400 MB (with the watches).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sys
import time
from collections import Counter
from typing import Any

from benchlib import (
    BenchmarkError,
    DaemonProcess,
    FakeKubeProcess,
    Fleet,
    Pipeline,
    Workdir,
    build_fleet,
    cpu_times,
    fakekube_process,
    local_postgres,
    machine_description,
    memory_kib,
    pass_events,
    request_breakdown,
    result_line,
    run_benchmark,
    running_daemon,
    say,
    summarize_ms,
    tree_cpu,
    tree_memory_kib,
)

from reconciler.policy import OWNER_LABELS
from reconciler.settings import Settings

GOAL_CYCLE_MS = 20.0
GOAL_CPU_SHARE = 0.02
GOAL_RSS_MB = 400.0
IMAGE = "reg.bench/app:1"
FIELD_MANAGER = Settings().field_manager
"""The daemon's field manager on its default settings: the objects must look like its own."""
WATCHED = ("configmaps", "deployments", "services", "pods")
_APPLY_BATCH = 250


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
    parser.add_argument(
        "--no-objects",
        action="store_true",
        help="no inventory rows and no cluster objects (the rows only, nothing to watch)",
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
                    current_sha = $1, rendered_sha = $1, deployed_at = now(),
                    applied_digest = 'bench-converged'
                WHERE ops_repo_id = $2
                """,
                fleet.shas[name],
                repo_id,
            )
    await pipeline.conn.execute("ANALYZE deployments")


def _labels(project: str, environment: str) -> dict[str, str]:
    return {"app": project, OWNER_LABELS[0]: project, OWNER_LABELS[1]: environment}


def _objects_of(
    project: str, environment: str, *, namespace: str, with_service: bool
) -> list[dict[str, Any]]:
    """What the daemon applies for one deployment of the benchmark fleet (benchlib's
    templates rendered, the owner labels added as admission adds them)."""
    labels = _labels(project, environment)
    meta = {"namespace": namespace, "labels": labels}
    log_level = "warning" if environment == "prod" else "info"
    container = {
        "name": "main",
        "image": IMAGE,
        "ports": [{"containerPort": 8080}],
        "envFrom": [{"configMapRef": {"name": f"{project}-settings"}}],
        "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}},
    }
    objects: list[dict[str, Any]] = [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": f"{project}-settings", **meta},
            "data": {"environment": environment, "log_level": log_level},
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": project, **meta},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": project}},
                "template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}},
            },
        },
    ]
    if with_service:
        objects.append(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": project, **meta},
                "spec": {"selector": {"app": project}, "ports": [{"port": 80, "targetPort": 8080}]},
            }
        )
    return objects


def _has_service(project: str) -> bool:
    # build_fleet gives every other project (even numbers) a Service.
    return int(project.rsplit("app", 1)[1]) % 2 == 0


async def _create_objects(pipeline: Pipeline, kube: FakeKubeProcess) -> dict[str, Any]:
    """Inventory rows and fakekube objects for every deployment; then wait for the Pods."""
    began = time.monotonic()
    rows = await pipeline.conn.fetch(
        "SELECT id, project, environment, namespace FROM deployments ORDER BY id"
    )
    inventory: list[tuple[Any, ...]] = []
    applied_at = dt.datetime.now(dt.UTC)
    batch: list[dict[str, Any]] = []
    created = 0
    for row in rows:
        namespace = str(row["namespace"])
        objects = _objects_of(
            row["project"],
            row["environment"],
            namespace=namespace,
            with_service=_has_service(row["project"]),
        )
        for obj in objects:
            group = obj["apiVersion"].rpartition("/")[0]
            inventory.append(
                (
                    row["id"],
                    group,
                    obj["apiVersion"],
                    obj["kind"],
                    namespace,
                    obj["metadata"]["name"],
                    applied_at,
                )
            )
        batch += [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}]
        batch += objects
        if len(batch) >= _APPLY_BATCH:
            created += await kube.apply_objects(batch, field_manager=FIELD_MANAGER)
            batch = []
    if batch:
        created += await kube.apply_objects(batch, field_manager=FIELD_MANAGER)
    applied_s = time.monotonic() - began
    await pipeline.conn.copy_records_to_table(
        "deployment_objects",
        records=inventory,
        columns=[
            "deployment_id",
            "api_group",
            "api_version",
            "kind",
            "namespace",
            "name",
            "applied_at",
        ],
    )
    pods = await _wait_pods(kube, wanted=len(rows), timeout_s=max(120.0, len(rows) * 0.05))
    return {
        "inventory_rows": len(inventory),
        "objects_applied": created,
        "apply_s": round(applied_s, 1),
        "pods": pods,
        "ready_s": round(time.monotonic() - began, 1),
    }


async def _wait_pods(kube: FakeKubeProcess, *, wanted: int, timeout_s: float) -> int:
    """Until fakekube's controllers have made one Pod per Deployment (or the timeout)."""
    deadline = time.monotonic() + timeout_s
    while True:
        pods = await kube.count(api_version="v1", kind="Pod", label_selector=OWNER_LABELS[0])
        if pods >= wanted or time.monotonic() > deadline:
            return pods
        await asyncio.sleep(2.0)


async def _wait_health_written(
    pipeline: Pipeline, *, daemon: DaemonProcess, since: float, timeout_s: float = 300.0
) -> float:
    """Until the daemon has written the health of every inventory row; seconds after
    ``since``."""
    deadline = time.monotonic() + timeout_s
    while await pipeline.conn.fetchval(
        "SELECT count(*) FROM deployment_objects WHERE health IS NULL"
    ):
        if daemon.exited() or time.monotonic() > deadline:
            raise BenchmarkError(
                f"the daemon did not write every object's health within {timeout_s:g}s: "
                f"{daemon.log_tail()}"
            )
        await asyncio.sleep(0.5)
    return time.time() - since


async def _wait_watching(
    kube: FakeKubeProcess, *, daemon: DaemonProcess, since: float, timeout_s: float
) -> float:
    """Until the daemon has a watch open on every kind it owns and on Pods (each opened after
    that kind's first list); how long that took after ``since``."""
    deadline = time.monotonic() + timeout_s
    while True:
        watches = request_breakdown(await kube.requests(since=since)).get("watch", Counter())
        if all(watches.get(kind) for kind in WATCHED):
            return time.time() - since
        if daemon.exited() or time.monotonic() > deadline:
            raise BenchmarkError(
                f"the daemon did not watch {', '.join(WATCHED)} within {timeout_s:g}s "
                f"(watches seen: {dict(watches)}): {daemon.log_tail()}"
            )
        await asyncio.sleep(0.5)


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


async def _cycle_time(
    pipeline: Pipeline, kube: FakeKubeProcess, *, work: Workdir, database_url: str, passes: int
) -> dict[str, Any]:
    """A daemon polling every second: how long its passes take once settled."""
    fast = DaemonProcess(
        workdir=work.path,
        database_url=database_url,
        kubeconfig=kube.kubeconfig,
        settings={"RECONCILER_POLL_INTERVAL_S": "1"},
        name="daemon-fast-poll",
    )
    async with running_daemon(fast):
        started_at = time.time()
        # The first passes only start the clones, which run beside later passes: time the
        # cycle once every repo is on disk and the loop has settled.
        await _wait_all_synced(pipeline, daemon=fast, timeout_s=300)
        initial_sync_s = time.time() - started_at
        await asyncio.sleep(2.0)
        settled_at = time.time()
        while len(pass_events(fast.events(), since=settled_at)) < passes:
            if fast.exited():
                raise BenchmarkError(f"the daemon exited: {fast.log_tail()}")
            await asyncio.sleep(0.5)
        events = fast.events()
    if _claimed(events):
        raise BenchmarkError(f"the daemon claimed {_claimed(events)} deployments: not converged")
    return {"cycles": pass_events(events, since=settled_at), "initial_sync_s": initial_sync_s}


async def _idle_window(
    pipeline: Pipeline,
    kube: FakeKubeProcess,
    *,
    work: Workdir,
    database_url: str,
    window_s: float,
    watching: bool,
) -> dict[str, Any]:
    """A daemon on its default settings, watches synced: its CPU and memory, and fakekube's."""
    idle = DaemonProcess(
        workdir=work.path,
        database_url=database_url,
        kubeconfig=kube.kubeconfig,
        settings={},
        name="daemon-default",
    )
    # The start-up full check writes every owned object's health: cleared first, its rows
    # coming back show this daemon's cache holds the objects and the check is done.
    await pipeline.conn.execute("UPDATE deployment_objects SET health = NULL")
    started = time.time()
    async with running_daemon(idle):
        watch_synced_s = checked_s = None
        if watching:
            watch_synced_s = await _wait_watching(kube, daemon=idle, since=started, timeout_s=300)
            checked_s = await _wait_health_written(pipeline, daemon=idle, since=started)
            say(
                f"  watches open {watch_synced_s:.1f} s after the start, every object's health "
                f"written after {checked_s:.1f} s; settling 3 s"
            )
            await asyncio.sleep(3.0)
        else:
            await asyncio.sleep(3.0)  # past start-up: imports, connections, discovery
        startup = tree_cpu(idle.pid)
        kube_before = cpu_times(kube.pid)
        window_start = time.time()
        await asyncio.sleep(window_s)
        used = tree_cpu(idle.pid) - startup
        kube_used = cpu_times(kube.pid) - kube_before
        window_end = time.time()
        memory = tree_memory_kib(idle.pid)
        kube_memory = memory_kib(kube.pid)
        events = idle.events()
        requests = await kube.requests(since=window_start, until=window_end)
    if _claimed(events):
        raise BenchmarkError(
            f"the daemon claimed {_claimed(events)} deployments: not converged, or the "
            "objects did not look like its own"
        )
    return {
        "window_s": window_end - window_start,
        "used_main_s": used.main_s,
        "used_children_s": used.reaped_s + used.helpers_s,
        "kube_cpu_s": kube_used.own_s,
        "kube_rss_mb": kube_memory.get("VmRSS", 0) / 1024,
        "window_passes": pass_events(events, since=window_start, until=window_end),
        "memory": memory,
        "watch_synced_s": watch_synced_s,
        "health_written_s": checked_s,
        "health_rows": await pipeline.conn.fetchval(
            "SELECT count(*) FROM deployment_objects WHERE health = 'healthy'"
        ),
        "window_requests": {k: dict(v) for k, v in request_breakdown(requests).items()},
    }


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
            objects: dict[str, Any] = {}
            if not arguments.no_objects:
                say("creating the inventory and the objects in fakekube (server-side apply)")
                objects = await _create_objects(pipeline, kube)
                say(f"  {objects}")
                await pipeline.conn.execute("ANALYZE deployment_objects")
            say(f"cycle time: a daemon polling every second, {passes_wanted} passes")
            cycle = await _cycle_time(
                pipeline, kube, work=work, database_url=database_url, passes=passes_wanted
            )
            say(f"CPU and memory: a daemon on its default settings, {window_s:g} s")
            window = await _idle_window(
                pipeline,
                kube,
                work=work,
                database_url=database_url,
                window_s=window_s,
                watching=not arguments.no_objects,
            )
            kube_rss_mb = memory_kib(kube.pid).get("VmRSS", 0) / 1024
    return _report(
        deployments=deployments,
        repos=arguments.repos,
        cycle=cycle,
        window=window,
        objects=objects,
        kube_rss_mb=kube_rss_mb,
        machine=machine,
        small=arguments.small,
    )


def _report(
    *,
    deployments: int,
    repos: int,
    cycle: dict[str, Any],
    window: dict[str, Any],
    objects: dict[str, Any],
    kube_rss_mb: float,
    machine: dict[str, Any],
    small: bool,
) -> dict[str, Any]:
    cycles = summarize_ms([float(p["duration_ms"]) for p in cycle["cycles"]])
    window_s = window["window_s"]
    share = window["used_main_s"] / window_s
    memory = window["memory"]
    rss_mb = memory["main_rss"] / 1024
    kube_share = window["kube_cpu_s"] / window_s
    synced_in_window = sum(int(p.get("repos_synced", 0)) for p in window["window_passes"])
    watched = (
        f"{objects['inventory_rows']} inventory rows and objects, {objects['pods']} Pods"
        if objects
        else "no cluster objects (--no-objects)"
    )
    print(f"idle: {deployments} converged deployments over {repos} ops repos, {watched}")
    if objects:
        result_line(
            "objects created (Namespaces included)",
            f"{objects['objects_applied']:8d}   in {objects['apply_s']:.1f} s; Pods ready after "
            f"{objects['ready_s']:.1f} s",
        )
        result_line("watches open after the daemon started", f"{window['watch_synced_s']:8.1f} s")
        result_line(
            "start-up full check: all health written",
            f"{window['health_written_s']:8.1f} s   ({window['health_rows']} objects healthy)",
        )
    result_line(
        "poll cycle (one pass), median",
        f"{cycles.get('median', float('nan')):8.2f} ms   (goal <= {GOAL_CYCLE_MS:g} ms)",
    )
    result_line(
        "poll cycle p90 / p99 / max",
        f"{cycles.get('p90', float('nan')):.2f} / {cycles.get('p99', float('nan')):.2f} / "
        f"{cycles.get('max', float('nan')):.2f} ms  ({cycles['n']} passes)",
    )
    result_line("start-up: every repo cloned after", f"{cycle['initial_sync_s']:8.1f} s")
    result_line(
        "idle CPU, daemon process",
        f"{share * 100:8.2f} %   of one core over {window_s:.0f} s"
        f" (goal <= {GOAL_CPU_SHARE * 100:g} %)",
    )
    result_line(
        "idle CPU, its git processes",
        f"{window['used_children_s'] / window_s * 100:8.2f} %   ({synced_in_window} repo syncs "
        "in window)",
    )
    result_line("idle CPU, fakekube", f"{kube_share * 100:8.2f} %   of one core, same window")
    result_line("passes in the window", f"{len(window['window_passes']):8d}")
    result_line("API requests in the window", str(window["window_requests"]))
    result_line(
        "daemon RSS (VmRSS) / peak (VmHWM)",
        f"{rss_mb:8.0f} MB / {memory['main_peak_rss'] / 1024:.0f} MB   (goal <= {GOAL_RSS_MB:g} "
        f"MB; {memory['helpers']} helper processes, {memory['helpers_rss'] / 1024:.0f} MB)",
    )
    result_line("fakekube RSS", f"{kube_rss_mb:8.0f} MB")
    met = (
        cycles.get("median", float("inf")) <= GOAL_CYCLE_MS
        and share <= GOAL_CPU_SHARE
        and rss_mb <= GOAL_RSS_MB
    )
    result_line("goals met", "yes" if met else "NO")
    return {
        "bench": "idle",
        "small": small,
        "deployments": deployments,
        "repos": repos,
        "objects": objects,
        "watch_synced_s": _rounded(window["watch_synced_s"]),
        "health_written_s": _rounded(window["health_written_s"]),
        "objects_healthy": window["health_rows"],
        "cycle_ms": cycles,
        "initial_sync_s": round(cycle["initial_sync_s"], 2),
        "cpu_window_s": round(window_s, 1),
        "cpu_share": round(share, 4),
        "git_cpu_share": round(window["used_children_s"] / window_s, 4),
        "fakekube_cpu_share": round(kube_share, 4),
        "repo_syncs_in_window": synced_in_window,
        "passes_in_window": len(window["window_passes"]),
        "window_requests": window["window_requests"],
        "rss_mb": round(rss_mb, 1),
        "peak_rss_mb": round(memory["main_peak_rss"] / 1024, 1),
        "helpers_rss_mb": round(memory["helpers_rss"] / 1024, 1),
        "fakekube_rss_mb": round(kube_rss_mb, 1),
        "goals": {"cycle_ms": GOAL_CYCLE_MS, "cpu_share": GOAL_CPU_SHARE, "rss_mb": GOAL_RSS_MB},
        "goals_met": met,
        "machine": machine,
    }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def main() -> int:
    arguments = _arguments()
    return run_benchmark("idle", lambda: _run(arguments))


if __name__ == "__main__":
    sys.exit(main())
