"""Template hashes and ControllerRevisions: how StatefulSets and DaemonSets name revisions."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from ..objects import clone
from ..registry import Registry
from ..resource_types import ResourceType
from .owners import controller_ref, owned

_HASH_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
#: The label that names a Pod's revision.
REVISION_HASH = "controller-revision-hash"


def template_hash(template: Any, collisions: int = 0) -> str:
    """A short, stable hash of a pod template (the pod-template-hash label)."""
    text = json.dumps(template, sort_keys=True, separators=(",", ":")) + f"/{collisions}"
    number = int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big")
    return "".join(_HASH_ALPHABET[ord(char) % len(_HASH_ALPHABET)] for char in str(number))


def ensure_revision(
    registry: Registry,
    revisions: ResourceType,
    owner: dict[str, Any],
    revision_name: str,
    template: dict[str, Any],
) -> None:
    """Creates the ControllerRevision ``revision_name`` of ``owner`` unless it exists."""
    namespace = owner["metadata"]["namespace"]
    if registry.find(revisions, namespace, revision_name) is not None:
        return
    existing = owned(registry, owner, revisions)
    number = 1 + max((int(r.get("revision", 0)) for r in existing), default=0)
    patch_template = clone(template)
    patch_template["$patch"] = "replace"
    registry.create_object(
        revisions,
        {
            "apiVersion": "apps/v1",
            "kind": "ControllerRevision",
            "metadata": {
                "name": revision_name,
                "namespace": namespace,
                "labels": dict((template.get("metadata") or {}).get("labels") or {})
                | {REVISION_HASH: revision_name.rsplit("-", 1)[-1]},
                "ownerReferences": [controller_ref(owner)],
            },
            "data": {"spec": {"template": patch_template}},
            "revision": number,
        },
    )
