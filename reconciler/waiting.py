"""Waiting for an applied set to be healthy: from the watch cache when there is one.

With a :class:`reconciler.ports.LiveView` the wait reads no API: it looks at the cache, then
sleeps until the watch reports a change to one of the objects or to a Pod of their namespaces.
A cached object older than what the apply returned (another uid, a lower generation) counts as
not seen yet, so the previous rollout's healthy status is never mistaken for this one's.
Without a view (the in-memory tests, a one-off CLI run) it polls the API as before.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from reconciler.cluster.health import HealthOutcome, wait_healthy
from reconciler.model import ObjectRef
from reconciler.ports import Cluster, LiveView

LIVE_RECHECK_S = 1.0
"""How long a wait on the cache sleeps without a change before it looks again (a cancel or a
supersede is noticed by then)."""

LIVE_SETTLE_S = 0.02
"""After a change wakes a wait, how long it lets the changes that travel with it arrive before
it looks (a Deployment's controller writes its status, a ReplicaSet and a Pod within
milliseconds): one look at them all instead of one each."""


def _newer_or_same(live: Mapping[str, Any], applied: Mapping[str, Any]) -> bool:
    seen, wanted = live.get("metadata") or {}, applied.get("metadata") or {}
    if seen.get("uid") != wanted.get("uid"):
        return False
    generation = wanted.get("generation")
    return not isinstance(generation, int) or (seen.get("generation") or 0) >= generation


async def wait_for_health(
    *,
    objects: Sequence[Mapping[str, Any]],
    applied: Sequence[Mapping[str, Any]],
    cluster: Cluster,
    live: LiveView | None,
    timeout_s: float,
    poll_interval_s: float,
    should_stop: Callable[[], Awaitable[bool]],
) -> HealthOutcome:
    """Until every object is healthy, one is degraded, time runs out or ``should_stop``."""
    refs = [ObjectRef.from_object(o) for o in objects]
    if live is None:
        return await wait_healthy(
            refs=refs,
            read_object=cluster.get,
            list_pods=cluster.list_pods,
            timeout_s=timeout_s,
            poll_interval_s=poll_interval_s,
            should_stop=should_stop,
        )
    view = live
    for ref in refs:
        view.track(ref.api_version, ref.kind)
    view.track("v1", "Pod")
    expected = {ref: result for ref, result in zip(refs, applied, strict=False)}
    namespaces = {ref.namespace for ref in refs if ref.namespace}

    async def read(ref: ObjectRef) -> dict[str, Any] | None:
        found = view.get(ref, managed_fields=False)  # health reads none of them
        wanted = expected.get(ref)
        if found is None or wanted is None or _newer_or_same(found, wanted):
            return found
        return None  # the watch has not brought this apply's version yet

    async def pods(namespace: str, selector: str) -> list[dict[str, Any]]:
        return view.pods(namespace, selector, managed_fields=False)

    async def pause(seconds: float) -> None:
        if await view.wait_changed(refs, namespaces, timeout_s=max(seconds, LIVE_RECHECK_S)):
            await asyncio.sleep(LIVE_SETTLE_S)

    return await wait_healthy(
        refs=refs,
        read_object=read,
        list_pods=pods,
        timeout_s=timeout_s,
        poll_interval_s=poll_interval_s,
        should_stop=should_stop,
        pause=pause,
        reads_can_hang=False,
    )
