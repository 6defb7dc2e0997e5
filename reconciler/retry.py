"""One backoff, one retry loop and one poll-until, used everywhere something is tried again."""

from __future__ import annotations

import asyncio
import inspect
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar, overload

_T = TypeVar("_T")

Sleep = Callable[[float], Awaitable[object]]
RetryDecision = Callable[[BaseException, int], "float | None"]
"""Given the failure and the attempt number (1-based): the delay before the next attempt, or
None to give up and let the failure propagate."""


@dataclass(frozen=True, kw_only=True)
class Backoff:
    """Exponential backoff with jitter: ``base_s * 2**(n-1)``, capped at ``max_s``.

    Jitter takes a random fraction in ``[jitter, 1.0)`` of the delay, so that many waiters who
    failed together do not come back together.
    """

    base_s: float
    max_s: float
    jitter: float = 0.5

    def delay(self, attempt: int, *, rng: random.Random | None = None) -> float:
        """The delay after the ``attempt``-th failure (1-based)."""
        exponent = min(max(attempt, 1) - 1, 63)
        ceiling = min(self.max_s, self.base_s * 2.0**exponent)
        return ceiling * (rng or random).uniform(self.jitter, 1.0)

    def unjittered(self, attempt: int) -> float:
        """The delay's ceiling after the ``attempt``-th failure."""
        return min(self.max_s, self.base_s * 2.0 ** min(max(attempt, 1) - 1, 63))


async def retry(
    call: Callable[[], Awaitable[_T]],
    *,
    decide: RetryDecision,
    catch: tuple[type[BaseException], ...] = (Exception,),
    sleep: Sleep = asyncio.sleep,
) -> _T:
    """Await ``call()`` until it succeeds or ``decide`` gives up on a failure it raised."""
    attempt = 0
    while True:
        attempt += 1
        try:
            return await call()
        except catch as exc:
            delay = decide(exc, attempt)
            if delay is None:
                raise
        await sleep(delay)


@overload
async def poll_until(
    probe: Callable[[], Awaitable[_T | None]],
    *,
    timeout_s: float,
    interval_s: float,
    sleep: Sleep = ...,
) -> _T: ...


@overload
async def poll_until(
    probe: Callable[[], _T | None],
    *,
    timeout_s: float,
    interval_s: float,
    sleep: Sleep = ...,
) -> _T: ...


async def poll_until(
    probe: Callable[[], Any],
    *,
    timeout_s: float,
    interval_s: float,
    sleep: Sleep = asyncio.sleep,
) -> Any:
    """The first value ``probe()`` returns that is not None (nor False); TimeoutError after
    ``timeout_s``.  ``probe`` may be a plain or an async function."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = probe()
        if inspect.isawaitable(value):
            value = await value
        if value is not None and value is not False:
            return value
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"not reached within {timeout_s:g}s")
        await sleep(min(interval_s, remaining))
