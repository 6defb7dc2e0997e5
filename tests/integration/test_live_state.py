"""Live state with the real daemon: drift healed from the watch, healing off, health after the
rollout, a restart that finds drift made while it was down."""

from __future__ import annotations

from collections.abc import Callable

import asyncpg

from reconciler.db import asyncpg_dsn
from reconciler.model import Deployment, HistoryEntry
from tests.support.pipeline import Pipeline
from tests.support.waiting import wait_for_value

APP = {"project": "app", "environment": "prod"}
NS = "app-prod"


def healthy_on(image: str) -> Callable[[Deployment], bool]:
    return lambda d: d.current_status == "healthy" and d.current_image_ref == image


async def _deployed(pipeline: Pipeline, **settings: object) -> Deployment:
    await pipeline.start_daemon(**settings)
    await pipeline.deploy("app")
    return await pipeline.wait_for("app", until=healthy_on("reg/app:1"))


async def _rows(pipeline: Pipeline, d: Deployment) -> list[HistoryEntry]:
    return list(reversed(await pipeline.store.history(deployment_id=d.id)))


async def _wait_row(
    pipeline: Pipeline, d: Deployment, action: str, status: str, *, after: int = 0
) -> HistoryEntry:
    """The first history row past the first ``after`` with this action and status."""
    seen: list[HistoryEntry] = []

    async def found() -> HistoryEntry | None:
        seen[:] = await _rows(pipeline, d)
        rows = [h for h in seen[after:] if (h.action, h.status) == (action, status)]
        return rows[0] if rows else None

    return await wait_for_value(
        found, timeout_s=30, interval_s=0.05, failure=lambda: f"no {action} {status}: {seen}"
    )


def _live(pipeline: Pipeline, kind: str, name: str) -> dict[str, object] | None:
    version = "apps/v1" if kind == "Deployment" else "v1"
    return pipeline.fakekube.get_object(api_version=version, kind=kind, name=name, namespace=NS)


async def test_kubectl_set_image_is_healed_with_a_heal_row_naming_field_and_manager(
    pipeline: Pipeline,
) -> None:
    """`kubectl set image` on a managed Deployment is put back from the watch, and the heal
    row names the image field and kubectl's field manager."""
    d = await _deployed(pipeline)
    before = len(await _rows(pipeline, d))
    await pipeline.kubectl().run(
        "-n", NS, "set", "image", "deployment/app", "app=evil/hacked:latest"
    )
    row = await _wait_row(pipeline, d, "heal", "healthy", after=before)
    assert "containers[name=app].image" in row.message
    assert "kubectl-set" in row.message
    live = _live(pipeline, "Deployment", "app")
    assert live is not None
    assert live["spec"]["template"]["spec"]["containers"][0]["image"] == "reg/app:1"  # type: ignore[index]
    current = await pipeline.wait_for("app", until=healthy_on("reg/app:1"))
    assert current.heal_requested_at is None


async def test_kubectl_scale_is_healed(pipeline: Pipeline) -> None:
    """`kubectl scale` of a managed Deployment is scaled back to the rendered replicas."""
    d = await _deployed(pipeline)
    before = len(await _rows(pipeline, d))
    await pipeline.kubectl().run("-n", NS, "scale", "deployment/app", "--replicas=5")
    row = await _wait_row(pipeline, d, "heal", "healthy", after=before)
    assert "spec.replicas" in row.message
    live = _live(pipeline, "Deployment", "app")
    assert live is not None and live["spec"]["replicas"] == 2  # type: ignore[index]


async def test_kubectl_delete_configmap_is_recreated(pipeline: Pipeline) -> None:
    """A managed ConfigMap deleted with kubectl is created again, the heal row saying so."""
    d = await _deployed(pipeline)
    before = len(await _rows(pipeline, d))
    await pipeline.kubectl().run("-n", NS, "delete", "configmap", "app-config")
    row = await _wait_row(pipeline, d, "heal", "healthy", after=before)
    assert "ConfigMap app-prod/app-config was deleted" in row.message
    assert _live(pipeline, "ConfigMap", "app-config") is not None


async def test_healing_off_shows_drifted_then_turning_it_on_heals(pipeline: Pipeline) -> None:
    """With self_heal false the deployment shows 'drifted' with the drift's detail and nothing
    is re-applied; setting self_heal back heals it."""
    await pipeline.start_daemon()
    await pipeline.deploy("app")
    await pipeline.sql("UPDATE deployments SET self_heal = false WHERE project = 'app'")
    d = await pipeline.wait_for("app", until=healthy_on("reg/app:1"))
    await pipeline.kubectl().run("-n", NS, "scale", "deployment/app", "--replicas=4")
    drifted = await pipeline.wait_for("app", until=lambda d: d.current_status == "drifted")
    assert "spec.replicas" in drifted.status_message
    assert "self-heal is off" in drifted.status_message
    [row] = [h for h in await _rows(pipeline, d) if h.status == "drifted"]
    assert row.action == "heal"
    live = _live(pipeline, "Deployment", "app")
    assert live is not None and live["spec"]["replicas"] == 4  # type: ignore[index]
    await pipeline.sql("UPDATE deployments SET self_heal = NULL WHERE project = 'app'")
    await _wait_row(pipeline, d, "heal", "healthy")
    live = _live(pipeline, "Deployment", "app")
    assert live is not None and live["spec"]["replicas"] == 2  # type: ignore[index]


async def test_drift_made_while_the_daemon_was_down_is_healed_at_start(pipeline: Pipeline) -> None:
    """A change made while no daemon runs is found by the start's full check and healed."""
    d = await _deployed(pipeline)
    await pipeline.stop_daemons()
    await pipeline.kubectl().run("-n", NS, "delete", "service", "app")
    before = len(await _rows(pipeline, d))
    await pipeline.start_daemon()
    row = await _wait_row(pipeline, d, "heal", "healthy", after=before)
    assert "Service app-prod/app was deleted" in row.message
    assert _live(pipeline, "Service", "app") is not None


async def test_a_crash_loop_after_healthy_degrades_then_recovers(pipeline: Pipeline) -> None:
    """A Pod crash-looping after the rollout moves a healthy deployment to 'degraded' with the
    reason, and back to 'healthy' once it runs again; each move is a 'health' history row."""
    d = await _deployed(pipeline)
    pipeline.fakekube.faults.crashloop_images.append("reg/app:1")
    pods = await pipeline.kubectl().run("-n", NS, "get", "pods", "-o", "name")
    first = pods.stdout.split()[0]
    await pipeline.kubectl().run("-n", NS, "delete", first, "--wait=false")
    degraded = await pipeline.wait_for("app", until=lambda d: d.current_status == "degraded")
    assert "CrashLoopBackOff" in degraded.status_message
    pipeline.fakekube.faults.crashloop_images.clear()
    await pipeline.wait_for("app", until=lambda d: d.current_status == "healthy", timeout_s=60)
    health = [(h.action, h.status) for h in await _rows(pipeline, d) if h.action == "health"]
    assert health == [("health", "degraded"), ("health", "healthy")]


async def test_a_paused_deployment_keeps_its_drift_and_its_health_observed(
    pipeline: Pipeline,
) -> None:
    """While paused, a drift is not healed (the heal waits for resume) and health is still
    observed; resuming heals it."""
    d = await _deployed(pipeline)
    await pipeline.store.set_paused(**APP, paused=True)
    await pipeline.kubectl().run("-n", NS, "scale", "deployment/app", "--replicas=3")
    await pipeline.wait_for("app", until=lambda d: d.heal_requested_at is not None)
    pipeline.fakekube.faults.crashloop_images.append("reg/app:1")
    pods = await pipeline.kubectl().run("-n", NS, "get", "pods", "-o", "name")
    await pipeline.kubectl().run("-n", NS, "delete", pods.stdout.split()[0], "--wait=false")
    await pipeline.wait_for("app", until=lambda d: d.current_status == "degraded")
    live = _live(pipeline, "Deployment", "app")
    assert live is not None and live["spec"]["replicas"] == 3  # type: ignore[index]
    pipeline.fakekube.faults.crashloop_images.clear()
    await pipeline.store.set_paused(**APP, paused=False)
    await _wait_row(pipeline, d, "heal", "healthy")
    live = _live(pipeline, "Deployment", "app")
    assert live is not None and live["spec"]["replicas"] == 2  # type: ignore[index]


async def test_the_inventory_records_each_objects_health(pipeline: Pipeline) -> None:
    """deployment_objects holds every applied object with the health the watch saw."""
    d = await _deployed(pipeline)

    async def healths() -> dict[str, str | None] | None:
        conn = await asyncpg.connect(asyncpg_dsn(pipeline.store.url))
        try:
            rows = await conn.fetch(
                "SELECT kind, health, applied_at FROM deployment_objects WHERE deployment_id = $1",
                d.id,
            )
        finally:
            await conn.close()
        found = {r["kind"]: r["health"] for r in rows if r["applied_at"] is not None}
        return found if all(found.values()) and len(found) == 3 else None

    found = await wait_for_value(healths, timeout_s=10, interval_s=0.1, failure=lambda: "none")
    assert found == {"ConfigMap": "healthy", "Deployment": "healthy", "Service": "healthy"}
