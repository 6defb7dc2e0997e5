"""Git webhooks, pure: signatures per provider, push payloads, URL normalisation, matching."""

from __future__ import annotations

import json

import pytest

from reconciler.model import OpsRepo
from reconciler.web.hook_payloads import (
    HookRefused,
    Provider,
    matching_repos,
    normalise_url,
    parse_push,
    sign,
    verify,
)
from tests.support.git_hooks import SECRET, hook_request

BODY = b'{"ref": "refs/heads/main"}'


def _repo(name: str, url: str, branch: str = "main") -> OpsRepo:
    return OpsRepo(
        id=hash(name) % 1000,
        name=name,
        repo_url=url,
        branch=branch,
        path="",
        sync_interval_s=60,
        last_synced_at=None,
        last_sha=None,
        last_error=None,
    )


@pytest.mark.parametrize("provider", ["github", "gitlab", "gitea", "forgejo", "generic"])
def test_each_providers_signature_verifies(provider: str) -> None:
    """A request signed as each provider signs verifies as that provider."""
    headers, body = hook_request(provider, url="https://git.example.com/o/ops.git")
    assert verify(headers, body, secret=SECRET) is Provider(provider)


@pytest.mark.parametrize("provider", ["github", "gitlab", "gitea", "forgejo", "generic"])
def test_a_wrong_secret_is_refused_naming_the_header(provider: str) -> None:
    """Signed with another secret: 401 naming the header that did not match."""
    headers, body = hook_request(
        provider, url="https://git.example.com/o/ops.git", secret="another-secret-of-16+"
    )
    with pytest.raises(HookRefused) as refused:
        verify(headers, body, secret=SECRET)
    assert refused.value.status == 401
    header = {
        "github": "X-Hub-Signature-256",
        "gitlab": "X-Gitlab-Token",
        "gitea": "X-Gitea-Signature",
        "forgejo": "X-Forgejo-Signature",
        "generic": "X-Reconciler-Signature",
    }[provider]
    assert header in refused.value.message
    assert SECRET not in refused.value.message


def test_a_tampered_body_is_refused() -> None:
    """The signature of one body does not pass for another."""
    headers, body = hook_request("github", url="https://git.example.com/o/ops.git")
    with pytest.raises(HookRefused) as refused:
        verify(headers, body.replace(b"main", b"prod"), secret=SECRET)
    assert refused.value.status == 401


def test_an_unsigned_request_is_refused_listing_the_headers() -> None:
    """No signature header at all: 401 listing what would be accepted."""
    with pytest.raises(HookRefused) as refused:
        verify({"X-GitHub-Event": "push"}, BODY, secret=SECRET)
    assert refused.value.status == 401
    assert "X-Hub-Signature-256" in refused.value.message


def test_a_github_signature_without_its_prefix_is_refused() -> None:
    """X-Hub-Signature-256 must say sha256=: the bare hex is refused."""
    with pytest.raises(HookRefused, match="sha256="):
        verify({"X-Hub-Signature-256": sign(BODY, SECRET)}, BODY, secret=SECRET)


@pytest.mark.parametrize("provider", ["github", "gitlab", "gitea", "forgejo", "generic"])
def test_a_branch_push_names_the_branch_and_urls(provider: str) -> None:
    """Each provider's push payload gives the branch and the repository's URLs."""
    headers, body = hook_request(provider, url="https://git.example.com/o/ops.git", ref="live")
    push = parse_push(verify(headers, body, secret=SECRET), headers, body)
    assert push.branch == "live"
    assert "https://git.example.com/o/ops.git" in push.urls


@pytest.mark.parametrize("provider", ["github", "gitlab", "gitea", "forgejo"])
def test_a_tag_push_and_a_branch_deletion_sync_nothing(provider: str) -> None:
    """refs/tags/... and a push whose after is all zeros (or deleted) name no branch."""
    url = "https://git.example.com/o/ops.git"
    tag_headers, tag_body = hook_request(provider, url=url, ref="refs/tags/v1")
    if provider == "gitlab":
        tag_headers["X-Gitlab-Event"] = "Tag Push Hook"
    tag = parse_push(verify(tag_headers, tag_body, secret=SECRET), tag_headers, tag_body)
    headers, body = hook_request(provider, url=url, ref="main", deleted=True)
    deletion = parse_push(verify(headers, body, secret=SECRET), headers, body)
    assert (tag.branch, deletion.branch) == (None, None)
    assert matching_repos(deletion, [_repo("ops", url)]) == []


def test_a_github_ping_syncs_nothing() -> None:
    """The ping GitHub sends when a hook is created verifies and names no branch."""
    body = json.dumps({"zen": "Design for failure.", "hook_id": 1}).encode()
    headers = {"X-GitHub-Event": "ping", "X-Hub-Signature-256": "sha256=" + sign(body, SECRET)}
    push = parse_push(verify(headers, body, secret=SECRET), headers, body)
    assert (push.event, push.branch, push.syncs) == ("ping", None, False)


def test_a_form_encoded_github_payload_is_read() -> None:
    """GitHub's application/x-www-form-urlencoded delivery carries the JSON in 'payload'."""
    from urllib.parse import urlencode

    payload = json.dumps(
        {"ref": "refs/heads/main", "after": "a" * 40, "repository": {"clone_url": "/srv/ops"}}
    )
    body = urlencode({"payload": payload}).encode()
    headers = {"X-GitHub-Event": "push", "X-Hub-Signature-256": "sha256=" + sign(body, SECRET)}
    push = parse_push(
        Provider.GITHUB, headers, body, content_type="application/x-www-form-urlencoded"
    )
    assert (push.branch, push.urls) == ("main", ("/srv/ops",))


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"not json", "not JSON"),
        (b"[1, 2]", "JSON object"),
        (b"\xff\xfe", "UTF-8"),
        (b'{"repository": {}}', "'ref'"),
    ],
)
def test_a_malformed_payload_is_400_naming_what_is_wrong(body: bytes, message: str) -> None:
    """A body that is not the provider's JSON object is refused (400) saying why."""
    with pytest.raises(HookRefused) as refused:
        parse_push(Provider.GITHUB, {"X-GitHub-Event": "push"}, body)
    assert refused.value.status == 400
    assert message in refused.value.message


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"repo_url": "https://h/o.git"}, "'branch'"),
        ({"branch": "main"}, "'repo_url'"),
        ({"repo_url": "https://h/o.git", "branch": "main", "extra": 1}, "'extra'"),
        ({"repo_url": 5, "branch": "main"}, "'repo_url'"),
    ],
)
def test_a_generic_body_needs_repo_url_and_branch(body: dict[str, object], message: str) -> None:
    """The generic form takes exactly repo_url and branch, both strings."""
    with pytest.raises(HookRefused) as refused:
        parse_push(Provider.GENERIC, {}, json.dumps(body).encode())
    assert (refused.value.status, message in refused.value.message) == (400, True)


def test_a_push_without_its_event_header_is_400() -> None:
    """A signed GitHub request with no X-GitHub-Event is malformed."""
    with pytest.raises(HookRefused, match="X-GitHub-Event"):
        parse_push(Provider.GITHUB, {}, BODY)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("https://GitHub.com/Org/ops.git", "https://github.com/Org/ops"),
        ("https://github.com/org/ops/", "https://github.com/org/ops.git"),
        ("git@github.com:org/ops.git", "https://github.com/org/ops"),
        ("ssh://git@github.com/org/ops.git", "git@github.com:org/ops"),
        ("https://token:x@github.com:443/org/ops.git", "https://github.com/org/ops"),
        ("/srv/git/ops.git/", "/srv/git/ops"),
        ("file:///srv/git/ops.git", "/srv/git/ops"),
    ],
)
def test_urls_of_one_repository_normalise_alike(a: str, b: str) -> None:
    """Case of scheme and host, .git, a trailing slash, credentials, default ports and the
    transport do not tell two URLs of one repository apart."""
    assert normalise_url(a) == normalise_url(b)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("https://github.com/org/ops", "https://github.com/org/ops2"),
        ("https://github.com/Org/ops", "https://github.com/org/ops"),
        ("https://github.com/org/ops", "https://gitlab.com/org/ops"),
        ("https://github.com:8443/org/ops", "https://github.com/org/ops"),
    ],
)
def test_urls_of_different_repositories_stay_apart(a: str, b: str) -> None:
    """Another path (paths keep their case), host or port is another repository."""
    assert normalise_url(a) != normalise_url(b)


def test_matching_takes_url_and_branch() -> None:
    """A push syncs the repos at one of its URLs on the pushed branch, no others."""
    headers, body = hook_request("gitlab", url="https://gitlab.example.com/o/ops.git", ref="main")
    push = parse_push(Provider.GITLAB, headers, body)
    repos = [
        _repo("ssh", "git@gitlab.example.com:o/ops.git"),
        _repo("https", "https://gitlab.example.com/o/ops"),
        _repo("other-branch", "https://gitlab.example.com/o/ops.git", branch="live"),
        _repo("other-repo", "https://gitlab.example.com/o/web.git"),
    ]
    assert [r.name for r in matching_repos(push, repos)] == ["ssh", "https"]


def test_a_gitlab_system_hook_push_is_a_push() -> None:
    """GitLab's system hooks send pushes as "System Hook" with object_kind push."""
    headers, body = hook_request("gitlab", url="https://gitlab.example.com/o/ops.git", ref="main")
    headers["X-Gitlab-Event"] = "System Hook"
    assert parse_push(Provider.GITLAB, headers, body).branch == "main"
