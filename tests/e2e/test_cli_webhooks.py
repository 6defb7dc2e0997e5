"""``reconciler webhook add|list|remove|deliveries`` as a process, and its user errors."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import asyncpg

from reconciler.db import asyncpg_dsn
from tests.support.processes import run_cli

_URL = "https://bot:hunter2@hooks.example.com/services/T0123ABCDE/B0123ABCDE/aB3dE6gH9jK2mN5p"


async def _a_transition(database_url: str) -> None:
    """A deployment moved to failed by SQL, as an admin would: one event to queue."""
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        await conn.execute(
            "INSERT INTO ops_repos (name, repo_url) VALUES ('ops', 'https://git.example/o.git')"
        )
        await conn.execute(
            "INSERT INTO deployments (project, environment, ops_repo_id, image_ref) "
            "SELECT 'web', 'prod', id, 'reg/web:1' FROM ops_repos"
        )
        await conn.execute(
            "UPDATE deployments SET current_status = 'failed', status_message = 'boom'"
        )
    finally:
        await conn.close()


def test_add_list_deliveries_remove(database_url: str, tmp_path: Path) -> None:
    """add registers a signed, filtered webhook without echoing credentials; list shows it
    without URL credentials or secret; deliveries shows the queued event; remove removes."""
    secret = tmp_path / "secret"
    secret.write_text("s3cret-value\n")
    added = run_cli(
        *("webhook", "add", "chat", _URL, "--format", "slack", "--project", "web"),
        *("--secret-file", str(secret), "--status", "failed", "healthy"),
        database_url=database_url,
    )
    assert added.returncode == 0, added.stderr
    assert added.stdout.startswith("added webhook chat (id 1): slack events of web/*")
    assert "to failed, healthy, signed, to https://***@hooks.example.com/" in added.stdout
    assert "hunter2" not in added.stdout and "aB3dE6gH9jK2mN5p" not in added.stdout
    listed = run_cli("webhook", "list", "--json", database_url=database_url)
    [row] = [json.loads(line) for line in listed.stdout.splitlines()]
    assert (row["name"], row["statuses"], row["signed"], row["format"]) == (
        "chat",
        "failed,healthy",
        True,
        "slack",
    )
    assert "hunter2" not in listed.stdout and "s3cret-value" not in listed.stdout
    asyncio.run(_a_transition(database_url))
    shown = run_cli("webhook", "deliveries", "chat", "--json", database_url=database_url)
    [delivery] = [json.loads(line) for line in shown.stdout.splitlines()]
    assert (delivery["project"], delivery["transition"], delivery["status"]) == (
        "web",
        "pending -> failed",
        "pending",
    )
    table = run_cli("webhook", "deliveries", database_url=database_url)
    assert "pending -> failed" in table.stdout
    removed = run_cli("webhook", "remove", "chat", database_url=database_url)
    assert (removed.returncode, removed.stdout.strip()) == (0, "removed webhook chat")
    gone = run_cli("webhook", "deliveries", "chat", database_url=database_url)
    assert (gone.returncode, gone.stderr.strip()) == (1, "reconciler: error: no webhook 'chat'")
    empty = run_cli("webhook", "list", database_url=database_url)
    assert empty.stdout.strip() == "no webhooks"


def test_user_errors_are_one_line(database_url: str, tmp_path: Path) -> None:
    """A bad URL, a missing secret file, a duplicate name and removing an unknown webhook
    each exit 1 with one line naming the problem, no traceback, no secret."""
    first = run_cli("webhook", "add", "ci", "https://h.example/x", database_url=database_url)
    assert first.returncode == 0, first.stderr
    cases = {
        ("webhook", "add", "x", "ftp://h.example/x"): "http:// or https://",
        ("webhook", "add", "x", "https://h.example/x", "--secret-file", str(tmp_path / "no")): (
            f"--secret-file {tmp_path / 'no'}: No such file or directory"
        ),
        ("webhook", "add", "ci", "https://h.example/y"): "webhook 'ci' already exists",
        ("webhook", "remove", "nope"): "no webhook 'nope'",
    }
    for args, message in cases.items():
        result = run_cli(*args, database_url=database_url)
        assert result.returncode == 1, args
        assert message in result.stderr and "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
