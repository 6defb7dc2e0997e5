"""A branch's head asked of its remote: a local remote is read by one ``git for-each-ref`` and
answers as ``git ls-remote`` does, whatever the repository's shape; other URLs keep ls-remote."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from reconciler.errors import OpsRepoError
from reconciler.repos import remote as remote_module
from reconciler.repos.git import GitOutcome, Subject, run_git
from reconciler.repos.remote import branch_head, head_command, require_branch
from tests.integration.repos.conftest import Remote, git

_TIMEOUT_S = 30.0


def ls_remote(url: str, branch: str) -> str | None:
    """What ``git ls-remote`` itself says the branch's head is (None: no such branch)."""
    ref = f"refs/heads/{branch}"
    for line in git("ls-remote", "--", url, ref, cwd=Path("/")).splitlines():
        sha, _tab, name = line.partition("\t")
        if name == ref:
            return sha
    return None


async def head(url: str, branch: str = "main", *, timeout_s: float = _TIMEOUT_S) -> str | None:
    subject = Subject.for_repo(name="ops", url=url, branch=branch)
    return await branch_head(url=url, branch=branch, subject=subject, timeout_s=timeout_s)


def test_a_local_path_or_file_url_is_read_in_place() -> None:
    """A path and a file:/// URL (percent-decoded as git does) are read by for-each-ref in the
    repository itself; a file:// URL naming a host is left to ls-remote."""
    by_path = head_command(url="/srv/git/ops.git", branch="main")
    by_url = head_command(url="file:///srv/git/ops%20repo.git", branch="live")

    assert (by_path.args[0], by_path.local) == ("for-each-ref", "/srv/git/ops.git")
    assert (by_url.args[0], by_url.local) == ("for-each-ref", "/srv/git/ops repo.git")
    assert by_url.ref == "refs/heads/live"
    assert head_command(url="file://localhost/srv/ops.git", branch="main").local is None


@pytest.mark.parametrize(
    "url",
    [
        "https://git.example.com/acme/ops.git",
        "http://git.example.com/ops.git",
        "ssh://git@git.example.com:2222/acme/ops.git",
        "git://git.example.com/ops.git",
        "git@github.com:acme/ops.git",
    ],
)
def test_a_network_remote_is_still_asked_with_ls_remote(url: str) -> None:
    """https, http, ssh, git:// and scp-like URLs are asked with ``git ls-remote -- <url>``."""
    command = head_command(url=url, branch="main")

    assert command.local is None
    assert command.args == ("ls-remote", "--", url, "refs/heads/main")


@pytest.fixture
def git_verbs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The git commands the head checks run, by verb, in order."""
    verbs: list[str] = []

    def recording(args: Sequence[str], **kwargs: Any) -> GitOutcome:
        verbs.append(next(arg for arg in args if arg in ("for-each-ref", "ls-remote")))
        return run_git(args, **kwargs)

    monkeypatch.setattr(remote_module, "run_git", recording)
    return verbs


async def test_a_local_remote_costs_one_git_command(
    remote: Remote, tmp_path: Path, git_verbs: list[str]
) -> None:
    """A local remote's head, or its missing branch, is one for-each-ref; only a path holding
    no repository git finds is asked again with ls-remote, for its answer or its error."""
    await head(remote.url)
    await head(remote.url, "nope")
    assert git_verbs == ["for-each-ref", "for-each-ref"]

    with pytest.raises(OpsRepoError):
        await head(str(tmp_path / "missing"))
    assert git_verbs[2:] == ["for-each-ref", "ls-remote"]


async def test_a_bare_remote_answers_as_ls_remote_does(remote: Remote) -> None:
    """The head of a bare remote's branch is the commit ls-remote reports."""
    assert await head(remote.url) == ls_remote(remote.url, "main") == remote.tip()


async def test_a_non_bare_remote_answers_as_ls_remote_does(remote: Remote) -> None:
    """A repository with a working tree is asked through its .git directory, as upload-pack
    serves it, including a branch only it has."""
    git("checkout", "--quiet", "-b", "feature", cwd=remote.author)
    git("commit", "--quiet", "--allow-empty", "--message", "local only", cwd=remote.author)
    url = str(remote.author)

    assert await head(url, "feature") == ls_remote(url, "feature")
    assert await head(url, "feature") == git("rev-parse", "HEAD", cwd=remote.author)
    assert await head(url, "main") == ls_remote(url, "main") == remote.tip()


async def test_packed_refs_answer_as_ls_remote_does(remote: Remote) -> None:
    """After ``git pack-refs --all`` (no loose ref left) the head is still found."""
    git("pack-refs", "--all", cwd=remote.bare)
    assert not (remote.bare / "refs" / "heads" / "main").exists()

    assert await head(remote.url) == ls_remote(remote.url, "main") == remote.tip()


async def test_a_missing_branch_is_none_as_with_ls_remote(remote: Remote) -> None:
    """A branch the remote lacks is None, also when a longer branch starts with its name."""
    git(
        "push",
        "--quiet",
        "origin",
        "HEAD:refs/heads/mai",
        "HEAD:refs/heads/nope/x",
        cwd=remote.author,
    )

    assert await head(remote.url, "nope") is None
    assert ls_remote(remote.url, "nope") is None
    assert await head(remote.url, "ma") is None


async def test_a_symbolic_ref_answers_as_ls_remote_does(remote: Remote) -> None:
    """A branch that is a symbolic ref has its target's commit; a dangling one is missing."""
    git("symbolic-ref", "refs/heads/alias", "refs/heads/main", cwd=remote.bare)
    git("symbolic-ref", "refs/heads/dangling", "refs/heads/gone", cwd=remote.bare)

    assert await head(remote.url, "alias") == ls_remote(remote.url, "alias") == remote.tip()
    assert await head(remote.url, "dangling") is ls_remote(remote.url, "dangling") is None


async def test_a_gitdir_link_answers_as_ls_remote_does(remote: Remote, tmp_path: Path) -> None:
    """A working tree whose .git is a file naming its git directory elsewhere gives
    ls-remote's head."""
    linked = tmp_path / "linked"
    separate = str(tmp_path / "elsewhere.git")
    git("clone", "--quiet", "--separate-git-dir", separate, remote.url, str(linked), cwd=tmp_path)
    assert (linked / ".git").is_file()

    assert await head(str(linked)) == ls_remote(str(linked), "main") == remote.tip()


async def test_a_percent_encoded_file_url_answers_as_ls_remote_does(
    remote: Remote, tmp_path: Path
) -> None:
    """``file:///.../ops%20repo.git`` names the directory ``ops repo.git``, as git decodes it."""
    spaced = tmp_path / "ops repo.git"
    git("clone", "--quiet", "--bare", remote.url, str(spaced), cwd=tmp_path)
    url = "file://" + str(spaced).replace(" ", "%20")

    assert await head(url) == ls_remote(url, "main") == remote.tip()


async def test_a_path_git_completes_with_dot_git_answers_as_ls_remote_does(
    remote: Remote,
) -> None:
    """``<dir>/remote`` names ``<dir>/remote.git`` to upload-pack: the same head is found."""
    url = str(remote.bare.with_suffix(""))  # remote-a/remote, beside remote-a/remote.git

    assert await head(url) == ls_remote(url, "main") == remote.tip()


@pytest.mark.parametrize("inside", [False, True])
async def test_a_directory_that_is_not_a_repository_fails_naming_the_remote(
    remote: Remote, tmp_path: Path, inside: bool
) -> None:
    """A plain directory, even one inside a repository's working tree (or a symlink to one),
    is not a remote: OpsRepoError names the ops repo and says the repository is not found."""
    if inside:
        link = tmp_path / "link"
        link.symlink_to(remote.author / "web")
        url = str(link)
    else:
        url = str(tmp_path / "plain")
        os.mkdir(url)

    with pytest.raises(OpsRepoError) as raised:
        await head(url)

    message = str(raised.value)
    assert f"ops repo 'ops' ({url})" in message
    assert "repository not found" in message


async def test_require_branch_checks_a_local_remote(remote: Remote, tmp_path: Path) -> None:
    """The CLI's check returns a local remote's head, and names the remote and the branch
    when the branch is missing or the path holds no repository."""
    assert await require_branch(url=remote.url, branch="main", timeout_s=_TIMEOUT_S) == remote.tip()

    with pytest.raises(OpsRepoError, match=f"the remote {remote.url} has no branch 'nope'"):
        await require_branch(url=remote.url, branch="nope", timeout_s=_TIMEOUT_S)
    missing = str(tmp_path / "missing")
    with pytest.raises(OpsRepoError, match=f"the remote {missing} \\(branch 'main'\\)"):
        await require_branch(url=missing, branch="main", timeout_s=_TIMEOUT_S)


async def test_a_local_remote_out_of_time_times_out(remote: Remote) -> None:
    """With its time budget spent, a local check is stopped like ls-remote: OpsRepoError
    saying it timed out, and no second command instead."""
    with pytest.raises(OpsRepoError, match="timed out after 0 s while asking the remote"):
        await head(remote.url, timeout_s=0)
