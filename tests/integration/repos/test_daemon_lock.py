"""One daemon per repos directory: the lock a daemon holds for its lifetime."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from reconciler.errors import ConfigError
from reconciler.repos.layout import claim_repos_dir


def test_a_second_claim_is_refused_with_the_owner_pid(tmp_path: Path) -> None:
    """While one claim holds the directory, another is refused naming the dir and the pid."""
    repos_dir = tmp_path / "repos"
    with claim_repos_dir(repos_dir):
        with pytest.raises(ConfigError) as refused, claim_repos_dir(repos_dir):
            pass
        message = str(refused.value)
        assert f"RECONCILER_REPOS_DIR {repos_dir} is in use by another reconciler daemon" in message
        assert f"(pid {os.getpid()})" in message
        assert "give each daemon its own" in message


def test_the_claim_is_released_at_exit(tmp_path: Path) -> None:
    """Once the owner leaves (its context ends), the next daemon may claim the directory."""
    repos_dir = tmp_path / "repos"
    with claim_repos_dir(repos_dir):
        pass
    with claim_repos_dir(repos_dir):
        assert (repos_dir / ".daemon.lock").read_text().strip() == str(os.getpid())
