"""Fault injection knobs and the request log."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import Any, Literal

from .watch_drops import WatchDrops

ErrorKind = Literal["500", "429", "hang"]


@dataclass
class Faults:
    """Mutable knobs, read on every request and every controller step.

    ``latency_s`` delays every request; ``error_rate`` (0..1) answers that share of requests with
    one of ``error_kinds``: ``"500"`` (InternalError), ``"429"`` (TooManyRequests with
    ``Retry-After: retry_after_s``) or ``"hang"`` (no answer for ``hang_s``, then 504);
    ``throttle_rate`` (0..1) answers, before that, another share with 429.  ``down``
    answers every request 503 and ends open watches.  Pods whose image matches a pattern in
    ``crashloop_images`` go to CrashLoopBackOff and never become Ready; in ``missing_images``
    they go to ErrImagePull / ImagePullBackOff.  ``drop_watches`` ends open watch streams.
    """

    latency_s: float = 0.0
    error_rate: float = 0.0
    error_kinds: tuple[ErrorKind, ...] = ("500",)
    throttle_rate: float = 0.0
    retry_after_s: int = 1
    hang_s: float = 30.0
    down: bool = False
    crashloop_images: list[str] = field(default_factory=list)
    missing_images: list[str] = field(default_factory=list)
    #: The open watch streams (the watch handler registers them), for ``drop_watches``.
    open_watches: WatchDrops = field(default_factory=WatchDrops, repr=False, compare=False)

    def drop_watches(self, *, resource: str | None = None, after_events: int = 0) -> int:
        """Ends the open watches of ``resource`` (``plural`` or ``plural.group``; None: all)
        after ``after_events`` more events each (0: at once); returns how many were open.

        Clients see the response end, as when an apiserver restarts, and must watch again
        from the last resourceVersion they saw.  Watches opened later are not affected.
        """
        return self.open_watches.drop(resource=resource, after_events=after_events)

    def image_fault(self, image: str) -> Literal["crashloop", "missing"] | None:
        """Which fault, if any, a container running ``image`` suffers."""
        if any(fnmatch.fnmatchcase(image, pattern) for pattern in self.missing_images):
            return "missing"
        if any(fnmatch.fnmatchcase(image, pattern) for pattern in self.crashloop_images):
            return "crashloop"
        return None


@dataclass(frozen=True)
class RequestRecord:
    """One request as the server answered it."""

    time: float  # time.time() when the request arrived
    method: str
    path: str
    query: dict[str, Any]
    field_manager: str | None
    content_type: str | None
    status: int
    dry_run: bool
    duration_s: float = 0.0
    impersonated_user: str | None = None  # the Impersonate-User header, when the client sent one
    authorization: str | None = None  # the Authorization header (the credentials presented)
