"""The attempt's live-state verbs on the in-memory fakes: prune, the prune-everything guard,
delete, heal (on and off), rollback to a chosen row at its commit, waiting without a slot."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path
from typing import Any

from reconciler.attempt import Hooks
from reconciler.model import Checkout, Deployment, ObjectRef
from reconciler.ports import RenderRequest
from reconciler.testing.memory import web_app
from tests.support.attempts import CONFIG, DEPLOYMENT, World, attempt


def only_the_deployment(request: RenderRequest) -> tuple[dict[str, Any], ...]:
    return web_app(request)[1:]


def nothing(request: RenderRequest) -> tuple[dict[str, Any], ...]:
    return ()


def new_generation(world: World, **changes: Any) -> Deployment:
    row = world.current
    return world.store._put(row, generation=row.generation + 1, **changes)


async def deployed(world: World) -> None:
    assert (await attempt(world)).status == "healthy"


def labelled(world: World, ref: ObjectRef) -> dict[str, Any]:
    live = world.cluster.objects[ref]
    assert live["metadata"]["labels"]["reconciler.io/project"] == "web"
    return live


async def test_an_object_no_longer_rendered_is_pruned_after_healthy() -> None:
    """A render without the ConfigMap deletes it once the rollout is healthy, names it in the
    history row and drops it from the inventory."""
    world = World()
    await deployed(world)
    world.renderer.manifests = only_the_deployment
    new_generation(world)
    assert (await attempt(world)).status == "healthy"
    assert CONFIG not in world.cluster.objects
    assert world.cluster.deleted == [CONFIG]
    assert (
        "pruned ConfigMap web-prod/web-values" in world.store.history_of(world.row.id)[-1].message
    )
    assert await world.store.inventory_of(world.row.id) == [DEPLOYMENT]


async def test_a_failed_rollout_prunes_nothing() -> None:
    """Pruning waits for a healthy rollout: a degraded one deletes nothing."""
    world = World()
    await deployed(world)
    world.cluster.rollout = "deadline"
    world.renderer.manifests = only_the_deployment
    new_generation(world)
    assert (await attempt(world)).status == "failed"
    assert world.cluster.deleted == []


async def test_an_object_not_labelled_as_ours_is_let_go_not_deleted() -> None:
    """An inventory object whose owner labels were removed is left on the cluster."""
    world = World()
    await deployed(world)
    labelled(world, CONFIG)["metadata"]["labels"] = {}
    world.renderer.manifests = only_the_deployment
    new_generation(world)
    await attempt(world)
    assert CONFIG in world.cluster.objects
    assert "no longer labelled as ours" in world.store.history_of(world.row.id)[-1].message


async def test_an_empty_render_is_refused_unless_allowed() -> None:
    """A render that would prune everything fails permanently with nothing deleted; with
    prune_all_allowed it prunes everything."""
    world = World()
    await deployed(world)
    world.renderer.manifests = nothing
    new_generation(world)
    outcome = await attempt(world)
    assert outcome.status == "failed" and "would prune every object" in outcome.message
    assert world.cluster.deleted == []
    new_generation(world, prune_all_allowed=True)
    assert (await attempt(world)).status == "healthy"
    assert set(world.cluster.deleted) == {CONFIG, DEPLOYMENT}


async def test_delete_removes_the_inventory_without_rendering() -> None:
    """desired 'deleted' deletes every owned object in reverse apply order, renders nothing,
    and records 'deleted'."""
    world = World()
    await deployed(world)
    renders = len(world.renderer.requests)
    world.store.set_desired(world.row.id, desired_status="deleted")
    outcome = await attempt(world)
    assert outcome.status == "deleted"
    assert world.cluster.deleted == [DEPLOYMENT, CONFIG]
    assert len(world.renderer.requests) == renders
    assert world.current.current_status == "deleted"
    assert await world.store.inventory_of(world.row.id) == []


async def test_a_heal_reapplies_what_drifted_and_says_what() -> None:
    """A heal request with a drifted field re-applies and records a 'heal' row naming it."""
    world = World()
    await deployed(world)
    world.cluster.objects[DEPLOYMENT]["spec"]["replicas"] = 5
    world.store._put(world.current, heal_requested_at=dt.datetime.now(dt.UTC))
    outcome = await attempt(world)
    assert outcome.status == "healthy"
    entry = world.store.history_of(world.row.id)[-1]
    assert (entry.action, entry.status) == ("heal", "healthy")
    assert "spec.replicas" in entry.message
    assert world.cluster.objects[DEPLOYMENT]["spec"]["replicas"] == 1
    assert world.current.heal_requested_at is None


async def test_a_heal_that_finds_nothing_writes_no_history() -> None:
    """A heal request with nothing drifted applies nothing and clears the request."""
    world = World()
    await deployed(world)
    applied = len(world.cluster.applied)
    world.store._put(world.current, heal_requested_at=dt.datetime.now(dt.UTC))
    assert (await attempt(world)).status == "converged"
    assert len(world.cluster.applied) == applied
    assert len(world.store.history_of(world.row.id)) == 1
    assert world.current.heal_requested_at is None


async def test_with_healing_off_drift_is_recorded_not_reapplied() -> None:
    """With self-heal off the deployment becomes 'drifted' with the detail; nothing applied."""
    world = World()
    await deployed(world)
    del world.cluster.objects[CONFIG]
    applied = len(world.cluster.applied)
    world.store._put(world.current, heal_requested_at=dt.datetime.now(dt.UTC))
    assert (await attempt(world, self_heal=False)).status == "drifted"
    assert len(world.cluster.applied) == applied
    assert world.current.current_status == "drifted"
    assert "ConfigMap web-prod/web-values was deleted" in world.current.status_message
    assert world.current.current_image_ref == "web:1"


async def test_rollback_to_a_chosen_row_renders_its_commit() -> None:
    """rollback_to renders the chosen row's image and values at that row's commit, counts the
    deployment as rendered at the tip, and names the row in its history row."""
    world = World()
    await deployed(world)
    first = world.store.history_of(world.row.id)[-1]
    for image in ("web:2", "web:3"):
        world.store.set_desired(world.row.id, image_ref=image)
        world.checkout = dataclasses.replace(world.checkout, sha=image.replace(":", "") * 4)
        await attempt(world)
    asked: list[str] = []

    async def checkout_at(sha: str) -> Checkout:
        asked.append(sha)
        return Checkout(name="ops", path=Path("/memory/old"), subdir="", sha=sha, error=None)

    world.store.set_desired(world.row.id, desired_status="rollback", rollback_to=first.id)
    outcome = await attempt(world, hooks=Hooks(checkout_at=checkout_at))
    assert outcome.status == "healthy"
    assert asked == ["c0ffee"]
    assert world.renderer.requests[-1].checkout == Path("/memory/old")
    entry = world.store.history_of(world.row.id)[-1]
    assert (entry.action, entry.rolled_back_to, entry.sha) == ("rollback", first.id, "c0ffee")
    assert world.current.image_ref == "web:1" and world.current.rollback_to is None
    assert world.current.rendered_sha == world.checkout.sha


async def test_rollback_to_a_failed_row_is_refused() -> None:
    """rollback_to naming a row that was not healthy fails, naming the row."""
    world = World()
    world.cluster.rollout = "deadline"
    await attempt(world)
    failed = world.store.history_of(world.row.id)[-1]
    world.cluster.rollout = "healthy"
    world.store.set_desired(world.row.id, desired_status="rollback", rollback_to=failed.id)
    outcome = await attempt(world)
    assert outcome.status == "failed"
    assert f"rollback_to = {failed.id} is not a healthy deploy of web/prod" in outcome.message


async def test_the_slot_is_handed_back_once_applied() -> None:
    """The applied hook is called after the apply, before the health wait ends."""
    world = World()
    calls: list[int] = []
    outcome = await attempt(
        world, hooks=Hooks(applied=lambda: calls.append(len(world.cluster.applied)))
    )
    assert outcome.status == "healthy"
    assert calls == [len(world.cluster.applied)] and calls[0] > 0
