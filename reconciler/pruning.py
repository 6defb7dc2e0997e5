"""Removing what a deployment owns: prune after a healthy rollout, delete on request.

Only objects in the deployment's inventory that still carry its owner labels are ever deleted: an
object someone else created under the same name, or one relabelled away, is let go from the
inventory instead.  ``reconciler.io/prune: "false"`` keeps an object from pruning (and lets it
go).  The decisions are pure (:mod:`reconciler.cluster.prune`); this module does the calls.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from reconciler.cluster.prune import deletion_order, kept, plan_prune, would_prune_everything
from reconciler.errors import PolicyError, kubernetes_error
from reconciler.model import Deployment, ObjectRef
from reconciler.policy import OWNER_LABELS
from reconciler.ports import AttemptStore, Cluster, LiveView

_GONE_POLL_S = 0.25


@dataclass
class Removal:
    """What a prune or a delete did, for the history row."""

    deleted: list[ObjectRef] = field(default_factory=list)
    kept: list[ObjectRef] = field(default_factory=list)
    let_go: list[ObjectRef] = field(default_factory=list)
    note: str = ""

    def describe(self, verb: str) -> str:
        parts = [self.note] if self.note else []
        if self.deleted:
            parts.append(f"{verb} {_listed(self.deleted)}")
        if self.kept:
            parts.append(f'kept (reconciler.io/prune: "false") {_listed(self.kept)}')
        if self.let_go:
            parts.append(f"left alone, no longer labelled as ours: {_listed(self.let_go)}")
        return "; ".join(parts)


def _listed(refs: Sequence[ObjectRef], limit: int = 20) -> str:
    names = [str(r) for r in refs[:limit]]
    if len(refs) > limit:
        names.append(f"and {len(refs) - limit} more")
    return ", ".join(names)


def refuse_pruning_everything(
    deployment: Deployment, *, inventory: Sequence[ObjectRef], rendered: Sequence[ObjectRef]
) -> None:
    """A render that shares nothing with what the deployment owns (an empty render, a renamed
    project directory) would delete all of it: refused unless the deployment allows it."""
    if deployment.prune_all_allowed:
        return
    if would_prune_everything(inventory=inventory, rendered=rendered):
        raise PolicyError(
            f"the render would prune every object deployment {deployment.project}/"
            f"{deployment.environment} owns ({len(inventory)}: {_listed(inventory, 5)}) and "
            "applies none of them; refused, nothing applied (set prune_all_allowed = true on "
            "the deployment if that is meant)"
        )


def owned_by(live: Mapping[str, Any], deployment: Deployment) -> bool:
    """Whether ``live`` carries the owner labels of ``deployment``."""
    labels = (live.get("metadata") or {}).get("labels") or {}
    wanted = (deployment.project, deployment.environment)
    return all(labels.get(k) == v for k, v in zip(OWNER_LABELS, wanted, strict=True))


async def prune(
    deployment: Deployment,
    *,
    rendered: Sequence[ObjectRef],
    inventory: Sequence[ObjectRef],
    cluster: Cluster,
    store: AttemptStore,
) -> Removal:
    """Delete the objects of ``inventory`` (what the deployment owned before this render)
    that ``rendered`` no longer holds, without waiting for them to go (a Deployment's pods
    take their grace period)."""
    removal = Removal()
    for phase in deletion_order(plan_prune(inventory=inventory, rendered=rendered)):
        await asyncio.gather(*(_remove(ref, deployment, cluster, removal) for ref in phase))
    await store.forget_objects(
        deployment_id=deployment.id, refs=removal.deleted + removal.kept + removal.let_go
    )
    return removal


async def delete_all(
    deployment: Deployment,
    *,
    cluster: Cluster,
    store: AttemptStore,
    timeout_s: float,
    should_stop: Callable[[], bool],
    live: LiveView | None = None,
) -> Removal:
    """Delete every inventory object in reverse apply order, each phase gone before the next
    (workloads before the config they mount).  The keep annotation does not hold here: the
    deployment itself is going.  With ``live``, waiting reads the watch cache."""
    inventory = await store.inventory_of(deployment.id)
    removal = Removal()
    deadline = time.monotonic() + timeout_s
    gone = _Gone(cluster=cluster, live=live)
    for phase in deletion_order(inventory):
        await asyncio.gather(
            *(_remove(ref, deployment, cluster, removal, keep=False) for ref in phase)
        )
        await gone.wait([r for r in phase if r in removal.deleted], deadline, should_stop)
        await store.forget_objects(deployment_id=deployment.id, refs=phase)
    return removal


async def _remove(
    ref: ObjectRef, deployment: Deployment, cluster: Cluster, removal: Removal, *, keep: bool = True
) -> None:
    live = await cluster.get(ref)
    if live is None:
        removal.deleted.append(ref)  # gone already: nothing to wait for
        return
    if not owned_by(live, deployment):
        removal.let_go.append(ref)
    elif keep and kept(live):
        removal.kept.append(ref)
    else:
        await cluster.delete(ref)
        removal.deleted.append(ref)


@dataclass(frozen=True)
class _Gone:
    """Waiting until deleted objects are gone: from the watch cache when there is one."""

    cluster: Cluster
    live: LiveView | None

    async def _read(self, ref: ObjectRef) -> dict[str, Any] | None:
        if self.live is None:
            return await self.cluster.get(ref)
        self.live.track(ref.api_version, ref.kind)
        return self.live.get(ref)

    async def wait(
        self, refs: Sequence[ObjectRef], deadline: float, should_stop: Callable[[], bool]
    ) -> None:
        pending = list(refs)
        while pending:
            found = await asyncio.gather(*(self._read(r) for r in pending))
            pending = [r for r, obj in zip(pending, found, strict=True) if obj is not None]
            if not pending or should_stop():
                return
            if time.monotonic() >= deadline:
                raise kubernetes_error(
                    f"still there after the deletion timeout: {_listed(pending)} "
                    "(a finalizer may hold them)",
                    status=0,
                    reason="Timeout",
                )
            if self.live is None:
                await asyncio.sleep(_GONE_POLL_S)
            else:
                await self.live.wait_changed(pending, timeout_s=1.0)
