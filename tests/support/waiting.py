"""Waiting in tests for a condition to hold, built on :func:`reconciler.retry.poll_until`."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from reconciler.retry import poll_until

Check = Callable[[], Awaitable[bool]] | Callable[[], bool]


async def eventually(
    check: Check,
    *,
    within: float = 10.0,
    message: str = "condition never held",
    interval_s: float = 0.02,
) -> float:
    """Wait until ``check`` (plain or async) holds; returns how long that took.  Fails with
    ``message``."""
    began = time.monotonic()
    try:
        await poll_until(check, timeout_s=within, interval_s=interval_s)
    except TimeoutError:
        raise AssertionError(message) from None
    return time.monotonic() - began
