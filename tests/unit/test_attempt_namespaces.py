"""Attempts lent the daemon's namespace memory: the implicit Namespace is applied once, and
again only when the cluster says it is gone."""

from __future__ import annotations

from reconciler.attempt import Hooks
from reconciler.cluster.namespaces import KnownNamespaces
from reconciler.model import ObjectRef
from tests.support.attempts import CONFIG, DEPLOYMENT, World, attempt

NAMESPACE = ObjectRef("v1", "Namespace", "web-prod", None)


def _world() -> tuple[World, Hooks]:
    world = World()
    world.cluster.namespaces_enforced = True
    return world, Hooks(namespaces=KnownNamespaces())


async def test_the_second_attempt_sends_no_namespace_apply() -> None:
    """A new image's attempt applies its objects but not the Namespace the first one made."""
    world, hooks = _world()
    assert (await attempt(world, hooks=hooks)).status == "healthy"
    world.store.set_desired(world.row.id, image_ref="web:2")
    assert (await attempt(world, hooks=hooks)).status == "healthy"
    assert world.cluster.applied.count(NAMESPACE) == 1
    assert world.cluster.applied.count(DEPLOYMENT) == 2
    image = world.cluster.objects[DEPLOYMENT]["spec"]["template"]["spec"]["containers"][0]
    assert image["image"] == "web:2"


async def test_a_deleted_namespace_is_recreated_by_the_next_attempt() -> None:
    """After the namespace is deleted with its objects, the next attempt creates it again,
    ends healthy and writes one history row."""
    world, hooks = _world()
    for image in ("web:1", "web:2"):
        world.store.set_desired(world.row.id, image_ref=image)
        assert (await attempt(world, hooks=hooks)).status == "healthy"
    assert await world.cluster.delete(NAMESPACE)
    world.store.set_desired(world.row.id, image_ref="web:3")
    assert (await attempt(world, hooks=hooks)).status == "healthy"
    assert world.cluster.applied.count(NAMESPACE) == 2
    assert {NAMESPACE, CONFIG, DEPLOYMENT} <= set(world.cluster.objects)
    history = world.store.history_of(world.row.id)
    assert [(h.image_ref, h.status) for h in history] == [
        ("web:1", "healthy"),
        ("web:2", "healthy"),
        ("web:3", "healthy"),
    ]


async def test_delete_leaves_the_namespace_and_a_later_deploy_skips_it() -> None:
    """Deleting a deployment removes what it owns, not its implicit Namespace (as before);
    deploying it again needs no Namespace apply."""
    world, hooks = _world()
    assert (await attempt(world, hooks=hooks)).status == "healthy"
    world.store.set_desired(world.row.id, desired_status="deleted")
    assert (await attempt(world, hooks=hooks)).status == "deleted"
    assert set(world.cluster.objects) == {NAMESPACE}
    world.store.set_desired(world.row.id, desired_status="active")
    assert (await attempt(world, hooks=hooks)).status == "healthy"
    assert world.cluster.applied.count(NAMESPACE) == 1
    assert {CONFIG, DEPLOYMENT} <= set(world.cluster.objects)
