"""The roles of migration 0002: each may do what its job needs and nothing else."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from urllib.parse import urlsplit

import asyncpg
import pytest

from reconciler.db import Store, asyncpg_dsn
from reconciler.errors import InputError
from reconciler.model import AttemptResult, ObjectRef, RepoPolicy

_LOGINS = itertools.count(1)

README_UPSERT = """
INSERT INTO deployments (project, environment, ops_repo_id, image_ref, values_override)
VALUES ('web', 'prod', (SELECT id FROM ops_repos WHERE name = 'platform'),
        'registry.internal/web:sha-3f9c2e1', '{"replicas": 4}')
ON CONFLICT (project, environment) DO UPDATE
SET image_ref = EXCLUDED.image_ref, values_override = EXCLUDED.values_override
"""

PIPELINE_MAY = [
    README_UPSERT,
    README_UPSERT.replace("sha-3f9c2e1", "sha-4a0d3f2"),
    "UPDATE deployments SET desired_status = 'rollback' "
    "WHERE project = 'web' AND environment = 'prod'",
    "UPDATE deployments SET desired_status = 'stopped' "
    "WHERE project = 'web' AND environment = 'prod'",
    "UPDATE deployments SET desired_status = 'active' "
    "WHERE project = 'web' AND environment = 'prod'",
    "TABLE deployment_status",
    "SELECT id, name FROM ops_repos",
]

DEPLOYMENTS_DENIED = "permission denied for table deployments"
PIPELINE_MAY_NOT = [
    ("UPDATE deployments SET current_status = 'healthy'", DEPLOYMENTS_DENIED),
    ("UPDATE deployments SET observed_generation = 99", DEPLOYMENTS_DENIED),
    (
        "UPDATE deployments SET claimed_by = 'ghost', lease_expires_at = 'infinity'",
        DEPLOYMENTS_DENIED,
    ),
    ("UPDATE deployments SET attempts = 0, next_attempt_at = now()", DEPLOYMENTS_DENIED),
    ("UPDATE deployments SET applied_digest = 'x'", DEPLOYMENTS_DENIED),
    ("UPDATE deployments SET project = 'other'", DEPLOYMENTS_DENIED),
    ("SELECT current_values FROM deployments", DEPLOYMENTS_DENIED),
    ("DELETE FROM deployments", DEPLOYMENTS_DENIED),
    ("SELECT repo_url FROM ops_repos", "permission denied for table ops_repos"),
    ("UPDATE ops_repos SET repo_url = 'https://evil'", "permission denied for table ops_repos"),
    (
        "INSERT INTO deployment_history (deployment_id, generation, action, status, image_ref, "
        "started_at) VALUES (1, 1, 'deploy', 'healthy', 'x', now())",
        "permission denied for table deployment_history",
    ),
    ("DELETE FROM deployment_history", "permission denied for table deployment_history"),
    (
        "UPDATE ops_repo_policies SET namespaces = '{*}'",
        "permission denied for table ops_repo_policies",
    ),
]

READER_MAY = [
    "TABLE deployment_status",
    "SELECT * FROM deployments",
    "SELECT * FROM deployment_history",
    "SELECT * FROM ops_repo_policies",
    "SELECT name, branch, path, last_synced_at, last_sha, last_error FROM ops_repos",
]
READER_MAY_NOT = [
    ("SELECT repo_url FROM ops_repos", "permission denied for table ops_repos"),
    ("SELECT * FROM ops_repos", "permission denied for table ops_repos"),
    ("UPDATE deployments SET image_ref = 'x'", DEPLOYMENTS_DENIED),
    ("DELETE FROM deployment_history", "permission denied for table deployment_history"),
]


Login = Callable[[str], Awaitable[str]]


@pytest.fixture
async def login(store: Store) -> AsyncIterator[Login]:
    """``await login(role)``: the URL of a new LOGIN role granted ``role``, dropped afterwards
    (roles are the server's, so the name carries this test's database)."""
    database = urlsplit(store.url).path.lstrip("/")
    admin = await asyncpg.connect(asyncpg_dsn(store.url))
    made: list[str] = []

    async def make(role: str) -> str:
        user = f"{role}_{database}_{next(_LOGINS)}"
        await admin.execute(f"CREATE ROLE {user} LOGIN IN ROLE {role}")
        made.append(user)
        return store.url.replace("://postgres@", f"://{user}@", 1)

    try:
        yield make
    finally:
        for user in made:
            await admin.execute(f"DROP ROLE IF EXISTS {user}")
        await admin.close()


async def test_migrating_again_keeps_the_roles(empty_database_url: str) -> None:
    """The roles exist server-wide already; migrating another database reuses them."""
    store = await Store.connect(empty_database_url)
    try:
        await store.migrate()
        conn = await asyncpg.connect(asyncpg_dsn(empty_database_url))
        try:
            roles = await conn.fetch(
                "SELECT rolname, rolcanlogin FROM pg_roles WHERE rolname LIKE 'reconciler_%' "
                "ORDER BY rolname"
            )
        finally:
            await conn.close()
        assert [(r["rolname"], r["rolcanlogin"]) for r in roles] == [
            ("reconciler_daemon", False),
            ("reconciler_pipeline", False),
            ("reconciler_reader", False),
        ]
    finally:
        await store.close()


async def test_the_pipeline_role_writes_desired_state_only(store: Store, login: Login) -> None:
    """README's upsert and verbs pass as reconciler_pipeline; the daemon's columns, history,
    repo URLs and policies are refused."""
    await store.add_ops_repo(name="platform", repo_url="https://deploy:t0ken@git.example.com/p")
    conn = await asyncpg.connect(asyncpg_dsn(await login("reconciler_pipeline")))
    try:
        for sql in PIPELINE_MAY:
            await conn.execute(sql)
        for sql, message in PIPELINE_MAY_NOT:
            with pytest.raises(asyncpg.InsufficientPrivilegeError) as caught:
                await conn.execute(sql)
            assert (sql, str(caught.value)) == (sql, message)
    finally:
        await conn.close()
    web = await store.get_deployment(project="web", environment="prod")
    assert web is not None
    assert (web.image_ref, web.desired_status, web.generation) == (
        "registry.internal/web:sha-4a0d3f2",
        "active",
        5,
    )
    assert (web.current_status, web.claimed_by, web.observed_generation) == ("pending", None, 0)


async def test_the_reader_role_reads_all_but_repo_urls(store: Store, login: Login) -> None:
    """reconciler_reader reads the views, deployments, history and policies, not repo_url."""
    conn = await asyncpg.connect(asyncpg_dsn(await login("reconciler_reader")))
    try:
        for sql in READER_MAY:
            await conn.execute(sql)
        for sql, message in READER_MAY_NOT:
            with pytest.raises(asyncpg.InsufficientPrivilegeError) as caught:
                await conn.execute(sql)
            assert (sql, str(caught.value)) == (sql, message)
    finally:
        await conn.close()


async def test_the_daemon_role_runs_the_whole_cycle(store: Store, login: Login) -> None:
    """As reconciler_daemon: register a repo, sync it, upsert, claim, attempt, finish, read,
    prune; setting a policy is refused (the administrator's)."""
    daemon = await Store.connect(await login("reconciler_daemon"))
    try:
        repo = await daemon.add_ops_repo(name="ops", repo_url="https://git.example.com/ops.git")
        await daemon.record_repo_sync(repo_id=repo.id, sha="abc", error=None)
        assert await daemon.policy_for(repo.id) == RepoPolicy()
        made = await daemon.upsert_deployment(
            project="web", environment="prod", ops_repo_id=repo.id, image_ref="reg/web:1"
        )
        [claimed] = await daemon.claim(daemon_id="d", limit=5, lease_s=30)
        started = await daemon.start_attempt(
            deployment_id=made.id,
            daemon_id="d",
            action="deploy",
            image_ref="reg/web:1",
            values_override={},
            generation=claimed.generation,
        )
        assert started is not None
        result = AttemptResult(
            action="deploy",
            status="healthy",
            image_ref="reg/web:1",
            values_override={},
            sha="abc",
            digest="d1",
            message="",
            attempts=0,
            retry_in_s=None,
        )
        assert await daemon.finish_attempt(
            deployment_id=made.id,
            daemon_id="d",
            started_at=started,
            generation=claimed.generation,
            result=result,
        )
        assert [h.status for h in await daemon.history(deployment_id=made.id)] == ["healthy"]
        ref = ObjectRef("v1", "ConfigMap", "settings", "web-prod")
        assert await daemon.claim_objects(deployment_id=made.id, refs=[ref]) == []
        assert [r["current"] for r in await daemon.status_rows()] == ["healthy"]
        assert await daemon.prune_history(keep_days=0) == 0
        with pytest.raises(InputError) as caught:
            await daemon.set_policy(ops_repo_id=repo.id, policy=RepoPolicy())
        assert str(caught.value).endswith("permission denied for table ops_repo_policies")
    finally:
        await daemon.close()
