"""Turn a folder into a git repository that can be registered as an ops repo."""

from __future__ import annotations

import shutil
from pathlib import Path

from reconciler.repos.git import run_untimed
from reconciler.repos.layout import remove_path

__all__ = ["publish_directory"]


def publish_directory(*, source: Path, repo: Path, message: str) -> str:
    """Make ``repo`` a git repository whose ``main`` branch holds a copy of ``source``, with a new
    commit when the content changed.  Returns the URL to register (its absolute path).

    For ``reconciler demo`` and tests: it turns a folder such as ``ops_repos_example`` into an
    ops repo the daemon can clone and fetch like any remote.
    """
    repo.mkdir(parents=True, exist_ok=True)
    identity = ["-c", "user.name=reconciler", "-c", "user.email=reconciler@localhost"]
    if not (repo / ".git").is_dir():
        run_untimed(["init", "-q", "-b", "main"], cwd=repo)
    for child in repo.iterdir():
        if child.name != ".git":
            remove_path(child)
    shutil.copytree(source, repo, dirs_exist_ok=True)
    run_untimed(["add", "-A"], cwd=repo)
    if run_untimed(["status", "--porcelain"], cwd=repo):
        run_untimed([*identity, "commit", "-q", "-m", message], cwd=repo)
    return str(repo.resolve())
