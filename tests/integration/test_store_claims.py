"""Claiming work: leases, SKIP LOCKED, interrupted attempts, guarded finishes."""

from __future__ import annotations

import asyncio

import asyncpg

from reconciler.db import Store, asyncpg_dsn
from reconciler.model import AttemptResult


async def _deployments(store: Store, count: int) -> int:
    repo = await store.add_ops_repo(name="ops", repo_url="https://git.example.com/ops.git")
    for i in range(count):
        await store.upsert_deployment(
            project=f"app{i}", environment="prod", ops_repo_id=repo.id, image_ref="reg/app:1"
        )
    return repo.id


def _healthy(image: str = "reg/app:1") -> AttemptResult:
    return AttemptResult(
        action="deploy",
        status="healthy",
        image_ref=image,
        values_override={},
        sha="abc",
        digest="d1",
        message="",
        attempts=0,
        next_attempt_at=None,
    )


async def test_two_daemons_never_claim_the_same_row(store: Store) -> None:
    """Concurrent claims by two daemons split the work with no row claimed twice."""
    await _deployments(store, 20)
    first, second = await asyncio.gather(
        store.claim(daemon_id="a", limit=15, lease_s=30),
        store.claim(daemon_id="b", limit=15, lease_s=30),
    )
    ids_a = {d.id for d in first}
    ids_b = {d.id for d in second}
    assert not ids_a & ids_b
    assert len(ids_a | ids_b) == 20


async def test_leased_rows_are_not_claimed_until_the_lease_expires(store: Store) -> None:
    """A live lease keeps other daemons away; an expired one makes the row claimable."""
    await _deployments(store, 1)
    [mine] = await store.claim(daemon_id="a", limit=10, lease_s=30)
    assert await store.claim(daemon_id="b", limit=10, lease_s=30) == []
    conn = await asyncpg.connect(asyncpg_dsn(store.url))
    try:
        await conn.execute("UPDATE deployments SET lease_expires_at = now() - interval '1 s'")
    finally:
        await conn.close()
    [taken] = await store.claim(daemon_id="b", limit=10, lease_s=30)
    assert taken.id == mine.id and taken.claimed_by == "b"


async def test_converged_rows_are_not_claimed(store: Store) -> None:
    """A deployment whose generation is observed and healthy needs no work."""
    await _deployments(store, 1)
    [d] = await store.claim(daemon_id="a", limit=10, lease_s=30)
    started = await store.start_attempt(
        deployment_id=d.id,
        daemon_id="a",
        action="deploy",
        image_ref=d.image_ref,
        generation=d.generation,
    )
    assert started is not None
    assert await store.finish_attempt(
        deployment_id=d.id,
        daemon_id="a",
        started_at=started,
        generation=d.generation,
        result=_healthy(),
    )
    assert await store.claim(daemon_id="a", limit=10, lease_s=30) == []
    row = await store.get_deployment_by_id(d.id)
    assert row is not None
    assert (row.current_status, row.observed_generation, row.claimed_by) == ("healthy", 1, None)
    [entry] = await store.history(deployment_id=d.id)
    assert (entry.action, entry.status, entry.image_ref) == ("deploy", "healthy", "reg/app:1")


async def test_a_dead_daemons_attempt_is_closed_once_as_interrupted(store: Store) -> None:
    """Claiming a row left 'syncing' by an expired lease records one 'interrupted' history row."""
    await _deployments(store, 1)
    [d] = await store.claim(daemon_id="dead", limit=10, lease_s=30)
    started = await store.start_attempt(
        deployment_id=d.id,
        daemon_id="dead",
        action="deploy",
        image_ref=d.image_ref,
        generation=d.generation,
    )
    assert started is not None
    conn = await asyncpg.connect(asyncpg_dsn(store.url))
    try:
        await conn.execute("UPDATE deployments SET lease_expires_at = now() - interval '1 s'")
    finally:
        await conn.close()
    [again] = await store.claim(daemon_id="alive", limit=10, lease_s=30)
    assert again.current_status == "syncing" and again.attempt_started_at is None
    [entry] = await store.history(deployment_id=d.id)
    assert (entry.status, entry.action, entry.generation) == ("interrupted", "deploy", 1)
    # The dead daemon's late finish is refused: the attempt is closed already.
    assert not await store.finish_attempt(
        deployment_id=d.id, daemon_id="dead", started_at=started, generation=1, result=_healthy()
    )
    assert len(await store.history(deployment_id=d.id)) == 1


async def test_new_commit_claims_only_deployments_on_another_sha(store: Store) -> None:
    """changed_repos claims healthy deployments of that repo whose current_sha differs."""
    repo_id = await _deployments(store, 2)
    for d in await store.claim(daemon_id="a", limit=10, lease_s=30):
        started = await store.start_attempt(
            deployment_id=d.id,
            daemon_id="a",
            action="deploy",
            image_ref=d.image_ref,
            generation=d.generation,
        )
        assert started is not None
        await store.finish_attempt(
            deployment_id=d.id,
            daemon_id="a",
            started_at=started,
            generation=d.generation,
            result=_healthy(),
        )
    assert (
        await store.claim(daemon_id="a", limit=10, lease_s=30, changed_repos={repo_id: "abc"}) == []
    )
    claimed = await store.claim(daemon_id="a", limit=10, lease_s=30, changed_repos={repo_id: "def"})
    assert len(claimed) == 2


async def test_successful_rollback_restores_desired_state(store: Store) -> None:
    """A healthy rollback writes back image_ref and desired 'active' without a new generation
    left to observe."""
    await _deployments(store, 1)
    await store.set_desired(project="app0", environment="prod", desired_status="rollback")
    [d] = await store.claim(daemon_id="a", limit=10, lease_s=30)
    started = await store.start_attempt(
        deployment_id=d.id,
        daemon_id="a",
        action="rollback",
        image_ref="reg/app:0",
        generation=d.generation,
    )
    assert started is not None
    result = AttemptResult(
        action="rollback",
        status="healthy",
        image_ref="reg/app:0",
        values_override={"a": 1},
        sha="abc",
        digest="d0",
        message="",
        attempts=0,
        next_attempt_at=None,
        restore_desired=True,
    )
    assert await store.finish_attempt(
        deployment_id=d.id,
        daemon_id="a",
        started_at=started,
        generation=d.generation,
        result=result,
    )
    after = await store.get_deployment_by_id(d.id)
    assert after is not None
    assert (after.image_ref, after.desired_status, after.values_override) == (
        "reg/app:0",
        "active",
        {"a": 1},
    )
    assert after.generation == after.observed_generation
    assert await store.claim(daemon_id="a", limit=10, lease_s=30) == []


async def test_renew_leases_reports_generations_of_rows_still_owned(store: Store) -> None:
    """renew_leases extends only this daemon's leases and returns their generations."""
    await _deployments(store, 2)
    claimed = await store.claim(daemon_id="a", limit=1, lease_s=30)
    await store.set_desired(project=claimed[0].project, environment="prod", image_ref="reg/app:2")
    renewed = await store.renew_leases(
        daemon_id="a", ids=[d.id for d in claimed] + [999], lease_s=30
    )
    assert renewed == {claimed[0].id: 2}
    assert await store.renew_leases(daemon_id="b", ids=[claimed[0].id], lease_s=30) == {}
