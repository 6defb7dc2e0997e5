"""``POST /hooks/git``: a git host says a branch moved, and the daemon fetches it now.

The request is verified (``reconciler.web.hook_payloads``) before anything is parsed or read
from the database; the body is read with a cap, never buffered whole first.  A verified push
makes the daemon fetch, at once, every registered ops repo whose URL and branch it names, and
re-render the deployments the new commit concerns; the answer (202) names those repos, or is
200 with an empty list when none match.  Without ``RECONCILER_GIT_WEBHOOK_SECRET`` (or ``_FILE``)
the endpoint answers 503: webhooks are off.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from typing import Any, Protocol

from aiohttp import web

from reconciler.errors import ReconcilerError
from reconciler.logs import get_logger
from reconciler.ports import DaemonStore
from reconciler.settings import Settings
from reconciler.web.hook_payloads import HookRefused, matching_repos, parse_push, verify

__all__ = ["HOOK_PATH", "MAX_BODY_BYTES", "HookTarget", "add_git_hooks"]

log = get_logger("http")

HOOK_PATH = "/hooks/git"
MAX_BODY_BYTES = 1024 * 1024
"""Larger bodies are refused (413): a push payload is a few KiB."""

_CHUNK_BYTES = 64 * 1024


class HookTarget(Protocol):
    """What the endpoint needs of the daemon (``reconciler.daemon.Daemon``)."""

    settings: Settings
    store: DaemonStore

    def sync_now(self, repo_ids: Sequence[int]) -> None:
        """Fetch these ops repos at once."""
        ...


def add_git_hooks(app: web.Application, daemon: HookTarget) -> None:
    """Serve ``POST /hooks/git`` on ``app`` for ``daemon``."""
    app.router.add_post(HOOK_PATH, functools.partial(_hook, daemon))


def _answer(status: int, **body: Any) -> web.Response:
    return web.Response(
        status=status, text=json.dumps(body) + "\n", content_type="application/json"
    )


async def _hook(daemon: HookTarget, request: web.Request) -> web.Response:
    secret = daemon.settings.git_webhook_secret
    if secret is None:
        return _answer(
            503,
            error="git webhooks are off: set RECONCILER_GIT_WEBHOOK_SECRET or "
            "RECONCILER_GIT_WEBHOOK_SECRET_FILE on the daemon",
        )
    try:
        body = await _read_capped(request)
        provider = verify(request.headers, body, secret=secret)
        push = parse_push(provider, request.headers, body, content_type=request.content_type)
    except HookRefused as refused:
        log.warning(
            "git_hook_refused", status=refused.status, reason=refused.message, remote=request.remote
        )
        return _answer(refused.status, error=refused.message)
    try:
        repos = await daemon.store.list_ops_repos()
    except ReconcilerError as exc:
        log.warning("git_hook_unserved", error=str(exc))
        return _answer(503, error=f"cannot read the ops repos: {exc}")
    matched = matching_repos(push, repos)
    if matched:
        daemon.sync_now([r.id for r in matched])
    names = [r.name for r in matched]
    log.info(
        "git_hook",
        provider=provider.value,
        hook_event=push.event,
        branch=push.branch,
        synced=names,
    )
    return _answer(202 if matched else 200, event=push.event, branch=push.branch, synced=names)


async def _read_capped(request: web.Request) -> bytes:
    """The body, read in chunks and refused (413) once it exceeds :data:`MAX_BODY_BYTES`."""
    too_large = HookRefused(413, f"the body is larger than {MAX_BODY_BYTES} bytes")
    declared = request.content_length
    if declared is not None and declared > MAX_BODY_BYTES:
        raise too_large
    body = bytearray()
    while chunk := await request.content.read(_CHUNK_BYTES):
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise too_large
    return bytes(body)
