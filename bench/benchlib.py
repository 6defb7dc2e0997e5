"""What the reconcile-pipeline benchmarks share: a throwaway world and ways to measure it.

Each benchmark starts its own PostgreSQL (unix socket, fsync off), fakekube in its own process
(so the benchmark can read its request log and turn its latency knob), git "remotes" holding
ops repos in a temporary directory, and the daemon as a separate ``python -m reconciler run``
process, so the daemon's CPU time and memory are its own.  Everything lives under one temporary
directory that is removed at the end.

The daemon and the other child processes get a small explicit environment instead of ours, so
a developer's RECONCILER_* variables, proxies or git configuration cannot skew a run.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import asyncpg

ROOT = Path(__file__).resolve().parent.parent
"""The checkout the benchmarks belong to: its ``reconciler`` is the one measured, in this
process and in every child (PYTHONPATH), not whatever an editable install points at."""
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from reconciler.db import Store, asyncpg_dsn  # noqa: E402
from reconciler.localpg import LocalPostgres  # noqa: E402
from reconciler.testing.fakekube import RequestRecord  # noqa: E402

APPLY_CONTENT_TYPE = "application/apply-patch+yaml"
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_REAL_GIT = shutil.which("git") or "/usr/bin/git"


class BenchmarkError(RuntimeError):
    """The benchmark could not measure what it set out to (a failed rollout, a dead daemon)."""


# ---------------------------------------------------------------- printing


def say(text: str) -> None:
    """A progress line (stderr, so stdout holds only results)."""
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def result_line(label: str, value: str) -> None:
    """One human-readable result line on stdout."""
    print(f"{label:<44} {value}", flush=True)


def json_line(payload: Mapping[str, Any]) -> None:
    """The final machine-readable line: one JSON object on stdout."""
    print(json.dumps(payload, sort_keys=True), flush=True)


def run_benchmark(name: str, run: Callable[[], Coroutine[Any, Any, Mapping[str, Any]]]) -> int:
    """A benchmark script's main: run it, print its JSON line; exit 1 if it could not measure."""
    try:
        payload = asyncio.run(run())
    except BenchmarkError as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return 1
    json_line(payload)
    return 0


def percentile(values: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile (p99 of 100 samples is the 99th smallest)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def machine_description() -> dict[str, Any]:
    """What the numbers were measured on: cores, load at the start, and the code's commit."""
    load1, load5, _load15 = os.getloadavg()
    return {
        "cores": os.cpu_count(),
        "load1": round(load1, 2),
        "load5": round(load5, 2),
        "commit": _code_version(),
    }


def _code_version() -> str:
    """HEAD's short sha, with "+changes" when reconciler/ differs from it."""
    root = ROOT
    env = {"PATH": "/usr/bin:/bin", "HOME": str(root), "GIT_CONFIG_NOSYSTEM": "1"}
    head = subprocess.run(
        [_REAL_GIT, "rev-parse", "--short", "HEAD"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if head.returncode != 0:
        return "unknown"
    changes = subprocess.run(
        [_REAL_GIT, "status", "--porcelain", "--", "reconciler", "migrations"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    return head.stdout.strip() + ("+changes" if changes.stdout.strip() else "")


# ---------------------------------------------------------------- processes and /proc


@dataclass(frozen=True)
class CpuTimes:
    """CPU seconds of one process: its own, and its reaped children's (git, for the daemon)."""

    own_s: float
    children_s: float

    def __sub__(self, other: CpuTimes) -> CpuTimes:
        return CpuTimes(
            own_s=self.own_s - other.own_s, children_s=self.children_s - other.children_s
        )


def cpu_times(pid: int) -> CpuTimes:
    """utime+stime and cutime+cstime from /proc/PID/stat."""
    raw = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
    # The command name may hold spaces and parentheses: the fields start after the last ')'.
    fields = raw[raw.rindex(")") + 2 :].split()
    utime, stime, cutime, cstime = (int(v) for v in fields[11:15])
    return CpuTimes(
        own_s=(utime + stime) / _CLOCK_TICKS, children_s=(cutime + cstime) / _CLOCK_TICKS
    )


def descendants(pid: int) -> list[int]:
    """The live descendants of a process (the daemon's render workers, a running git)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            raw = stat.read_text(encoding="ascii")
        except OSError:
            continue  # it ended while we looked
        parent = int(raw[raw.rindex(")") + 2 :].split()[1])
        children.setdefault(parent, []).append(int(stat.parent.name))
    found: list[int] = []
    queue = list(children.get(pid, []))
    while queue:
        child = queue.pop()
        found.append(child)
        queue.extend(children.get(child, []))
    return found


@dataclass(frozen=True)
class TreeCpu:
    """CPU seconds of a process tree: the process, its live descendants, and the children that
    ended and were reaped (git runs, replaced render workers)."""

    main_s: float
    helpers_s: float
    reaped_s: float

    @property
    def total_s(self) -> float:
        return self.main_s + self.helpers_s + self.reaped_s

    def __sub__(self, other: TreeCpu) -> TreeCpu:
        return TreeCpu(
            main_s=self.main_s - other.main_s,
            helpers_s=self.helpers_s - other.helpers_s,
            reaped_s=self.reaped_s - other.reaped_s,
        )


def tree_cpu(pid: int) -> TreeCpu:
    """:class:`TreeCpu` of ``pid`` now.  A helper that ends between two readings moves from
    helpers to reaped, so differences of totals stay right."""
    main = cpu_times(pid)
    helpers = 0.0
    reaped = main.children_s
    for child in descendants(pid):
        try:
            times = cpu_times(child)
        except (OSError, ValueError):
            continue
        helpers += times.own_s
        reaped += times.children_s
    return TreeCpu(main_s=main.own_s, helpers_s=helpers, reaped_s=reaped)


def tree_memory_kib(pid: int) -> dict[str, int]:
    """Memory of a process tree in KiB: the main process's VmRSS and VmHWM, the RSS of its
    live descendants, and the PSS of the whole tree (shared pages split fairly)."""
    main = memory_kib(pid)
    helpers_rss = 0
    pss = 0
    for member in [pid, *descendants(pid)]:
        try:
            if member != pid:
                helpers_rss += memory_kib(member).get("VmRSS", 0)
            rollup = Path(f"/proc/{member}/smaps_rollup").read_text(encoding="ascii")
        except OSError:
            continue
        for line in rollup.splitlines():
            if line.startswith("Pss:"):
                pss += int(line.split()[1])
    return {
        "main_rss": main.get("VmRSS", 0),
        "main_peak_rss": main.get("VmHWM", 0),
        "helpers_rss": helpers_rss,
        "tree_pss": pss,
        "helpers": len(descendants(pid)),
    }


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak RSS) of a process, in KiB."""
    found: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text(encoding="ascii").splitlines():
        key, _sep, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            found[key] = int(value.split()[0])
    return found


class MachineCpu:
    """Whole-machine CPU use between two readings of /proc/stat (all cores, all processes)."""

    def __init__(self) -> None:
        self._busy, self._total = self._read()

    @staticmethod
    def _read() -> tuple[int, int]:
        with open("/proc/stat", encoding="ascii") as stat:
            values = [int(v) for v in stat.readline().split()[1:]]
        idle = values[3] + values[4]  # idle + iowait
        return sum(values) - idle, sum(values)

    def busy_share(self) -> float:
        """The share of all cores busy since construction (1.0: every core saturated)."""
        busy, total = self._read()
        return (busy - self._busy) / max(1, total - self._total)


def child_environment(*, home: Path, extra_path: Sequence[Path] = ()) -> dict[str, str]:
    """A minimal environment for child processes (no inherited configuration)."""
    path = [str(p) for p in extra_path]
    path += [str(Path(sys.executable).parent), "/usr/local/bin", "/usr/bin", "/bin"]
    return {
        "PATH": ":".join(path),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "GIT_CONFIG_NOSYSTEM": "1",
        "PYTHONPATH": str(ROOT),
    }


def run_checked(argv: Sequence[str], *, cwd: Path | None = None, env: Mapping[str, str]) -> str:
    """Run a short command; its stdout, or BenchmarkError with its stderr."""
    result = subprocess.run(
        list(argv), cwd=cwd, env=dict(env), capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise BenchmarkError(
            f"{' '.join(argv[:3])} ... failed (exit {result.returncode}): {result.stderr.strip()}"
        )
    return result.stdout


# ---------------------------------------------------------------- the world


class Workdir:
    """A temporary directory for one run, removed on exit (``--keep`` keeps it)."""

    def __init__(self, *, prefix: str, keep: bool = False) -> None:
        self.path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
        self.keep = keep
        self.env = child_environment(home=self.path)

    def __enter__(self) -> Workdir:
        return self

    def __exit__(self, *_exc: object) -> None:
        if self.keep:
            say(f"kept {self.path}")
        else:
            shutil.rmtree(self.path, ignore_errors=True)


def postgres_pid(workdir: Path) -> int:
    """The postmaster of :func:`local_postgres` (its backends are its children)."""
    text = (workdir / "pgdata" / "postmaster.pid").read_text(encoding="ascii")
    return int(text.splitlines()[0])


@contextlib.asynccontextmanager
async def local_postgres(workdir: Path) -> AsyncIterator[str]:
    """A throwaway PostgreSQL with the schema migrated; yields its URL."""
    server = LocalPostgres(data_dir=workdir / "pgdata", keep_data=False)
    await asyncio.to_thread(server.start)
    try:
        url = server.url()
        store = await Store.connect(url, pool_size=1)
        try:
            await store.migrate()
        finally:
            await store.close()
        yield url
    finally:
        await asyncio.to_thread(server.stop)


class FakeKubeProcess:
    """fakekube as a child process, steered through a line protocol on its stdin/stdout.

    A process of its own keeps fakekube's CPU off the benchmark driver's event loop (whose
    timestamps we trust) and lets us report its CPU separately.  See ``fakekube_server.py``.
    """

    def __init__(
        self,
        *,
        workdir: Path,
        rollout_delay_s: float,
        latency_s: float = 0.0,
        sample: Path | None = None,
    ) -> None:
        self.kubeconfig = workdir / "kubeconfig"
        self._workdir = workdir
        self._sample = sample
        self._rollout_delay_s = rollout_delay_s
        self._latency_s = latency_s
        self._process: asyncio.subprocess.Process | None = None
        self._lock = asyncio.Lock()
        self.url = ""

    @property
    def pid(self) -> int:
        if self._process is None:
            raise BenchmarkError("fakekube is not running")
        return self._process.pid

    async def start(self) -> None:
        self._process = await asyncio.create_subprocess_exec(
            sys.executable,
            str(Path(__file__).with_name("fakekube_server.py")),
            "--kubeconfig",
            str(self.kubeconfig),
            "--rollout-delay",
            str(self._rollout_delay_s),
            "--latency",
            str(self._latency_s),
            *(["--sample", str(self._sample)] if self._sample is not None else []),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env=child_environment(home=self._workdir),
            limit=64 * 1024 * 1024,
        )
        hello = await self._read_line(timeout_s=60)
        self.url = str(hello["url"])

    async def _read_line(self, *, timeout_s: float) -> dict[str, Any]:
        assert self._process is not None and self._process.stdout is not None
        line = await asyncio.wait_for(self._process.stdout.readline(), timeout=timeout_s)
        if not line:
            raise BenchmarkError("fakekube exited unexpectedly (see its stderr above)")
        answer: dict[str, Any] = json.loads(line)
        if "error" in answer:
            raise BenchmarkError(f"fakekube: {answer['error']}")
        return answer

    def signal(self, signum: int) -> None:
        """Send fakekube the sampler's SIGUSR1 / SIGUSR2; nothing without ``sample`` (it
        would end the process)."""
        if self._process is not None and self._sample is not None:
            self._process.send_signal(signum)

    async def ask(self, command: str, **arguments: Any) -> dict[str, Any]:
        """Send one command, return its answer (see fakekube_server.py for the commands)."""
        assert self._process is not None and self._process.stdin is not None
        async with self._lock:
            payload = json.dumps({"command": command, **arguments}) + "\n"
            self._process.stdin.write(payload.encode())
            await self._process.stdin.drain()
            return await self._read_line(timeout_s=120)

    async def requests(self, *, since: float, until: float | None = None) -> list[RequestRecord]:
        """The request log between two time.time() instants."""
        answer = await self.ask("requests", since=since, until=until)
        return [RequestRecord(**record) for record in answer["requests"]]

    async def first_apply(self, *, since: float, path_contains: str) -> RequestRecord | None:
        """The first server-side apply at or after ``since`` whose path contains a string."""
        answer = await self.ask("first_apply", since=since, path_contains=path_contains)
        record = answer["request"]
        return RequestRecord(**record) if record else None

    async def get_object(
        self, *, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> dict[str, Any] | None:
        """The stored object (as ``api_version`` shows it), or None."""
        answer = await self.ask(
            "object", api_version=api_version, kind=kind, namespace=namespace, name=name
        )
        found: dict[str, Any] | None = answer["object"]
        return found

    async def apply_objects(
        self, objects: Sequence[Mapping[str, Any]], *, field_manager: str
    ) -> int:
        """Server-side apply ``objects`` inside fakekube (no HTTP); how many it applied."""
        answer = await self.ask("apply", objects=list(objects), field_manager=field_manager)
        return int(answer["applied"])

    async def count(self, *, api_version: str, kind: str, label_selector: str | None = None) -> int:
        """How many objects of a kind fakekube stores, in all namespaces."""
        answer = await self.ask(
            "count", api_version=api_version, kind=kind, label_selector=label_selector
        )
        return int(answer["count"])

    async def stop(self) -> None:
        if self._process is None or self._process.returncode is not None:
            return
        assert self._process.stdin is not None
        self._process.stdin.close()
        try:
            await asyncio.wait_for(self._process.wait(), timeout=15)
        except TimeoutError:
            self._process.kill()
            await self._process.wait()


@contextlib.asynccontextmanager
async def fakekube_process(
    *, workdir: Path, rollout_delay_s: float, latency_s: float = 0.0, sample: Path | None = None
) -> AsyncIterator[FakeKubeProcess]:
    """A started :class:`FakeKubeProcess`, stopped on exit."""
    server = FakeKubeProcess(
        workdir=workdir, rollout_delay_s=rollout_delay_s, latency_s=latency_s, sample=sample
    )
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


# ---------------------------------------------------------------- ops repos


# Our own small manifests: a ConfigMap and a Deployment for every project, a Service for some.
_CONFIGMAP = """\
    apiVersion: v1
    kind: ConfigMap
    metadata:
      name: {{ project }}-settings
      labels: {app: {{ project }}}
    data:
      environment: {{ environment | tojson }}
      log_level: {{ values.log_level | tojson }}
    """
_DEPLOYMENT = """\
    apiVersion: apps/v1
    kind: Deployment
    metadata:
      name: {{ project }}
      labels: {app: {{ project }}}
    spec:
      replicas: {{ values.replicas }}
      selector:
        matchLabels: {app: {{ project }}}
      template:
        metadata:
          labels: {app: {{ project }}}
        spec:
          containers:
            - name: main
              image: {{ image_ref | tojson }}
              ports: [{containerPort: 8080}]
              envFrom: [{configMapRef: {name: {{ project }}-settings}}]
              resources:
                requests: {cpu: 10m, memory: 32Mi}
    """
_SERVICE = """\
    apiVersion: v1
    kind: Service
    metadata:
      name: {{ project }}
      labels: {app: {{ project }}}
    spec:
      selector: {app: {{ project }}}
      ports: [{port: 80, targetPort: 8080}]
    """


class OpsRemote:
    """A git repository in the work directory that plays an ops repo's remote."""

    def __init__(self, path: Path, *, env: Mapping[str, str]) -> None:
        self.path = path
        self._env = dict(env)
        path.mkdir(parents=True, exist_ok=True)
        self._git("init", "-q", "-b", "main")

    def _git(self, *args: str) -> str:
        identity = ["-c", "user.name=bench", "-c", "user.email=bench@localhost"]
        return run_checked([_REAL_GIT, *identity, *args], cwd=self.path, env=self._env).strip()

    def add_project(self, project: str, *, with_service: bool, replicas: int = 1) -> None:
        folder = self.path / project
        folder.mkdir(parents=True, exist_ok=True)
        templates = {"configmap.yaml": _CONFIGMAP, "deployment.yaml.j2": _DEPLOYMENT}
        if with_service:
            templates["service.yaml"] = _SERVICE
        for name, text in templates.items():
            (folder / name).write_text(textwrap.dedent(text), encoding="utf-8")
        (folder / "values.yaml").write_text(
            f"replicas: {replicas}\nlog_level: info\n", encoding="utf-8"
        )
        (folder / "values-prod.yaml").write_text("log_level: warning\n", encoding="utf-8")
        # Every environment the benchmarks deploy is declared (an undeclared one is refused).
        (folder / "values-staging.yaml").write_text("log_level: info\n", encoding="utf-8")

    def commit(self, message: str) -> str:
        self._git("add", "-A")
        self._git("commit", "-q", "-m", message)
        return self._git("rev-parse", "HEAD")


@dataclass(frozen=True)
class Fleet:
    """The deployments a benchmark works on, and the ops repos they come from."""

    repos: dict[str, OpsRemote]
    """ops repo name -> its remote."""
    rows: list[tuple[str, str, str]]
    """(project, environment, ops repo name) of every deployment."""
    shas: dict[str, str]
    """ops repo name -> the commit at its tip."""


def build_fleet(*, workdir: Path, env: Mapping[str, str], repos: int, deployments: int) -> Fleet:
    """``deployments`` deployments over ``repos`` ops repos: per repo, projects in two
    environments (prod, staging); every other project has a Service (3 objects, else 2)."""
    if deployments % (repos * 2):
        raise BenchmarkError(f"{deployments} deployments do not split into {repos} repos x 2 envs")
    projects_per_repo = deployments // (repos * 2)
    remotes: dict[str, OpsRemote] = {}
    rows: list[tuple[str, str, str]] = []
    shas: dict[str, str] = {}
    for r in range(repos):
        name = f"ops-{r:02d}"
        remote = OpsRemote(workdir / "remotes" / name, env=env)
        for p in range(projects_per_repo):
            project = f"r{r:02d}-app{p:03d}"
            remote.add_project(project, with_service=p % 2 == 0)
            rows += [(project, "prod", name), (project, "staging", name)]
        shas[name] = remote.commit("projects")
        remotes[name] = remote
    return Fleet(repos=remotes, rows=rows, shas=shas)


# ---------------------------------------------------------------- the database, as a pipeline


class Pipeline:
    """A pipeline's own connection to the database (plain asyncpg, explicit transactions)."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn
        self.peak_other_connections = 0
        """The most client connections (other than ours) seen by :meth:`progress`."""
        self.peak_busy_connections = 0
        """The most of them seen in a transaction or running a statement at one time."""

    @classmethod
    @contextlib.asynccontextmanager
    async def connect(cls, url: str) -> AsyncIterator[Pipeline]:
        conn = await asyncpg.connect(asyncpg_dsn(url))
        try:
            yield cls(conn)
        finally:
            await conn.close()

    async def register_repos(
        self, fleet: Fleet, *, sync_interval_s: int | None = None
    ) -> dict[str, int]:
        """INSERT the ops repos (default sync interval unless given); name -> id."""
        ids: dict[str, int] = {}
        for name, remote in fleet.repos.items():
            if sync_interval_s is None:
                ids[name] = await self.conn.fetchval(
                    "INSERT INTO ops_repos (name, repo_url) VALUES ($1, $2) RETURNING id",
                    name,
                    str(remote.path),
                )
            else:
                ids[name] = await self.conn.fetchval(
                    "INSERT INTO ops_repos (name, repo_url, sync_interval_s) "
                    "VALUES ($1, $2, $3) RETURNING id",
                    name,
                    str(remote.path),
                    sync_interval_s,
                )
        return ids

    async def insert_deployments(
        self, fleet: Fleet, *, repo_ids: Mapping[str, int], image_ref: str
    ) -> None:
        """What pipelines do the first time: one INSERT per deployment, in one transaction."""
        await self.conn.executemany(
            "INSERT INTO deployments (project, environment, ops_repo_id, image_ref) "
            "VALUES ($1, $2, $3, $4)",
            [(project, env, repo_ids[repo], image_ref) for project, env, repo in fleet.rows],
        )

    async def update_all_images(self, image_ref: str) -> float:
        """One UPDATE of every row's image_ref; returns time.time() just before its COMMIT."""
        async with self._transaction() as commit_at:
            await self.conn.execute("UPDATE deployments SET image_ref = $1", image_ref)
        return commit_at[0]

    async def update_image(self, *, project: str, environment: str, image_ref: str) -> float:
        """UPDATE one row's image_ref; returns time.time() just before its COMMIT."""
        async with self._transaction() as commit_at:
            await self.conn.execute(
                "UPDATE deployments SET image_ref = $1 WHERE project = $2 AND environment = $3",
                image_ref,
                project,
                environment,
            )
        return commit_at[0]

    @contextlib.asynccontextmanager
    async def _transaction(self) -> AsyncIterator[list[float]]:
        # An explicit BEGIN/COMMIT so the clock is read right before the COMMIT is sent: the
        # NOTIFY is delivered at commit, and the latency we report includes the commit itself.
        holder: list[float] = []
        await self.conn.execute("BEGIN")
        try:
            yield holder
        except BaseException:
            await self.conn.execute("ROLLBACK")
            raise
        holder.append(time.time())
        await self.conn.execute("COMMIT")

    async def progress(self, *, image_ref: str) -> tuple[int, int, int]:
        """(healthy at image_ref with the generation observed, failed, total)."""
        row = await self.conn.fetchrow(
            """
            SELECT count(*) FILTER (WHERE current_status = 'healthy'
                                      AND observed_generation = generation
                                      AND current_image_ref = $1) AS done,
                   count(*) FILTER (WHERE current_status = 'failed') AS failed,
                   count(*) AS total,
                   connections.open, connections.busy
            FROM deployments,
                 (SELECT count(*) AS open, count(*) FILTER (WHERE state <> 'idle') AS busy
                  FROM pg_stat_activity
                  WHERE backend_type = 'client backend'
                    AND pid <> pg_backend_pid()) AS connections
            GROUP BY connections.open, connections.busy
            """,
            image_ref,
        )
        assert row is not None
        self.peak_other_connections = max(self.peak_other_connections, int(row["open"]))
        self.peak_busy_connections = max(self.peak_busy_connections, int(row["busy"]))
        return int(row["done"]), int(row["failed"]), int(row["total"])

    async def wait_converged(
        self,
        *,
        image_ref: str,
        timeout_s: float,
        poll_s: float = 0.25,
        daemon: DaemonProcess | None = None,
        report_every_s: float = 10.0,
    ) -> None:
        """Wait until every deployment is healthy at ``image_ref``; BenchmarkError after the
        timeout (naming some failures) or if the daemon died."""
        deadline = time.monotonic() + timeout_s
        next_report = time.monotonic() + report_every_s
        while True:
            done, failed, total = await self.progress(image_ref=image_ref)
            if done == total:
                return
            if daemon is not None and daemon.exited():
                raise BenchmarkError(f"the daemon exited ({daemon.returncode()}); see its log")
            now = time.monotonic()
            if now >= deadline:
                raise BenchmarkError(
                    f"timed out after {timeout_s:g}s: {done}/{total} healthy at {image_ref}, "
                    f"{failed} failed; e.g. {await self.failure_samples()}"
                )
            if now >= next_report:
                say(f"  {done}/{total} healthy at {image_ref}, {failed} failed")
                next_report = now + report_every_s
            await asyncio.sleep(poll_s)

    async def failure_samples(self, limit: int = 3) -> list[str]:
        rows = await self.conn.fetch(
            "SELECT project, environment, current_status, status_message FROM deployments "
            "WHERE current_status <> 'healthy' ORDER BY id LIMIT $1",
            limit,
        )
        return [
            f"{r['project']}/{r['environment']} {r['current_status']}: {r['status_message']}"
            for r in rows
        ]

    async def last_finish(self, *, since: float) -> float | None:
        """time.time() of the last history row finished after ``since`` (the database clock,
        which is this machine's clock)."""
        value = await self.conn.fetchval(
            "SELECT extract(epoch FROM max(finished_at)) FROM deployment_history "
            "WHERE finished_at >= to_timestamp($1)",
            since,
        )
        return float(value) if value is not None else None

    async def history_statuses(self, *, since: float) -> Counter[str]:
        rows = await self.conn.fetch(
            "SELECT status, count(*) AS n FROM deployment_history "
            "WHERE finished_at >= to_timestamp($1) GROUP BY status",
            since,
        )
        return Counter({str(r["status"]): int(r["n"]) for r in rows})


# ---------------------------------------------------------------- the daemon as a process


def git_counting_wrapper(*, bin_dir: Path, log_path: Path) -> Path:
    """A ``git`` that appends its subcommand to ``log_path`` and runs the real git.

    Put ``bin_dir`` first on the daemon's PATH to count every git process it starts: an honest
    count of fetches and clones that needs nothing from the daemon's own bookkeeping.
    """
    bin_dir.mkdir(parents=True, exist_ok=True)
    wrapper = bin_dir / "git"
    wrapper.write_text(
        "#!/bin/bash\n"
        "# Written by the reconciler benchmarks: log the git subcommand, then run git.\n"
        "# EPOCHREALTIME, not date: no extra process, so git's measured cost stays git's.\n"
        "for arg do\n"
        '  case "$arg" in -*|*=*) ;; *) '
        f'printf "%s %s\\n" "$EPOCHREALTIME" "$arg" >> {shell_quote(str(log_path))}; break;; '
        "esac\n"
        "done\n"
        f'exec {shell_quote(_REAL_GIT)} "$@"\n',
        encoding="utf-8",
    )
    wrapper.chmod(0o755)
    return wrapper


def shell_quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def git_invocations(log_path: Path, *, since: float, until: float) -> Counter[str]:
    """git subcommands the wrapper logged in a time window."""
    counts: Counter[str] = Counter()
    if not log_path.exists():
        return counts
    for line in log_path.read_text(encoding="utf-8").splitlines():
        stamp, _sep, subcommand = line.partition(" ")
        if since <= float(stamp) <= until:
            counts[subcommand] += 1
    return counts


class DaemonProcess:
    """``python -m reconciler run`` with its JSON log in a file."""

    def __init__(
        self,
        *,
        workdir: Path,
        database_url: str,
        kubeconfig: Path,
        settings: Mapping[str, str],
        name: str = "daemon",
        extra_path: Sequence[Path] = (),
        command: Sequence[str] | None = None,
    ) -> None:
        self.log_path = workdir / f"{name}.log"
        self.command = list(command or [sys.executable, "-m", "reconciler", "run"])
        """What runs the daemon (``bench/profiled_daemon.py`` for a profile)."""
        self.env = child_environment(home=workdir, extra_path=extra_path)
        self.env.update(
            {
                "DATABASE_URL": database_url,
                "KUBECONFIG": str(kubeconfig),
                "RECONCILER_REPOS_DIR": str(workdir / "repos"),
                "RECONCILER_LOG_FORMAT": "json",
                # The only debug event is "pass", one line per pass: cheap, and what we measure.
                "RECONCILER_LOG_LEVEL": "debug",
                "RECONCILER_DAEMON_ID": name,
                # The probes are served as by default, on a free local port: another process
                # on 8080 (a developer's daemon, a test) must not stop the benchmark.
                "RECONCILER_HTTP_ADDRESS": "127.0.0.1:0",
            }
        )
        self.env.update(settings)
        self._process: subprocess.Popen[bytes] | None = None
        self._log_file: TextIO | None = None

    @property
    def pid(self) -> int:
        if self._process is None:
            raise BenchmarkError("the daemon is not running")
        return self._process.pid

    def exited(self) -> bool:
        return self._process is not None and self._process.poll() is not None

    def returncode(self) -> int | None:
        return None if self._process is None else self._process.poll()

    def signal(self, signum: int) -> None:
        """Send the daemon a signal (the profiler's SIGUSR1 / SIGUSR2)."""
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signum)

    async def start(self, *, timeout_s: float = 60.0) -> None:
        """Start it and wait for its first pass (it is connected and has looked for work)."""
        await asyncio.to_thread(self._launch)
        await self.wait_for_event("pass", timeout_s=timeout_s)

    def _launch(self) -> None:
        self._log_file = open(self.log_path, "w", encoding="utf-8")  # noqa: SIM115
        self._process = subprocess.Popen(
            self.command,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self._log_file,
        )

    async def wait_for_event(self, event: str, *, timeout_s: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while True:
            for entry in self.events():
                if entry.get("event") == event:
                    return entry
            if self.exited():
                raise BenchmarkError(
                    f"the daemon exited with {self.returncode()} before '{event}': "
                    f"{self.log_tail()}"
                )
            if time.monotonic() > deadline:
                raise BenchmarkError(f"no '{event}' from the daemon in {timeout_s:g}s")
            await asyncio.sleep(0.1)

    def events(self) -> list[dict[str, Any]]:
        """Every JSON event logged so far, with ``t`` (time.time() of its timestamp) added."""
        if not self.log_path.exists():
            return []
        found: list[dict[str, Any]] = []
        for line in self.log_path.read_text(encoding="utf-8").splitlines():
            if not line.startswith("{"):
                continue
            try:
                entry: dict[str, Any] = json.loads(line)
            except ValueError:
                continue  # a line being written right now
            stamp = entry.get("timestamp")
            if isinstance(stamp, str):
                entry["t"] = dt.datetime.fromisoformat(stamp).timestamp()
            found.append(entry)
        return found

    def log_tail(self, lines: int = 5) -> str:
        if not self.log_path.exists():
            return "(no log)"
        return " | ".join(self.log_path.read_text(encoding="utf-8").splitlines()[-lines:])

    def warnings(self) -> Counter[str]:
        """How many times each warning or error event was logged."""
        return Counter(
            str(e.get("event")) for e in self.events() if e.get("level") in ("warning", "error")
        )

    async def stop(self, *, timeout_s: float = 30.0) -> int:
        """SIGTERM, wait; SIGKILL if it will not go.  Returns the exit code."""
        if self._process is None:
            return 0
        process = self._process
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(process.wait, timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
        code = await asyncio.to_thread(process.wait)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        return code


@contextlib.asynccontextmanager
async def running_daemon(daemon: DaemonProcess) -> AsyncIterator[DaemonProcess]:
    """A started daemon, stopped (and warned about if it misbehaved) on exit."""
    try:
        await daemon.start()
        yield daemon
    finally:
        code = await daemon.stop()
        if code not in (0, -signal.SIGTERM):
            say(f"the daemon exited with {code}: {daemon.log_tail()}")


def pass_events(
    events: Iterable[Mapping[str, Any]], *, since: float = 0.0, until: float = math.inf
) -> list[Mapping[str, Any]]:
    """The daemon's "pass" events whose end lies in a time window."""
    return [e for e in events if e.get("event") == "pass" and since <= e["t"] <= until]


def summarize_ms(values: Sequence[float]) -> dict[str, float]:
    """median, p90, p99 and max of durations in milliseconds."""
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "median": round(statistics.median(values), 2),
        "p90": round(percentile(values, 0.90), 2),
        "p99": round(percentile(values, 0.99), 2),
        "max": round(max(values), 2),
    }


# ---------------------------------------------------------------- reading the request log


def resource_of(path: str) -> tuple[str, bool]:
    """The resource (plural) a request path names, and whether it names one object."""
    parts = [p for p in path.split("/") if p]
    if parts[:1] == ["api"]:
        rest = parts[2:]
    elif parts[:1] == ["apis"]:
        rest = parts[3:]
    else:
        return "/" + "/".join(parts[:1]), False
    if len(rest) >= 2 and rest[0] == "namespaces" and len(rest) >= 3:
        rest = rest[2:]
    if not rest:
        return "(discovery)", False
    return "/".join([rest[0], *rest[2:]]), len(rest) >= 2


def request_kinds(records: Iterable[RequestRecord]) -> Counter[str]:
    """Requests grouped as 'apply deployments', 'get pods (list)', ..."""
    counts: Counter[str] = Counter()
    for record in records:
        resource, named = resource_of(record.path)
        if record.method == "PATCH" and record.content_type == APPLY_CONTENT_TYPE:
            verb = "apply"
        elif record.method == "GET" and record.query.get("watch") in ("true", "1"):
            verb = "watch"
        else:
            verb = record.method.lower()
        counts[f"{verb} {resource}{'' if named else ' (list)'}"] += 1
    return counts


REQUEST_CLASSES = ("apply", "dry-run apply", "get", "list", "watch")
"""How :func:`request_breakdown` groups requests; anything else is "other <METHOD>"."""


def request_breakdown(records: Iterable[RequestRecord]) -> dict[str, Counter[str]]:
    """Requests grouped by class (server-side applies, dry-run applies, GETs of one object,
    LISTs, WATCHes, other), then by resource (plural, e.g. 'deployments')."""
    found: dict[str, Counter[str]] = {}
    for record in records:
        resource, named = resource_of(record.path)
        if record.method == "PATCH" and record.content_type == APPLY_CONTENT_TYPE:
            verb = "dry-run apply" if record.dry_run else "apply"
        elif record.method == "GET" and record.query.get("watch") in ("true", "1"):
            verb = "watch"
        elif record.method == "GET":
            verb = "get" if named else "list"
        else:
            verb = f"other {record.method}"
        found.setdefault(verb, Counter())[resource] += 1
    return found
