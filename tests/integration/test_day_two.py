"""Day-two commands with the real daemon: cancel, pause/resume, retry, redeploy, status filter."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from reconciler.attempt import CANCELLED_MESSAGE
from reconciler.cluster.kube import RESTARTED_AT
from reconciler.errors import InputError
from reconciler.model import Deployment
from tests.support.pipeline import Pipeline
from tests.support.processes import run_cli

APP = {"project": "app", "environment": "prod"}


def _healthy_on(image: str) -> Callable[[Deployment], bool]:
    return lambda d: d.current_status == "healthy" and d.current_image_ref == image


def _live_template(pipeline: Pipeline) -> dict[str, object]:
    live = pipeline.fakekube.get_object(
        api_version="apps/v1", kind="Deployment", name="app", namespace="app-prod"
    )
    assert live is not None
    template: dict[str, object] = live["spec"]["template"]
    return template


async def _pod_names(pipeline: Pipeline) -> set[str]:
    kube = pipeline.daemons[0][2]
    pods = await kube.list_pods("app-prod", "app=app")
    return {p["metadata"]["name"] for p in pods if not p["metadata"].get("deletionTimestamp")}


async def test_cancel_mid_rollout_records_cancelled_and_does_not_retry(
    pipeline: Pipeline,
) -> None:
    """Cancelling a rollout that cannot finish ends it at once as 'cancelled', observed, and
    nothing retries it afterwards, even after a poll interval."""
    pipeline.fakekube.rollout_delay_s = 60.0  # the rollout cannot finish by itself
    await pipeline.start_daemon(health_timeout_s=60.0)
    written = await pipeline.deploy("app", image_ref="reg/app:slow")
    await pipeline.wait_for("app", until=lambda d: d.current_status == "syncing")
    assert await pipeline.store.cancel(**APP) == written.generation
    d = await pipeline.wait_for("app", until=lambda d: d.current_status == "failed", timeout_s=10)
    assert d.status_message == CANCELLED_MESSAGE
    assert d.observed_generation == written.generation
    assert d.next_attempt_at is None
    [entry] = await pipeline.store.history(deployment_id=d.id)
    assert (entry.action, entry.status) == ("deploy", "cancelled")
    applies = pipeline.applies(name="app")
    pipeline.fakekube.rollout_delay_s = 0.05
    await asyncio.sleep(2.5)  # more than two poll intervals
    assert pipeline.applies(name="app") == applies
    assert len(await pipeline.store.history(deployment_id=d.id)) == 1
    assert [r["project"] for r in await pipeline.store.parked_rows()] == ["app"]


async def test_cancel_with_nothing_in_flight_changes_nothing(pipeline: Pipeline) -> None:
    """Cancel refuses, naming the deployment, when nothing is in flight or there is none."""
    await pipeline.start_daemon()
    await pipeline.deploy("app")
    before = await pipeline.wait_for("app", until=_healthy_on("reg/app:1"))
    with pytest.raises(InputError, match="app/prod has no rollout in flight"):
        await pipeline.store.cancel(**APP)
    with pytest.raises(InputError, match="no deployment app/prdo"):
        await pipeline.store.cancel(project="app", environment="prdo")
    after = await pipeline.store.get_deployment(**APP)
    assert after == before


async def test_pause_survives_an_image_change_and_a_commit_then_resume_converges(
    pipeline: Pipeline,
) -> None:
    """A paused deployment is not applied for a new image nor a new commit; it shows paused;
    resuming rolls out both."""
    await pipeline.start_daemon()
    await pipeline.deploy("app")
    healthy = await pipeline.wait_for("app", until=_healthy_on("reg/app:1"))
    assert await pipeline.store.set_paused(**APP, paused=True)
    assert not await pipeline.store.set_paused(**APP, paused=True)
    applies = pipeline.applies(name="app")
    paused = await pipeline.store.set_desired(**APP, image_ref="reg/app:2")
    assert paused.generation == healthy.generation + 1  # pausing did not bump it
    pipeline.ops.write_project("app", greeting="changed")
    sha = pipeline.ops.commit("change app")
    await pipeline.wait_repo_synced(sha)
    await asyncio.sleep(2.5)  # more than two poll intervals
    assert pipeline.applies(name="app") == applies
    d = await pipeline.store.get_deployment(**APP)
    assert d is not None and d.current_image_ref == "reg/app:1" and d.current_sha != sha
    [row] = await pipeline.store.status_rows(statuses=["paused"])
    assert (row["project"], row["paused"]) == ("app", True)
    assert await pipeline.store.set_paused(**APP, paused=False)
    d = await pipeline.wait_for("app", until=lambda d: _healthy_on("reg/app:2")(d))
    await pipeline.wait_for("app", until=lambda d: d.current_sha == sha)
    config = pipeline.fakekube.get_object(
        api_version="v1", kind="ConfigMap", name="app-config", namespace="app-prod"
    )
    assert config is not None and config["data"]["greeting"] == "changed"


async def test_retry_unparks_a_deployment_whose_retries_are_spent(pipeline: Pipeline) -> None:
    """A deployment parked after its last attempt is tried again by retry; a deployment not
    parked is refused."""
    pipeline.fakekube.faults.crashloop_images.append("reg/app:bad*")
    await pipeline.start_daemon(max_attempts=1)
    await pipeline.deploy("app", image_ref="reg/app:bad")
    d = await pipeline.wait_for("app", until=lambda d: d.current_status == "failed")
    assert d.next_attempt_at is None and d.attempts == 1
    assert [r["project"] for r in await pipeline.store.parked_rows()] == ["app"]
    await pipeline.store.retry(**APP)
    await pipeline.wait_for(
        "app",
        until=lambda d: d.current_status == "failed" and d.next_attempt_at is None,
        timeout_s=30,
    )
    history = await pipeline.store.history(deployment_id=d.id)
    assert [h.status for h in history] == ["failed", "failed"]
    await pipeline.store.set_desired(**APP, image_ref="reg/app:2")
    await pipeline.wait_for("app", until=_healthy_on("reg/app:2"))
    assert await pipeline.store.parked_rows() == []
    with pytest.raises(InputError, match="app/prod is not parked \\(it is healthy\\)"):
        await pipeline.store.retry(**APP)


async def test_redeploy_reapplies_an_unchanged_deployment(pipeline: Pipeline) -> None:
    """A redeploy applies the unchanged render again, recorded as its own action, and clears
    its request; the pod template is left as it was."""
    await pipeline.start_daemon()
    await pipeline.deploy("app")
    await pipeline.wait_for("app", until=_healthy_on("reg/app:1"))
    applies = pipeline.applies(name="app")
    template = _live_template(pipeline)
    generation = await pipeline.store.redeploy(**APP, restart=False)
    d = await pipeline.wait_for(
        "app", until=lambda d: d.observed_generation == generation and d.attempt_action is None
    )
    assert d.current_status == "healthy"
    assert d.redeploy_requested_at is None
    assert pipeline.applies(name="app") == applies + 1
    [latest, _] = await pipeline.store.history(deployment_id=d.id)
    assert (latest.action, latest.status) == ("redeploy", "healthy")
    assert _live_template(pipeline) == template


async def test_redeploy_with_restart_rolls_the_pods(pipeline: Pipeline) -> None:
    """redeploy --restart sets the pod template's restartedAt, so the pods are replaced; a
    later apply leaves the annotation."""
    await pipeline.start_daemon()
    await pipeline.deploy("app")
    await pipeline.wait_for("app", until=_healthy_on("reg/app:1"))
    pods = await _pod_names(pipeline)
    assert pods
    generation = await pipeline.store.redeploy(**APP, restart=True)
    d = await pipeline.wait_for(
        "app", until=lambda d: d.observed_generation == generation and d.attempt_action is None
    )
    assert d.current_status == "healthy" and not d.redeploy_restart
    annotations = _live_template(pipeline)["metadata"]
    assert isinstance(annotations, dict) and RESTARTED_AT in annotations["annotations"]
    restarted = annotations["annotations"][RESTARTED_AT]
    assert (await _pod_names(pipeline)).isdisjoint(pods)
    await pipeline.store.redeploy(**APP, restart=False)
    await pipeline.wait_for("app", until=lambda d: d.redeploy_requested_at is None)
    metadata = _live_template(pipeline)["metadata"]
    assert isinstance(metadata, dict) and metadata["annotations"][RESTARTED_AT] == restarted


async def test_status_filters_by_status_and_project(pipeline: Pipeline) -> None:
    """status --status/--project (the CLI as a process) lists only the matching rows; an
    unknown status is refused with the valid ones."""
    pipeline.fakekube.faults.crashloop_images.append("reg/app:bad*")
    pipeline.ops.write_project("other")
    pipeline.ops.commit("other")
    await pipeline.start_daemon(max_attempts=1)
    await pipeline.deploy("app", image_ref="reg/app:bad")
    await pipeline.deploy("other")
    await pipeline.wait_for("app", until=lambda d: d.current_status == "failed")
    await pipeline.wait_for("other", until=_healthy_on("reg/app:1"))
    url = pipeline.store.url
    failed = run_cli("status", "--status", "failed,stopped", "--json", database_url=url)
    assert failed.returncode == 0, failed.stderr
    assert [line.count('"project": "app"') for line in failed.stdout.splitlines()] == [1]
    healthy = run_cli("status", "--status", "healthy", "--project", "app", database_url=url)
    assert (healthy.returncode, healthy.stdout.strip()) == (0, "no deployments match")
    wrong = run_cli("status", "--status", "failed,broken", database_url=url)
    assert wrong.returncode == 2
    assert "unknown status broken" in wrong.stderr
    assert "healthy, degraded, drifted, failed, stopped, deleted, paused" in wrong.stderr
