"""Waiting in tests for a condition to hold, built on :func:`reconciler.retry.poll_until`."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from reconciler.retry import poll_until

_T = TypeVar("_T")

Probe = Callable[[], Awaitable[_T | None]] | Callable[[], _T | None]
Check = Callable[[], Awaitable[bool]] | Callable[[], bool]


async def wait_for_value(
    probe: Probe[_T], *, timeout_s: float, interval_s: float, failure: Callable[[], str]
) -> _T:
    """The first value ``probe()`` returns that is not None (nor False); when ``timeout_s``
    passes first, the test fails with ``failure()`` (called then, so it can name the last
    state seen)."""
    try:
        return await poll_until(probe, timeout_s=timeout_s, interval_s=interval_s)
    except TimeoutError:
        raise AssertionError(failure()) from None


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
    await wait_for_value(check, timeout_s=within, interval_s=interval_s, failure=lambda: message)
    return time.monotonic() - began


async def wait_until(
    condition: Check, *, timeout_s: float, what: str, interval_s: float = 0.1
) -> float:
    """Poll ``condition`` until it holds; returns how long that took.  Fails naming ``what``."""
    return await eventually(
        condition,
        within=timeout_s,
        message=f"timed out after {timeout_s:g}s waiting for {what}",
        interval_s=interval_s,
    )
