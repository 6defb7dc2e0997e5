"""Status conditions as controllers write them: transition times kept until the status flips."""

from __future__ import annotations

from typing import Any

from ..objects import now_iso


def condition(
    previous: list[dict[str, Any]] | None,
    kind: str,
    status: str,
    reason: str,
    message: str,
    *,
    update_time: bool = False,
    touch: bool = False,
) -> dict[str, Any]:
    """A condition that keeps lastTransitionTime unless its status flips.

    ``update_time`` adds lastUpdateTime (Deployment conditions have it), which moves when the
    reason or message changes, or when ``touch`` says progress happened.
    """
    now = now_iso()
    old = next((c for c in previous or () if c.get("type") == kind), None)
    result: dict[str, Any] = {"type": kind, "status": status}
    if update_time:
        same = (
            old is not None
            and old.get("status") == status
            and old.get("reason") == reason
            and old.get("message") == message
        )
        keep = same and not touch and old is not None and "lastUpdateTime" in old
        result["lastUpdateTime"] = old["lastUpdateTime"] if keep and old is not None else now
    if old is not None and old.get("status") == status and "lastTransitionTime" in old:
        result["lastTransitionTime"] = old["lastTransitionTime"]
    else:
        result["lastTransitionTime"] = now
    result["reason"] = reason
    result["message"] = message
    return result
