"""Create, update and patch: the writes that are not server-side apply or delete.

An update or a non-apply patch is decoded, then written as an Update: the writer takes over the
fields it changes silently (``ownership``).  Writes to ``/scale`` go to ``scale``; apply patches
to ``apply``.
"""

from __future__ import annotations

import uuid
from typing import Any

from .admission import check_identity, check_name, check_namespace, decode_body
from .api_errors import ApiError, invalid, stale, status_details
from .apply import Applier
from .fields import FieldError
from .managed import ManagerEntry
from .objects import now_iso, random_suffix
from .ownership import managers_from_body, update_managers
from .patch_types import APPLY_PATCH, JSON_PATCH, MERGE_PATCH, STRATEGIC_PATCH, patched
from .resource_types import ResourceType
from .scale import ScaleWrites
from .storage import ObjectStorage

# Metadata a create never takes from the body.
_UNSET_ON_CREATE = (
    "resourceVersion",
    "generation",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
)


class Writes:
    """POST, PUT and PATCH."""

    def __init__(self, objects: ObjectStorage, *, applier: Applier, scales: ScaleWrites) -> None:
        self.objects = objects
        self.applier = applier
        self.scales = scales

    def create(
        self,
        resource: ResourceType,
        namespace: str,
        body: Any,
        *,
        manager: str,
        dry_run: bool = False,
        field_validation: str = "Warn",
    ) -> tuple[dict[str, Any], list[str]]:
        """POST: a new object (201)."""
        objects = self.objects
        meta = check_identity(resource, namespace, None, body)
        name = _name_to_create(resource, meta)
        check_name(resource, name)
        cleaned, warnings = decode_body(
            resource, body, field_validation=field_validation, applying=False
        )
        check_namespace(objects, resource, namespace, name)
        if objects.find(resource, namespace if resource.namespaced else "", name) is not None:
            raise ApiError(
                409,
                "AlreadyExists",
                f'{resource.qualified_plural} "{name}" already exists',
                details=status_details(resource, name),
            )
        candidate = _creation(resource, namespace, name, cleaned)
        new = objects.finalize(resource, None, candidate, "")
        managers, writer = update_managers(resource, None, new, [], manager=manager, subresource="")
        return objects.commit(
            resource, None, new, managers, writer, dry_run=dry_run, subresource=""
        ), warnings

    def update(
        self,
        resource: ResourceType,
        namespace: str,
        name: str,
        body: Any,
        *,
        manager: str,
        subresource: str = "",
        dry_run: bool = False,
        field_validation: str = "Warn",
    ) -> tuple[dict[str, Any], list[str]]:
        """PUT: replaces an object (or its status, or its scale)."""
        if subresource == "scale":
            return self.scales.write(
                resource, namespace, name, body, manager=manager, dry_run=dry_run, patch_type=None
            ), []
        live = self.objects.live(resource, namespace, name)
        meta = check_identity(resource, namespace, name, body)
        wanted = meta.get("resourceVersion")
        if wanted and wanted != live["metadata"]["resourceVersion"]:
            raise stale(resource, name)
        return self._decode_and_write(
            resource,
            live,
            body,
            manager=manager,
            subresource=subresource,
            dry_run=dry_run,
            field_validation=field_validation,
        )

    def patch(
        self,
        resource: ResourceType,
        namespace: str,
        name: str,
        patch_type: str,
        body: Any,
        *,
        manager: str,
        subresource: str = "",
        force: bool = False,
        dry_run: bool = False,
        field_validation: str = "Warn",
    ) -> tuple[dict[str, Any], list[str]]:
        """PATCH with any of the four patch types."""
        if patch_type == APPLY_PATCH:
            return self.applier.apply(
                resource,
                namespace,
                name,
                body,
                manager=manager,
                subresource=subresource,
                force=force,
                dry_run=dry_run,
                field_validation=field_validation,
            )
        if patch_type == STRATEGIC_PATCH and resource.custom:
            raise ApiError(
                415,
                "UnsupportedMediaType",
                "the body of the request was in an unknown format - accepted media types include: "
                f"{JSON_PATCH}, {MERGE_PATCH}, {APPLY_PATCH}",
            )
        if subresource == "scale":
            return self.scales.write(
                resource,
                namespace,
                name,
                body,
                manager=manager,
                dry_run=dry_run,
                patch_type=patch_type,
            ), []
        live = self.objects.live(resource, namespace, name)
        current = self.objects.present(resource, live)
        new_body = patched(resource, current, patch_type, body)
        meta = check_identity(resource, namespace, name, new_body)
        if meta.get("resourceVersion") not in (None, live["metadata"]["resourceVersion"]):
            raise stale(resource, name)
        return self._decode_and_write(
            resource,
            live,
            new_body,
            manager=manager,
            subresource=subresource,
            dry_run=dry_run,
            field_validation=field_validation,
        )

    def _decode_and_write(
        self,
        resource: ResourceType,
        live: dict[str, Any],
        body: dict[str, Any],
        *,
        manager: str,
        subresource: str,
        dry_run: bool,
        field_validation: str,
    ) -> tuple[dict[str, Any], list[str]]:
        """The end of every update and non-apply patch: validate, then write as an Update."""
        cleaned, warnings = decode_body(
            resource, body, field_validation=field_validation, applying=False
        )
        written = self.write(
            resource,
            live,
            cleaned,
            manager=manager,
            subresource=subresource,
            dry_run=dry_run,
            managers=managers_from_body(cleaned, live),
        )
        return written, warnings

    def write(
        self,
        resource: ResourceType,
        live: dict[str, Any],
        body: dict[str, Any],
        *,
        manager: str,
        subresource: str,
        dry_run: bool,
        managers: list[ManagerEntry],
    ) -> dict[str, Any]:
        """An Update of the main resource or of its status."""
        if subresource == "status":
            candidate = dict(live)
            if "status" in body:
                candidate["status"] = body["status"]
            else:
                candidate.pop("status", None)
        else:
            candidate = dict(body)
            body_meta = {
                k: v for k, v in (body.get("metadata") or {}).items() if k != "managedFields"
            }
            candidate["metadata"] = body_meta
            if live["metadata"].get("deletionTimestamp"):
                _refuse_new_finalizers(resource, live, body_meta)
        new = self.objects.finalize(resource, live, candidate, subresource)
        managers, writer = update_managers(
            resource, live, new, managers, manager=manager, subresource=subresource
        )
        return self.objects.commit(
            resource, live, new, managers, writer, dry_run=dry_run, subresource=subresource
        )


def _name_to_create(resource: ResourceType, meta: dict[str, Any]) -> Any:
    """``metadata.name`` as sent, or one made from ``generateName``; 422 when there is neither.

    The name is not converted: decoding refuses one of the wrong type afterwards.
    """
    name = meta.get("name")
    if name:
        return name
    prefix = meta.get("generateName")
    if not prefix:
        raise invalid(
            resource,
            "",
            [
                FieldError(
                    "metadata.name",
                    "Required value: name or generateName is required",
                    reason="FieldValueRequired",
                )
            ],
        )
    return f"{prefix}{random_suffix()}"


def _creation(
    resource: ResourceType, namespace: str, name: str, cleaned: dict[str, Any]
) -> dict[str, Any]:
    """The new object before defaults: the body with the metadata the apiserver sets."""
    candidate = dict(cleaned)
    candidate_meta = {
        k: v for k, v in (cleaned.get("metadata") or {}).items() if k != "managedFields"
    }
    candidate_meta.update(name=name, uid=str(uuid.uuid4()), creationTimestamp=now_iso())
    for key in _UNSET_ON_CREATE:
        candidate_meta.pop(key, None)
    if resource.namespaced:
        candidate_meta["namespace"] = namespace
    else:
        candidate_meta.pop("namespace", None)
    candidate["metadata"] = candidate_meta
    return candidate


def _refuse_new_finalizers(
    resource: ResourceType, live: dict[str, Any], body_meta: dict[str, Any]
) -> None:
    """422 when a write adds finalizers to an object being deleted."""
    added = set(body_meta.get("finalizers") or ()) - set(live["metadata"].get("finalizers") or ())
    if added:
        raise invalid(
            resource,
            live["metadata"]["name"],
            [
                FieldError(
                    "metadata.finalizers",
                    "Forbidden: no new finalizers can be added if the object is being deleted",
                    reason="FieldValueForbidden",
                )
            ],
        )
