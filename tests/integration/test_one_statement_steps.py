"""The attempt's steps sent as one statement each, outside a transaction block: all or nothing,
committed before their answer arrives."""

from __future__ import annotations

import datetime as dt

import asyncpg
import pytest

from reconciler.db import Store
from reconciler.db.connection import asyncpg_dsn
from reconciler.db.queries import query
from reconciler.errors import DatabaseError
from reconciler.model import AttemptResult, Deployment, ObjectRef, RepoPolicy

CONFIGMAP = ObjectRef("v1", "ConfigMap", "settings", "team")
DEPLOYMENT = ObjectRef("apps/v1", "Deployment", "web", "team")


async def _started(store: Store, *, refs: list[ObjectRef]) -> tuple[Deployment, dt.datetime]:
    repo = await store.add_ops_repo(name="ops", repo_url="https://git.example.com/ops.git")
    await store.upsert_deployment(
        project="app", environment="prod", ops_repo_id=repo.id, image_ref="reg/app:1"
    )
    [d] = await store.claim(daemon_id="a", limit=10, lease_s=30)
    started = await store.start_claiming(
        deployment_id=d.id,
        daemon_id="a",
        action="deploy",
        image_ref=d.image_ref,
        values_override={},
        generation=d.generation,
        refs=refs,
    )
    assert started.started_at is not None
    return d, started.started_at


def _result(*, action: str = "deploy", applied: tuple[ObjectRef, ...] = ()) -> AttemptResult:
    return AttemptResult(
        action=action,
        status="healthy",
        image_ref="reg/app:1",
        values_override={},
        sha="s1",
        digest="d1",
        message="",
        attempts=0,
        retry_in_s=None,
        applied_objects=applied,
    )


async def _applied_at(store: Store, deployment_id: int) -> list[object]:
    conn = await asyncpg.connect(asyncpg_dsn(store.url))
    try:
        rows = await conn.fetch(
            "SELECT applied_at FROM deployment_objects WHERE deployment_id = $1 ORDER BY kind",
            deployment_id,
        )
    finally:
        await conn.close()
    return [r["applied_at"] for r in rows]


async def test_a_finish_records_the_row_its_history_and_its_applied_objects(store: Store) -> None:
    """One finish: the row released and healthy, one history row, the applied objects marked."""
    d, started_at = await _started(store, refs=[CONFIGMAP, DEPLOYMENT])
    assert await store.finish_attempt(
        deployment_id=d.id,
        daemon_id="a",
        started_at=started_at,
        generation=d.generation,
        result=_result(applied=(CONFIGMAP,)),
    )
    row = await store.get_deployment_by_id(d.id)
    assert row is not None
    assert (row.current_status, row.claimed_by, row.attempt_started_at) == ("healthy", None, None)
    assert (row.current_image_ref, row.applied_digest) == ("reg/app:1", "d1")
    [entry] = await store.history(deployment_id=d.id)
    assert (entry.status, entry.daemon, entry.started_at) == ("healthy", "a", started_at)
    configmap, deployment = await _applied_at(store, d.id)
    assert configmap is not None and deployment is None


async def test_a_finish_whose_history_row_is_refused_writes_nothing(store: Store) -> None:
    """A history row the schema refuses (an unknown action) leaves the row's attempt open and
    its objects unmarked: the statement is all or nothing."""
    d, started_at = await _started(store, refs=[CONFIGMAP])
    with pytest.raises(DatabaseError):
        await store.finish_attempt(
            deployment_id=d.id,
            daemon_id="a",
            started_at=started_at,
            generation=d.generation,
            result=_result(action="not-an-action", applied=(CONFIGMAP,)),
        )
    row = await store.get_deployment_by_id(d.id)
    assert row is not None
    assert (row.current_status, row.claimed_by, row.attempt_started_at) == (
        "syncing",
        "a",
        started_at,
    )
    assert await store.history(deployment_id=d.id) == []
    assert await _applied_at(store, d.id) == [None]


async def test_a_one_statement_write_is_committed_before_its_answer(store: Store) -> None:
    """Another connection sees the finish as soon as the statement answered, before the
    connection is given back: nothing waits for a later COMMIT."""
    d, _started_at = await _started(store, refs=[])
    params = {"ids": [d.id], "daemon_id": "a", "lease_s": 600}
    other = await asyncpg.connect(asyncpg_dsn(store.url))
    try:
        async with store._raw_once() as once:
            await once.execute(query("renew_leases"), params)
            lease = await other.fetchval(
                "SELECT lease_expires_at - now() > interval '300 s' FROM deployments WHERE id = $1",
                d.id,
            )
            assert lease is True
    finally:
        await other.close()


async def test_a_one_statement_connection_refuses_a_second_statement(store: Store) -> None:
    """Two statements outside a transaction block would commit apart: the second is refused."""
    async with store._raw_once() as once:
        await once.execute(query("ping"))
        with pytest.raises(RuntimeError):
            await once.execute(query("ping"))


async def test_policy_and_inventory_read_together(store: Store) -> None:
    """The repo's policy with no objects owned, then with objects: both from one statement."""
    repo = await store.add_ops_repo(name="ops", repo_url="https://git.example.com/ops.git")
    d = await store.upsert_deployment(
        project="app", environment="prod", ops_repo_id=repo.id, image_ref="reg/app:1"
    )
    policy = RepoPolicy(namespaces=("team",), cluster_kinds=(), denied_kinds=("Secret",))
    await store.set_policy(ops_repo_id=repo.id, policy=policy)
    assert await store.policy_and_inventory(ops_repo_id=repo.id, deployment_id=d.id) == (
        policy,
        [],
    )
    await store.claim_objects(deployment_id=d.id, refs=[DEPLOYMENT, CONFIGMAP])
    read = await store.policy_and_inventory(ops_repo_id=repo.id, deployment_id=d.id)
    assert read == (policy, [CONFIGMAP, DEPLOYMENT])
