"""Webhook deliveries as each git host sends them (headers and body), for the tests of
``POST /hooks/git``."""

from __future__ import annotations

import json
from typing import Any

from reconciler.web.hook_payloads import sign

SECRET = "a-webhook-secret-for-tests-0123456789"
PROVIDERS = ("github", "gitlab", "gitea", "forgejo", "generic")
_ZERO = "0" * 40


def _github_like(url: str, ref: str, after: str, deleted: bool) -> dict[str, Any]:
    # GitHub's push payload; Gitea and Forgejo send the same shape.
    return {
        "ref": ref,
        "before": "1" * 40,
        "after": after,
        "deleted": deleted,
        "repository": {
            "full_name": "o/ops",
            "clone_url": url,
            "ssh_url": "git@git.example.com:o/ops.git",
            "html_url": url.removesuffix(".git"),
        },
        "commits": [],
    }


def _gitlab(url: str, ref: str, after: str) -> dict[str, Any]:
    return {
        "object_kind": "tag_push" if ref.startswith("refs/tags/") else "push",
        "ref": ref,
        "before": "1" * 40,
        "after": after,
        "checkout_sha": None if after == _ZERO else after,
        "project": {
            "path_with_namespace": "o/ops",
            "git_http_url": url,
            "git_ssh_url": "git@git.example.com:o/ops.git",
            "web_url": url.removesuffix(".git"),
        },
        "repository": {"url": "git@git.example.com:o/ops.git", "git_http_url": url},
        "commits": [],
    }


def hook_request(
    provider: str,
    *,
    url: str,
    ref: str = "main",
    secret: str = SECRET,
    deleted: bool = False,
    after: str = "a" * 40,
) -> tuple[dict[str, str], bytes]:
    """Headers and body of a push of ``ref`` (a branch name, or a full ``refs/...``) to the
    repository at ``url``, signed with ``secret`` as ``provider`` signs."""
    full_ref = ref if ref.startswith("refs/") else f"refs/heads/{ref}"
    after = _ZERO if deleted else after
    if provider == "generic":
        body = json.dumps({"repo_url": url, "branch": ref}).encode()
        return {"X-Reconciler-Signature": "sha256=" + sign(body, secret)}, body
    if provider == "gitlab":
        body = json.dumps(_gitlab(url, full_ref, after)).encode()
        return {"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": secret}, body
    body = json.dumps(_github_like(url, full_ref, after, deleted)).encode()
    signature = sign(body, secret)
    if provider == "github":
        return {"X-GitHub-Event": "push", "X-Hub-Signature-256": "sha256=" + signature}, body
    headers = {
        "X-GitHub-Event": "push",
        "X-Gitea-Event": "push",
        "X-Gitea-Signature": signature,
        "X-Gogs-Event": "push",
    }
    if provider == "forgejo":
        headers |= {"X-Forgejo-Event": "push", "X-Forgejo-Signature": signature}
    return headers, body


async def post_hook(
    port: int, *, headers: dict[str, str], body: bytes | Any
) -> tuple[int, dict[str, Any]]:
    """POST a delivery to the daemon's ``/hooks/git``: the status and the JSON answer."""
    import aiohttp

    timeout = aiohttp.ClientTimeout(total=10)
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.post(
            f"http://127.0.0.1:{port}/hooks/git",
            data=body,
            headers={"Content-Type": "application/json", **headers},
        ) as response,
    ):
        answer: dict[str, Any] = await response.json(content_type=None)
        return response.status, answer
