"""Ops repo URLs: which ones are accepted, and how credentials are masked in them and in text."""

from __future__ import annotations

import pytest

from reconciler.errors import InputError
from reconciler.repos.urls import local_path, redact, redact_url, validate_repo_url


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://user:token@host/x.git", "https://***@host/x.git"),
        ("https://ghp_abcdef@github.com/acme/ops.git", "https://***@github.com/acme/ops.git"),
        ("https://host/x.git", "https://host/x.git"),
        ("ssh://git:pw@host:2222/x.git", "ssh://***@host:2222/x.git"),
        ("ssh://git@host/x.git", "ssh://***@host/x.git"),
        ("git@github.com:acme/ops.git", "***@github.com:acme/ops.git"),
        ("deploy:pw@host:ops.git", "***@host:ops.git"),
        ("https://u:p@ss/word@host/x.git", "https://***@host/x.git"),
        (
            "https://host/x.git?private_token=abc&ref=main&X-Amz-Signature=f00",
            "https://host/x.git?private_token=***&ref=main&X-Amz-Signature=***",
        ),
        ("/srv/git/ops.git", "/srv/git/ops.git"),
        ("file:///srv/git/ops.git", "file:///srv/git/ops.git"),
    ],
)
def test_redact_url_masks_credentials(url: str, expected: str) -> None:
    """redact_url masks user info in every URL form and credential-like query values."""
    assert redact_url(url) == expected


def test_redact_removes_the_url_and_its_secrets_from_text() -> None:
    """redact replaces the URL as written and its bare secrets, leaving other words alone."""
    url = "https://deployer:p%40ssw0rd@git.example.com/ops.git?access_token=t0k3n-value"
    text = (
        f"fatal: unable to access '{url}': nope\n"
        "password p@ssw0rd / p%40ssw0rd, deployer:p%40ssw0rd@elsewhere, token t0k3n-value\n"
        "git fetch origin"
    )

    redacted = redact(text, url=url)

    for secret in ("p@ssw0rd", "p%40ssw0rd", "t0k3n-value"):
        assert secret not in redacted
    assert "https://***@git.example.com/ops.git?access_token=***" in redacted
    assert "***@elsewhere" in redacted
    assert "git fetch origin" in redacted


def test_redact_keeps_text_for_urls_without_credentials() -> None:
    """redact leaves text untouched when the URL carries no credential."""
    text = "fatal: repository 'git@github.com:acme/ops.git' not found; git is fine"

    assert redact(text, url="/srv/git/ops.git") == text
    assert "git is fine" in redact(text, url="git@github.com:acme/ops.git")


@pytest.mark.parametrize(
    "url",
    [
        "https://github.com/acme/ops.git",
        "http://git.internal:8080/ops.git",
        "ssh://git@github.com:22/acme/ops.git",
        "git://git.internal/ops.git",
        "file:///srv/git/ops.git",
        "git@github.com:acme/ops.git",
        "github.com:acme/ops.git",
        "git@[::1]:ops.git",
        "/srv/git/ops.git",
    ],
)
def test_validate_repo_url_accepts_git_urls(url: str) -> None:
    """validate_repo_url accepts every supported URL form."""
    validate_repo_url(url)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("https://host/my ops.git", "spaces"),
        ("https://host/ops.git\n", "spaces"),
        ("ftp://host/ops.git", "unsupported scheme 'ftp'"),
        ("HTTPS://host/ops.git", "unsupported scheme"),
        ("ext::sh", "unsupported transport"),
        ("fd::17", "unsupported transport"),
        ("--upload-pack=touch", "starts with '-'"),
        ("https:///ops.git", "names no host"),
        ("file://", "names no path"),
        ("relative/ops", "not a git URL"),
        ("ssh://-oProxyCommand=touch%20x/ops.git", "starting with '-'"),
        ("ssh://-user@host/ops.git", "starting with '-'"),
        ("git@-oProxyCommand=x:ops.git", "starting with '-'"),
        ("ops.git", "not a git URL"),
    ],
)
def test_validate_repo_url_refuses_what_is_not_a_git_url(url: str, reason: str) -> None:
    """validate_repo_url raises InputError saying why the URL cannot be used."""
    with pytest.raises(InputError, match=reason):
        validate_repo_url(url)


def test_validate_repo_url_never_echoes_credentials() -> None:
    """A refused URL is shown redacted in the error."""
    with pytest.raises(InputError) as caught:
        validate_repo_url("ftp://user:hunter2-secret@host/ops.git")

    assert "hunter2-secret" not in str(caught.value)
    assert "ftp://***@host/ops.git" in str(caught.value)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("/srv/git/ops.git", "/srv/git/ops.git"),
        ("/srv/a:b/ops.git", "/srv/a:b/ops.git"),
        ("file:///srv/git/ops.git", "/srv/git/ops.git"),
        ("file:///srv/my%20ops%2Bx.git", "/srv/my ops+x.git"),
        ("file:///srv/~deploy/ops.git", "/srv/~deploy/ops.git"),
        ("file:///srv/bad%00.git", None),
        ("file://localhost/srv/ops.git", None),
        ("https://host/ops.git", None),
        ("ssh://git@host/ops.git", None),
        ("git://host/ops.git", None),
        ("git@github.com:acme/ops.git", None),
    ],
)
def test_local_path_is_the_directory_git_reads_locally(url: str, expected: str | None) -> None:
    """Paths and file:/// URLs (percent-decoded, no ~ expansion) are local; a NUL, a file://
    host and every network URL are not."""
    validate_repo_url(url)
    assert local_path(url) == expected
