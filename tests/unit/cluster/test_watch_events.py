"""Decoding watch lines: events pass through, ERROR becomes a KubernetesError, 410 is Expired."""

from __future__ import annotations

import json

import pytest

from reconciler.cluster.watch_events import decode_watch_line, read_watch_events
from reconciler.errors import KubernetesError


def line(event: object) -> bytes:
    """One watch line."""
    return json.dumps(event).encode() + b"\n"


def test_an_event_is_returned_as_type_and_object() -> None:
    """ADDED, MODIFIED, DELETED and BOOKMARK come back as ``{"type", "object"}``."""
    for kind in ("ADDED", "MODIFIED", "DELETED", "BOOKMARK"):
        event = {"type": kind, "object": {"metadata": {"resourceVersion": "7"}}}
        assert decode_watch_line(line(event), what="watch") == event


def test_an_expired_error_raises_410_expired() -> None:
    """The ERROR event of a compacted resourceVersion raises status 410, reason Expired, even
    when the Status says Gone."""
    for reason in ("Expired", "Gone"):
        status = {"kind": "Status", "code": 410, "reason": reason, "message": "too old: 5 (9)"}
        with pytest.raises(KubernetesError) as raised:
            decode_watch_line(line({"type": "ERROR", "object": status}), what="watch Pod")
        assert (raised.value.status, raised.value.reason) == (410, "Expired")
        assert "watch Pod" in str(raised.value) and "too old: 5 (9)" in str(raised.value)


def test_another_error_keeps_its_status() -> None:
    """An ERROR with another code raises that status (a 500 is transient)."""
    status = {"code": 500, "reason": "InternalError", "message": "etcd"}
    with pytest.raises(KubernetesError) as raised:
        decode_watch_line(line({"type": "ERROR", "object": status}), what="watch")
    assert raised.value.status == 500 and not raised.value.permanent


@pytest.mark.parametrize(
    "raw", [b"not json\n", b"[1]\n", line({"type": "ADDED"}), line({"type": "X", "object": {}})]
)
def test_a_line_that_is_no_event_is_a_transient_error(raw: bytes) -> None:
    """Garbage on the stream raises a transient error naming what was sent."""
    with pytest.raises(KubernetesError, match="not a watch event") as raised:
        decode_watch_line(raw, what="watch")
    assert raised.value.status == 0 and not raised.value.permanent


class Lines:
    """A response body of the given lines, then a broken connection or the end."""

    def __init__(self, *lines: bytes, breaks: bool = False) -> None:
        self.lines = list(lines)
        self.breaks = breaks

    async def readline(self) -> bytes:
        if self.lines:
            return self.lines.pop(0)
        if self.breaks:
            raise ConnectionResetError("reset by peer")
        return b""


async def test_reading_skips_blank_lines_and_stops_at_the_end() -> None:
    """Events are read until the body ends; keep-alive blank lines are skipped."""
    event = {"type": "ADDED", "object": {"metadata": {}}}
    events = [e async for e in read_watch_events(Lines(line(event), b"\n", line(event)), what="w")]
    assert events == [event, event]


async def test_a_broken_connection_is_a_transient_error() -> None:
    """A connection reset mid-stream raises a transient KubernetesError."""
    with pytest.raises(KubernetesError, match="connection broke") as raised:
        async for _ in read_watch_events(Lines(breaks=True), what="watch"):
            pass
    assert raised.value.status == 0 and not raised.value.permanent
