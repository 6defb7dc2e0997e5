"""Decoding watch stream lines: one JSON event per line, as kube-apiserver writes them.

Kept apart from :mod:`reconciler.cluster.kube` (which reads the lines off the wire) so the
decoding, and what an ERROR event turns into, need no client to test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any, Protocol

import aiohttp

from reconciler import jsoncodec
from reconciler.errors import KubernetesError, kubernetes_error

WATCH_EVENT_TYPES = frozenset({"ADDED", "MODIFIED", "DELETED", "BOOKMARK"})
"""The event types a watch yields; ERROR is raised instead."""


def decode_watch_line(line: bytes, *, what: str) -> dict[str, Any]:
    """The event ``{"type": ..., "object": {...}}`` on one line of a watch response.

    An ERROR event raises :class:`KubernetesError` with the Status it carries (410 Expired when
    the resourceVersion is too old: the caller must list again); a line that is not an event
    raises a transient one (status 0), since reconnecting is the only remedy.
    """
    try:
        event = jsoncodec.loads(line)
    except ValueError:
        raise _malformed(what, line) from None
    if not isinstance(event, dict) or not isinstance(event.get("object"), dict):
        raise _malformed(what, line)
    kind = event.get("type")
    if kind == "ERROR":
        raise watch_error(event["object"], what=what)
    if kind not in WATCH_EVENT_TYPES:
        raise _malformed(what, line)
    return {"type": kind, "object": event["object"]}


def watch_error(status: Mapping[str, Any], *, what: str) -> KubernetesError:
    """The error for the Status object of an ERROR event (410 Expired: list again)."""
    code = status.get("code")
    code = code if isinstance(code, int) else 0
    reason = str(status.get("reason") or "")
    if code == 410:
        # Both "Expired" and "Gone" say the same: the history is gone; callers test one reason.
        reason = "Expired"
    message = str(status.get("message") or "")
    return kubernetes_error(
        f"{what}: {code} {reason}: {message}".rstrip(": "), status=code, reason=reason
    )


def _malformed(what: str, line: bytes) -> KubernetesError:
    shown = line[:200].decode("utf-8", "replace").strip()
    return kubernetes_error(
        f"{what}: the API server sent a line that is not a watch event: {shown!r}",
        status=0,
        reason="BadWatchEvent",
    )


class LineSource(Protocol):
    """A response body read line by line (aiohttp's ``StreamReader``)."""

    async def readline(self) -> bytes: ...


async def read_watch_events(content: LineSource, *, what: str) -> AsyncIterator[dict[str, Any]]:
    """The events of a watch response until the server ends it; a connection that breaks
    raises a transient KubernetesError (status 0), as a failed request does."""
    while True:
        try:
            line = await content.readline()
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise kubernetes_error(
                f"{what}: the watch connection broke: {exc or type(exc).__name__}",
                status=0,
                reason="Unreachable",
            ) from exc
        if not line:
            return
        if line.strip():
            yield decode_watch_line(line, what=what)
