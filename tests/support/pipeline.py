"""The pipeline under test: a store, fakekube over HTTP, an ops repo, and daemons wired to
them in this process."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import asyncpg

from reconciler.cluster.kube import Kube
from reconciler.cluster.live import LiveCache
from reconciler.daemon import OWNED_SELECTOR, Daemon
from reconciler.db import Store, asyncpg_dsn
from reconciler.model import Deployment, OpsRepo
from reconciler.settings import Settings
from reconciler.testing.fakekube import FakeKube
from tests.support.applies import count_applies
from tests.support.gitrepo import OpsRepoDir, app_repo
from tests.support.kubectl import Kubectl
from tests.support.waiting import wait_for_value

_POLL_S = 0.05


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

    async def start_daemon(self, *, watch: bool = True, **changes: Any) -> Daemon:
        """A daemon as ``reconciler run`` starts it (with its watch cache unless ``watch`` is
        false: then health is polled and nothing observes after the rollout)."""
        settings = dataclasses.replace(self.settings, **changes)
        kube = await Kube.connect(kubeconfig=str(self.kubeconfig))
        live = LiveCache(kube, label_selector=OWNED_SELECTOR) if watch else None
        daemon = Daemon(store=self.store, kube=kube, settings=settings, live=live)
        self.daemons.append((daemon, asyncio.create_task(daemon.run()), kube))
        return daemon

    async def stop_daemons(self) -> None:
        for daemon, task, kube in self.daemons:
            daemon.stop()
            await asyncio.wait_for(task, timeout=30)
            if daemon.live is not None:
                await daemon.live.close()  # type: ignore[attr-defined]
            await kube.close()
        self.daemons.clear()

    async def sql(self, statement: str, *args: Any) -> str:
        """Run one statement as a writer would in psql; returns its status (``UPDATE 1``)."""
        conn = await asyncpg.connect(asyncpg_dsn(self.store.url))
        try:
            status: str = await conn.execute(statement, *args)
        finally:
            await conn.close()
        return status

    def kubectl(self) -> Kubectl:
        """kubectl against this pipeline's fakekube (a discovery cache of its own)."""
        workdir = self.kubeconfig.parent
        return Kubectl(self.kubeconfig, workdir / "kubectl-cache", workdir)

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
        last: list[Deployment] = []

        async def probe() -> Deployment | None:
            current = await self.store.get_deployment(project=project, environment=environment)
            assert current is not None
            last[:] = [current]
            return current if until(current) else None

        return await wait_for_value(
            probe,
            timeout_s=timeout_s,
            interval_s=_POLL_S,
            failure=lambda: f"timed out; last state: {last[0]}",
        )

    async def wait_repo_synced(self, sha: str, *, timeout_s: float = 30.0) -> OpsRepo:
        """Wait until the daemon has fetched the ops repo at ``sha``; its row then."""
        last: list[object] = [None]

        async def fetched() -> OpsRepo | None:
            repos = await self.store.ops_repos_by_id([self.ops_repo_id])
            last[0] = repos
            if repos and repos[self.ops_repo_id].last_sha == sha:
                return repos[self.ops_repo_id]
            return None

        return await wait_for_value(
            fetched,
            timeout_s=timeout_s,
            interval_s=_POLL_S,
            failure=lambda: f"the daemon never fetched {sha}; repos: {last[0]}",
        )

    def applies(self, *, kind_plural: str = "deployments", name: str | None = None) -> int:
        """Server-side apply requests that reached fakekube for a kind (and name)."""
        return count_applies(self.fakekube, kind_plural=kind_plural, name=name)


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
        http_address=None,  # tests that probe ask for 127.0.0.1:0
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


@contextlib.asynccontextmanager
async def app_pipeline(*, store: Store, tmp_path: Path) -> AsyncIterator[Pipeline]:
    """A started fakekube (fast rollouts, sped-up time) and an ops repo with project 'app',
    wired to ``store``; no daemon yet."""
    async with (
        FakeKube(rollout_delay_s=0.05, time_factor=0.05) as kube,
        open_pipeline(
            store=store,
            kube=kube,
            kubeconfig=kube.write_kubeconfig(tmp_path / "kubeconfig"),
            ops=app_repo(tmp_path / "ops-remote"),
            tmp_path=tmp_path,
        ) as result,
    ):
        yield result
