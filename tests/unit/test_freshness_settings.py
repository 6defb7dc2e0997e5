"""The settings of git webhooks and freshness: the secret (inline or from a file), the check
interval, and tables cut or wide."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.errors import ConfigError
from reconciler.output import format_table
from reconciler.settings import from_env

SECRET = "0123456789abcdef-secret"


def test_the_secret_comes_from_the_environment_and_never_shows_in_a_repr() -> None:
    """RECONCILER_GIT_WEBHOOK_SECRET is the secret; the settings' repr leaves it out."""
    settings = from_env({"RECONCILER_GIT_WEBHOOK_SECRET": SECRET})
    assert settings.git_webhook_secret == SECRET
    assert SECRET not in repr(settings)


def test_the_secret_file_is_read_and_its_newline_dropped(tmp_path: Path) -> None:
    """RECONCILER_GIT_WEBHOOK_SECRET_FILE names a file holding the secret (as a mounted Secret)."""
    path = tmp_path / "secret"
    path.write_text(SECRET + "\n")
    assert from_env({"RECONCILER_GIT_WEBHOOK_SECRET_FILE": str(path)}).git_webhook_secret == SECRET


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"RECONCILER_GIT_WEBHOOK_SECRET": "short"}, "is 5 characters long; use at least 16"),
        ({"RECONCILER_GIT_WEBHOOK_SECRET_FILE": "/nonexistent/secret"}, "No such file"),
        (
            {
                "RECONCILER_GIT_WEBHOOK_SECRET": SECRET,
                "RECONCILER_GIT_WEBHOOK_SECRET_FILE": "/dev/null",
            },
            "not both",
        ),
        ({"RECONCILER_REPO_CHECK_INTERVAL_S": "0"}, "RECONCILER_REPO_CHECK_INTERVAL_S"),
    ],
)
def test_bad_values_are_refused_without_echoing_the_secret(
    env: dict[str, str], message: str
) -> None:
    """A short secret, an unreadable file, both set, or a check interval of 0: refused by
    name, the secret itself never echoed."""
    with pytest.raises(ConfigError) as refused:
        from_env(env)
    assert message in str(refused.value)
    assert SECRET not in str(refused.value) and "short" not in str(refused.value)[:40]


def test_unset_means_webhooks_off_and_checks_every_poll_interval() -> None:
    """No secret: webhooks are off; no check interval: the daemon uses the poll interval."""
    settings = from_env({})
    assert (settings.git_webhook_secret, settings.repo_check_interval_s) == (None, None)


def test_tables_cut_long_cells_unless_wide() -> None:
    """format_table cuts a cell at 100 characters; wide keeps it whole."""
    row = [{"message": "x" * 150 + "END"}]
    assert "END" not in format_table(row)
    assert "x" * 150 + "END" in format_table(row, wide=True)
