"""Small boundaries: terminal output and database URLs."""

from __future__ import annotations

import pytest

from reconciler.db import describe_url
from reconciler.errors import ConfigError
from reconciler.output import format_table
from reconciler.settings import from_env


def test_terminal_escapes_are_shown_not_sent() -> None:
    """A value holding terminal escape sequences (an image_ref a pipeline wrote) is printed
    with its control characters escaped."""
    table = format_table([{"image": "reg/web:1\x1b[2J\x1b[31mOWNED\x07"}])
    assert "\x1b" not in table
    assert "\x07" not in table
    assert "reg/web:1\\x1b[2J\\x1b[31mOWNED\\x07" in table


@pytest.mark.parametrize(
    "url", ["postgresql://app:s3cr#et@db:5432/deploys", "postgresql://app:s3cret@db:port/deploys"]
)
def test_a_malformed_database_url_is_refused_without_showing_it(url: str) -> None:
    """A DATABASE_URL that does not parse is refused with advice, never echoed (its password
    would be)."""
    with pytest.raises(ConfigError) as refused:
        from_env({"DATABASE_URL": url})
    assert str(refused.value) == (
        "DATABASE_URL is not a valid URL: percent-encode special characters in the user name "
        "and password ('#' as %23, '@' as %40, '/' as %2F, ':' as %3A)"
    )
    assert "s3cr" not in str(refused.value)


def test_a_percent_encoded_password_is_accepted() -> None:
    """A password with %23 for '#' is a valid DATABASE_URL."""
    url = "postgresql://app:pa%23ss@db:5432/deploys"
    assert from_env({"DATABASE_URL": url}).database_url == url


def test_describing_an_unparsable_url_never_raises() -> None:
    """Messages name where a URL points; one that cannot be parsed is named as such."""
    assert describe_url("postgresql://app:pw@db:port/x") == "(a URL that cannot be parsed)"
