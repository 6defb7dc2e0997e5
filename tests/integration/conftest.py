"""Fixtures for the pipeline: an ops repo in a temp dir, fakekube over HTTP, a running daemon."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import subprocess
import textwrap
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from reconciler.cluster.kube import Kube
from reconciler.daemon import Daemon
from reconciler.db import Store
from reconciler.model import Deployment
from reconciler.settings import Settings
from reconciler.testing.fakekube import FakeKube

APP_TEMPLATES = {
    "configmap.yaml": """\
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: {{ project }}-config
        data:
          greeting: {{ values.greeting | tojson }}
        """,
    "deployment.yaml.j2": """\
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: {{ project }}
        spec:
          replicas: {{ values.replicas }}
          progressDeadlineSeconds: 60
          selector:
            matchLabels: {app: {{ project }}}
          template:
            metadata:
              labels: {app: {{ project }}}
            spec:
              containers:
                - name: app
                  image: {{ image_ref }}
        """,
    "service.yaml": """\
        apiVersion: v1
        kind: Service
        metadata:
          name: {{ project }}
        spec:
          selector: {app: {{ project }}}
          ports: [{port: 80}]
        """,
}


class OpsRepoDir:
    """A git repository in a temp dir playing an ops repo's remote."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        self._git("init", "-q", "-b", "main")

    def _git(self, *args: str) -> str:
        return subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@localhost", *args],
            cwd=self.path,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()

    def write_project(
        self,
        project: str,
        *,
        replicas: int = 2,
        greeting: str = "hello",
        templates: dict[str, str] | None = None,
    ) -> None:
        folder = self.path / project
        folder.mkdir(parents=True, exist_ok=True)
        for name, text in (templates or APP_TEMPLATES).items():
            (folder / name).write_text(textwrap.dedent(text))
        (folder / "values.yaml").write_text(f"replicas: {replicas}\ngreeting: {greeting}\n")

    def write(self, relative: str, text: str) -> None:
        target = self.path / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(textwrap.dedent(text))

    def commit(self, message: str = "change") -> str:
        self._git("add", "-A")
        self._git("commit", "-q", "-m", message)
        return self._git("rev-parse", "HEAD")


@dataclasses.dataclass
class Pipeline:
    """Everything a pipeline test touches: the store, the cluster, the ops repo, daemons."""

    store: Store
    fakekube: FakeKube
    kubeconfig: Path
    ops: OpsRepoDir
    settings: Settings
    ops_repo_id: int = 0
    daemons: list[tuple[Daemon, asyncio.Task[int], Kube]] = dataclasses.field(default_factory=list)

    async def start_daemon(self, **changes: Any) -> Daemon:
        settings = dataclasses.replace(self.settings, **changes)
        kube = await Kube.connect(kubeconfig=str(self.kubeconfig))
        daemon = Daemon(store=self.store, kube=kube, settings=settings)
        self.daemons.append((daemon, asyncio.create_task(daemon.run()), kube))
        return daemon

    async def stop_daemons(self) -> None:
        for daemon, task, kube in self.daemons:
            daemon.stop()
            await asyncio.wait_for(task, timeout=30)
            await kube.close()
        self.daemons.clear()

    async def deploy(
        self, project: str, environment: str = "prod", *, image_ref: str = "reg/app:1", **extra: Any
    ) -> Deployment:
        return await self.store.upsert_deployment(
            project=project,
            environment=environment,
            ops_repo_id=self.ops_repo_id,
            image_ref=image_ref,
            **extra,
        )

    async def wait_for(
        self,
        project: str,
        environment: str = "prod",
        *,
        until: Callable[[Deployment], bool],
        timeout_s: float = 30.0,
    ) -> Deployment:
        """Poll the deployment until ``until`` holds; fail with its last state otherwise."""
        deadline = time.monotonic() + timeout_s
        while True:
            current = await self.store.get_deployment(project=project, environment=environment)
            assert current is not None
            if until(current):
                return current
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out; last state: {current}")
            await asyncio.sleep(0.05)

    async def wait_repo_synced(self, sha: str, *, timeout_s: float = 30.0) -> None:
        """Wait until the daemon has fetched the ops repo at ``sha``."""
        deadline = time.monotonic() + timeout_s
        while True:
            repos = await self.store.ops_repos_by_id([self.ops_repo_id])
            if repos and repos[self.ops_repo_id].last_sha == sha:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"the daemon never fetched {sha}; repos: {repos}")
            await asyncio.sleep(0.05)

    def applies(self, *, kind_plural: str = "deployments", name: str | None = None) -> int:
        """Server-side apply requests that reached fakekube for a kind (and name)."""
        count = 0
        for record in self.fakekube.request_log:
            if record.method != "PATCH" or record.content_type != "application/apply-patch+yaml":
                continue
            parts = record.path.rstrip("/").split("/")
            if len(parts) >= 2 and parts[-2] == kind_plural and (name is None or parts[-1] == name):
                count += 1
        return count


@contextlib.asynccontextmanager
async def open_pipeline(
    *,
    store: Store,
    kube: FakeKube,
    kubeconfig: Path,
    ops: OpsRepoDir,
    tmp_path: Path,
    **settings: Any,
) -> AsyncIterator[Pipeline]:
    """A Pipeline over these parts, its ops repo registered (synced every pass); daemons it
    started are stopped at the end.  ``settings`` override the test defaults."""
    defaults = Settings(
        database_url=store.url,
        kubeconfig=str(kubeconfig),
        repos_dir=tmp_path / "repos",
        poll_interval_s=1.0,
        health_timeout_s=20.0,
        concurrency=8,
        daemon_id="daemon-a",
        lease_s=30.0,
        max_attempts=3,
        retry_base_s=30.0,
        retry_max_s=60.0,
        git_timeout_s=30.0,
        shutdown_grace_s=5.0,
    )
    repo = await store.add_ops_repo(name="ops", repo_url=str(ops.path), sync_interval_s=0)
    result = Pipeline(
        store=store,
        fakekube=kube,
        kubeconfig=kubeconfig,
        ops=ops,
        settings=dataclasses.replace(defaults, **settings),
        ops_repo_id=repo.id,
    )
    try:
        yield result
    finally:
        await result.stop_daemons()


@pytest.fixture
async def pipeline(store: Store, tmp_path: Path) -> AsyncIterator[Pipeline]:
    """A migrated store, a started fakekube, an ops repo with project 'app', no daemon yet."""
    async with FakeKube(rollout_delay_s=0.05, time_factor=0.05) as kube:
        ops = OpsRepoDir(tmp_path / "ops-remote")
        ops.write_project("app")
        ops.commit("app")
        async with open_pipeline(
            store=store,
            kube=kube,
            kubeconfig=kube.write_kubeconfig(tmp_path / "kubeconfig"),
            ops=ops,
            tmp_path=tmp_path,
        ) as result:
            yield result
