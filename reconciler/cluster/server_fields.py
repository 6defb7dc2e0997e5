"""What server-side apply must not send, and the annotation ``kubectl rollout restart`` sets.

Plain data, apart from :mod:`reconciler.cluster.kube` so that module stays about the client.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Fields the server owns: sending them is refused (managedFields) or makes the apply a
# conditional update (resourceVersion).
_SERVER_OWNED_METADATA = (
    "managedFields",
    "resourceVersion",
    "uid",
    "creationTimestamp",
    "generation",
    "selfLink",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
)
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
"""The pod template annotation ``kubectl rollout restart`` sets: changing it rolls the pods."""


def strip_server_fields(obj: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``obj`` fit for server-side apply: no status, no server-owned metadata."""
    body = {k: v for k, v in obj.items() if k != "status"}
    metadata = dict(body.get("metadata") or {})
    for key in _SERVER_OWNED_METADATA:
        metadata.pop(key, None)
    body["metadata"] = metadata
    return body
