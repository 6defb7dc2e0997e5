"""Prune, delete, status that tells the truth, rollback to a snapshot, and watches that break,
with the real daemon, real git and fakekube over HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import asyncpg
import pytest

from reconciler.db import asyncpg_dsn
from reconciler.model import Deployment, HistoryEntry
from tests.support.gitrepo import APP_TEMPLATES
from tests.support.pipeline import Pipeline
from tests.support.processes import run_cli
from tests.support.waiting import wait_for_value

APP = {"project": "app", "environment": "prod"}
NS = "app-prod"
BROKEN = "deployment.yaml.j2", "{{ values.replicas | no_such_filter }}\n"


def healthy_on(image: str, sha: str | None = None) -> Callable[[Deployment], bool]:
    def check(d: Deployment) -> bool:
        return (
            d.current_status == "healthy"
            and d.current_image_ref == image
            and (sha is None or d.rendered_sha == sha)
        )

    return check


def _live(pipeline: Pipeline, kind: str, name: str) -> dict[str, Any] | None:
    version = "apps/v1" if kind == "Deployment" else "v1"
    return pipeline.fakekube.get_object(api_version=version, kind=kind, name=name, namespace=NS)


async def _newest(pipeline: Pipeline, d: Deployment) -> HistoryEntry:
    return (await pipeline.store.history(deployment_id=d.id, limit=1))[0]


async def _commit(pipeline: Pipeline, files: dict[str, str], message: str) -> str:
    for name, text in files.items():
        pipeline.ops.write(f"app/{name}", text)
    sha = pipeline.ops.commit(message)
    await pipeline.store.notify_repo_sync([pipeline.ops_repo_id])
    return sha


async def test_a_deleted_template_file_prunes_its_objects(pipeline: Pipeline) -> None:
    """Removing service.yaml from the ops repo deletes the Service after the next healthy
    rollout, names it in the history row, and drops it from the inventory."""
    await pipeline.start_daemon()
    await pipeline.deploy("app")
    d = await pipeline.wait_for("app", until=healthy_on("reg/app:1"))
    assert _live(pipeline, "Service", "app") is not None
    (pipeline.ops.path / "app" / "service.yaml").unlink()
    sha = await _commit(pipeline, {}, "no service")
    await pipeline.wait_for("app", until=healthy_on("reg/app:1", sha))
    assert _live(pipeline, "Service", "app") is None
    assert "pruned Service app-prod/app" in (await _newest(pipeline, d)).message
    kinds = {ref.kind for ref in await pipeline.store.inventory_of(d.id)}
    assert kinds == {"ConfigMap", "Deployment"}


async def test_the_keep_annotation_keeps_an_object_from_pruning(pipeline: Pipeline) -> None:
    """An object annotated reconciler.io/prune: "false" stays when its template goes, and the
    history row says it was kept."""
    await pipeline.start_daemon()
    await pipeline.deploy("app")
    d = await pipeline.wait_for("app", until=healthy_on("reg/app:1"))
    await pipeline.kubectl().run("-n", NS, "annotate", "service/app", "reconciler.io/prune=false")
    (pipeline.ops.path / "app" / "service.yaml").unlink()
    sha = await _commit(pipeline, {}, "no service")
    await pipeline.wait_for("app", until=healthy_on("reg/app:1", sha))
    assert _live(pipeline, "Service", "app") is not None
    assert "kept" in (await _newest(pipeline, d)).message


async def test_a_render_that_would_prune_everything_is_refused_unless_allowed(
    pipeline: Pipeline,
) -> None:
    """A render sharing nothing with what the deployment owns fails, naming why, and deletes
    nothing; with prune_all_allowed it prunes everything."""
    await pipeline.start_daemon()
    await pipeline.deploy("app")
    await pipeline.wait_for("app", until=healthy_on("reg/app:1"))
    await _commit(pipeline, dict.fromkeys(APP_TEMPLATES, "# nothing\n"), "empty")
    failed = await pipeline.wait_for("app", until=lambda d: d.current_status == "failed")
    assert "would prune every object" in failed.status_message
    assert "prune_all_allowed" in failed.status_message
    assert _live(pipeline, "Deployment", "app") is not None
    assert failed.current_image_ref == "reg/app:1"
    await pipeline.sql("UPDATE deployments SET prune_all_allowed = true WHERE project = 'app'")
    await pipeline.store.retry(**APP)
    await pipeline.wait_for("app", until=lambda d: d.current_status == "healthy")
    assert _live(pipeline, "Deployment", "app") is None
    assert _live(pipeline, "ConfigMap", "app-config") is None


async def test_deleted_removes_everything_and_keeps_history(pipeline: Pipeline) -> None:
    """desired_status 'deleted' removes every owned object and ends 'deleted'; deleting the
    row is refused before and allowed after, and the history outlives the row."""
    await pipeline.start_daemon()
    await pipeline.deploy("app")
    d = await pipeline.wait_for("app", until=healthy_on("reg/app:1"))
    with pytest.raises(asyncpg.IntegrityConstraintViolationError, match="still owns 3 object"):
        await pipeline.sql("DELETE FROM deployments WHERE project = 'app'")
    await pipeline.store.set_desired(**APP, desired_status="deleted")
    gone = await pipeline.wait_for("app", until=lambda d: d.current_status == "deleted")
    for kind, name in (("Deployment", "app"), ("Service", "app"), ("ConfigMap", "app-config")):
        assert _live(pipeline, kind, name) is None
    assert await pipeline.store.inventory_of(d.id) == []
    row = await _newest(pipeline, gone)
    assert (row.action, row.status) == ("delete", "deleted")
    assert "Deployment app-prod/app" in row.message
    assert await pipeline.sql("DELETE FROM deployments WHERE project = 'app'") == "DELETE 1"
    conn = await asyncpg.connect(asyncpg_dsn(pipeline.store.url))
    try:
        kept = await conn.fetchval("SELECT count(*) FROM deployment_history WHERE project = 'app'")
    finally:
        await conn.close()
    assert kept == 2


async def test_a_failed_render_leaves_current_columns_as_they_were(pipeline: Pipeline) -> None:
    """A commit that breaks the render fails the deployment with current_image_ref,
    current_sha and current_values still describing what runs."""
    await pipeline.start_daemon()
    await pipeline.deploy("app")
    before = await pipeline.wait_for("app", until=healthy_on("reg/app:1"))
    tip = await _commit(pipeline, dict([BROKEN]), "broken")
    await pipeline.wait_for(
        "app", until=lambda d: d.current_status == "failed" and d.rendered_sha == tip
    )
    written = await pipeline.deploy("app", image_ref="reg/app:2")
    failed = await pipeline.wait_for(
        "app",
        until=lambda d: (
            d.observed_generation == written.generation and d.current_status == "failed"
        ),
    )
    assert "no_such_filter" in failed.status_message
    assert (failed.current_image_ref, failed.current_sha, failed.current_values) == (
        before.current_image_ref,
        before.current_sha,
        before.current_values,
    )


async def test_rollback_after_a_bad_template_commit_renders_the_healthy_commit(
    pipeline: Pipeline,
) -> None:
    """After a commit breaks the render, a rollback renders the healthy row's commit (not the
    tip) and stays there: no failed attempt follows at the tip."""
    await pipeline.start_daemon()
    await pipeline.deploy("app")
    good = await pipeline.wait_for("app", until=healthy_on("reg/app:1"))
    await pipeline.deploy("app", image_ref="reg/app:2")
    await pipeline.wait_for("app", until=healthy_on("reg/app:2"))
    pipeline.ops.write_project("app", greeting="second")
    second = await _commit(pipeline, {}, "second greeting")
    await pipeline.wait_for("app", until=healthy_on("reg/app:2", second))
    config = _live(pipeline, "ConfigMap", "app-config")
    assert config is not None and config["data"]["greeting"] == "second"
    tip = await _commit(pipeline, dict([BROKEN]), "broken")
    await pipeline.wait_for("app", until=lambda d: d.current_status == "failed")
    await pipeline.store.set_desired(**APP, desired_status="rollback")
    back = await pipeline.wait_for("app", until=healthy_on("reg/app:1"))
    assert back.current_sha == good.current_sha
    assert back.rendered_sha == tip
    assert (back.desired_status, back.image_ref) == ("active", "reg/app:1")
    row = await _newest(pipeline, back)
    assert row.action == "rollback" and row.sha == good.current_sha
    live = _live(pipeline, "Deployment", "app")
    assert live is not None
    assert live["spec"]["template"]["spec"]["containers"][0]["image"] == "reg/app:1"
    config = _live(pipeline, "ConfigMap", "app-config")
    assert config is not None and config["data"]["greeting"] == "hello"  # the first commit's
    await asyncio.sleep(2.5)  # more than two passes: nothing retries at the broken tip
    assert (await _newest(pipeline, back)).id == row.id


async def test_rollback_to_a_chosen_row_in_sql(pipeline: Pipeline) -> None:
    """rollback_to names the history row to return to; the rollback's row says which."""
    await pipeline.start_daemon()
    rows = []
    for image in ("reg/app:1", "reg/app:2", "reg/app:3"):
        await pipeline.deploy("app", image_ref=image)
        d = await pipeline.wait_for("app", until=healthy_on(image))
        rows.append(await _newest(pipeline, d))
    status = await pipeline.sql(
        "UPDATE deployments SET desired_status = 'rollback', rollback_to = $1 "
        "WHERE project = 'app' AND environment = 'prod'",
        rows[0].id,
    )
    assert status == "UPDATE 1"
    back = await pipeline.wait_for("app", until=healthy_on("reg/app:1"))
    row = await _newest(pipeline, back)
    assert (row.action, row.rolled_back_to) == ("rollback", rows[0].id)
    assert back.rollback_to is None


async def test_rollback_to_a_row_of_another_deployment_is_refused(pipeline: Pipeline) -> None:
    """A rollback_to naming another deployment's row fails with a message naming the row."""
    pipeline.ops.write_project("other")
    pipeline.ops.commit("other")
    await pipeline.start_daemon()
    await pipeline.deploy("other")
    other = await pipeline.wait_for("other", until=healthy_on("reg/app:1"))
    foreign = await _newest(pipeline, other)
    await pipeline.deploy("app")
    await pipeline.wait_for("app", until=healthy_on("reg/app:1"))
    await pipeline.store.set_desired(**APP, desired_status="rollback", rollback_to=foreign.id)
    failed = await pipeline.wait_for("app", until=lambda d: d.current_status == "failed")
    assert f"rollback_to = {foreign.id} is not a healthy deploy of app/prod" in (
        failed.status_message
    )


async def test_a_dropped_watch_and_a_410_mid_rollout_still_converge(pipeline: Pipeline) -> None:
    """Watches dropped during a rollout, with a history too short to resume from (410), are
    listed again: the rollout ends healthy and a later drift is still healed."""
    pipeline.fakekube.watch_history = 2
    pipeline.fakekube.rollout_delay_s = 1.0
    await pipeline.start_daemon()
    await pipeline.deploy("app")
    await pipeline.wait_for("app", until=lambda d: d.current_status == "syncing")
    for _ in range(3):
        pipeline.fakekube.faults.drop_watches()
        await asyncio.sleep(0.3)
    d = await pipeline.wait_for("app", until=healthy_on("reg/app:1"))
    pipeline.fakekube.rollout_delay_s = 0.05
    await pipeline.kubectl().run("-n", NS, "delete", "configmap", "app-config")

    async def healed() -> HistoryEntry | None:
        rows = await pipeline.store.history(deployment_id=d.id)
        return next((h for h in rows if (h.action, h.status) == ("heal", "healthy")), None)

    row = await wait_for_value(healed, timeout_s=30, interval_s=0.05, failure=lambda: "no heal")
    assert "ConfigMap app-prod/app-config was deleted" in row.message
    assert _live(pipeline, "ConfigMap", "app-config") is not None


async def test_the_cli_rolls_back_to_a_chosen_row_and_deletes(pipeline: Pipeline) -> None:
    """`reconciler rollback P E --to ID` and `reconciler delete P E` (as processes) do what
    their SQL does; a row of another deployment is refused before anything is written."""
    await pipeline.start_daemon()
    await pipeline.deploy("app", image_ref="reg/app:1")
    d = await pipeline.wait_for("app", until=healthy_on("reg/app:1"))
    first = await _newest(pipeline, d)
    await pipeline.deploy("app", image_ref="reg/app:2")
    await pipeline.wait_for("app", until=healthy_on("reg/app:2"))
    url = pipeline.store.url
    wrong = await asyncio.to_thread(
        run_cli, "rollback", "app", "prod", "--to", "999", database_url=url
    )
    assert wrong.returncode == 1
    assert "history row 999 is not a healthy deploy of app/prod" in wrong.stderr
    done = await asyncio.to_thread(
        run_cli, "rollback", "app", "prod", "--to", str(first.id), database_url=url
    )
    assert done.returncode == 0, done.stderr
    assert f"rolling back to history row {first.id}" in done.stdout
    back = await pipeline.wait_for("app", until=healthy_on("reg/app:1"))
    assert (await _newest(pipeline, back)).rolled_back_to == first.id
    deleting = await asyncio.to_thread(run_cli, "delete", "app", "prod", database_url=url)
    assert deleting.returncode == 0, deleting.stderr
    assert "deleting the 3 object(s) it owns" in deleting.stdout
    await pipeline.wait_for("app", until=lambda d: d.current_status == "deleted")
    assert _live(pipeline, "Deployment", "app") is None
