"""API tokens: `reconciler token create|list|revoke` on the daemon's role, stored only as
hashes; and the daemon's role holds every grant the API needs (migration 0009)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest

from reconciler.access import AuditClaim, token_hash
from reconciler.db import Store, asyncpg_dsn
from tests.support.logins import logins
from tests.support.processes import run_cli


@pytest.fixture
async def daemon_url(store: Store) -> AsyncIterator[str]:
    """The URL of a LOGIN role granted reconciler_daemon (as the CLI and the daemon run)."""
    async with logins(store.url) as make:
        yield await make("reconciler_daemon")


async def _cli(*args: str, url: str) -> tuple[int, str, str]:
    done = await asyncio.to_thread(run_cli, *args, database_url=url)
    return done.returncode, done.stdout, done.stderr


async def test_a_token_is_shown_once_and_stored_as_its_hash(store: Store, daemon_url: str) -> None:
    """create prints the token alone on stdout; the table holds its SHA-256 and never the
    token; list shows name, scope and project, never hash or token; it authenticates."""
    code, out, err = await _cli(
        "token", "create", "ci-web", "--scope", "deploy:promote", "--project", "web", url=daemon_url
    )
    assert code == 0, err
    secret = out.strip()
    assert secret.startswith("rcn_") and "\n" not in secret
    assert "shown once" in err
    conn = await asyncpg.connect(asyncpg_dsn(store.url))
    try:
        rows = await conn.fetch("SELECT * FROM api_tokens")
    finally:
        await conn.close()
    assert [r["token_hash"] for r in rows] == [token_hash(secret)]
    assert all(secret not in str(value) for value in rows[0].values())
    code, out, err = await _cli("token", "list", url=daemon_url)
    assert code == 0, err
    assert "ci-web" in out and "deploy:promote" in out and "web" in out
    assert secret not in out and token_hash(secret) not in out
    found = await store.authenticate(secret)
    assert found is not None and (found.name, found.project) == ("ci-web", "web")
    assert found.last_used_at is None  # as it was before this use; now recorded
    again = await store.authenticate(secret)
    assert again is not None and again.last_used_at is not None


async def test_a_revoked_token_no_longer_authenticates(store: Store, daemon_url: str) -> None:
    """revoke refuses the token from then on; revoking twice or an unknown name says so."""
    code, out, _ = await _cli("token", "create", "old", "--scope", "admin", url=daemon_url)
    secret = out.strip()
    assert code == 0 and await store.authenticate(secret) is not None
    code, out, err = await _cli("token", "revoke", "old", url=daemon_url)
    assert (code, out.strip()) == (0, "token old: revoked"), err
    assert await store.authenticate(secret) is None
    code, _, err = await _cli("token", "revoke", "old", url=daemon_url)
    assert code == 1 and "token 'old' is revoked already" in err
    code, _, err = await _cli("token", "revoke", "nope", url=daemon_url)
    assert code == 1 and "no token named 'nope'" in err
    code, _, err = await _cli("token", "create", "old", "--scope", "admin", url=daemon_url)
    assert code == 1 and "a token with this name exists already" in err


async def test_bad_token_arguments_are_refused_before_anything_is_written(
    store: Store, daemon_url: str
) -> None:
    """An unknown scope, a project that is no DNS label and a name that is no slug are
    refused naming what is valid; no token is written."""
    code, _, err = await _cli("token", "create", "x", "--scope", "root", url=daemon_url)
    assert code == 2 and "valid: deploy:read, deploy:promote, admin" in err
    code, _, err = await _cli(
        "token", "create", "x", "--scope", "admin", "--project", "Web", url=daemon_url
    )
    assert code == 2 and "DNS-1123 label" in err
    code, _, err = await _cli("token", "create", "Bad Name", "--scope", "admin", url=daemon_url)
    assert code == 2 and "must be lowercase letters, digits" in err
    assert await store.list_tokens() == []


async def test_the_daemons_role_has_what_the_api_needs(store: Store, daemon_url: str) -> None:
    """On reconciler_daemon's grants alone: tokens, the audit, objects with health, a PATCH
    audited as the API, and unregistering an unused ops repo."""
    repo = await store.add_ops_repo(name="ops", repo_url="https://git.example/ops.git")
    await store.add_ops_repo(name="spare", repo_url="https://git.example/spare.git")
    await store.upsert_deployment(
        project="app", environment="prod", ops_repo_id=repo.id, image_ref="reg/app:1"
    )
    daemon = await Store.connect(daemon_url, pool_size=1)
    try:
        _token, secret = await daemon.create_token(name="ci", scope="admin", project=None)
        assert await daemon.authenticate(secret) is not None
        patched = await daemon.patch_deployment(
            project="app",
            environment="prod",
            changes={"image_ref": "reg/app:2", "paused": True},
            claim=AuditClaim("api", "ci"),
        )
        assert patched is not None and patched.generation == 2
        entry = (await daemon.audit_rows(limit=1))[0]
        assert (entry.via, entry.actor) == ("api", "ci")
        assert await daemon.objects_with_health(patched.id) == []
        assert await daemon.remove_ops_repo("spare") == []
        assert await daemon.deployments_of("app") != []
    finally:
        await daemon.close()
