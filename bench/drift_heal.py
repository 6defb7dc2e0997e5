"""Drift healing: ``kubectl`` changes a managed object, how long until the daemon undoes it.

    .venv/bin/python bench/drift_heal.py [--small] [--deployments N] [--trials N] [--seed S]
                                         [--keep]

N deployments (default 20; ``--small`` 5) from one ops repo are converged by a daemon on its
default settings (self-heal on); fakekube answers at once and Pods are Ready after 0.2 s.  Then
30 trials (``--small``: 6), one after another, cycle through

* ``kubectl set image deployment/P main=reg.bench/drift:T``,
* ``kubectl scale deployment/P --replicas=5``,
* ``kubectl delete configmap P-settings``

on a deployment picked at random (``--seed``), with kubectl on the fakekube kubeconfig and a
private ``--cache-dir`` (warmed first, so discovery is not in the first trial).  A trial's
latency runs from just before kubectl starts to when fakekube's objects are back to the rendered
state: the Deployment's image and replicas as rendered and the ConfigMap there again, polled
every 20 ms through fakekube's steering pipe (kubectl's own run time is inside the latency; it
is reported too).  Each trial must also leave a ``heal`` history row for its deployment before
the next one starts.  The run fails (exit 1) if a trial is not healed within 30 s or leaves no
heal row.  Goal: p50 <= 1 s, max <= 3 s.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchlib import (
    BenchmarkError,
    DaemonProcess,
    FakeKubeProcess,
    Fleet,
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

GOAL_P50_S = 1.0
GOAL_MAX_S = 3.0
HEAL_TIMEOUT_S = 30.0
POLL_S = 0.02
IMAGE = "reg.bench/app:1"
RENDERED_REPLICAS = 1
KINDS = ("set image", "scale", "delete configmap")


@dataclass(frozen=True)
class Trial:
    """One kubectl change and how long its heal took."""

    number: int
    kind: str
    project: str
    environment: str
    latency_s: float
    kubectl_s: float
    heal_row: Mapping[str, Any] | None

    @property
    def namespace(self) -> str:
        return f"{self.project}-{self.environment}"


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="5 deployments, 6 trials")
    parser.add_argument("--deployments", type=int, help="default 20 (5 with --small)")
    parser.add_argument("--trials", type=int, help="default 30 (6 with --small)")
    parser.add_argument("--seed", type=int, default=1, help="picks the deployments (default 1)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    return parser.parse_args()


def _fleet(work: Workdir, deployments: int) -> Fleet:
    """``deployments`` rows from one repo: projects in prod and staging (the last project in
    prod only when the count is odd)."""
    projects = (deployments + 1) // 2
    fleet = build_fleet(workdir=work.path, env=work.env, repos=1, deployments=projects * 2)
    return Fleet(repos=fleet.repos, rows=fleet.rows[:deployments], shas=fleet.shas)


class Kubectl:
    """kubectl on the fakekube kubeconfig with a cache directory of its own."""

    def __init__(self, *, work: Workdir, kubeconfig: Path) -> None:
        self._env = dict(work.env)
        self._base = [
            "kubectl",
            f"--kubeconfig={kubeconfig}",
            f"--cache-dir={work.path / 'kubectl-cache'}",
            "--request-timeout=20s",
        ]

    async def run(self, *args: str) -> float:
        """Run kubectl; its run time in seconds, or BenchmarkError with its stderr."""
        began = time.monotonic()
        process = await asyncio.create_subprocess_exec(
            *self._base,
            *args,
            env=self._env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        _out, err = await process.communicate()
        if process.returncode != 0:
            raise BenchmarkError(f"kubectl {' '.join(args)} failed: {err.decode().strip()}")
        return time.monotonic() - began


def _change(kind: str, *, project: str, namespace: str, number: int) -> list[str]:
    if kind == "set image":
        return [
            "-n",
            namespace,
            "set",
            "image",
            f"deployment/{project}",
            f"main=reg.bench/drift:{number}",
        ]
    if kind == "scale":
        return ["-n", namespace, "scale", f"deployment/{project}", "--replicas=5"]
    return ["-n", namespace, "delete", "configmap", f"{project}-settings"]


async def _rendered(kube: FakeKubeProcess, *, project: str, namespace: str) -> bool:
    """Whether fakekube holds the deployment's objects as rendered (image, replicas,
    the ConfigMap)."""
    deployment = await kube.get_object(
        api_version="apps/v1", kind="Deployment", namespace=namespace, name=project
    )
    if deployment is None:
        return False
    spec = deployment.get("spec") or {}
    containers = ((spec.get("template") or {}).get("spec") or {}).get("containers") or []
    images = {c.get("name"): c.get("image") for c in containers}
    if images.get("main") != IMAGE or spec.get("replicas") != RENDERED_REPLICAS:
        return False
    configmap = await kube.get_object(
        api_version="v1", kind="ConfigMap", namespace=namespace, name=f"{project}-settings"
    )
    return configmap is not None


async def _heal_row(
    pipeline: Pipeline, *, project: str, environment: str, since: float, timeout_s: float
) -> Mapping[str, Any] | None:
    """The first heal history row of the deployment finished after ``since``."""
    deadline = time.monotonic() + timeout_s
    while True:
        row = await pipeline.conn.fetchrow(
            "SELECT h.id, h.status, h.message, extract(epoch FROM h.finished_at) AS finished "
            "FROM deployment_history h JOIN deployments d ON d.id = h.deployment_id "
            "WHERE d.project = $1 AND d.environment = $2 AND h.action = 'heal' "
            "AND h.finished_at >= to_timestamp($3) ORDER BY h.id LIMIT 1",
            project,
            environment,
            since,
        )
        if row is not None:
            return dict(row)
        if time.monotonic() > deadline:
            return None
        await asyncio.sleep(0.05)


async def _trial(
    number: int,
    kind: str,
    row: tuple[str, str, str],
    *,
    kube: FakeKubeProcess,
    kubectl: Kubectl,
    pipeline: Pipeline,
    daemon: DaemonProcess,
) -> Trial:
    project, environment, _repo = row
    namespace = f"{project}-{environment}"
    began_wall = time.time()
    began = time.monotonic()
    kubectl_s = await kubectl.run(
        *_change(kind, project=project, namespace=namespace, number=number)
    )
    # kubectl has returned: its change is stored, so the rendered state seen from now on is
    # the daemon's doing.
    while not await _rendered(kube, project=project, namespace=namespace):
        if daemon.exited():
            raise BenchmarkError(f"the daemon exited: {daemon.log_tail()}")
        if time.monotonic() - began > HEAL_TIMEOUT_S:
            raise BenchmarkError(
                f"trial {number} ({kind} on {project}/{environment}) was not healed within "
                f"{HEAL_TIMEOUT_S:g}s"
            )
        await asyncio.sleep(POLL_S)
    latency = time.monotonic() - began
    heal = await _heal_row(
        pipeline,
        project=project,
        environment=environment,
        since=began_wall,
        timeout_s=HEAL_TIMEOUT_S,
    )
    say(f"  trial {number:2d} {kind:<16} {project}/{environment}: {latency * 1000:.0f} ms")
    return Trial(
        number=number,
        kind=kind,
        project=project,
        environment=environment,
        latency_s=latency,
        kubectl_s=kubectl_s,
        heal_row=heal,
    )


async def _run(arguments: argparse.Namespace) -> dict[str, Any]:
    deployments = arguments.deployments or (5 if arguments.small else 20)
    trials_wanted = arguments.trials or (6 if arguments.small else 30)
    machine = machine_description()
    chooser = random.Random(arguments.seed)
    with Workdir(prefix="bench-drift-heal-", keep=arguments.keep) as work:
        say(f"work directory {work.path}")
        fleet = _fleet(work, deployments)
        async with (
            local_postgres(work.path) as database_url,
            fakekube_process(workdir=work.path, rollout_delay_s=0.2) as kube,
            Pipeline.connect(database_url) as pipeline,
        ):
            repo_ids = await pipeline.register_repos(fleet)
            daemon = DaemonProcess(
                workdir=work.path,
                database_url=database_url,
                kubeconfig=kube.kubeconfig,
                settings={},
            )
            kubectl = Kubectl(work=work, kubeconfig=kube.kubeconfig)
            async with running_daemon(daemon):
                say(f"converging {deployments} deployments")
                await pipeline.insert_deployments(fleet, repo_ids=repo_ids, image_ref=IMAGE)
                await pipeline.wait_converged(image_ref=IMAGE, timeout_s=300, daemon=daemon)
                await kubectl.run("get", "namespaces")  # discovery into the cache
                await asyncio.sleep(2.0)  # the observer tracks the kinds it now owns
                trials = []
                for number in range(trials_wanted):
                    kind = KINDS[number % len(KINDS)]
                    row = chooser.choice(fleet.rows)
                    trials.append(
                        await _trial(
                            number,
                            kind,
                            row,
                            kube=kube,
                            kubectl=kubectl,
                            pipeline=pipeline,
                            daemon=daemon,
                        )
                    )
                warnings = daemon.warnings()
    return _report(
        trials,
        deployments=deployments,
        warnings=dict(warnings),
        machine=machine,
        small=arguments.small,
    )


def _figures(values_s: Sequence[float]) -> dict[str, float]:
    values = [v * 1000 for v in values_s]
    return {
        "n": len(values),
        "p50_ms": round(statistics.median(values), 1),
        "p95_ms": round(percentile(values, 0.95), 1),
        "max_ms": round(max(values), 1),
    }


def _report(
    trials: Sequence[Trial],
    *,
    deployments: int,
    warnings: dict[str, int],
    machine: dict[str, Any],
    small: bool,
) -> dict[str, Any]:
    print(
        f"drift_heal: {len(trials)} kubectl changes to {deployments} converged deployments, "
        "daemon default settings, until fakekube holds the rendered state again"
    )
    by_kind: dict[str, dict[str, float]] = {}
    for kind in KINDS:
        mine = [t for t in trials if t.kind == kind]
        if not mine:
            continue
        figures = _figures([t.latency_s for t in mine])
        kubectl = _figures([t.kubectl_s for t in mine])
        by_kind[kind] = {**figures, "kubectl_p50_ms": kubectl["p50_ms"]}
        result_line(
            f"kubectl {kind} -> healed",
            f"p50 {figures['p50_ms']:6.0f} ms, p95 {figures['p95_ms']:6.0f} ms, max "
            f"{figures['max_ms']:6.0f} ms  (n={figures['n']}; kubectl itself p50 "
            f"{kubectl['p50_ms']:.0f} ms)",
        )
    overall = _figures([t.latency_s for t in trials])
    result_line(
        "all trials -> healed",
        f"p50 {overall['p50_ms']:6.0f} ms, p95 {overall['p95_ms']:6.0f} ms, max "
        f"{overall['max_ms']:6.0f} ms  (goal p50 <= {GOAL_P50_S * 1000:.0f}, max <= "
        f"{GOAL_MAX_S * 1000:.0f})",
    )
    missing = [t.number for t in trials if t.heal_row is None]
    statuses: dict[str, int] = {}
    for trial in trials:
        if trial.heal_row is not None:
            status = str(trial.heal_row["status"])
            statuses[status] = statuses.get(status, 0) + 1
    result_line("heal history rows", f"{len(trials) - len(missing)} of {len(trials)} {statuses}")
    if warnings:
        result_line("daemon warnings", str(warnings))
    met = overall["p50_ms"] <= GOAL_P50_S * 1000 and overall["max_ms"] <= GOAL_MAX_S * 1000
    result_line("goal met", "yes" if met else "NO")
    if missing:
        raise BenchmarkError(f"trials {missing} left no heal history row within 30 s")
    return {
        "bench": "drift_heal",
        "small": small,
        "deployments": deployments,
        "trials": len(trials),
        "by_kind": by_kind,
        "overall": overall,
        "heal_rows": len(trials) - len(missing),
        "heal_row_statuses": statuses,
        "daemon_warnings": warnings,
        "goals": {"p50_ms": GOAL_P50_S * 1000, "max_ms": GOAL_MAX_S * 1000},
        "goal_met": met,
        "machine": machine,
    }


def main() -> int:
    arguments = _arguments()
    return run_benchmark("drift_heal", lambda: _run(arguments))


if __name__ == "__main__":
    sys.exit(main())
