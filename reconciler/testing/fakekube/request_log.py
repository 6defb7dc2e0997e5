"""The request log: one RequestRecord per request, written once its answer is known."""

from __future__ import annotations

import time
from typing import Protocol

from aiohttp import web

from .faults import Faults, RequestRecord


class ServerSettings(Protocol):
    """What the server reads on every request (FakeKube provides it)."""

    faults: Faults
    request_log: list[RequestRecord]
    request_log_limit: int | None
    bookmark_interval_s: float  # how often watches that allow bookmarks get one


class RequestRecorder:
    """Records one request: when a watch starts streaming, or else when the answer is done."""

    def __init__(self, settings: ServerSettings, request: web.Request, started: float) -> None:
        self.settings = settings
        self.request = request
        self.started = started
        self.recorded = False

    def record(self, status: int) -> None:
        """Appends the record (once; later calls do nothing)."""
        if self.recorded:
            return
        self.recorded = True
        request = self.request
        query = dict(request.query)
        log = self.settings.request_log
        limit = self.settings.request_log_limit
        if limit is not None and len(log) >= 2 * limit:
            # Trimming in halves keeps appends cheap on average.
            del log[:-limit]
        log.append(
            RequestRecord(
                time=self.started,
                method=request.method,
                path=request.path,
                query=query,
                field_manager=query.get("fieldManager"),
                content_type=request.headers.get("Content-Type"),
                status=status,
                dry_run=query.get("dryRun") == "All",
                duration_s=time.time() - self.started,
                impersonated_user=request.headers.get("Impersonate-User"),
                authorization=request.headers.get("Authorization"),
            )
        )
