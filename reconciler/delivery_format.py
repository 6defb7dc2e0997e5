"""Outgoing webhooks, the pure part: request bodies, signatures, and what follows an attempt.

A body is the event of ``reconciler_events`` as JSON (format ``json``) or a Slack-compatible
``{"text": ...}`` (format ``slack``).  With a secret, ``X-Reconciler-Signature`` is
``sha256=<hex HMAC-SHA256 of "<timestamp>." + body>``, where the timestamp (Unix seconds) is
``X-Reconciler-Timestamp``: signing both lets a receiver refuse a replayed request whose
timestamp is old, since changing the timestamp breaks the signature.  No I/O here.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from reconciler.errors import InputError
from reconciler.model import CurrentStatus
from reconciler.retry import Backoff

FORMATS = ("json", "slack")
STATUSES = tuple(status.value for status in CurrentStatus)
"""What a webhook's status filter may name: the statuses a transition goes to."""

SIGNATURE_HEADER = "X-Reconciler-Signature"
TIMESTAMP_HEADER = "X-Reconciler-Timestamp"
DELIVERY_HEADER = "X-Reconciler-Delivery"
"""The delivery's id: the same on every retry, so a receiver can drop a duplicate."""
USER_AGENT = "reconciler-webhooks/1"

DeliveryStatus = Literal["pending", "delivered", "failed"]

_SLUG = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
_HTTP_URL = re.compile(r"https?://[^/?#\s\x00-\x1f\x7f]+([/?#]\S*)?", re.IGNORECASE)
_MAX_URL = 2048


def check_webhook(*, name: str, url: str, format: str, statuses: tuple[str, ...] | None) -> None:
    """InputError naming the first bad field of a webhook about to be registered (the table's
    CHECKs say the same, for writers in psql)."""
    if not _SLUG.fullmatch(name):
        raise InputError(
            f"webhook name {name!r} must be a slug: lowercase letters, digits and '-', "
            "at most 63 characters, starting and ending with a letter or digit"
        )
    if len(url) > _MAX_URL or not _HTTP_URL.fullmatch(url) or not url.isprintable():
        raise InputError(
            f"webhook {name}: the URL must be http:// or https:// with a host, without spaces "
            f"or control characters, at most {_MAX_URL} characters"
        )
    if format not in FORMATS:
        raise InputError(f"webhook {name}: format {format!r} is not one of {', '.join(FORMATS)}")
    unknown = [status for status in statuses or () if status not in STATUSES]
    if unknown:
        raise InputError(
            f"webhook {name}: unknown status {', '.join(map(repr, unknown))} "
            f"(known: {', '.join(STATUSES)})"
        )


def body_for(format: str, event: Mapping[str, Any]) -> bytes:
    """The request body of ``event`` in ``format`` (``json`` or ``slack``); ValueError for
    another format."""
    if format == "json":
        return json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode()
    if format == "slack":
        return json.dumps({"text": slack_text(event)}, ensure_ascii=False).encode()
    raise ValueError(f"unknown webhook format {format!r} (known: {', '.join(FORMATS)})")


def slack_text(event: Mapping[str, Any]) -> str:
    """``web/prod: syncing -> healthy, reg/web:1, <message>`` with Slack's markup characters
    escaped (a message holding ``<!channel>`` must not ping anyone)."""
    image = event.get("current_image_ref") or event.get("image_ref") or "no image"
    parts = [
        f"{event.get('project')}/{event.get('environment')}: "
        f"{event.get('from')} -> {event.get('to')}",
        str(image),
    ]
    message = str(event.get("message") or "")
    if message:
        parts.append(message + (" (cut)" if event.get("message_truncated") else ""))
    return _slack_escape(", ".join(parts))


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def signature(*, secret: str, timestamp: int, body: bytes) -> str:
    """``sha256=<hex>``: the HMAC-SHA256, keyed by ``secret``, of ``"<timestamp>." + body``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def request_headers(
    *, body: bytes, secret: str | None, timestamp: int, delivery_id: int
) -> dict[str, str]:
    """The headers of one POST: content type, delivery id, timestamp, and the signature when
    the webhook has a secret."""
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        DELIVERY_HEADER: str(delivery_id),
        TIMESTAMP_HEADER: str(timestamp),
    }
    if secret is not None:
        headers[SIGNATURE_HEADER] = signature(secret=secret, timestamp=timestamp, body=body)
    return headers


def verify(
    *,
    secret: str,
    body: bytes,
    headers: Mapping[str, str],
    now: float,
    tolerance_s: float = 300.0,
) -> bool:
    """What a receiver checks: the signature matches and the timestamp is within
    ``tolerance_s`` of ``now`` (older requests are replays)."""
    raw = headers.get(TIMESTAMP_HEADER, "")
    if not raw.isdigit() or abs(now - int(raw)) > tolerance_s:
        return False
    expected = signature(secret=secret, timestamp=int(raw), body=body)
    return hmac.compare_digest(expected, headers.get(SIGNATURE_HEADER, ""))


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """How often a delivery is tried, and how long apart (doubling, with jitter)."""

    max_attempts: int
    base_s: float
    max_s: float


@dataclass(frozen=True, kw_only=True)
class Verdict:
    """What an attempt's answer makes of the delivery."""

    status: DeliveryStatus
    retry_in_s: float | None
    """With ``pending``: how long until the next attempt."""


def after_attempt(
    *, code: int | None, attempts: int, policy: RetryPolicy, rng: random.Random | None = None
) -> Verdict:
    """A 2xx answer delivers; anything else (another code, ``None`` for no answer) retries
    after a backoff, until ``attempts`` reaches the policy's maximum: then it failed."""
    if code is not None and 200 <= code < 300:
        return Verdict(status="delivered", retry_in_s=None)
    if attempts >= policy.max_attempts:
        return Verdict(status="failed", retry_in_s=None)
    backoff = Backoff(base_s=policy.base_s, max_s=policy.max_s)
    return Verdict(status="pending", retry_in_s=backoff.delay(attempts, rng=rng))
