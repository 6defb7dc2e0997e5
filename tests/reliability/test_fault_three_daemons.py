"""Fault 5: three daemon processes on one database, each with its own checkout of the ops repo.
Every changed object is applied exactly once per change, counted in fakekube's request log."""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable
from pathlib import Path

import asyncpg
import pytest

from reconciler.db import Store, asyncpg_dsn
from reconciler.testing.fakekube import FakeKube
from tests.support.applies import applies_per_object
from tests.support.audit import audit, converged
from tests.support.fault_table import FaultRow
from tests.support.gitrepo import OpsRepoDir
from tests.support.processes import DaemonProcess, daemon_env
from tests.support.waiting import wait_until

DAEMONS = 3
PROJECTS = [f"svc{i:02d}" for i in range(24)]
# An image change touches the Deployment, a commit of new values the ConfigMap alone (the
# daemon does not send an object an apply would leave unchanged).
PLURALS = ("deployments", "configmaps")


def _deployment_of(key: str) -> str:
    """``namespace/name`` of an applied object, as the Deployment's (the ConfigMap is
    ``<project>-config``)."""
    return key.removesuffix("-config")


async def _recorded_by(store: Store) -> collections.Counter[str]:
    conn = await asyncpg.connect(asyncpg_dsn(store.url))
    try:
        rows = await conn.fetch("SELECT daemon FROM deployment_history")
    finally:
        await conn.close()
    return collections.Counter(str(r["daemon"]) for r in rows)


@pytest.mark.reliability
async def test_three_daemons_apply_each_change_once(
    store: Store,
    cluster: FakeKube,
    kubeconfig: Path,
    ops_remote: OpsRepoDir,
    daemon_processes: list[DaemonProcess],
    fault_table: Callable[[FaultRow], None],
    tmp_path: Path,
) -> None:
    """Three daemons apply every deployment exactly once per change, never from an older commit."""
    for project in PROJECTS:
        ops_remote.write_project(project)
    ops_remote.commit("projects")
    repo = await store.add_ops_repo(name="ops", repo_url=str(ops_remote.path), sync_interval_s=0)
    cluster.rollout_delay_s = 0.5
    for index in range(DAEMONS):
        daemon = DaemonProcess(
            env=daemon_env(
                database_url=store.url,
                kubeconfig=kubeconfig,
                repos_dir=tmp_path / f"repos-{index}",
                poll_interval_s="0.5",
                lease_s="10",
                concurrency="6",
                health_timeout_s="60",
                shutdown_grace_s="2",
                daemon_id=f"daemon-{index}",
            ),
            log_path=tmp_path / f"daemon-{index}.log",
        )
        daemon_processes.append(daemon)
    await asyncio.gather(*(d.start() for d in daemon_processes))

    async def wave(name: str, change: Callable[[], object], *, plural: str) -> dict[str, int]:
        """Make a change, wait until every deployment runs it (image and commit) and return
        how many times each object of ``plural`` (the kind the change touches) was applied
        meanwhile; the other kind, unchanged, must not have been applied twice."""
        before = {kind: applies_per_object(cluster, plural=kind) for kind in PLURALS}
        result = change()
        if asyncio.iscoroutine(result):
            await result
        head = ops_remote._git("rev-parse", "HEAD")

        async def done() -> bool:
            return await converged(store) and all(
                d.current_sha == head and d.current_image_ref == d.image_ref
                for d in await store.list_deployments()
            )

        await wait_until(done, timeout_s=90, what=f"wave '{name}'")
        counts = {}
        for kind in PLURALS:
            after = applies_per_object(cluster, plural=kind)
            counts[kind] = {
                k: after.get(k, 0) - before[kind].get(k, 0) for k in {*before[kind], *after}
            }
        unchanged = {
            k: n for kind in PLURALS if kind != plural for k, n in counts[kind].items() if n > 1
        }
        assert unchanged == {}, f"wave '{name}' applied unchanged objects more than once"
        return {_deployment_of(k): n for k, n in counts[plural].items()}

    async def create() -> None:
        for project in PROJECTS:
            await store.upsert_deployment(
                project=project, environment="prod", ops_repo_id=repo.id, image_ref="reg/app:1"
            )

    async def new_images(image_ref: str) -> None:
        for project in PROJECTS:
            await store.set_desired(project=project, environment="prod", image_ref=image_ref)

    def commit(greeting: str) -> str:
        for project in PROJECTS:
            ops_remote.write_project(project, greeting=greeting)
        return ops_remote.commit(greeting)

    waves = {
        "new rows": await wave("new rows", create, plural="deployments"),
        "new images": await wave(
            "new images", lambda: new_images("reg/app:2"), plural="deployments"
        ),
        "a commit": await wave("a commit", lambda: commit("changed"), plural="configmaps"),
        "another commit": await wave(
            "another commit", lambda: commit("again"), plural="configmaps"
        ),
        "a third commit": await wave(
            "a third commit", lambda: commit("thrice"), plural="configmaps"
        ),
        "newer images": await wave(
            "newer images", lambda: new_images("reg/app:3"), plural="deployments"
        ),
    }
    head = ops_remote._git("rev-parse", "HEAD")
    for d in await store.list_deployments():
        assert (d.current_sha, d.current_image_ref) == (head, "reg/app:3")
    codes = await asyncio.gather(*(d.terminate() for d in daemon_processes))
    assert codes == [0] * DAEMONS

    result = await audit(store)
    recorded_by = await _recorded_by(store)
    expected = {f"{p}-prod/{p}" for p in PROJECTS}
    doubles = {
        name: {key: n for key, n in counts.items() if n != 1} for name, counts in waves.items()
    }
    fault_table(
        FaultRow(
            fault="5. three daemons, one database",
            injected=f"{DAEMONS} daemons x {len(PROJECTS)} deployments x {len(waves)} waves",
            converged=not result.problems,
            deployments=result.deployments,
            history_rows=result.history_rows,
            lost=result.lost,
            duplicated=result.duplicated + sum(len(d) for d in doubles.values()),
            notes=(
                f"double applies: {sum(len(d) for d in doubles.values())}; history rows by "
                + ", ".join(f"{k} {v}" for k, v in sorted(recorded_by.items()))
            ),
        )
    )
    for name, counts in waves.items():
        assert set(counts) == expected, name
    assert doubles == {name: {} for name in waves}
    assert result.problems == []
    assert len(recorded_by) == DAEMONS, f"not every daemon took part: {recorded_by}"
