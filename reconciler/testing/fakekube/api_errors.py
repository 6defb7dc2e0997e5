"""The refusals of the apiserver: ApiError and the Status objects it answers with."""

from __future__ import annotations

from typing import Any

from .fields import FieldError
from .resource_types import ResourceType


class ApiError(Exception):
    """A request the apiserver refuses; ``status()`` is the Status object to answer with."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        *,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details
        self.headers = headers or {}

    def status(self) -> dict[str, Any]:
        """The ``Status`` object for this error."""
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details:
            body["details"] = self.details
        return body


def bad_request(message: str) -> ApiError:
    """400 BadRequest."""
    return ApiError(400, "BadRequest", message)


def status_details(resource: ResourceType, name: str, **extra: Any) -> dict[str, Any]:
    """The ``details`` of a Status about one object."""
    details: dict[str, Any] = {"name": name, "kind": resource.plural}
    if resource.group:
        details["group"] = resource.group
    details.update(extra)
    return details


def not_found(resource: ResourceType, name: str) -> ApiError:
    """404 for an object that does not exist."""
    return ApiError(
        404,
        "NotFound",
        f'{resource.qualified_plural} "{name}" not found',
        details=status_details(resource, name),
    )


def invalid(resource: ResourceType, name: str, errors: list[FieldError]) -> ApiError:
    """422 Invalid with one cause per field error."""
    texts = [f"{e.path}: {e.detail}" if e.path else e.detail for e in errors]
    summary = texts[0] if len(texts) == 1 else "[" + ", ".join(texts) + "]"
    details: dict[str, Any] = {
        "name": name,
        "kind": resource.kind,
        "causes": [{"reason": e.reason, "message": e.detail, "field": e.path} for e in errors],
    }
    if resource.group:
        details["group"] = resource.group
    return ApiError(
        422, "Invalid", f'{resource.qualified_kind} "{name}" is invalid: {summary}', details=details
    )


def stale(resource: ResourceType, name: str) -> ApiError:
    """409 Conflict for a write based on an older resourceVersion (or another uid)."""
    return ApiError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {resource.qualified_plural} "{name}": the object '
        "has been modified; please apply your changes to the latest version and try again",
        details=status_details(resource, name),
    )


def no_route() -> ApiError:
    """404 for a path the server does not serve."""
    return ApiError(404, "NotFound", "the server could not find the requested resource")


def method_not_allowed() -> ApiError:
    """405 for a verb the resource does not support."""
    return ApiError(
        405,
        "MethodNotAllowed",
        "the server does not allow this method on the requested resource",
    )
