"""Fixtures for ops repo tests: an isolated git configuration, a bare "remote" with an author
clone in tmp_path, and the directory checkouts go to."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def isolated_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the machine's and the user's git configuration out of every test."""
    home = tmp_path / "home"
    home.mkdir()
    (home / ".gitconfig").write_text(
        "[user]\n\tname = Test Author\n\temail = author@example.com\n"
        "[init]\n\tdefaultBranch = main\n"
    )
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.delenv("GIT_CONFIG_GLOBAL", raising=False)


def git(*args: str, cwd: Path) -> str:
    """Run the git CLI for test set-up and return its stdout."""
    completed = subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True, timeout=60
    )
    return completed.stdout.strip()


class Remote:
    """A bare repository standing in for an ops repo's remote, and an author clone to push from."""

    def __init__(self, root: Path, *, branch: str = "main") -> None:
        root.mkdir(parents=True)
        self.bare = root / "remote.git"
        self.author = root / "author"
        self.branch = branch
        git("init", "--quiet", "--bare", "--initial-branch", branch, str(self.bare), cwd=root)
        git("clone", "--quiet", str(self.bare), str(self.author), cwd=root)
        git("checkout", "--quiet", "-B", branch, cwd=self.author)

    @property
    def url(self) -> str:
        return str(self.bare)

    def commit(self, files: dict[str, str], *, message: str = "change") -> str:
        """Write files, commit them on the current branch and push; return the new sha."""
        for relative, content in files.items():
            path = self.author / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content)
        git("add", "--all", cwd=self.author)
        git("commit", "--quiet", "--message", message, cwd=self.author)
        git("push", "--quiet", "origin", f"HEAD:refs/heads/{self.branch}", cwd=self.author)
        return git("rev-parse", "HEAD", cwd=self.author)

    def rewrite_last_commit(self, files: dict[str, str]) -> str:
        """Replace the tip commit with a different one and force-push it; return the new sha."""
        for relative, content in files.items():
            (self.author / relative).write_text(content)
        git("add", "--all", cwd=self.author)
        git("commit", "--quiet", "--amend", "--message", "rewritten", cwd=self.author)
        git(
            "push",
            "--quiet",
            "--force",
            "origin",
            f"HEAD:refs/heads/{self.branch}",
            cwd=self.author,
        )
        return git("rev-parse", "HEAD", cwd=self.author)

    def tip(self, branch: str | None = None) -> str:
        return git("rev-parse", f"refs/heads/{branch or self.branch}", cwd=self.bare)


@pytest.fixture
def remote(tmp_path: Path) -> Remote:
    """A remote with one commit on main."""
    created = Remote(tmp_path / "remote-a")
    created.commit({"web/deployment.yaml": "kind: Deployment\n", "README": "ops\n"}, message="one")
    return created


@pytest.fixture
def repos_dir(tmp_path: Path) -> Path:
    return tmp_path / "repos"
