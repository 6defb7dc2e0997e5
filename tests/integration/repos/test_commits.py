"""Snapshots of a chosen commit against real git: a rollback renders that commit's files."""

from __future__ import annotations

import asyncio
import dataclasses
import stat
from pathlib import Path

import pytest

from reconciler.checkouts import Checkouts
from reconciler.errors import InputError, OpsRepoError
from reconciler.model import OpsRepo
from reconciler.repo_sync import GitFetcher
from reconciler.repos import snapshots
from reconciler.repos.checkout import snapshot_at_commit
from reconciler.testing.memory import InMemoryStore
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


def snapshot_names(repos_dir: Path) -> set[str]:
    return {p.name for p in (repos_dir / ".snapshots" / "ops").iterdir() if p.is_dir()}


@pytest.fixture
def remote(tmp_path: Path) -> Remote:
    remote = Remote(tmp_path / "origin")
    remote.commit({"web/deployment.yaml": "replicas: 1\n", "README": "ops\n"})
    return remote


async def test_an_older_commit_is_snapshotted_with_its_own_files(
    remote: Remote, tmp_path: Path
) -> None:
    """After newer commits were synced, at_commit gives the old commit's files, read-only and
    verified, and the newest commit stays served."""
    repos_dir = tmp_path / "repos"
    fetcher = GitFetcher(repos_dir=repos_dir, timeout_s=30)
    repo = ops_repo(remote)
    old = remote.tip()
    await fetcher.fetch(repo)
    remote.commit({"web/deployment.yaml": "replicas: 2\n", "web/service.yaml": "kind: Svc\n"})
    newest = remote.commit({"web/deployment.yaml": "replicas: 3\n"})
    served = await fetcher.fetch(repo)
    assert served.sha == newest

    checkout = await fetcher.at_commit(repo, old)
    assert (checkout.sha, checkout.error, checkout.subdir) == (old, None, "")
    assert checkout.path == repos_dir.absolute() / ".snapshots" / "ops" / old
    assert files_of(checkout.path) == {"README": "ops\n", "web/deployment.yaml": "replicas: 1\n"}
    mode = (checkout.path / "web" / "deployment.yaml").stat().st_mode
    assert stat.S_IMODE(mode) & 0o222 == 0
    on_disk = await fetcher.on_disk(repo)
    assert on_disk is not None and on_disk.sha == newest
    assert await fetcher.at_commit(repo, old) == checkout


async def test_a_snapshot_made_for_a_rollback_survives_the_next_sync(
    remote: Remote, tmp_path: Path
) -> None:
    """The next sync keeps the snapshot at_commit just made (it is the newest), and rollback
    after rollback never prunes the snapshot being served."""
    repos_dir = tmp_path / "repos"
    fetcher = GitFetcher(repos_dir=repos_dir, timeout_s=30)
    repo = ops_repo(remote)
    first = remote.tip()
    shas = [first]
    await fetcher.fetch(repo)
    for replicas in range(2, 6):
        shas.append(remote.commit({"web/deployment.yaml": f"replicas: {replicas}\n"}))
        await fetcher.fetch(repo)
    assert first not in snapshot_names(repos_dir)
    await fetcher.at_commit(repo, first)
    assert {first, shas[-1]} <= snapshot_names(repos_dir)
    assert len(snapshot_names(repos_dir)) <= snapshots.KEEP_PER_REPO + 1
    newest = remote.commit({"web/deployment.yaml": "replicas: 9\n"})
    await fetcher.fetch(repo)
    assert {first, newest} <= snapshot_names(repos_dir)
    assert len(snapshot_names(repos_dir)) == snapshots.KEEP_PER_REPO
    for sha in shas[:4]:  # rollback after rollback: each newer than the served one
        await fetcher.at_commit(repo, sha)
        assert {sha, newest} <= snapshot_names(repos_dir)
    served = await fetcher.on_disk(repo)
    assert served is not None and served.sha == newest and served.path is not None
    assert (served.path / "web" / "deployment.yaml").read_text() == "replicas: 9\n"


async def test_a_commit_not_in_the_history_is_refused_by_name(
    remote: Remote, tmp_path: Path
) -> None:
    """An unknown sha, and a tip a force push replaced (its objects still in the checkout),
    both fail naming the repo, the sha and the likely force push; nothing is written."""
    repos_dir = tmp_path / "repos"
    fetcher = GitFetcher(repos_dir=repos_dir, timeout_s=30)
    repo = ops_repo(remote)
    replaced = remote.commit({"web/deployment.yaml": "replicas: 2\n"})
    await fetcher.fetch(repo)
    remote.rewrite_last_commit({"web/deployment.yaml": "replicas: 4\n"})
    await fetcher.fetch(repo)
    before = snapshot_names(repos_dir)  # the replaced tip's snapshot from its own sync too
    for sha in ("0" * 40, replaced):
        with pytest.raises(OpsRepoError) as raised:
            await fetcher.at_commit(repo, sha)
        message = str(raised.value)
        assert f"commit {sha} is not in the history of ops repo 'ops'" in message
        assert "force push" in message
    assert snapshot_names(repos_dir) == before
    leftovers = [p.name for p in (repos_dir / ".snapshots" / "ops").glob(".staging-*")]
    assert leftovers == []


async def test_a_malformed_sha_or_a_missing_checkout_is_refused(
    remote: Remote, tmp_path: Path
) -> None:
    """A short or non-hex sha is an InputError before git runs; a repo never synced here is
    an OpsRepoError saying so."""
    repos_dir = tmp_path / "repos"
    for bad in ("abc123", "--upload-pack=touch /tmp/x", "g" * 40):
        with pytest.raises(InputError, match="is not a full commit id"):
            await snapshot_at_commit(
                name="ops", url=remote.url, branch="main", repos_dir=repos_dir, sha=bad
            )
    with pytest.raises(OpsRepoError, match="never synced here"):
        await GitFetcher(repos_dir=repos_dir, timeout_s=30).at_commit(
            ops_repo(remote), remote.tip()
        )


async def test_an_uppercase_sha_names_the_same_commit(remote: Remote, tmp_path: Path) -> None:
    """Commit ids are compared in lower case, as git writes them."""
    repos_dir = tmp_path / "repos"
    fetcher = GitFetcher(repos_dir=repos_dir, timeout_s=30)
    repo = ops_repo(remote)
    await fetcher.fetch(repo)
    checkout = await fetcher.at_commit(repo, remote.tip().upper())
    assert checkout.sha == remote.tip()


async def test_snapshots_at_commits_run_safely_beside_syncs(remote: Remote, tmp_path: Path) -> None:
    """at_commit and fetch racing on one repo (they take turns on its lock): every snapshot is
    whole and right, the newest commit ends up served, and no staging is left behind."""
    repos_dir = tmp_path / "repos"
    fetcher = GitFetcher(repos_dir=repos_dir, timeout_s=60)
    repo = ops_repo(remote)
    old = remote.tip()
    await fetcher.fetch(repo)
    middle = remote.commit({"web/deployment.yaml": "replicas: 2\n"})
    await fetcher.fetch(repo)
    for round_ in range(3):
        newest = remote.commit({"web/deployment.yaml": f"replicas: {10 + round_}\n"})
        results = await asyncio.gather(
            fetcher.at_commit(repo, old),
            fetcher.fetch(repo),
            fetcher.at_commit(repo, middle),
            fetcher.fetch(repo),
        )
        at_old, synced, at_middle, synced_again = results
        assert synced.error is None and synced_again.error is None
        assert synced_again.sha == newest
        assert at_old.path is not None and at_middle.path is not None
        assert files_of(at_old.path)["web/deployment.yaml"] == "replicas: 1\n"
        assert files_of(at_middle.path)["web/deployment.yaml"] == "replicas: 2\n"
    served = snapshots.serving(repos_dir=repos_dir.absolute(), name="ops")
    assert served is not None and served.sha == newest
    assert list((repos_dir / ".snapshots" / "ops").glob(".staging-*")) == []


async def test_checkout_at_syncs_first_when_the_commit_is_newer_than_the_checkout(
    remote: Remote, tmp_path: Path
) -> None:
    """A commit another daemon synced (newer than this daemon's checkout) is fetched first;
    an older one is snapshotted without a fetch, while the repo keeps serving its tip."""
    repos_dir = tmp_path / "repos"
    fetcher = GitFetcher(repos_dir=repos_dir, timeout_s=30)
    store = InMemoryStore()
    repo = dataclasses.replace(store.add_repo("ops"), repo_url=remote.url)
    store.repos[repo.id] = repo
    checkouts = Checkouts(store=store, fetcher=fetcher, wake=lambda: None)
    old = remote.tip()
    await checkouts.ensure({repo.id})
    newer = remote.commit({"web/deployment.yaml": "replicas: 7\n"})
    at_newer = await checkouts.checkout_at(repo, newer)
    assert at_newer.path is not None and at_newer.sha == newer
    assert (at_newer.path / "web" / "deployment.yaml").read_text() == "replicas: 7\n"
    remote.commit({"web/deployment.yaml": "replicas: 8\n"})  # not fetched: not needed
    at_old = await checkouts.checkout_at(repo, old)
    assert at_old.path is not None and at_old.sha == old
    assert (at_old.path / "web" / "deployment.yaml").read_text() == "replicas: 1\n"
    served = snapshots.serving(repos_dir=repos_dir.absolute(), name="ops")
    assert served is not None and served.sha == newer
