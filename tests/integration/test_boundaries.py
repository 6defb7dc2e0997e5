"""Migration 0002's boundaries: what the trigger refuses, in the exact words a writer sees."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest

from reconciler.db import Store, asyncpg_dsn
from reconciler.errors import InputError
from reconciler.model import DEFAULT_DENIED_KINDS, RepoPolicy

INSERT = (
    "INSERT INTO deployments (project, environment, ops_repo_id, image_ref, namespace, "
    "values_override) VALUES ($1, $2, {repo}, 'reg/web:1', $3, CAST($4 AS jsonb))"
)


def _nested(depth: int) -> str:
    return '{"a": ' * depth + "1" + "}" * depth


@dataclass(frozen=True)
class Write:
    """One raw INSERT a writer runs, and the server's error, as psql would show it."""

    id: str
    project: str = "web"
    environment: str = "prod"
    repo: str = "(SELECT id FROM ops_repos WHERE name = 'platform')"
    namespace: str | None = None
    values: str = "{}"
    policy: tuple[str, ...] | None = None
    """namespaces of platform's policy, set first."""
    error: str = ""


WRITES = [
    Write(
        "ops_repo_typo",
        repo="(SELECT id FROM ops_repos WHERE name = 'platfrom')",
        error="ops_repo_id is NULL: no ops repo matched (registered ops repos: ops, platform)",
    ),
    Write(
        "ops_repo_id_unknown",
        repo="999",
        error="ops_repo_id names no ops repo\n"
        "DETAIL:  no ops repo has id 999 (registered ops repos: ops, platform)",
    ),
    Write(
        "default_namespaces_collide",
        project="a",
        environment="b-c",
        error="namespace 'a-b-c' is already used by deployment a-b/c; set namespace explicitly",
    ),
    Write(
        "namespace_of_another_deployment",
        namespace="a-b-c",
        error="namespace 'a-b-c' is not allowed for ops repo 'platform' "
        "(allowed: the default web-prod)",
    ),
    Write(
        "namespace_not_allowed",
        namespace="kube-system",
        error="namespace 'kube-system' is not allowed for ops repo 'platform' "
        "(allowed: the default web-prod)",
    ),
    Write(
        "namespace_not_in_policy",
        namespace="kube-system",
        policy=("team-*", "shared"),
        error="namespace 'kube-system' is not allowed for ops repo 'platform' "
        "(allowed: the default web-prod, and: team-*, shared)",
    ),
    Write(
        "namespace_of_another_ops_repo",
        repo="(SELECT id FROM ops_repos WHERE name = 'ops')",
        namespace="shared",
        policy=("shared",),
        error="namespace 'shared' is not allowed for ops repo 'ops' "
        "(allowed: the default web-prod)",
    ),
    Write(
        "values_nested_1500_deep",
        values=_nested(1500),
        error="values_override is nested 1500 levels deep; the limit is 32",
    ),
    Write(
        "values_nested_33_deep",
        values=_nested(33),
        error="values_override is nested 33 levels deep; the limit is 32",
    ),
    Write(
        "values_over_64_kib",
        values='{"blob": "' + "x" * 70000 + '"}',
        error="values_override is 70012 bytes as JSON text; the limit is 65536",
    ),
]


@pytest.fixture
async def writer(store: Store) -> AsyncIterator[asyncpg.Connection]:
    """A raw connection, as a pipeline's, over repos 'platform' and 'ops' and a-b/c."""
    platform = await store.add_ops_repo(name="platform", repo_url="https://git.example.com/p")
    await store.add_ops_repo(name="ops", repo_url="https://git.example.com/o")
    await store.upsert_deployment(
        project="a-b", environment="c", ops_repo_id=platform.id, image_ref="reg/ab:1"
    )
    conn = await asyncpg.connect(asyncpg_dsn(store.url))
    try:
        yield conn
    finally:
        await conn.close()


async def _policy(store: Store, namespaces: tuple[str, ...], repo: str = "platform") -> int:
    found = await store.get_ops_repo(repo)
    assert found is not None
    await store.set_policy(ops_repo_id=found.id, policy=RepoPolicy(namespaces=namespaces))
    return found.id


@pytest.mark.parametrize("case", WRITES, ids=[w.id for w in WRITES])
async def test_the_trigger_refuses_with_the_exact_message(
    store: Store, writer: asyncpg.Connection, case: Write
) -> None:
    """Each write outside the boundaries is refused with words naming what and why."""
    if case.policy is not None:
        await _policy(store, case.policy)
    with pytest.raises(asyncpg.PostgresError) as caught:
        await writer.execute(
            INSERT.format(repo=case.repo),
            case.project,
            case.environment,
            case.namespace,
            case.values,
        )
    assert str(caught.value) == case.error
    assert [d.project for d in await store.list_deployments()] == ["a-b"]


async def test_a_100k_deep_value_cannot_hurt_the_server(
    store: Store, writer: asyncpg.Connection
) -> None:
    """PostgreSQL's parser refuses a 100,000-deep value; the depth check itself needs no stack."""
    deep = "[" * 100_000 + "]" * 100_000
    with pytest.raises(asyncpg.PostgresError) as caught:
        await writer.execute(INSERT.format(repo="1"), "web", "prod", None, deep)
    assert caught.value.sqlstate == "54001"
    assert caught.value.message == "stack depth limit exceeded"
    assert await writer.fetchval("SELECT json_nesting_depth($1)", deep) == 100_000
    assert await writer.fetchval("SELECT json_nesting_depth($1)", '{"a": "[[{"}') == 1
    assert await writer.fetchval("SELECT 1") == 1


async def test_updates_are_held_to_the_same_bounds(
    store: Store, writer: asyncpg.Connection
) -> None:
    """An UPDATE of values_override is checked like an INSERT."""
    with pytest.raises(asyncpg.PostgresError) as caught:
        await writer.execute(
            "UPDATE deployments SET values_override = CAST($1 AS jsonb)", _nested(40)
        )
    assert str(caught.value) == "values_override is nested 40 levels deep; the limit is 32"


def _deep(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


@pytest.mark.parametrize("depth", [33, 1500, 100_000])
async def test_the_store_refuses_deep_values_in_the_same_words(
    store: Store, writer: asyncpg.Connection, depth: int
) -> None:
    """Through the Store, too deep is refused alike, also when Python could not encode it."""
    repo = await store.get_ops_repo("platform")
    assert repo is not None
    with pytest.raises(InputError) as caught:
        await store.upsert_deployment(
            project="web",
            environment="prod",
            ops_repo_id=repo.id,
            image_ref="reg/web:1",
            values_override=_deep(depth),
        )
    assert str(caught.value) == (
        f"deployment web/prod: values_override is nested {depth} levels deep; the limit is 32 "
        "(deployments_values_override_bounded)"
    )


async def test_the_store_names_the_deployment_already_in_a_namespace(
    store: Store, writer: asyncpg.Connection
) -> None:
    """The Store's words for a collision name both deployments and the rule."""
    repo = await store.get_ops_repo("platform")
    assert repo is not None
    with pytest.raises(InputError) as caught:
        await store.upsert_deployment(
            project="a", environment="b-c", ops_repo_id=repo.id, image_ref="reg/a:1"
        )
    assert str(caught.value) == (
        "deployment a/b-c: namespace 'a-b-c' is already used by deployment a-b/c; "
        "set namespace explicitly (deployments_namespace_not_taken)"
    )


async def test_namespaces_a_policy_lists_may_be_shared(
    store: Store, writer: asyncpg.Connection
) -> None:
    """Namespaces listed in the policy (exactly or by prefix) take several deployments."""
    repo_id = await _policy(store, ("shared", "team-*"))
    for project, namespace in [("one", "shared"), ("two", "shared"), ("three", "team-x")]:
        made = await store.upsert_deployment(
            project=project,
            environment="prod",
            ops_repo_id=repo_id,
            image_ref="reg/x:1",
            namespace=namespace,
        )
        assert made.namespace == namespace
    ops_id = await _policy(store, ("shared",), repo="ops")
    other = await store.upsert_deployment(
        project="four",
        environment="prod",
        ops_repo_id=ops_id,
        image_ref="reg/x:1",
        namespace="shared",
    )
    assert other.namespace == "shared"


async def test_a_policy_cannot_hand_out_another_deployments_default(
    store: Store, writer: asyncpg.Connection
) -> None:
    """A namespace one repo lists stays refused where another repo's deployment holds it."""
    await _policy(store, ("a-b-c",), repo="ops")
    with pytest.raises(asyncpg.PostgresError) as caught:
        await writer.execute(
            INSERT.format(repo="(SELECT id FROM ops_repos WHERE name = 'ops')"),
            "x",
            "y",
            "a-b-c",
            "{}",
        )
    assert str(caught.value) == (
        "namespace 'a-b-c' is already used by deployment a-b/c; set namespace explicitly"
    )


async def test_rewriting_a_failed_rollback_bumps_the_generation(
    store: Store, writer: asyncpg.Connection
) -> None:
    """desired_status = 'rollback' written again on a failed rollback is a new generation;
    the daemon's own updates of that row are not."""
    await writer.execute("UPDATE deployments SET desired_status = 'rollback' WHERE project = 'a-b'")
    await writer.execute(
        "UPDATE deployments SET current_status = 'failed', observed_generation = generation"
    )
    before = await writer.fetchval("SELECT generation FROM deployments")
    await writer.execute("UPDATE deployments SET claimed_by = 'daemon-a'")
    await writer.execute("UPDATE deployments SET claimed_by = NULL")
    assert await writer.fetchval("SELECT generation FROM deployments") == before
    again = (
        "UPDATE deployments SET desired_status = 'rollback' WHERE project = 'a-b' "
        "RETURNING generation"
    )
    assert await writer.fetchval(again) == before + 1
    await writer.execute("UPDATE deployments SET current_status = 'healthy'")
    assert await writer.fetchval(again) == before + 1


async def test_policy_defaults_match_the_model(store: Store, writer: asyncpg.Connection) -> None:
    """No row, a row of column defaults and RepoPolicy() are the same policy."""
    repo = await store.get_ops_repo("platform")
    assert repo is not None
    assert await store.policy_for(repo.id) == RepoPolicy()
    await writer.execute("INSERT INTO ops_repo_policies (ops_repo_id) VALUES ($1)", repo.id)
    assert await store.policy_for(repo.id) == RepoPolicy()
    assert RepoPolicy().denied_kinds == DEFAULT_DENIED_KINDS


async def test_set_policy_round_trips_and_is_vetted(
    store: Store, writer: asyncpg.Connection
) -> None:
    """set_policy stores a policy and replaces it; bad namespaces and unknown repos are refused."""
    repo = await store.get_ops_repo("platform")
    assert repo is not None
    wanted = RepoPolicy(namespaces=("team-*",), cluster_kinds=("StorageClass",), denied_kinds=())
    assert await store.set_policy(ops_repo_id=repo.id, policy=wanted) == wanted
    assert await store.policy_for(repo.id) == wanted
    replaced = RepoPolicy(namespaces=("shared",))
    await store.set_policy(ops_repo_id=repo.id, policy=replaced)
    assert await store.policy_for(repo.id) == replaced
    cases = [
        (
            repo.id,
            ("Bad_NS",),
            f"policy of ops repo {repo.id}: each namespace must be a "
            "DNS-1123 label, or a prefix of one ending in '*' "
            "(ops_repo_policies_namespaces_are_patterns)",
        ),
        (
            999,
            (),
            "policy of ops repo 999: ops_repo_id names no ops repo "
            "(ops_repo_policies_ops_repo_id_fkey)",
        ),
    ]
    for repo_id, namespaces, message in cases:
        with pytest.raises(InputError) as caught:
            await store.set_policy(ops_repo_id=repo_id, policy=RepoPolicy(namespaces=namespaces))
        assert str(caught.value) == message
