"""The CLI as a process: migrate, status, ops-repo, history, and its user errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.processes import run_cli


def test_migrate_twice_then_status(empty_database_url: str) -> None:
    """migrate creates the schema, a second migrate is a no-op, status shows an empty fleet."""
    first = run_cli("migrate", database_url=empty_database_url)
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == "schema at revision 0009 (was None)"
    second = run_cli("migrate", database_url=empty_database_url)
    assert second.stdout.strip() == "schema at revision 0009"
    status = run_cli("status", database_url=empty_database_url)
    assert (status.returncode, status.stdout.strip()) == (0, "no deployments")


def test_ops_repo_add_list_and_duplicate(database_url: str) -> None:
    """ops-repo add registers a repo, list hides credentials, a duplicate name is a clean error."""
    url = "https://deploy:s3cret-token@git.example.com/ops.git"
    added = run_cli(
        "ops-repo", "add", "ops", url, "--branch", "live", "--no-check", database_url=database_url
    )
    assert added.returncode == 0, added.stderr
    assert "s3cret-token" not in added.stdout
    listed = run_cli("ops-repo", "list", "--json", database_url=database_url)
    [row] = [json.loads(line) for line in listed.stdout.splitlines()]
    assert (row["name"], row["branch"]) == ("ops", "live")
    assert "s3cret-token" not in row["url"] and "git.example.com/ops.git" in row["url"]
    again = run_cli("ops-repo", "add", "ops", url, "--no-check", database_url=database_url)
    assert again.returncode == 1
    assert again.stderr.strip() == (
        "reconciler: error: ops repo 'ops': an ops repo with this name exists already "
        "(ops_repos_name_key)"
    )
    assert "Traceback" not in again.stderr and "s3cret-token" not in again.stderr


def test_ops_repo_add_refuses_a_bad_url(database_url: str) -> None:
    """A URL git cannot use is refused before it reaches the database."""
    result = run_cli("ops-repo", "add", "ops", "not a url", database_url=database_url)
    assert result.returncode == 1
    assert result.stderr.startswith("reconciler: error: ")
    assert "Traceback" not in result.stderr


def test_unreachable_database_names_the_host() -> None:
    """An unreachable database is one line naming host and port, exit 1, no traceback."""
    result = run_cli("status", database_url="postgresql://u:pw@127.0.0.1:9/db")
    assert result.returncode == 1
    assert result.stderr.startswith("reconciler: error: cannot reach PostgreSQL at 127.0.0.1:9/db")
    assert "Traceback" not in result.stderr and ":pw@" not in result.stderr


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"RECONCILER_POLL_INTERVAL_S": "abc"},
            "RECONCILER_POLL_INTERVAL_S must be a number of seconds, got 'abc'",
        ),
        ({"RECONCILER_CONCURRENCY": "0"}, "RECONCILER_CONCURRENCY must be at least 1, got '0'"),
        (
            {"RECONCILER_LOG_FORMAT": "xml"},
            "RECONCILER_LOG_FORMAT must be 'json' or 'console', got 'xml'",
        ),
        (
            {"RECONCILER_EVENT_LOOP": "trio"},
            "RECONCILER_EVENT_LOOP must be 'uvloop' or 'asyncio', got 'trio'",
        ),
    ],
)
def test_bad_settings_are_reported(env: dict[str, str], message: str) -> None:
    """A malformed setting is reported by name with the value given."""
    result = run_cli("status", database_url="postgresql://u@127.0.0.1:9/db", **env)
    assert result.returncode == 1
    assert result.stderr.strip() == f"reconciler: error: {message}"


def test_missing_database_url() -> None:
    """Commands that need the database say DATABASE_URL is not set."""
    result = run_cli("status", database_url=None)
    assert result.returncode == 1
    assert "DATABASE_URL is not set" in result.stderr


def test_history_of_unknown_deployment(database_url: str) -> None:
    """history of a deployment that does not exist says so."""
    result = run_cli("history", "web", "prod", database_url=database_url)
    assert (result.returncode, result.stderr.strip()) == (
        1,
        "reconciler: error: no deployment web/prod",
    )


def test_ops_repo_sync_asks_the_daemon_and_never_writes_the_repos_dir(
    database_url: str, tmp_path: Path
) -> None:
    """ops-repo sync only asks (one line per repo); the daemon's repos dir stays untouched."""
    repos_dir = tmp_path / "repos"
    for name in ("alpha", "beta"):
        added = run_cli(
            "ops-repo", "add", name, str(tmp_path / name), "--no-check", database_url=database_url
        )
        assert added.returncode == 0, added.stderr
    env = {"RECONCILER_REPOS_DIR": str(repos_dir)}
    result = run_cli("ops-repo", "sync", database_url=database_url, **env)
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.splitlines() == [
        "alpha: asked the daemon to sync",
        "beta: asked the daemon to sync",
    ]
    assert not repos_dir.exists()
    unknown = run_cli("ops-repo", "sync", "gamma", database_url=database_url, **env)
    assert (unknown.returncode, unknown.stderr.strip()) == (
        1,
        "reconciler: error: no ops repo named gamma",
    )


def test_ops_repo_sync_wait_without_a_daemon_times_out(database_url: str) -> None:
    """--wait S with no daemon to answer: exit 1 once S seconds pass, saying so per repo."""
    added = run_cli(
        "ops-repo",
        "add",
        "ops",
        "https://git.example.com/ops.git",
        "--no-check",
        database_url=database_url,
    )
    assert added.returncode == 0, added.stderr
    result = run_cli("ops-repo", "sync", "ops", "--wait", "1", database_url=database_url)
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        "ops: asked the daemon to sync",
        "ops: failed: no sync within 1 s (is a daemon running on this database?)",
    ]
