"""The scale subresource: the autoscaling/v1 Scale view of an object, and writes through it.

Where a kind keeps its replicas and selector is its ``ScalePaths`` (custom resources declare
them in their CRD).  Server-side apply to ``/scale`` is in ``apply``; it uses
``scale_apply_config`` to turn the Scale into the fields of the object it applies.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from .api_errors import bad_request, invalid, not_found, stale
from .fields import FieldError
from .managed import decode_managers
from .objects import clone, get_path, nest, selector_string, set_path
from .ownership import update_managers
from .patch_types import patched
from .resource_types import ResourceType
from .schema import builtin_factory
from .storage import ObjectStorage


@functools.cache
def scale_type() -> ResourceType:
    """The autoscaling/v1 Scale kind, which patches to a scale subresource are applied to."""
    return ResourceType(
        group="autoscaling",
        version="v1",
        kind="Scale",
        plural="scale",
        namespaced=True,
        verbs=(),
        schema=builtin_factory().definition("io.k8s.api.autoscaling.v1.Scale"),
    )


def scale_of(resource: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
    """The autoscaling/v1 Scale view of ``obj``."""
    paths = resource.scale
    assert paths is not None
    meta = obj["metadata"]
    selector_value = get_path(obj, paths.label_selector) if paths.label_selector else None
    selector = (
        str(selector_value or "") if paths.selector_is_string else selector_string(selector_value)
    )
    status: dict[str, Any] = {"replicas": int(get_path(obj, paths.status_replicas) or 0)}
    if selector:
        status["selector"] = selector
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            key: meta[key]
            for key in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
            if key in meta
        },
        "spec": {"replicas": int(get_path(obj, paths.spec_replicas) or 0)},
        "status": status,
    }


def scale_apply_config(resource: ResourceType, body: Any) -> dict[str, Any]:
    """The apply configuration of the object that an apply of a Scale amounts to."""
    if not isinstance(body, dict):
        raise bad_request("the request body must be a JSON or YAML object")
    replicas = (body.get("spec") or {}).get("replicas")
    scale = resource.scale
    assert scale is not None
    return {"spec": {}} if replicas is None else nest(scale.spec_replicas, replicas)


class ScaleWrites:
    """PUT and the non-apply patches of ``/scale``."""

    def __init__(self, objects: ObjectStorage) -> None:
        self.objects = objects

    def write(
        self,
        resource: ResourceType,
        namespace: str,
        name: str,
        body: Any,
        *,
        manager: str,
        dry_run: bool,
        patch_type: str | None,
    ) -> dict[str, Any]:
        """A new replica count, from a Scale (``patch_type`` None) or a patch of one."""
        paths = resource.scale
        if paths is None:
            raise not_found(resource, name)
        objects = self.objects
        live = objects.live(resource, namespace, name)
        current = scale_of(resource, live)
        if patch_type is None:
            if not isinstance(body, dict):
                raise bad_request("the request body must be a Scale object")
            wanted = (body.get("metadata") or {}).get("resourceVersion")
            if wanted and wanted != live["metadata"]["resourceVersion"]:
                raise stale(resource, name)
            new_scale = body
        else:
            new_scale = patched(scale_type(), current, patch_type, body)
        replicas = _replicas(resource, name, new_scale)
        candidate = clone(live)
        set_path(candidate, paths.spec_replicas, replicas)
        new = objects.finalize(resource, live, candidate, "")
        managers, writer = update_managers(
            resource, live, new, decode_managers(live), manager=manager, subresource="scale"
        )
        result = objects.commit(
            resource, live, new, managers, writer, dry_run=dry_run, subresource=""
        )
        return scale_of(resource, result)


def _replicas(resource: ResourceType, name: str, new_scale: Any) -> int:
    """The Scale's ``spec.replicas``, or 422 unless it is a count."""
    replicas = (
        (new_scale.get("spec") or {}).get("replicas") if isinstance(new_scale, dict) else None
    )
    if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
        raise invalid(
            resource,
            name,
            [
                FieldError(
                    "spec.replicas",
                    f"Invalid value: {json.dumps(replicas)}: must be greater than or equal to 0",
                )
            ],
        )
    return replicas
