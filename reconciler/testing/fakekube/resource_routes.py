"""Resource URLs: which type, namespace, object, subresource and verb a request is for.

``/api/v1/...`` and ``/apis/{group}/{version}/...`` continue with
``[namespaces/{namespace}/]{plural}[/{name}[/{subresource}]]``; the HTTP method and the
``watch`` parameter give the verb.  Paths that fit nothing are 404; verbs a resource does not
support are 405; subresources real clusters serve that fakekube does not emulate are 501.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .api_errors import ApiError, method_not_allowed, no_route
from .resource_types import ResourceType
from .served_types import TypeRegistry

#: Subresources real clusters serve that fakekube does not emulate (answered 501, not 404).
_UNEMULATED_SUBRESOURCES = frozenset(
    {
        "log",
        "exec",
        "attach",
        "portforward",
        "proxy",
        "eviction",
        "binding",
        "ephemeralcontainers",
        "resize",
        "token",
        "approval",
        "finalize",
    }
)


@dataclass(frozen=True)
class ResourceRoute:
    """What a resource request is for."""

    resource: ResourceType
    namespace: str | None
    name: str | None
    subresource: str  # "", "status" or "scale"
    verb: str

    @property
    def ns(self) -> str:
        """The namespace, "" for cluster-scoped requests and collections across namespaces."""
        return self.namespace or ""


def resource_route(
    types: TypeRegistry, group: str, version: str, rest: list[str], *, method: str, query: Any
) -> ResourceRoute:
    """The route of a request whose path continues with ``rest`` after the group-version."""
    namespace: str | None = None
    if (
        len(rest) >= 3
        and rest[0] == "namespaces"
        and (found := types.by_path(group, version, rest[2])) is not None
        and found.namespaced
    ):
        namespace = rest[1]
        rest = rest[2:]
    resource = types.by_path(group, version, rest[0])
    if resource is None or len(rest) > 3:
        raise no_route()
    name = rest[1] if len(rest) >= 2 else None
    subresource = rest[2] if len(rest) == 3 else ""
    if resource.namespaced and name is not None and namespace is None:
        raise no_route()
    if not resource.namespaced and namespace is not None:
        raise no_route()
    _check_subresource(resource, subresource)
    verb = _verb(method, name, query)
    if verb is None or (subresource == "" and verb not in resource.verbs):
        raise method_not_allowed()
    if subresource and verb not in ("get", "update", "patch"):
        raise method_not_allowed()
    return ResourceRoute(resource, namespace, name, subresource, verb)


def _check_subresource(resource: ResourceType, subresource: str) -> None:
    if subresource and subresource not in ("status", "scale"):
        if subresource in _UNEMULATED_SUBRESOURCES:
            raise ApiError(
                501,
                "NotImplemented",
                f"fakekube does not emulate the {resource.plural}/{subresource} subresource",
            )
        raise no_route()
    if (subresource == "status" and not resource.has_status) or (
        subresource == "scale" and resource.scale is None
    ):
        raise no_route()


def _verb(method: str, name: str | None, query: Any) -> str | None:
    watching = query.get("watch", "").lower() in ("true", "1")
    if name is None:
        return {
            "GET": "watch" if watching else "list",
            "POST": "create",
            "DELETE": "deletecollection",
        }.get(method)
    return {"GET": "get", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}.get(method)
