"""Owners and what they own: controller references, owned objects, deletions that may race."""

from __future__ import annotations

from typing import Any

from ..api_errors import ApiError
from ..registry import Registry
from ..resource_types import ResourceType


def controller_ref(owner: dict[str, Any]) -> dict[str, Any]:
    """An ownerReference marking ``owner`` as the managing controller."""
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def controller_owner(obj: dict[str, Any]) -> dict[str, Any] | None:
    """The ownerReference with ``controller: true``, if any."""
    for ref in obj["metadata"].get("ownerReferences") or ():
        if ref.get("controller"):
            return dict(ref)
    return None


def owned(
    registry: Registry, owner: dict[str, Any], resource: ResourceType
) -> list[dict[str, Any]]:
    """The objects of ``resource`` whose managing controller is ``owner``."""
    store = registry.store
    key = registry.types.storage_key(resource)
    result = []
    for resource_key, (namespace, name) in store.dependents(owner["metadata"]["uid"]):
        if resource_key != key:
            continue
        obj = store.get(resource_key, namespace, name)
        if obj is None:
            continue
        ref = controller_owner(obj)
        if ref is not None and ref.get("uid") == owner["metadata"]["uid"]:
            result.append(obj)
    return result


def delete_if_present(
    registry: Registry,
    resource: ResourceType,
    namespace: str,
    name: str,
    *,
    propagation: str | None = None,
) -> None:
    """Deletes an object; one that is gone already (another writer won) is no error."""
    try:
        registry.delete(resource, namespace, name, propagation=propagation)
    except ApiError as exc:
        if exc.code != 404:
            raise
