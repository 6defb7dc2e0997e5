"""What a write's body must pass before anything is stored.

Its identity (apiVersion, kind, name and namespace agree with the URL), its name, its namespace
(which must exist and not be terminating) and its decoding against the schema, with
``fieldValidation`` deciding what unknown fields do.
"""

from __future__ import annotations

from typing import Any

from . import fields as fieldsets
from .api_errors import ApiError, bad_request, invalid, not_found, status_details
from .decoding import Decoded, decode
from .resource_types import ResourceType
from .storage import ObjectStorage
from .validation import validate_name


def check_identity(
    resource: ResourceType, namespace: str, name: str | None, body: Any
) -> dict[str, Any]:
    """The body's metadata, once its apiVersion, kind, name and namespace fit the request."""
    if not isinstance(body, dict):
        raise bad_request("the request body must be a JSON or YAML object")
    api_version = body.get("apiVersion")
    kind = body.get("kind")
    if api_version is not None and api_version != resource.api_version:
        raise bad_request(
            f"the API version in the data ({api_version}) does not match the expected API "
            f"version ({resource.api_version})"
        )
    if kind is not None and kind != resource.kind:
        raise bad_request(
            f"the kind in the data ({kind}) does not match the expected kind ({resource.kind})"
        )
    meta = body.get("metadata")
    if meta is None:
        meta = {}
    if not isinstance(meta, dict):
        raise bad_request("metadata must be an object")
    if name is not None and meta.get("name") not in (None, name):
        raise bad_request(
            f"the name of the object ({meta['name']}) does not match the name on the URL ({name})"
        )
    body_namespace = meta.get("namespace")
    if resource.namespaced and body_namespace not in (None, "", namespace):
        raise bad_request(
            "the namespace of the provided object does not match the namespace sent on the request"
        )
    return meta


def check_name(resource: ResourceType, name: str) -> None:
    """422 when ``name`` breaks the naming rules of ``resource``."""
    errors = validate_name(resource, name)
    if errors:
        raise invalid(resource, name, errors)


def check_namespace(
    objects: ObjectStorage, resource: ResourceType, namespace: str, name: str
) -> None:
    """404 when a namespaced object's namespace is missing; 403 while it terminates."""
    if not resource.namespaced:
        return
    namespaces = objects.types.by_kind("v1", "Namespace")
    assert namespaces is not None
    ns = objects.find(namespaces, "", namespace)
    if ns is None:
        raise not_found(namespaces, namespace)
    if ns["metadata"].get("deletionTimestamp"):
        message = (
            f"unable to create new content in namespace {namespace} because it is being terminated"
        )
        raise ApiError(
            403,
            "Forbidden",
            f'{resource.qualified_plural} "{name}" is forbidden: {message}',
            details=status_details(
                resource,
                name,
                causes=[
                    {
                        "reason": "NamespaceTerminating",
                        "message": message,
                        "field": "metadata.namespace",
                    }
                ],
            ),
        )


def decode_body(
    resource: ResourceType,
    body: dict[str, Any],
    *,
    field_validation: str,
    applying: bool,
) -> tuple[dict[str, Any], list[str]]:
    """The body as the schema declares it, and the warnings to answer with.

    ``field_validation`` is ``Strict`` (unknown fields are refused), ``Warn`` or ``Ignore``.
    """
    report = Decoded()
    if not applying:
        # Nulls mean "unset" in a stored object; an apply keeps them until the merge, where
        # they release the field.
        body = fieldsets.strip_nulls(body)
    cleaned = decode(body, resource.schema, report)
    name = str((body.get("metadata") or {}).get("name", ""))
    if report.type_errors:
        problems = "; ".join(str(e) for e in report.type_errors)
        raise bad_request(
            f'{resource.kind} in version "{resource.version}" cannot be handled as a '
            f"{resource.kind}: {problems}"
        )
    if report.invalid:
        raise invalid(resource, name, report.invalid)
    if not report.unknown:
        return cleaned, []
    if field_validation == "Strict":
        raise _unknown_fields_error(resource, report.unknown, applying=applying)
    if field_validation != "Ignore":
        return cleaned, [f'unknown field "{p}"' for p in report.unknown]
    return cleaned, []


def _unknown_fields_error(
    resource: ResourceType, unknown: list[str], *, applying: bool
) -> ApiError:
    if applying:
        paths = "; ".join(f".{p}: field not declared in schema" for p in unknown)
        return bad_request(
            f"failed to create typed patch object ({resource.api_version}, "
            f"Kind={resource.kind}): {paths}"
        )
    fields_text = ", ".join(f'unknown field "{p}"' for p in unknown)
    return bad_request(
        f'{resource.kind} in version "{resource.version}" cannot be handled as a '
        f"{resource.kind}: strict decoding error: {fields_text}"
    )
