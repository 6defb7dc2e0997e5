"""Fault injection knobs and the request log."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import Any, Literal

ErrorKind = Literal["500", "429", "hang"]


@dataclass
class Faults:
    """Mutable knobs, read on every request and every controller step.

    ``latency_s`` delays every request; ``error_rate`` (0..1) answers that share of requests with
    one of ``error_kinds``: ``"500"`` (InternalError), ``"429"`` (TooManyRequests with
    ``Retry-After: retry_after_s``) or ``"hang"`` (no answer for ``hang_s``, then 504).  ``down``
    answers every request 503 and ends open watches.  Pods whose image matches a pattern in
    ``crashloop_images`` go to CrashLoopBackOff and never become Ready; in ``missing_images``
    they go to ErrImagePull / ImagePullBackOff.
    """

    latency_s: float = 0.0
    error_rate: float = 0.0
    error_kinds: tuple[ErrorKind, ...] = ("500",)
    retry_after_s: int = 1
    hang_s: float = 30.0
    down: bool = False
    crashloop_images: list[str] = field(default_factory=list)
    missing_images: list[str] = field(default_factory=list)

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
