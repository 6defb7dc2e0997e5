"""Which of a deployment's recorded objects to delete, and in which order (pure: no I/O).

A deployment owns what its last apply recorded in ``deployment_objects`` (its inventory).  An
object of the inventory that the new render no longer contains is pruned, unless the object on
the cluster carries :data:`KEEP_ANNOTATION` set to ``"false"``.  Objects are the same when their
API group, kind, namespace and name are: ``apps/v1`` and ``apps/v1beta2`` name one Deployment,
served in two versions, so moving a manifest to a new version never deletes the object.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from reconciler.cluster.apply import phase_of
from reconciler.model import ObjectRef

__all__ = [
    "KEEP_ANNOTATION",
    "deletion_order",
    "identity",
    "kept",
    "plan_prune",
    "would_prune_everything",
]

KEEP_ANNOTATION = "reconciler.io/prune"
"""An object annotated ``reconciler.io/prune: "false"`` is never pruned.

The name and value mirror Argo CD's ``Prune=false`` sync option
(``argocd.argoproj.io/sync-options: Prune=false``), which people who run GitOps already know:
the annotation says "do not prune this", on the object itself, so it survives its manifest
being removed from the ops repo (a PersistentVolumeClaim holding data, say)."""

_KEEP_VALUE = "false"


def identity(ref: ObjectRef) -> tuple[str, str, str, str]:
    """``(api group, kind, namespace, name)``: what makes two refs the same object whatever
    the version they are served in (the core group is ``""``, cluster-scoped objects have the
    namespace ``""``)."""
    group = ref.api_version.rpartition("/")[0] if "/" in ref.api_version else ""
    return (group, ref.kind, ref.namespace or "", ref.name)


def plan_prune(*, inventory: Sequence[ObjectRef], rendered: Sequence[ObjectRef]) -> list[ObjectRef]:
    """The objects of ``inventory`` that ``rendered`` no longer contains, in inventory order
    and each once (see :func:`identity`)."""
    wanted = {identity(ref) for ref in rendered}
    seen: set[tuple[str, str, str, str]] = set()
    stale = []
    for ref in inventory:
        key = identity(ref)
        if key in wanted or key in seen:
            continue
        seen.add(key)
        stale.append(ref)
    return stale


def kept(live: Mapping[str, Any] | None) -> bool:
    """Whether the live object asks not to be pruned (:data:`KEEP_ANNOTATION` is ``"false"``,
    in any case, spaces around ignored); False for an object that is gone or malformed."""
    if not isinstance(live, Mapping):
        return False
    metadata = live.get("metadata")
    annotations = metadata.get("annotations") if isinstance(metadata, Mapping) else None
    if not isinstance(annotations, Mapping):
        return False
    value = annotations.get(KEEP_ANNOTATION)
    return isinstance(value, str) and value.strip().lower() == _KEEP_VALUE


def would_prune_everything(
    *, inventory: Sequence[ObjectRef], rendered: Sequence[ObjectRef]
) -> bool:
    """Whether pruning would delete every object the deployment owns: the inventory is not
    empty and none of it is rendered any more (an empty render, a renamed project or a wrong
    ``ops_repos.path``), which deserves a person's confirmation rather than a silent delete."""
    if not inventory:
        return False
    return len(plan_prune(inventory=inventory, rendered=rendered)) == len(
        {identity(ref) for ref in inventory}
    )


def deletion_order(refs: Sequence[ObjectRef]) -> list[list[ObjectRef]]:
    """``refs`` in groups deleted one after another: the reverse of the apply phases
    (``reconciler.cluster.apply``), so custom resources and workloads go first, then
    Services, then configuration and RBAC, CRDs and Namespaces last (deleting a Namespace
    or a CRD deletes what is in it).  Order is kept within a group; empty groups are left
    out."""
    phases: dict[int, list[ObjectRef]] = {}
    for ref in refs:
        phases.setdefault(phase_of(ref.kind), []).append(ref)
    return [phases[phase] for phase in sorted(phases, reverse=True)]
