"""The naive way versus reconciler: 100 image updates against the same fakekube.

    .venv/bin/python bench/naive.py [--small] [--deployments N] [--concurrency N] [--keep]

The world is the throughput benchmark's, smaller: 100 deployments (50 projects in prod and
staging) over 5 ops repos, 2 or 3 objects each; fakekube answers after 20 ms and a Pod takes
1 s to become Ready.

1. reconciler: the daemon (a process, default settings) converges the 100 deployments, then one
   ``UPDATE deployments SET image_ref = ...`` of every row is timed to all healthy.
2. naive: the daemon is stopped, and a shell-script-style loop updates the same 100 deployments
   to the next image, one after another, each with
   ``git pull`` (in a clone of its ops repo made beforehand),
   ``python -m reconciler render ...`` (the CLI ops engineers use),
   ``kubectl apply --server-side --force-conflicts -f -`` (with a Namespace document in front,
   since the templates do not hold one) and ``kubectl rollout status``.
   kubectl gets the fakekube kubeconfig and a fresh ``--cache-dir`` (shared by the loop, as on
   one CI machine).  ``--force-conflicts``: the reconciler's field manager owns the fields the
   loop changes, and without it the API server refuses the apply with a conflict (409).

Prints both times, the ratio and where the naive loop spends its time.
"""

from __future__ import annotations

import argparse
import asyncio
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
    Fleet,
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
)

LATENCY_S = 0.02
ROLLOUT_DELAY_S = 1.0
KUBECTL = "/usr/bin/kubectl"
STEPS = ("git pull", "render", "kubectl apply", "kubectl rollout status")


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="10 deployments over 1 repo")
    parser.add_argument("--deployments", type=int, help="default 100 (10 with --small)")
    parser.add_argument(
        "--concurrency", type=int, help="RECONCILER_CONCURRENCY for the daemon (default: its own)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    return parser.parse_args()


@dataclass(frozen=True)
class StepTimes:
    """Seconds each step of one naive iteration took."""

    seconds: dict[str, float]


async def _run_step(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    stdin: bytes | None = None,
    cwd: Path | None = None,
) -> tuple[bytes, float]:
    """Run one command of the naive loop; its stdout and how long it took."""
    started = time.perf_counter()
    process = await asyncio.create_subprocess_exec(
        *argv,
        env=dict(env),
        cwd=cwd,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate(stdin)
    elapsed = time.perf_counter() - started
    if process.returncode != 0:
        raise BenchmarkError(
            f"the naive loop failed at {' '.join(argv[:4])} ... (exit {process.returncode}): "
            f"{err.decode(errors='replace').strip()[-800:]}"
        )
    return out, elapsed


def _namespace_document(namespace: str) -> bytes:
    return f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {namespace}\n---\n".encode()


async def _naive_loop(
    *, fleet: Fleet, work: Workdir, kubeconfig: Path, image_ref: str
) -> tuple[float, list[StepTimes]]:
    """The loop a shell script would run; (total seconds, per-iteration step times)."""
    env = work.env
    clones = work.path / "naive-clones"
    for name, remote in fleet.repos.items():
        await _run_step(["git", "clone", "--quiet", str(remote.path), str(clones / name)], env=env)
    kubectl = [
        KUBECTL,
        "--kubeconfig",
        str(kubeconfig),
        "--cache-dir",
        str(work.path / "kubectl-cache"),
    ]
    iterations: list[StepTimes] = []
    started = time.perf_counter()
    for project, environment, repo in fleet.rows:
        namespace = f"{project}-{environment}"
        seconds: dict[str, float] = {}
        _out, seconds["git pull"] = await _run_step(
            ["git", "-C", str(clones / repo), "pull", "--quiet", "--ff-only"], env=env
        )
        manifests, seconds["render"] = await _run_step(
            [
                sys.executable,
                "-m",
                "reconciler",
                "render",
                "--ops-dir",
                str(clones / repo),
                "--project",
                project,
                "--environment",
                environment,
                "--image-ref",
                image_ref,
            ],
            env=env,
        )
        _out, seconds["kubectl apply"] = await _run_step(
            [*kubectl, "apply", "--server-side", "--force-conflicts", "-f", "-"],
            env=env,
            stdin=_namespace_document(namespace) + manifests,
        )
        _out, seconds["kubectl rollout status"] = await _run_step(
            [
                *kubectl,
                "rollout",
                "status",
                f"deployment/{project}",
                "--namespace",
                namespace,
                "--timeout=300s",
            ],
            env=env,
        )
        iterations.append(StepTimes(seconds=seconds))
    return time.perf_counter() - started, iterations


async def _check_images(*, work: Workdir, kubeconfig: Path, image_ref: str, expected: int) -> None:
    """Every Deployment in the cluster runs ``image_ref`` (the loop did what it claims)."""
    out, _seconds = await _run_step(
        [
            KUBECTL,
            "--kubeconfig",
            str(kubeconfig),
            "--cache-dir",
            str(work.path / "kubectl-cache"),
            "get",
            "deployments",
            "--all-namespaces",
            "-o",
            "jsonpath={range .items[*]}{.spec.template.spec.containers[0].image}{'\\n'}{end}",
        ],
        env=work.env,
    )
    images = out.decode().split()
    if len(images) != expected or set(images) != {image_ref}:
        raise BenchmarkError(
            f"after the naive loop: {len(images)} Deployments, images {sorted(set(images))[:3]}"
        )


async def _run(arguments: argparse.Namespace) -> dict[str, Any]:
    deployments = arguments.deployments or (10 if arguments.small else 100)
    repos = 1 if arguments.small else 5
    machine = machine_description()
    with Workdir(prefix="bench-naive-", keep=arguments.keep) as work:
        say(f"work directory {work.path}")
        fleet = build_fleet(workdir=work.path, env=work.env, repos=repos, deployments=deployments)
        async with (
            local_postgres(work.path) as database_url,
            fakekube_process(
                workdir=work.path, rollout_delay_s=ROLLOUT_DELAY_S, latency_s=LATENCY_S
            ) as kube,
            Pipeline.connect(database_url) as pipeline,
        ):
            repo_ids = await pipeline.register_repos(fleet)
            settings = {}
            if arguments.concurrency:
                settings["RECONCILER_CONCURRENCY"] = str(arguments.concurrency)
            daemon = DaemonProcess(
                workdir=work.path,
                database_url=database_url,
                kubeconfig=kube.kubeconfig,
                settings=settings,
            )
            async with running_daemon(daemon):
                say(f"reconciler: converging {deployments} deployments (creates)")
                await pipeline.insert_deployments(
                    fleet, repo_ids=repo_ids, image_ref="reg.bench/app:1"
                )
                await pipeline.wait_converged(
                    image_ref="reg.bench/app:1", timeout_s=600, daemon=daemon
                )
                await asyncio.sleep(2.0)
                say("reconciler: bulk update")
                commit_at = await pipeline.update_all_images("reg.bench/app:2")
                await pipeline.wait_converged(
                    image_ref="reg.bench/app:2", timeout_s=600, daemon=daemon
                )
                reconciler_s = (
                    await pipeline.last_finish(since=commit_at) or time.time()
                ) - commit_at
            say(f"reconciler: {reconciler_s:.1f} s; daemon stopped")
            say(f"naive: git pull + render + kubectl apply + rollout status, x{deployments}")
            naive_s, iterations = await _naive_loop(
                fleet=fleet, work=work, kubeconfig=kube.kubeconfig, image_ref="reg.bench/app:3"
            )
            await _check_images(
                work=work,
                kubeconfig=kube.kubeconfig,
                image_ref="reg.bench/app:3",
                expected=deployments,
            )
            kubectl_requests = len(await kube.requests(since=commit_at + reconciler_s + 1))
    return _report(
        deployments=deployments,
        repos=repos,
        reconciler_s=reconciler_s,
        naive_s=naive_s,
        iterations=iterations,
        kubectl_requests=kubectl_requests,
        concurrency=arguments.concurrency,
        machine=machine,
        small=arguments.small,
    )


def _report(
    *,
    deployments: int,
    repos: int,
    reconciler_s: float,
    naive_s: float,
    iterations: list[StepTimes],
    kubectl_requests: int,
    concurrency: int | None,
    machine: dict[str, Any],
    small: bool,
) -> dict[str, Any]:
    ratio = naive_s / reconciler_s
    print(
        f"naive loop vs reconciler: {deployments} image updates over {repos} ops repos, fakekube "
        f"latency {LATENCY_S * 1000:g} ms, rollouts {ROLLOUT_DELAY_S:g} s"
    )
    result_line(
        "reconciler (bulk UPDATE -> all healthy)",
        f"{reconciler_s:8.1f} s   (RECONCILER_CONCURRENCY={concurrency or 'default 16'})",
    )
    result_line("naive loop", f"{naive_s:8.1f} s   ({naive_s / deployments:.2f} s per deployment)")
    result_line("ratio naive / reconciler", f"{ratio:8.1f} x")
    steps: dict[str, dict[str, float]] = {}
    for step in STEPS:
        values = [it.seconds[step] for it in iterations]
        steps[step] = {
            "total_s": round(sum(values), 2),
            "median_s": round(statistics.median(values), 3),
        }
        result_line(
            f"  naive: {step}",
            f"{sum(values):8.1f} s total, {statistics.median(values) * 1000:6.0f} ms median",
        )
    result_line("  naive: API requests per deployment", f"{kubectl_requests / deployments:8.1f}")
    return {
        "bench": "naive",
        "small": small,
        "deployments": deployments,
        "repos": repos,
        "reconciler_s": round(reconciler_s, 2),
        "naive_s": round(naive_s, 2),
        "ratio": round(ratio, 2),
        "naive_steps": steps,
        "naive_requests_per_deployment": round(kubectl_requests / deployments, 2),
        "concurrency": concurrency,
        "machine": machine,
    }


def main() -> int:
    arguments = _arguments()
    return run_benchmark("naive", lambda: _run(arguments))


if __name__ == "__main__":
    sys.exit(main())
