"""Claiming work: leases, SKIP LOCKED, interrupted attempts, guarded finishes."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import types
from pathlib import Path

import asyncpg
import pytest

from reconciler.attempt import Options, run_attempt
from reconciler.db import Store, asyncpg_dsn
from reconciler.db.queries import sql
from reconciler.decide import RetryPolicy
from reconciler.errors import OpsRepoError, RenderError
from reconciler.model import AttemptResult, Checkout, Deployment
from reconciler.testing.memory import InMemoryCluster, InMemoryRenderer
from tests.support.store_steps import healthy_result, run_healthy, start


async def _deployments(store: Store, count: int) -> int:
    repo = await store.add_ops_repo(name="ops", repo_url="https://git.example.com/ops.git")
    for i in range(count):
        await store.upsert_deployment(
            project=f"app{i}", environment="prod", ops_repo_id=repo.id, image_ref="reg/app:1"
        )
    return repo.id


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
        values_override={},
        generation=d.generation,
    )
    assert started is not None
    assert await store.finish_attempt(
        deployment_id=d.id,
        daemon_id="a",
        started_at=started,
        generation=d.generation,
        result=healthy_result(),
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
        values_override={},
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
        deployment_id=d.id,
        daemon_id="dead",
        started_at=started,
        generation=1,
        result=healthy_result(),
    )
    assert len(await store.history(deployment_id=d.id)) == 1


async def test_new_commit_claims_only_deployments_on_another_sha(store: Store) -> None:
    """A repo synced at another commit claims its healthy deployments rendered at another sha."""
    repo_id = await _deployments(store, 2)
    for d in await store.claim(daemon_id="a", limit=10, lease_s=30):
        started = await store.start_attempt(
            deployment_id=d.id,
            daemon_id="a",
            action="deploy",
            image_ref=d.image_ref,
            values_override={},
            generation=d.generation,
        )
        assert started is not None
        await store.finish_attempt(
            deployment_id=d.id,
            daemon_id="a",
            started_at=started,
            generation=d.generation,
            result=healthy_result(),
        )
    await store.record_repo_sync(repo_id=repo_id, sha="abc", error=None)
    assert await store.claim(daemon_id="a", limit=10, lease_s=30) == []
    await store.record_repo_sync(repo_id=repo_id, sha="def", error=None)
    claimed = await store.claim(daemon_id="a", limit=10, lease_s=30)
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
        values_override={},
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
        retry_in_s=None,
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


async def _sql(store: Store, statement: str, *args: object) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(asyncpg_dsn(store.url))
    try:
        return list(await conn.fetch(statement, *args))
    finally:
        await conn.close()


async def _start(
    store: Store, d: Deployment, *, daemon: str = "a", **attempt: object
) -> dt.datetime:
    fields: dict[str, object] = {
        "action": "deploy",
        "image_ref": d.image_ref,
        "values_override": d.values_override,
    }
    started = await store.start_attempt(
        deployment_id=d.id,
        daemon_id=daemon,
        generation=d.generation,
        **(fields | attempt),  # type: ignore[arg-type]
    )
    assert started is not None
    return started


async def _attempt(store: Store, d: Deployment, *, fail: Exception) -> None:
    """Run one attempt of ``d`` with the real store, whose render raises ``fail``."""
    renderer = InMemoryRenderer()
    renderer.errors.append(fail)
    await run_attempt(
        d,
        store=store,
        cluster=InMemoryCluster(),
        checkout=Checkout(name="ops", path=Path("/memory/ops"), subdir="", sha="s1", error=None),
        options=Options(
            field_manager="reconciler",
            health_timeout_s=1.0,
            health_poll_s=0.01,
            retry=RetryPolicy(max_attempts=3, base_s=60.0, max_s=60.0),
            daemon_id="a",
            renderer=renderer,
        ),
        superseded=lambda: False,
    )


async def test_a_rollback_does_not_overwrite_a_newer_desired_state(store: Store) -> None:
    """A pipeline's image written while a rollback finishes wins; the rollback is recorded."""
    await _deployments(store, 1)
    await store.set_desired(project="app0", environment="prod", desired_status="rollback")
    [d] = await store.claim(daemon_id="a", limit=10, lease_s=30)
    started = await _start(store, d, action="rollback", image_ref="reg/app:0")
    newer = await store.upsert_deployment(
        project="app0", environment="prod", ops_repo_id=d.ops_repo_id, image_ref="reg/app:9"
    )
    result = dataclasses.replace(
        healthy_result("reg/app:0"),
        action="rollback",
        values_override={"a": 1},
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
        "reg/app:9",
        "active",
        {},
    )
    assert after.generation == newer.generation != after.observed_generation
    assert (after.current_status, after.current_image_ref) == ("healthy", "reg/app:0")
    [entry] = await store.history(deployment_id=d.id)
    assert (entry.action, entry.status, entry.image_ref) == ("rollback", "healthy", "reg/app:0")
    assert [c.id for c in await store.claim(daemon_id="a", limit=10, lease_s=30)] == [d.id]


async def test_the_retry_time_comes_from_the_database_clock(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A daemon whose clock is an hour behind still schedules its retry after the database's
    now(), not an hour early."""

    class HourBehind(dt.datetime):
        @classmethod
        def now(cls, tz: dt.tzinfo | None = None) -> HourBehind:
            return cls.fromtimestamp(dt.datetime.now(tz).timestamp() - 3600, tz)

    clock = types.SimpleNamespace(datetime=HourBehind, UTC=dt.UTC, timedelta=dt.timedelta)
    monkeypatch.setattr("reconciler.attempt.dt", clock)
    await _deployments(store, 1)
    [d] = await store.claim(daemon_id="a", limit=10, lease_s=30)
    await _attempt(store, d, fail=OpsRepoError("remote unreachable"))
    [row] = await _sql(store, "SELECT next_attempt_at - now() AS wait, attempts FROM deployments")
    assert row["attempts"] == 1
    assert dt.timedelta(seconds=25) <= row["wait"] <= dt.timedelta(seconds=60)


async def test_interrupted_history_has_the_values_of_the_attempt(store: Store) -> None:
    """An attempt closed as interrupted is recorded with the values it applied, not newer ones."""
    await _deployments(store, 1)
    await store.set_desired(project="app0", environment="prod", values_override={"v": 1})
    [d] = await store.claim(daemon_id="dead", limit=10, lease_s=30)
    await _start(store, d, daemon="dead")
    await store.set_desired(project="app0", environment="prod", values_override={"v": 2})
    await _sql(store, "UPDATE deployments SET lease_expires_at = now() - interval '1 s'")
    await store.claim(daemon_id="alive", limit=10, lease_s=30)
    [entry] = await store.history(deployment_id=d.id)
    assert (entry.status, entry.values_override) == ("interrupted", {"v": 1})


async def _converge(store: Store, d: Deployment, *, sha: str) -> None:
    await store.mark_converged(deployment_id=d.id, daemon_id="a", generation=d.generation, sha=sha)


async def test_a_commit_synced_elsewhere_is_claimed_by_a_new_daemon(database_url: str) -> None:
    """A sync recorded by one Store (the CLI) is claimed by a brand new daemon's first claim."""
    syncing = await Store.connect(database_url)
    try:
        repo_id = await _deployments(syncing, 1)
        await syncing.record_repo_sync(repo_id=repo_id, sha="s1", error=None)
        [d] = await syncing.claim(daemon_id="a", limit=10, lease_s=30)
        await syncing.finish_attempt(
            deployment_id=d.id,
            daemon_id="a",
            started_at=await _start(syncing, d),
            generation=d.generation,
            result=dataclasses.replace(healthy_result(), sha="s1"),
        )
        assert await syncing.claim(daemon_id="a", limit=10, lease_s=30) == []
        await syncing.record_repo_sync(repo_id=repo_id, sha="s2", error=None)
    finally:
        await syncing.close()
    fresh = await Store.connect(database_url)
    try:
        [claimed] = await fresh.claim(daemon_id="fresh-daemon", limit=10, lease_s=30)
        assert claimed.id == d.id and claimed.rendered_sha == "s1"
    finally:
        await fresh.close()


async def test_a_parked_permanent_failure_at_the_synced_commit_is_not_claimed_again(
    store: Store,
) -> None:
    """A template error parked at the repo's commit stays parked until another commit."""
    repo_id = await _deployments(store, 1)
    await store.record_repo_sync(repo_id=repo_id, sha="s1", error=None)
    [d] = await store.claim(daemon_id="a", limit=10, lease_s=30)
    await _attempt(store, d, fail=RenderError("unexpected '}'"))
    row = await store.get_deployment_by_id(d.id)
    assert row is not None
    assert (row.current_status, row.next_attempt_at, row.rendered_sha) == ("failed", None, "s1")
    assert await store.claim(daemon_id="a", limit=10, lease_s=30) == []
    await store.record_repo_sync(repo_id=repo_id, sha="s2", error=None)
    assert [c.id for c in await store.claim(daemon_id="a", limit=10, lease_s=30)] == [d.id]


async def test_a_failed_rollback_is_retried_at_a_new_commit(store: Store) -> None:
    """A rollback that failed at one commit is claimed again once the ops repo moves."""
    repo_id = await _deployments(store, 1)
    await store.record_repo_sync(repo_id=repo_id, sha="s1", error=None)
    await store.set_desired(project="app0", environment="prod", desired_status="rollback")
    [d] = await store.claim(daemon_id="a", limit=10, lease_s=30)
    await _attempt(store, d, fail=RenderError("broken"))
    assert await store.claim(daemon_id="a", limit=10, lease_s=30) == []
    await store.record_repo_sync(repo_id=repo_id, sha="s2", error=None)
    [again] = await store.claim(daemon_id="a", limit=10, lease_s=30)
    assert (again.id, again.desired_status) == (d.id, "rollback")


async def test_a_failure_that_applied_nothing_keeps_the_current_columns(store: Store) -> None:
    """A render failure leaves current_image_ref, current_values, current_sha and
    applied_digest describing what the cluster still runs."""
    await _deployments(store, 1)
    [d] = await store.claim(daemon_id="a", limit=10, lease_s=30)
    await store.finish_attempt(
        deployment_id=d.id,
        daemon_id="a",
        started_at=await _start(store, d),
        generation=d.generation,
        result=dataclasses.replace(healthy_result(), values_override={"v": 1}),
    )
    changed = await store.set_desired(project="app0", environment="prod", image_ref="reg/app:2")
    [d] = await store.claim(daemon_id="a", limit=10, lease_s=30)
    await _attempt(store, changed, fail=RenderError("unexpected '}'"))
    after = await store.get_deployment_by_id(d.id)
    assert after is not None
    assert after.current_status == "failed"
    assert (after.current_image_ref, after.current_values, after.current_sha) == (
        "reg/app:1",
        {"v": 1},
        "abc",
    )
    assert after.applied_digest == "d1"


async def test_claiming_a_converged_fleet_reads_rows_by_primary_key(store: Store) -> None:
    """With 10,000 deployments rendered at their repo's commit, the claim claims nothing and
    reads the claimed rows by primary key (the branches' ids gathered first)."""
    await _sql(store, "INSERT INTO ops_repos (name, repo_url, last_sha) VALUES ('ops', 'x', 's1')")
    await _sql(
        store,
        "INSERT INTO deployments (project, environment, ops_repo_id, image_ref) "
        "SELECT 'p' || i, 'prod', 1, 'reg/app:1' FROM generate_series(1, 10000) i",
    )
    await _sql(
        store,
        "UPDATE deployments SET observed_generation = generation, current_status = 'healthy', "
        "rendered_sha = 's1', current_sha = 's1'",
    )
    await _sql(store, "ANALYZE deployments")
    assert await store.claim(daemon_id="a", limit=10, lease_s=30) == []
    statement = sql("claim_closing_interrupted")
    for name, value in {
        ":daemon_id": "'a'",
        ":message": "'m'",
        ":limit": "10",
        ":lease_s": "30",
        "CAST(:in_flight AS bigint[])": "CAST('{}' AS bigint[])",
    }.items():
        statement = statement.replace(name, value)
    plan = "\n".join(r[0] for r in await _sql(store, "EXPLAIN " + statement))
    assert "Index Scan using deployments_pkey on deployments d_1" in plan, plan
    assert "Index Scan using deployments_needing_work" in plan, plan


async def test_a_claimed_row_names_the_daemon_whose_attempt_wrote_last(store: Store) -> None:
    """last_writer is unknown on a new row, the daemon of the newest history row after an
    attempt, and the dead daemon when the claim closes its attempt as interrupted."""
    await _deployments(store, 1)
    first = await run_healthy(store, daemon_id="a")
    assert first.last_writer is None
    await store.set_desired(project="app0", environment="prod", image_ref="reg/app:2")
    [second] = await store.claim(daemon_id="b", limit=10, lease_s=30)
    assert second.last_writer == "a"
    await start(store, second, daemon_id="b")
    await _sql(store, "UPDATE deployments SET lease_expires_at = now() - interval '1 s'")
    [third] = await store.claim(daemon_id="c", limit=10, lease_s=30)
    assert third.last_writer == "b"
