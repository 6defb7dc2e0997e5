"""Apply a rendered set to the cluster in a safe order, through :mod:`reconciler.cluster.kube`."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from reconciler.cluster.in_sync import in_sync
from reconciler.cluster.namespaces import SeenNamespaces, may_be_missing_namespace
from reconciler.errors import KubernetesError, kubernetes_error
from reconciler.model import ObjectRef
from reconciler.ports import Cluster, LiveView
from reconciler.retry import poll_until

# Objects others depend on go first: a Pod cannot mount a ConfigMap that does not exist yet, and a
# custom resource cannot be created before its CRD is Established.
_PHASE_OF_KIND: dict[str, int] = {
    "Namespace": 0,
    "CustomResourceDefinition": 1,
    "PriorityClass": 2,
    "StorageClass": 2,
    "ConfigMap": 2,
    "Secret": 2,
    "ServiceAccount": 2,
    "Role": 2,
    "RoleBinding": 2,
    "ClusterRole": 2,
    "ClusterRoleBinding": 2,
    "LimitRange": 2,
    "ResourceQuota": 2,
    "PersistentVolume": 2,
    "PersistentVolumeClaim": 2,
    "NetworkPolicy": 2,
    "Service": 3,
    "Deployment": 4,
    "StatefulSet": 4,
    "DaemonSet": 4,
    "ReplicaSet": 4,
    "Job": 4,
    "CronJob": 4,
    "Pod": 4,
}
_LAST_PHASE = 5
CRD_PHASE = 1
WORKLOAD_KINDS = frozenset({"Deployment", "StatefulSet"})
_CRD_POLL_INTERVAL_S = 0.2


def phase_of(kind: str) -> int:
    """The apply phase of ``kind``, 0 (Namespace) to the last (kinds not listed: custom
    resources, Ingresses...); objects of a lower phase are applied first."""
    return _PHASE_OF_KIND.get(kind, _LAST_PHASE)


def apply_phases(objects: Sequence[Mapping[str, Any]]) -> list[list[Mapping[str, Any]]]:
    """Objects grouped into phases applied one after another (pure; order kept within a phase)."""
    phases: list[list[Mapping[str, Any]]] = [[] for _ in range(_LAST_PHASE + 1)]
    for obj in objects:
        phases[phase_of(str(obj.get("kind")))].append(obj)
    return phases


def scalable_workloads(objects: Sequence[Mapping[str, Any]]) -> list[ObjectRef]:
    """The Deployments and StatefulSets of a rendered set (what 'stop' scales to 0)."""
    return [
        ObjectRef.from_object(o)
        for o in objects
        if o.get("kind") in WORKLOAD_KINDS and str(o.get("apiVersion")) == "apps/v1"
    ]


RESTARTABLE_KINDS = frozenset({"Deployment", "StatefulSet", "DaemonSet"})


def restartable_workloads(objects: Sequence[Mapping[str, Any]]) -> list[ObjectRef]:
    """The Deployments, StatefulSets and DaemonSets of a rendered set (what a redeploy with
    restart rolls, as ``kubectl rollout restart`` does)."""
    return [
        ObjectRef.from_object(o)
        for o in objects
        if o.get("kind") in RESTARTABLE_KINDS and str(o.get("apiVersion")) == "apps/v1"
    ]


async def apply_all(
    *,
    kube: Cluster,
    objects: Sequence[Mapping[str, Any]],
    namespace: str,
    field_manager: str,
    crd_timeout_s: float = 60.0,
    known: SeenNamespaces | None = None,
    live: LiveView | None = None,
) -> list[dict[str, Any]]:
    """Server-side apply every object, phase by phase, creating ``namespace`` if needed (not
    asked again when ``known`` holds it: then a refusal saying it is gone applies it and tries
    that phase once more).  An object ``live`` shows in sync (an apply would change nothing:
    :mod:`reconciler.cluster.in_sync`) is not sent.  Returns the objects as the server stored
    them, in the order of ``objects``."""
    phases = apply_phases(objects)
    implicit = not any(o.get("metadata", {}).get("name") == namespace for o in phases[0])
    skipped = implicit and known is not None and known.holds(namespace)
    if implicit and not skipped:
        await _apply_namespace(kube, namespace, field_manager=field_manager, known=known)
    stored: dict[int, dict[str, Any]] = {}
    for index, phase in enumerate(phases):
        if not phase:
            continue
        try:
            results = await _apply_phase(kube, phase, field_manager=field_manager, live=live)
        except KubernetesError as exc:
            if not (skipped and known is not None and may_be_missing_namespace(exc)):
                raise
            # Deleted since this daemon last saw it: create it, as every attempt once did.
            skipped = False
            known.forget(namespace)
            await _apply_namespace(kube, namespace, field_manager=field_manager, known=known)
            results = await _apply_phase(kube, phase, field_manager=field_manager, live=live)
        stored.update((id(obj), result) for obj, result in zip(phase, results, strict=True))
        if index == CRD_PHASE:
            await asyncio.gather(
                *(_wait_established(kube, obj, timeout_s=crd_timeout_s) for obj in phase)
            )
            await kube.refresh_discovery()
    return [stored[id(obj)] for obj in objects]


async def _apply_namespace(
    kube: Cluster, namespace: str, *, field_manager: str, known: SeenNamespaces | None
) -> None:
    """The deployment's Namespace, bare (the render does not hold it)."""
    await kube.apply(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
        field_manager=field_manager,
    )
    if known is not None:
        known.remember(namespace)


async def _apply_phase(
    kube: Cluster,
    phase: Sequence[Mapping[str, Any]],
    *,
    field_manager: str,
    live: LiveView | None,
) -> list[dict[str, Any]]:
    async def apply(obj: Mapping[str, Any]) -> dict[str, Any]:
        current = unchanged(obj, live=live, field_manager=field_manager)
        if current is not None:
            return current
        return await kube.apply(obj, field_manager=field_manager)

    return list(await asyncio.gather(*(apply(obj) for obj in phase)))


def unchanged(
    obj: Mapping[str, Any], *, live: LiveView | None, field_manager: str
) -> dict[str, Any] | None:
    """The live object when applying ``obj`` would change nothing, as far as ``live`` can
    tell (its kind listed, every write of ours to it seen); None when it must be applied."""
    if live is None:
        return None
    ref = ObjectRef.from_object(obj)
    if not live.is_synced(ref.api_version, ref.kind) or not live.caught_up(ref):
        return None
    current = live.get(ref)
    if not in_sync(rendered=obj, live=current, manager=field_manager):
        return None
    return current


async def _wait_established(kube: Cluster, crd: Mapping[str, Any], *, timeout_s: float) -> None:
    ref = ObjectRef.from_object(crd)

    async def established() -> dict[str, Any] | None:
        """The CRD once its Established condition is True; None before."""
        current = await kube.get(ref)
        conditions = ((current or {}).get("status") or {}).get("conditions") or []
        if any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions):
            return current
        return None

    try:
        await poll_until(established, timeout_s=timeout_s, interval_s=_CRD_POLL_INTERVAL_S)
    except TimeoutError:
        raise kubernetes_error(
            f"{ref} was not Established within {timeout_s:g}s", status=0, reason="Timeout"
        ) from None
