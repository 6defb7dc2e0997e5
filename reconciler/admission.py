"""What a render may apply, decided before anything is applied: policy, then ownership.

The policy rules are pure (:mod:`reconciler.policy`); this module gathers what they need (each
kind's scope from the API server's discovery, or from a CRD in the same render) and claims the
objects in the inventory, where the database guarantees one owner per object.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from reconciler import policy
from reconciler.errors import OwnershipError, PolicyError
from reconciler.model import ObjectRef, RepoPolicy
from reconciler.ports import AttemptStore, Cluster
from reconciler.render.documents import CLUSTER_SCOPED_KINDS


async def admit(
    objects: Sequence[Mapping[str, Any]],
    *,
    deployment_id: int,
    subject: policy.Subject,
    rules: RepoPolicy,
    cluster: Cluster,
    store: AttemptStore,
) -> tuple[dict[str, Any], ...]:
    """The objects to apply (labelled with their owner), or PolicyError / OwnershipError
    naming every object that may not be applied."""
    admitted = await admit_by_policy(objects, subject=subject, rules=rules, cluster=cluster)
    taken = await store.claim_objects(deployment_id=deployment_id, refs=admitted.refs)
    if taken:
        raise ownership_error(taken, subject=subject)
    return admitted.objects


@dataclass(frozen=True)
class Admitted:
    """What policy lets a render apply: the objects, labelled with their owner, and the
    inventory rows they need (claimed with :meth:`AttemptStore.start_claiming`)."""

    objects: tuple[dict[str, Any], ...]
    refs: list[ObjectRef]


async def admit_by_policy(
    objects: Sequence[Mapping[str, Any]],
    *,
    subject: policy.Subject,
    rules: RepoPolicy,
    cluster: Cluster,
) -> Admitted:
    """The policy half of :func:`admit`; the objects are not claimed yet."""
    namespaced = await scopes(objects, cluster=cluster)
    broken = policy.violations(objects, subject=subject, policy=rules, namespaced=namespaced)
    if broken:
        raise PolicyError("refused by policy, nothing applied: " + "; ".join(broken))
    refs = [_effective_ref(o, namespaced=namespaced, subject=subject) for o in objects]
    labelled = tuple(
        policy.with_owner_labels(_scoped(o, namespaced=namespaced), subject=subject)
        for o in objects
    )
    return Admitted(objects=labelled, refs=refs)


def ownership_error(
    taken: Sequence[tuple[ObjectRef, str]], *, subject: policy.Subject
) -> OwnershipError:
    """The refusal for objects other deployments own (``taken``: object, owner)."""
    owned = "; ".join(f"{ref} belongs to deployment {owner}" for ref, owner in taken)
    return OwnershipError(
        f"{owned}: deployment {subject} may not take over another deployment's objects "
        "(nothing applied)"
    )


def _scoped(
    obj: Mapping[str, Any], *, namespaced: Mapping[tuple[str, str], bool]
) -> Mapping[str, Any]:
    """A cluster-scoped object without the namespace a render may have given it (the API
    server ignores it), so that the object, its inventory row and its prune key agree."""
    key = (str(obj.get("apiVersion")), str(obj.get("kind")))
    metadata = obj.get("metadata") or {}
    if namespaced.get(key, True) or "namespace" not in metadata:
        return obj
    return {**obj, "metadata": {k: v for k, v in metadata.items() if k != "namespace"}}


async def scopes(
    objects: Sequence[Mapping[str, Any]], *, cluster: Cluster
) -> dict[tuple[str, str], bool]:
    """(apiVersion, kind) -> namespaced, for every kind in ``objects``."""
    from_crds = _scopes_from_crds(objects)
    found: dict[tuple[str, str], bool] = {}
    for obj in objects:
        key = (str(obj.get("apiVersion")), str(obj.get("kind")))
        if key in found:
            continue
        if key[1] in CLUSTER_SCOPED_KINDS:
            found[key] = False
            continue
        served = await cluster.is_namespaced(*key)
        found[key] = served if served is not None else from_crds.get(key, True)
    return found


def _scopes_from_crds(objects: Sequence[Mapping[str, Any]]) -> dict[tuple[str, str], bool]:
    """Kinds defined by a CRD of the same render, which the server does not serve yet."""
    found = {}
    for obj in objects:
        if obj.get("kind") != "CustomResourceDefinition":
            continue
        spec = obj.get("spec") or {}
        kind = (spec.get("names") or {}).get("kind")
        for version in spec.get("versions") or []:
            api_version = f"{spec.get('group')}/{version.get('name')}"
            found[(api_version, str(kind))] = spec.get("scope") != "Cluster"
    return found


def _effective_ref(
    obj: Mapping[str, Any], *, namespaced: Mapping[tuple[str, str], bool], subject: policy.Subject
) -> ObjectRef:
    ref = ObjectRef.from_object(obj)
    if not namespaced.get((ref.api_version, ref.kind), True):
        return ObjectRef(ref.api_version, ref.kind, ref.name, None)
    return ObjectRef(ref.api_version, ref.kind, ref.name, ref.namespace or subject.namespace)
