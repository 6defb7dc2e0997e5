"""The CLI as a process: ops-repo add checks the remote, set, remove, status --wide, and a
missing or broken kubeconfig."""

from __future__ import annotations

import json
from pathlib import Path

import asyncpg
import pytest

from reconciler.db import asyncpg_dsn
from tests.support.gitrepo import app_repo
from tests.support.processes import run_cli


def _repos(database_url: str) -> list[dict[str, object]]:
    listed = run_cli("ops-repo", "list", "--json", database_url=database_url)
    assert listed.returncode == 0, listed.stderr
    return [json.loads(line) for line in listed.stdout.splitlines()]


async def _sql(database_url: str, statement: str) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


def test_add_checks_that_the_branch_exists_and_records_nothing_otherwise(
    database_url: str, tmp_path: Path
) -> None:
    """A branch the remote lacks is refused naming URL and branch; nothing is recorded; the
    branch it has is recorded."""
    remote = app_repo(tmp_path / "remote").path
    wrong = run_cli(
        "ops-repo", "add", "ops", str(remote), "--branch", "nope", database_url=database_url
    )
    assert wrong.returncode == 1
    assert wrong.stderr.strip() == (
        f"reconciler: error: the remote {remote} has no branch 'nope'"
        " (check --branch, or pass --no-check to record it anyway)"
    )
    assert _repos(database_url) == []
    right = run_cli("ops-repo", "add", "ops", str(remote), database_url=database_url)
    assert right.returncode == 0, right.stderr
    assert [r["name"] for r in _repos(database_url)] == ["ops"]


def test_add_of_an_unreachable_remote_names_it_redacted(database_url: str, tmp_path: Path) -> None:
    """A remote that does not answer: one line naming the URL without its credentials and
    the branch, no traceback, nothing recorded; --no-check records it anyway."""
    url = "https://deploy:s3cret-token@127.0.0.1:9/ops.git"
    result = run_cli("ops-repo", "add", "ops", url, "--branch", "live", database_url=database_url)
    assert result.returncode == 1
    assert result.stderr.startswith(
        "reconciler: error: the remote https://***@127.0.0.1:9/ops.git (branch 'live'): "
    )
    assert "s3cret-token" not in result.stderr and "Traceback" not in result.stderr
    assert _repos(database_url) == []
    unchecked = run_cli("ops-repo", "add", "ops", url, "--no-check", database_url=database_url)
    assert unchecked.returncode == 0, unchecked.stderr


def test_set_changes_what_it_is_given_and_checks_a_new_branch(
    database_url: str, tmp_path: Path
) -> None:
    """set changes path and interval as given; a branch the remote lacks is refused and
    leaves the row as it was; an unknown name is an error."""
    remote = app_repo(tmp_path / "remote").path
    assert run_cli("ops-repo", "add", "ops", str(remote), database_url=database_url).returncode == 0
    changed = run_cli(
        "ops-repo", "set", "ops", "--path", "apps", "--sync-interval", "30",
        database_url=database_url,
    )  # fmt: skip
    assert changed.returncode == 0, changed.stderr
    assert changed.stdout.strip() == (
        f"ops repo ops: {remote} branch main path apps sync interval 30 s"
    )
    refused = run_cli("ops-repo", "set", "ops", "--branch", "nope", database_url=database_url)
    assert refused.returncode == 1
    assert "has no branch 'nope'" in refused.stderr
    [row] = _repos(database_url)
    assert (row["branch"], row["path"], row["sync_s"]) == ("main", "apps", 30)
    unknown = run_cli("ops-repo", "set", "nope", "--path", "x", database_url=database_url)
    assert unknown.stderr.strip() == "reconciler: error: no ops repo named 'nope'"
    nothing = run_cli("ops-repo", "set", "ops", database_url=database_url)
    assert nothing.returncode == 1 and "nothing to change" in nothing.stderr


async def test_remove_is_refused_while_deployments_use_the_repo(
    database_url: str, tmp_path: Path
) -> None:
    """remove names the deployments that still use the repo and keeps it; once they point
    elsewhere it is removed."""
    remote = app_repo(tmp_path / "remote").path
    for name in ("ops", "other"):
        added = run_cli("ops-repo", "add", name, str(remote), database_url=database_url)
        assert added.returncode == 0, added.stderr
    await _sql(
        database_url,
        "INSERT INTO deployments (project, environment, ops_repo_id, image_ref) "
        "SELECT 'app', env, id, 'reg/app:1' FROM ops_repos, "
        "(VALUES ('prod'), ('staging')) AS e(env) WHERE name = 'ops'",
    )
    refused = run_cli("ops-repo", "remove", "ops", database_url=database_url)
    assert refused.returncode == 1
    assert refused.stderr.strip() == (
        "reconciler: error: ops repo 'ops' is still used by 2 deployments: app/prod,"
        " app/staging (point them at another ops repo, or delete them, first)"
    )
    await _sql(
        database_url,
        "UPDATE deployments SET ops_repo_id = (SELECT id FROM ops_repos WHERE name = 'other')",
    )
    removed = run_cli("ops-repo", "remove", "ops", database_url=database_url)
    assert (removed.returncode, removed.stdout.strip()) == (0, "removed ops repo ops")
    assert [r["name"] for r in _repos(database_url)] == ["other"]
    gone = run_cli("ops-repo", "remove", "ops", database_url=database_url)
    assert gone.stderr.strip() == "reconciler: error: no ops repo named 'ops'"


async def test_status_wide_shows_whole_messages(database_url: str, tmp_path: Path) -> None:
    """status cuts a long message; status --wide shows all of it."""
    remote = app_repo(tmp_path / "remote").path
    run_cli("ops-repo", "add", "ops", str(remote), database_url=database_url)
    message = "the rollout failed: " + "very long reason " * 20 + "THE END"
    await _sql(
        database_url,
        "INSERT INTO deployments (project, environment, ops_repo_id, image_ref) "
        "SELECT 'app', 'prod', id, 'reg/app:1' FROM ops_repos WHERE name = 'ops'",
    )
    await _sql(database_url, f"UPDATE deployments SET status_message = '{message}'")
    cut = run_cli("status", database_url=database_url)
    wide = run_cli("status", "--wide", database_url=database_url)
    assert (cut.returncode, wide.returncode) == (0, 0)
    assert "THE END" not in cut.stdout and "..." in cut.stdout
    assert message in wide.stdout


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (None, "no such file"),
        ("clusters: [\n", "not valid YAML at line 2"),
        ("- a list\n", "not a kubeconfig: it is a list"),
        ("apiVersion: v1\nkind: Config\n", "not a usable kubeconfig"),
    ],
)
def test_a_missing_or_broken_kubeconfig_is_one_line_naming_the_file(
    database_url: str, tmp_path: Path, content: str | None, problem: str
) -> None:
    """run --once with a kubeconfig that is missing, not YAML, not a mapping or unusable:
    exit 1, one line naming the file and what is wrong, no traceback."""
    kubeconfig = tmp_path / "kubeconfig"
    if content is not None:
        kubeconfig.write_text(content)
    result = run_cli(
        "run",
        "--once",
        database_url=database_url,
        KUBECONFIG=str(kubeconfig),
        RECONCILER_REPOS_DIR=str(tmp_path / "repos"),
        RECONCILER_LOG_FORMAT="json",
    )
    assert result.returncode == 1
    assert f"KUBECONFIG {kubeconfig}: {problem}" in result.stderr + result.stdout
    assert "Traceback" not in result.stderr + result.stdout
