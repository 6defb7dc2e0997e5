"""Snapshots against real git: the daemon renders the commit it records, whatever the checkout."""

from __future__ import annotations

import shutil
import stat
from pathlib import Path
from typing import Any

import pytest

from reconciler.errors import OpsRepoError
from reconciler.model import OpsRepo
from reconciler.repo_sync import GitFetcher
from reconciler.repos import snapshots
from reconciler.repos.checkout import sync_snapshot
from tests.integration.repos.conftest import Remote


def ops_repo(remote: Remote) -> OpsRepo:
    return OpsRepo(
        id=1,
        name="ops",
        repo_url=remote.url,
        branch=remote.branch,
        path="",
        sync_interval_s=60,
        last_synced_at=None,
        last_sha=None,
        last_error=None,
    )


def files_of(tree: Path) -> dict[str, str]:
    return {
        p.relative_to(tree).as_posix(): p.read_text()
        for p in sorted(tree.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def remote(tmp_path: Path) -> Remote:
    remote = Remote(tmp_path / "origin")
    remote.commit({"web/deployment.yaml": "replicas: 1\n", "README": "ops\n"})
    return remote


async def test_sync_publishes_a_read_only_snapshot_of_the_commit(
    remote: Remote, tmp_path: Path
) -> None:
    """A sync writes the commit's tree to .snapshots/<name>/<sha>, files read-only, and serves
    it."""
    repos_dir = tmp_path / "repos"
    synced = await sync_snapshot(
        name="ops", url=remote.url, branch="main", repos_dir=repos_dir, timeout_s=30
    )
    expected = repos_dir.absolute() / ".snapshots" / "ops" / remote.tip()
    assert (synced.snapshot.path, synced.snapshot.sha, synced.changed) == (
        expected,
        remote.tip(),
        True,
    )
    assert files_of(expected) == {"README": "ops\n", "web/deployment.yaml": "replicas: 1\n"}
    mode = (expected / "web" / "deployment.yaml").stat().st_mode
    assert stat.S_IMODE(mode) & 0o222 == 0
    assert snapshots.serving(repos_dir=repos_dir.absolute(), name="ops") == synced.snapshot
    again = await sync_snapshot(
        name="ops", url=remote.url, branch="main", repos_dir=repos_dir, timeout_s=30
    )
    assert (again.snapshot, again.changed) == (synced.snapshot, False)


async def test_a_failed_fetch_serves_the_snapshot_not_the_mixed_working_tree(
    remote: Remote, tmp_path: Path
) -> None:
    """With the working tree left holding newer files at the old HEAD (a reset cut short by a
    full disk) and the remote away, the fetcher serves the old commit's files with its sha."""
    repos_dir = tmp_path / "repos"
    fetcher = GitFetcher(repos_dir=repos_dir, timeout_s=30)
    repo = ops_repo(remote)
    first = await fetcher.fetch(repo)
    assert first.error is None and first.path is not None
    assert first.immutable  # a snapshot: render workers may keep what they read from it
    # What the interrupted reset left: the new content on disk, HEAD still at the old commit.
    (repos_dir / "ops" / "web" / "deployment.yaml").write_text("replicas: 9\n")
    shutil.move(remote.bare, tmp_path / "moved-away.git")
    failed = await fetcher.fetch(repo)
    assert failed.error is not None and failed.sha == first.sha
    assert failed.path is not None and failed.immutable
    assert (failed.path / "web" / "deployment.yaml").read_text() == "replicas: 1\n"
    on_disk = await fetcher.on_disk(repo)
    assert on_disk is not None and (on_disk.path, on_disk.sha) == (first.path, first.sha)
    assert on_disk.immutable


async def test_a_snapshot_that_cannot_be_written_leaves_the_last_good_one_served(
    remote: Remote, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full disk while writing the new snapshot: the sync fails, the old snapshot stays
    served and whole, and no staging directory is left behind."""
    repos_dir = tmp_path / "repos"
    fetcher = GitFetcher(repos_dir=repos_dir, timeout_s=30)
    repo = ops_repo(remote)
    first = await fetcher.fetch(repo)
    remote.commit({"web/deployment.yaml": "replicas: 2\n"})

    def disk_full(tree: Path) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(snapshots, "_make_read_only", disk_full)
    failed = await fetcher.fetch(repo)
    assert failed.error is not None and "No space left on device" in failed.error
    assert (failed.path, failed.sha) == (first.path, first.sha)
    assert failed.path is not None
    assert (failed.path / "web" / "deployment.yaml").read_text() == "replicas: 1\n"
    leftovers = [p.name for p in (repos_dir / ".snapshots" / "ops").iterdir()]
    assert sorted(leftovers) == sorted([".current", first.sha or ""])


async def test_a_snapshot_that_differs_from_the_commit_is_refused(
    remote: Remote, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Verification: a file missing from, or added to, the written tree fails the sync."""
    repos_dir = tmp_path / "repos"
    real_run_git = snapshots.run_git
    tamper: list[str] = ["drop"]

    def tampering_run_git(args: list[str], **kwargs: Any) -> Any:
        outcome = real_run_git(args, **kwargs)
        if "checkout-index" in args and tamper:
            tree = kwargs["cwd"]
            if tamper.pop() == "drop":
                (tree / "README").unlink()
            else:
                (tree / "stray.yaml").write_text("kind: Stray\n")
        return outcome

    monkeypatch.setattr(snapshots, "run_git", tampering_run_git)
    with pytest.raises(OpsRepoError, match="does not match the commit"):
        await sync_snapshot(
            name="ops", url=remote.url, branch="main", repos_dir=repos_dir, timeout_s=30
        )
    tamper.append("add")
    with pytest.raises(OpsRepoError, match="holds files the commit does not"):
        await sync_snapshot(
            name="ops", url=remote.url, branch="main", repos_dir=repos_dir, timeout_s=30
        )
    assert snapshots.serving(repos_dir=repos_dir.absolute(), name="ops") is None
    good = await sync_snapshot(
        name="ops", url=remote.url, branch="main", repos_dir=repos_dir, timeout_s=30
    )
    assert files_of(good.snapshot.path)["README"] == "ops\n"


async def test_only_the_newest_snapshots_are_kept(remote: Remote, tmp_path: Path) -> None:
    """After five commits, the served snapshot and the two before it remain."""
    repos_dir = tmp_path / "repos"
    shas = []
    for replicas in range(5):
        shas.append(remote.commit({"web/deployment.yaml": f"replicas: {replicas}\n"}))
        await sync_snapshot(
            name="ops", url=remote.url, branch="main", repos_dir=repos_dir, timeout_s=30
        )
    kept = {p.name for p in (repos_dir / ".snapshots" / "ops").iterdir() if p.is_dir()}
    assert kept == set(shas[-snapshots.KEEP_PER_REPO :])


async def test_a_deleted_repos_dir_is_cloned_again(remote: Remote, tmp_path: Path) -> None:
    """rm -rf of the whole repos directory (read-only snapshot files included) works, and the
    next sync clones and snapshots afresh."""
    repos_dir = tmp_path / "repos"
    fetcher = GitFetcher(repos_dir=repos_dir, timeout_s=30)
    repo = ops_repo(remote)
    first = await fetcher.fetch(repo)
    assert await fetcher.present(first)
    shutil.rmtree(repos_dir)
    assert not await fetcher.present(first)
    assert await fetcher.on_disk(repo) is None
    again = await fetcher.fetch(repo)
    assert (again.error, again.sha, again.path) == (None, first.sha, first.path)
    assert again.path is not None and (again.path / "README").read_text() == "ops\n"


async def test_contains_asks_the_snapshots_commit_not_head(remote: Remote, tmp_path: Path) -> None:
    """contains() answers for the commit served, even after the checkout's HEAD moved on."""
    repos_dir = tmp_path / "repos"
    fetcher = GitFetcher(repos_dir=repos_dir, timeout_s=30)
    repo = ops_repo(remote)
    old = await fetcher.fetch(repo)
    newer = remote.commit({"web/deployment.yaml": "replicas: 3\n"})
    await fetcher.fetch(repo)
    assert not await fetcher.contains(old, newer)
    assert old.sha is not None and await fetcher.contains(old, old.sha)


async def test_a_checkout_from_before_snapshots_keeps_serving_when_the_remote_is_away(
    remote: Remote, tmp_path: Path
) -> None:
    """No snapshot yet and a failed fetch: the checkout's commit is snapshotted from git's
    objects and served."""
    repos_dir = tmp_path / "repos"
    first = await sync_snapshot(
        name="ops", url=remote.url, branch="main", repos_dir=repos_dir, timeout_s=30
    )
    shutil.rmtree(repos_dir / ".snapshots")
    shutil.move(remote.bare, tmp_path / "moved-away.git")
    failed = await GitFetcher(repos_dir=repos_dir, timeout_s=30).fetch(ops_repo(remote))
    assert failed.error is not None
    assert (failed.path, failed.sha) == (first.snapshot.path, first.snapshot.sha)
