"""A commit reaches the cluster at once: git webhooks of each provider (and forged ones
refused), head checks without webhooks, `ops-repo sync`, and `run --once`; against real git,
PostgreSQL and fakekube.

Polling and head checks are set far beyond each test's deadline wherever the test shows that
something else (a webhook, a NOTIFY) made the sync happen.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest

from reconciler.cluster.kube import Kube
from reconciler.daemon import Daemon
from reconciler.model import Deployment
from reconciler.repo_sync import request_syncs
from reconciler.web.hook_payloads import sign
from tests.support.git_hooks import PROVIDERS, SECRET, hook_request, post_hook
from tests.support.pipeline import Pipeline
from tests.support.probes import EPHEMERAL, port_of
from tests.support.waiting import wait_until

FAR_OFF: dict[str, Any] = {"poll_interval_s": 300.0, "repo_check_interval_s": 3600.0}


def _healthy(d: Deployment) -> bool:
    return d.current_status == "healthy"


async def _serving(pipeline: Pipeline, **settings: Any) -> tuple[Daemon, int]:
    """A daemon serving webhooks with the test secret, its deployment app/prod healthy."""
    await pipeline.deploy("app")
    daemon = await pipeline.start_daemon(http_address=EPHEMERAL, **settings)
    await pipeline.wait_for("app", until=_healthy)
    return daemon, await port_of(daemon)


def _new_commit(pipeline: Pipeline, greeting: str) -> str:
    pipeline.ops.write_project("app", greeting=greeting)
    return pipeline.ops.commit(f"greeting {greeting}")


def _recording_sync_now(daemon: Daemon) -> list[Sequence[int]]:
    """Every sync_now the daemon is asked for, recorded before it runs."""
    calls: list[Sequence[int]] = []
    original = daemon.sync_now

    def recorded(repo_ids: Sequence[int]) -> None:
        calls.append(list(repo_ids))
        original(repo_ids)

    daemon.sync_now = recorded  # type: ignore[method-assign]
    return calls


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_push_webhook_syncs_and_deploys_at_once(pipeline: Pipeline, provider: str) -> None:
    """A signed push from each provider answers 202 naming the repo, and the new commit is
    rendered and applied without waiting for a poll or a head check."""
    _daemon, port = await _serving(pipeline, git_webhook_secret=SECRET, **FAR_OFF)
    sha = _new_commit(pipeline, f"hi-{provider}")
    headers, body = hook_request(provider, url=str(pipeline.ops.path), ref="main")
    status, answer = await post_hook(port, headers=headers, body=body)
    assert (status, answer["synced"], answer["branch"]) == (202, ["ops"], "main")
    deployed = await pipeline.wait_for("app", until=lambda d: d.current_sha == sha)
    assert deployed.current_status == "healthy"


@pytest.mark.parametrize(
    ("change", "status", "message"),
    [
        ({"secret": "a-forged-secret-0123456789"}, 401, "does not match"),
        ({"unsigned": True}, 401, "not signed"),
        ({"tampered": True}, 401, "does not match"),
        ({"body": b"{not json"}, 401, "does not match"),
    ],
)
async def test_forged_webhooks_are_refused_and_sync_nothing(
    pipeline: Pipeline, change: dict[str, object], status: int, message: str
) -> None:
    """A wrong secret, no signature or a body changed after signing: 401 with a JSON error
    naming the problem, and the daemon is asked to sync nothing."""
    daemon, port = await _serving(pipeline, git_webhook_secret=SECRET, **FAR_OFF)
    calls = _recording_sync_now(daemon)
    secret = str(change.get("secret", SECRET))
    headers, body = hook_request("github", url=str(pipeline.ops.path), secret=secret)
    if change.get("unsigned"):
        headers = {"X-GitHub-Event": "push"}
    if change.get("tampered"):
        body = body.replace(b"refs/heads/main", b"refs/heads/prod")
    if isinstance(change.get("body"), bytes):
        body = change["body"]  # type: ignore[assignment]
    answer_status, answer = await post_hook(port, headers=headers, body=body)
    assert answer_status == status
    assert message in answer["error"]
    assert SECRET not in answer["error"]
    assert calls == []


async def test_a_signed_malformed_body_is_400(pipeline: Pipeline) -> None:
    """A correctly signed body that is not JSON: 400 saying so, nothing synced."""
    daemon, port = await _serving(pipeline, git_webhook_secret=SECRET, **FAR_OFF)
    calls = _recording_sync_now(daemon)
    body = b"{not json"
    headers = {"X-Reconciler-Signature": "sha256=" + sign(body, SECRET)}
    status, answer = await post_hook(port, headers=headers, body=body)
    assert (status, "not JSON" in answer["error"], calls) == (400, True, [])


async def test_an_oversized_body_is_413_declared_or_streamed(pipeline: Pipeline) -> None:
    """Over 1 MiB is refused (413) whether Content-Length declares it or a chunked body
    streams it; nothing is synced."""
    daemon, port = await _serving(pipeline, git_webhook_secret=SECRET, **FAR_OFF)
    calls = _recording_sync_now(daemon)
    declared, answer = await _declared_too_large(port)

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(20):
            yield b"y" * 65536

    streamed, _ = await post_hook(port, headers={}, body=chunks())
    assert (declared, streamed, calls) == (413, 413, [])
    assert "larger than 1048576 bytes" in answer["error"]


async def _declared_too_large(port: int) -> tuple[int, dict[str, Any]]:
    """A request declaring 2 MiB (sending none of it): the answer comes from the header."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(
            b"POST /hooks/git HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
            b"Content-Length: 2097152\r\nConnection: close\r\n\r\n"
        )
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        body = await asyncio.wait_for(reader.readexactly(length), timeout=10)
    finally:
        writer.close()
    return int(head.split()[1]), json.loads(body)


async def test_webhooks_are_off_without_a_secret(pipeline: Pipeline) -> None:
    """No RECONCILER_GIT_WEBHOOK_SECRET: 503 saying webhooks are off and which setting turns
    them on."""
    _daemon, port = await _serving(pipeline, **FAR_OFF)
    headers, body = hook_request("github", url=str(pipeline.ops.path))
    status, answer = await post_hook(port, headers=headers, body=body)
    assert status == 503
    assert "RECONCILER_GIT_WEBHOOK_SECRET" in answer["error"]


@pytest.mark.parametrize(
    ("ref", "deleted", "url_suffix"),
    [("live", False, ""), ("refs/tags/v1", False, ""), ("main", True, ""), ("main", False, "2")],
)
async def test_a_push_matching_no_repo_answers_200_with_none(
    pipeline: Pipeline, ref: str, deleted: bool, url_suffix: str
) -> None:
    """Another branch, a tag, a branch deletion or another repository: 200, synced []."""
    daemon, port = await _serving(pipeline, git_webhook_secret=SECRET, **FAR_OFF)
    calls = _recording_sync_now(daemon)
    url = str(pipeline.ops.path) + url_suffix
    headers, body = hook_request("github", url=url, ref=ref, deleted=deleted)
    status, answer = await post_hook(port, headers=headers, body=body)
    assert (status, answer["synced"], calls) == (200, [], [])


async def test_without_a_webhook_a_new_commit_is_found_by_the_head_check(
    pipeline: Pipeline,
) -> None:
    """With the repo's sync interval far off, the head check every check interval (one
    ls-remote) finds the new commit, fetches it and deploys it."""
    await pipeline.store.update_ops_repo(name="ops", sync_interval_s=3600)
    await pipeline.deploy("app")
    await pipeline.start_daemon(poll_interval_s=300.0, repo_check_interval_s=0.5)
    await pipeline.wait_for("app", until=_healthy)
    sha = _new_commit(pipeline, "found-by-ls-remote")
    deployed = await pipeline.wait_for("app", until=lambda d: d.current_sha == sha)
    assert deployed.current_status == "healthy"


async def test_ops_repo_sync_fetches_and_deploys_at_once(pipeline: Pipeline) -> None:
    """`reconciler ops-repo sync` (its NOTIFY) makes the daemon fetch now and deploy the new
    commit, with polling and head checks far off."""
    await pipeline.deploy("app")
    await pipeline.start_daemon(**FAR_OFF)
    await pipeline.wait_for("app", until=_healthy)
    sha = _new_commit(pipeline, "synced-on-request")
    asked = await request_syncs(store=pipeline.store, names=["ops"], announce=lambda _n: None)
    assert [r.name for r in asked] == ["ops"]
    deployed = await pipeline.wait_for("app", until=lambda d: d.current_sha == sha)
    assert deployed.current_status == "healthy"


async def _run_once(pipeline: Pipeline) -> int:
    kube = await Kube.connect(kubeconfig=str(pipeline.kubeconfig))
    try:
        daemon = Daemon(store=pipeline.store, kube=kube, settings=pipeline.settings)
        return await asyncio.wait_for(daemon.run(once=True), timeout=60)
    finally:
        await kube.close()


async def test_run_once_fetches_a_repo_that_is_not_due(pipeline: Pipeline) -> None:
    """`run --once` after a commit deploys it, though the repo was synced a moment ago and
    its sync interval is an hour."""
    await pipeline.deploy("app")
    assert await _run_once(pipeline) == 0
    await pipeline.store.update_ops_repo(name="ops", sync_interval_s=3600)
    sha = _new_commit(pipeline, "once")
    pipeline.settings = dataclasses.replace(pipeline.settings, poll_interval_s=300.0)
    assert await _run_once(pipeline) == 0
    deployed = await pipeline.store.get_deployment(project="app", environment="prod")
    assert deployed is not None
    assert (deployed.current_sha, deployed.current_status) == (sha, "healthy")


async def test_ops_repo_set_path_renders_its_deployments_again(pipeline: Pipeline) -> None:
    """Moving the projects to a subdirectory (`ops-repo set --path`) renders the repo's
    deployments again from there."""
    await pipeline.deploy("app")
    await pipeline.start_daemon(**FAR_OFF)
    await pipeline.wait_for("app", until=_healthy)
    pipeline.ops.write_project("sub/app", greeting="from-sub")
    pipeline.ops.commit("projects under sub/")
    await pipeline.store.update_ops_repo(name="ops", path="sub")

    def from_sub() -> bool:
        config = pipeline.fakekube.get_object(
            api_version="v1", kind="ConfigMap", namespace="app-prod", name="app-config"
        )
        return config is not None and config["data"]["greeting"] == "from-sub"

    await wait_until(from_sub, timeout_s=20, what="the render from sub/")
