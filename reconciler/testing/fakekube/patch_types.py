"""The four PATCH content types, and applying the three that are not server-side apply."""

from __future__ import annotations

from typing import Any

from .api_errors import ApiError, bad_request
from .patch import PatchError, json_patch, merge_patch, strategic_merge_patch
from .resource_types import ResourceType

APPLY_PATCH = "application/apply-patch+yaml"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"
PATCH_TYPES = (APPLY_PATCH, MERGE_PATCH, STRATEGIC_PATCH, JSON_PATCH)


def unsupported_patch_type() -> ApiError:
    """415 for a Content-Type that is none of the patch types."""
    return ApiError(
        415,
        "UnsupportedMediaType",
        f"the body of the request was in an unknown format - accepted media types include: "
        f"{', '.join(PATCH_TYPES)}",
    )


def patched(resource: ResourceType, current: dict[str, Any], patch_type: str, body: Any) -> Any:
    """``current`` with a merge, strategic merge or JSON patch applied (400/422 when it fails)."""
    try:
        if patch_type == MERGE_PATCH:
            if not isinstance(body, dict):
                raise PatchError("a merge patch must be a JSON object", status=400)
            return merge_patch(current, body)
        if patch_type == STRATEGIC_PATCH:
            return strategic_merge_patch(current, body, resource.schema)
        if patch_type == JSON_PATCH:
            return json_patch(current, body)
    except PatchError as exc:
        if exc.status == 400:
            raise bad_request(str(exc)) from exc
        raise ApiError(422, "Invalid", str(exc)) from exc
    raise unsupported_patch_type()
