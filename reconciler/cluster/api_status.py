"""The message of a Status object, as the API server answers a refused request."""

from __future__ import annotations

import json
from typing import Any


def status_message(body: Any, *, reason: str) -> tuple[str, str]:
    """The message and reason of the Status object in an error answer's ``body`` (bytes or
    text); ``reason`` is the HTTP reason, kept when the body names none."""
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if isinstance(body, str) and body:
        try:
            status = json.loads(body)
        except ValueError:
            return body[:500], reason
        if isinstance(status, dict):
            message = str(status.get("message") or "")
            reason = str(status.get("reason") or reason)
            causes = (status.get("details") or {}).get("causes") or []
            fields = [
                str(c.get("message") or c.get("field"))
                for c in causes
                if isinstance(c, dict) and c.get("message") and str(c.get("message")) not in message
            ]
            if fields:
                message = f"{message} ({'; '.join(fields)})" if message else "; ".join(fields)
            return message, reason
    return "", reason
