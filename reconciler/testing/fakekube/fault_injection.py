"""The request faults of ``Faults``: the API down, latency, and a share of failing requests."""

from __future__ import annotations

import asyncio
import random

from aiohttp import web

from .api_errors import ApiError
from .faults import Faults
from .http_io import status_response


async def injected_fault(faults: Faults, rng: random.Random) -> web.StreamResponse | None:
    """The answer a fault gives this request instead of serving it, or None to serve it."""
    if faults.down:
        return status_response(
            ApiError(503, "ServiceUnavailable", "the API server is down (fakekube faults.down)")
        )
    if faults.latency_s > 0:
        await asyncio.sleep(faults.latency_s)
    # No draw when the rate is 0, so seeded error sequences stay as they were.
    if faults.throttle_rate > 0 and rng.random() < faults.throttle_rate:
        return _throttled(faults, "throttle_rate")
    if not (faults.error_rate > 0 and rng.random() < faults.error_rate and faults.error_kinds):
        return None
    kind = rng.choice(faults.error_kinds)
    if kind == "429":
        return _throttled(faults, "error_rate")
    if kind == "hang":
        await asyncio.sleep(faults.hang_s)
        return status_response(
            ApiError(504, "Timeout", "the request hung (fakekube faults.error_rate)")
        )
    return status_response(
        ApiError(500, "InternalError", "an error on the server (fakekube faults.error_rate)")
    )


def _throttled(faults: Faults, knob: str) -> web.StreamResponse:
    """429 TooManyRequests with ``Retry-After``, as API priority and fairness answers."""
    return status_response(
        ApiError(
            429,
            "TooManyRequests",
            "the server has received too many requests and has asked us to try again "
            f"later (fakekube faults.{knob})",
            details={"retryAfterSeconds": faults.retry_after_s},
            headers={"Retry-After": str(faults.retry_after_s)},
        )
    )
