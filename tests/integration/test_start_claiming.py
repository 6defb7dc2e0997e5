"""Starting an attempt and claiming its objects is one transaction: all or nothing."""

from __future__ import annotations

from reconciler.db import Store
from reconciler.model import Deployment, ObjectRef, RepoPolicy, StartedAttempt

CONFIGMAP = ObjectRef("v1", "ConfigMap", "shared", "team")
SERVICE = ObjectRef("v1", "Service", "web", "team")


async def _claimed(store: Store, count: int, *, daemon_id: str = "a") -> list[Deployment]:
    repo = await store.add_ops_repo(name="ops", repo_url="https://git.example.com/ops.git")
    for i in range(count):
        await store.upsert_deployment(
            project=f"app{i}", environment="prod", ops_repo_id=repo.id, image_ref="reg/app:1"
        )
    return sorted(await store.claim(daemon_id=daemon_id, limit=10, lease_s=30), key=lambda d: d.id)


async def _start(
    store: Store, d: Deployment, refs: list[ObjectRef], daemon_id: str = "a"
) -> StartedAttempt:
    return await store.start_claiming(
        deployment_id=d.id,
        daemon_id=daemon_id,
        action="deploy",
        image_ref=d.image_ref,
        values_override={},
        generation=d.generation,
        refs=refs,
    )


async def test_a_started_attempt_owns_its_objects(store: Store) -> None:
    """The attempt starts and its objects are the deployment's, read back with its policy."""
    [d] = await _claimed(store, 1)
    started = await _start(store, d, [CONFIGMAP, SERVICE])
    assert started.started_at is not None and started.taken == ()
    row = await store.get_deployment_by_id(d.id)
    assert row is not None and row.current_status == "syncing"
    policy, inventory = await store.policy_and_inventory(
        ops_repo_id=d.ops_repo_id, deployment_id=d.id
    )
    assert policy == RepoPolicy()
    assert set(inventory) == {CONFIGMAP, SERVICE}


async def test_objects_of_another_deployment_start_nothing(store: Store) -> None:
    """When another deployment owns an object, nothing is claimed and no attempt starts."""
    first, second = await _claimed(store, 2)
    assert (await _start(store, first, [CONFIGMAP])).started_at is not None
    refused = await _start(store, second, [SERVICE, CONFIGMAP])
    assert refused.started_at is None
    assert refused.taken == ((CONFIGMAP, "app0/prod"),)
    assert await store.inventory_of(second.id) == []
    row = await store.get_deployment_by_id(second.id)
    assert row is not None and row.attempt_started_at is None


async def test_a_lost_claim_claims_no_objects(store: Store) -> None:
    """A daemon whose claim was taken over starts nothing and claims nothing."""
    [d] = await _claimed(store, 1, daemon_id="a")
    lost = await _start(store, d, [CONFIGMAP], daemon_id="b")
    assert (lost.started_at, lost.taken) == (None, ())
    assert await store.inventory_of(d.id) == []
