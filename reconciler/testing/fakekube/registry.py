"""The apiserver's request semantics: create, update, patch, apply, delete, get, list.

Everything here is synchronous and runs on the event loop, so each request is atomic.  Controllers
call the same methods as HTTP handlers, so their writes get resourceVersions, managedFields and
watch events exactly like a client's.
"""

from __future__ import annotations

import base64
import functools
import json
import secrets
import sys
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from . import fields as fieldsets
from .decoding import Decoded, decode
from .defaults import Allocator, Context, apply_defaults, initial_status
from .fields import MISSING, FieldError, FieldSet
from .managed import ManagerEntry, decode_managers, view
from .patch import PatchError, json_patch, merge_patch, strategic_merge_patch
from .resource_types import (
    SERVED_GROUP_VERSIONS,
    ResourceType,
    builtin_resource_types,
    custom_resource_types,
)
from .schema import builtin_factory
from .store import FieldSelector, LabelSelector, ResourceKey, SelectorError, Store
from .validation import validate, validate_name

APPLY_PATCH = "application/apply-patch+yaml"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"
PATCH_TYPES = (APPLY_PATCH, MERGE_PATCH, STRATEGIC_PATCH, JSON_PATCH)

_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


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


def _details(resource: ResourceType, name: str, **extra: Any) -> dict[str, Any]:
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
        details=_details(resource, name),
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


_last_stamp: tuple[int, str] = (0, "")


def now_iso(moment: float | None = None) -> str:
    """An RFC 3339 timestamp with second precision, as the apiserver writes them."""
    global _last_stamp
    second = int(time.time() if moment is None else moment)
    if _last_stamp[0] != second:
        # Formatting is costly on hot paths; one second has one text.
        _last_stamp = (second, datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
    return _last_stamp[1]


def clone(value: Any) -> Any:
    """A deep copy of JSON data, with interned keys (objects share their key strings)."""
    kind = type(value)
    if kind is dict:
        return {sys.intern(key): clone(item) for key, item in value.items()}
    if kind is list:
        return [clone(item) for item in value]
    return value


def random_suffix(length: int = 5) -> str:
    """The random suffix generateName and controllers use."""
    return "".join(secrets.choice(_NAME_ALPHABET) for _ in range(length))


def selector_string(selector: Any) -> str:
    """A LabelSelector (matchLabels / matchExpressions) in query syntax."""
    if not isinstance(selector, dict):
        return ""
    return str(LabelSelector.from_label_selector(selector))


def _get_path(obj: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(obj, dict):
            return None
        obj = obj.get(part)
    return obj


def _set_path(obj: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    for part in parts[:-1]:
        obj = obj.setdefault(part, {})
    obj[parts[-1]] = value


def _nest(dotted: str, value: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    _set_path(out, dotted, value)
    return out


class TypeRegistry:
    """Resource types by URL and by kind; custom ones come and go with their CRDs."""

    def __init__(self) -> None:
        self._builtin = builtin_resource_types()
        self._custom: dict[str, list[ResourceType]] = {}
        self._by_path: dict[tuple[str, str, str], ResourceType] = {}
        self._by_kind: dict[tuple[str, str], ResourceType] = {}
        self.generation = 0
        self._reindex()

    def _reindex(self) -> None:
        self._by_path.clear()
        self._by_kind.clear()
        for resource in self.all():
            self._by_path[(resource.group, resource.version, resource.plural)] = resource
            self._by_kind.setdefault((resource.api_version, resource.kind), resource)
        self.generation += 1

    def all(self) -> list[ResourceType]:
        """Every served type, built-in first."""
        out = list(self._builtin)
        for types in self._custom.values():
            out.extend(types)
        return out

    def by_path(self, group: str, version: str, plural: str) -> ResourceType | None:
        """The type served at ``/apis/{group}/{version}/{plural}``."""
        return self._by_path.get((group, version, plural))

    def by_kind(self, api_version: str, kind: str) -> ResourceType | None:
        """The type of ``apiVersion``/``kind``."""
        return self._by_kind.get((api_version, kind))

    def group_versions(self) -> list[tuple[str, str]]:
        """Served group-versions, built-in in their fixed order, then custom ones."""
        seen = list(SERVED_GROUP_VERSIONS)
        for resource in self.all():
            if (resource.group, resource.version) not in seen:
                seen.append((resource.group, resource.version))
        return seen

    def in_group_version(self, group: str, version: str) -> list[ResourceType]:
        """The types of one group-version."""
        return [r for r in self.all() if r.group == group and r.version == version]

    def install(self, crd_name: str, types: list[ResourceType]) -> None:
        """Serves the types of an Established CRD (replacing older ones)."""
        self._custom[crd_name] = types
        self._reindex()

    def uninstall(self, crd_name: str) -> None:
        """Stops serving a CRD's types."""
        if self._custom.pop(crd_name, None) is not None:
            self._reindex()

    def storage_key(self, resource: ResourceType) -> ResourceKey:
        """Where objects of ``resource`` live (all versions of a CRD share it)."""
        return (resource.group, resource.plural)


class Registry:
    """The in-memory apiserver."""

    def __init__(self) -> None:
        self.store = Store()
        self.types = TypeRegistry()
        self.allocator = Allocator()
        #: Called when a delete removed an object or marked it for deletion (garbage collection
        #: and the namespace controller hook in here).
        self.deletion_hooks: list[Callable[[ResourceType, dict[str, Any]], None]] = []

    # ------------------------------------------------------------------ reads

    def get(self, resource: ResourceType, namespace: str, name: str) -> dict[str, Any]:
        """The object, or 404."""
        obj = self.store.get(self.types.storage_key(resource), namespace, name)
        if obj is None:
            raise not_found(resource, name)
        return self.present(resource, obj)

    def find(self, resource: ResourceType, namespace: str, name: str) -> dict[str, Any] | None:
        """The stored object, or None."""
        return self.store.get(self.types.storage_key(resource), namespace, name)

    def present(self, resource: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
        """``obj`` as ``resource``'s version shows it (custom resources share storage)."""
        if resource.custom and obj.get("apiVersion") != resource.api_version:
            return obj | {"apiVersion": resource.api_version}
        return obj

    def list_objects(
        self,
        resource: ResourceType,
        namespace: str | None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        limit: int | None = None,
        continue_token: str | None = None,
    ) -> dict[str, Any]:
        """A list object, filtered and paginated as the apiserver does."""
        labels, fields = self.selectors(resource, label_selector, field_selector)
        start: tuple[str, str] | None = None
        if continue_token:
            try:
                decoded = json.loads(base64.urlsafe_b64decode(continue_token.encode()))
                start = (str(decoded["start"][0]), str(decoded["start"][1]))
            except (ValueError, KeyError, IndexError, TypeError) as exc:
                raise bad_request(f"invalid continue token: {exc}") from exc
        version = self.store.resource_version
        items: list[dict[str, Any]] = []
        remaining = 0
        next_start: tuple[str, str] | None = None
        for obj in self.store.objects(self.types.storage_key(resource), namespace):
            meta = obj["metadata"]
            key = (meta.get("namespace", ""), meta["name"])
            if start is not None and key <= start:
                continue
            if not labels.matches(meta.get("labels") or {}) or not fields.matches(obj):
                continue
            if limit and len(items) >= limit:
                remaining += 1
                continue
            items.append(obj)
            next_start = key
        result_meta: dict[str, Any] = {"resourceVersion": str(version)}
        if remaining and next_start is not None:
            token = json.dumps({"start": list(next_start), "rv": version}).encode()
            result_meta["continue"] = base64.urlsafe_b64encode(token).decode()
            result_meta["remainingItemCount"] = remaining
        if resource.custom:
            shown = [self.present(resource, obj) for obj in items]
        else:
            shown = [
                {k: v for k, v in obj.items() if k not in ("apiVersion", "kind")} for obj in items
            ]
        return {
            "kind": resource.list_kind,
            "apiVersion": resource.api_version,
            "metadata": result_meta,
            "items": shown,
        }

    def selectors(
        self, resource: ResourceType, label_selector: str | None, field_selector: str | None
    ) -> tuple[LabelSelector, FieldSelector]:
        """Parsed selectors, or 400."""
        try:
            return (
                LabelSelector(label_selector),
                FieldSelector(field_selector, kind="" if resource.custom else resource.kind),
            )
        except SelectorError as exc:
            raise bad_request(str(exc)) from exc

    # ------------------------------------------------------------------ helpers

    def _check_namespace(self, resource: ResourceType, namespace: str, name: str) -> None:
        if not resource.namespaced:
            return
        namespaces = self.types.by_kind("v1", "Namespace")
        assert namespaces is not None
        ns = self.find(namespaces, "", namespace)
        if ns is None:
            raise not_found(namespaces, namespace)
        if ns["metadata"].get("deletionTimestamp"):
            message = (
                f"unable to create new content in namespace {namespace} because it is being "
                "terminated"
            )
            raise ApiError(
                403,
                "Forbidden",
                f'{resource.qualified_plural} "{name}" is forbidden: {message}',
                details=_details(
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

    def _check_identity(
        self, resource: ResourceType, namespace: str, name: str | None, body: Any
    ) -> dict[str, Any]:
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
                f"the name of the object ({meta['name']}) does not match the name on the URL "
                f"({name})"
            )
        body_namespace = meta.get("namespace")
        if resource.namespaced and body_namespace not in (None, "", namespace):
            raise bad_request(
                "the namespace of the provided object does not match the namespace sent on the "
                "request"
            )
        return meta

    def _decode(
        self,
        resource: ResourceType,
        body: dict[str, Any],
        *,
        strict: bool,
        warn: bool,
        applying: bool,
    ) -> tuple[dict[str, Any], list[str]]:
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
        warnings: list[str] = []
        if report.unknown:
            if strict:
                if applying:
                    paths = "; ".join(f".{p}: field not declared in schema" for p in report.unknown)
                    raise bad_request(
                        f"failed to create typed patch object ({resource.api_version}, "
                        f"Kind={resource.kind}): {paths}"
                    )
                fields_text = ", ".join(f'unknown field "{p}"' for p in report.unknown)
                raise bad_request(
                    f'{resource.kind} in version "{resource.version}" cannot be handled as a '
                    f"{resource.kind}: strict decoding error: {fields_text}"
                )
            if warn:
                warnings = [f'unknown field "{p}"' for p in report.unknown]
        return cleaned, warnings

    def _finalize(
        self,
        resource: ResourceType,
        live: dict[str, Any] | None,
        candidate: dict[str, Any],
        subresource: str,
    ) -> dict[str, Any]:
        """The object to store: system metadata, reset status, defaults, validation."""
        new: dict[str, Any] = clone(candidate)
        new["apiVersion"] = (
            resource.api_version
            if not resource.custom
            else f"{resource.group}/{resource.served_versions[0]}"
        )
        new["kind"] = resource.kind
        meta = new.setdefault("metadata", {})
        if live is not None:
            live_meta = live["metadata"]
            for key in (
                "name",
                "namespace",
                "uid",
                "creationTimestamp",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "generation",
                "resourceVersion",
                "generateName",
            ):
                if key in live_meta:
                    meta[key] = live_meta[key]
                else:
                    meta.pop(key, None)
        if resource.has_status and subresource == "":
            if live is not None:
                if "status" in live:
                    new["status"] = clone(live["status"])
                else:
                    new.pop("status", None)
            else:
                new.pop("status", None)
                status = initial_status(resource)
                if status is not None:
                    new["status"] = status
        apply_defaults(
            resource, new, Context(creating=live is None, live=live, allocator=self.allocator)
        )
        if subresource != "status":
            name = new["metadata"].get("name", "")
            errors = validate(resource, new, live)
            if errors:
                raise invalid(resource, name, errors)
        return new

    def _commit(
        self,
        resource: ResourceType,
        live: dict[str, Any] | None,
        new: dict[str, Any],
        managers: list[ManagerEntry],
        writer: tuple[str, str, str] | None,
        *,
        dry_run: bool,
        subresource: str,
    ) -> dict[str, Any]:
        """Stores ``new`` unless it changes nothing; returns what the client sees."""
        meta = new["metadata"]
        if resource.tracks_generation:
            if live is None:
                meta["generation"] = 1
            else:
                generation = int(live["metadata"].get("generation", 1))
                if subresource != "status" and _spec_changed(live, new):
                    generation += 1
                meta["generation"] = generation
        previous_time = {entry.key: entry.time for entry in decode_managers(live)}
        for entry in managers:
            if entry.key == writer:
                entry.time = previous_time.get(entry.key, entry.time)
        encoded = [entry.encode() for entry in managers]
        if encoded:
            meta["managedFields"] = encoded
        else:
            meta.pop("managedFields", None)
        if live is not None:
            meta["resourceVersion"] = live["metadata"]["resourceVersion"]
            if new == live:
                return self.present(resource, live)
        stamp = now_iso()
        for entry, raw in zip(managers, encoded, strict=True):
            if entry.key == writer:
                raw["time"] = stamp
        if dry_run:
            if live is None:
                meta.pop("resourceVersion", None)
            return self.present(resource, new)
        meta["resourceVersion"] = str(self.store.next_version())
        key = self.types.storage_key(resource)
        if meta.get("deletionTimestamp") and not meta.get("finalizers") and not _ns_finalizers(new):
            self._remove(resource, new)
        else:
            self.store.put(key, new, live)
        return self.present(resource, new)

    def _remove(self, resource: ResourceType, final: dict[str, Any]) -> None:
        """Removes an object for good and tells the garbage collector."""
        self.store.remove(self.types.storage_key(resource), final)
        for hook in self.deletion_hooks:
            hook(resource, final)

    def _update_managers(
        self,
        resource: ResourceType,
        live: dict[str, Any] | None,
        new: dict[str, Any],
        managers: list[ManagerEntry],
        *,
        manager: str,
        subresource: str,
    ) -> tuple[list[ManagerEntry], tuple[str, str, str]]:
        """Ownership after an Update: the writer takes what it changed, others lose it."""
        domain = "status" if subresource == "status" else ""
        new_view = view(new, resource, domain, complete=True)
        if live is None:
            # As the zero value of the Go type: top-level structs exist, maps do not.
            old_view: dict[str, Any] = {
                key: {}
                for key, value in new_view.items()
                if isinstance(value, dict) and _is_struct(resource, key)
            }
        else:
            old_view = view(live, resource, domain, complete=True)
        writer = (manager, "Update", subresource)
        try:
            comparison = fieldsets.compare(old_view, new_view, resource.schema)
        except FieldError:
            # Duplicate list keys (possible through PUT): the apiserver still takes the write
            # and leaves managedFields as they were.
            return managers, writer
        changed = comparison.changed()
        removed = comparison.removed
        result: list[ManagerEntry] = []
        found = False
        for entry in managers:
            if entry.key == writer:
                found = True
                entry.fields = fieldsets.union(fieldsets.difference(entry.fields, removed), changed)
            else:
                entry.fields = fieldsets.difference(
                    fieldsets.difference(entry.fields, changed), removed
                )
            if entry.fields:
                result.append(entry)
        if not found and changed:
            result.append(
                ManagerEntry(
                    manager, "Update", resource.api_version, now_iso(), subresource, changed
                )
            )
        return result, writer

    # ------------------------------------------------------------------ writes

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
        meta = self._check_identity(resource, namespace, None, body)
        name = meta.get("name")
        if not name:
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
            name = f"{prefix}{random_suffix()}"
        errors = validate_name(resource, name)
        if errors:
            raise invalid(resource, name, errors)
        cleaned, warnings = self._decode(
            resource,
            body,
            strict=field_validation == "Strict",
            warn=field_validation != "Ignore",
            applying=False,
        )
        self._check_namespace(resource, namespace, name)
        if self.find(resource, namespace if resource.namespaced else "", name) is not None:
            raise ApiError(
                409,
                "AlreadyExists",
                f'{resource.qualified_plural} "{name}" already exists',
                details=_details(resource, name),
            )
        candidate = dict(cleaned)
        candidate_meta = {
            k: v for k, v in (cleaned.get("metadata") or {}).items() if k != "managedFields"
        }
        candidate_meta.update(name=name, uid=str(uuid.uuid4()), creationTimestamp=now_iso())
        for key in (
            "resourceVersion",
            "generation",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
        ):
            candidate_meta.pop(key, None)
        if resource.namespaced:
            candidate_meta["namespace"] = namespace
        else:
            candidate_meta.pop("namespace", None)
        candidate["metadata"] = candidate_meta
        new = self._finalize(resource, None, candidate, "")
        managers, writer = self._update_managers(
            resource, None, new, [], manager=manager, subresource=""
        )
        return self._commit(
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
            return self._write_scale(
                resource, namespace, name, body, manager=manager, dry_run=dry_run, patch_type=None
            ), []
        live = self._live(resource, namespace, name)
        meta = self._check_identity(resource, namespace, name, body)
        wanted = meta.get("resourceVersion")
        if wanted and wanted != live["metadata"]["resourceVersion"]:
            raise self._stale(resource, name)
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
            return self.apply(
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
            return self._write_scale(
                resource,
                namespace,
                name,
                body,
                manager=manager,
                dry_run=dry_run,
                patch_type=patch_type,
            ), []
        live = self._live(resource, namespace, name)
        current = self.present(resource, live)
        patched = self._apply_patch(resource, current, patch_type, body)
        meta = self._check_identity(resource, namespace, name, patched)
        if meta.get("resourceVersion") not in (None, live["metadata"]["resourceVersion"]):
            raise self._stale(resource, name)
        return self._decode_and_write(
            resource,
            live,
            patched,
            manager=manager,
            subresource=subresource,
            dry_run=dry_run,
            field_validation=field_validation,
        )

    def _apply_patch(
        self, resource: ResourceType, current: dict[str, Any], patch_type: str, body: Any
    ) -> Any:
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
        raise ApiError(
            415,
            "UnsupportedMediaType",
            f"the body of the request was in an unknown format - accepted media types include: "
            f"{', '.join(PATCH_TYPES)}",
        )

    def _live(self, resource: ResourceType, namespace: str, name: str) -> dict[str, Any]:
        live = self.find(resource, namespace if resource.namespaced else "", name)
        if live is None:
            raise not_found(resource, name)
        return live

    def _stale(self, resource: ResourceType, name: str) -> ApiError:
        return ApiError(
            409,
            "Conflict",
            f'Operation cannot be fulfilled on {resource.qualified_plural} "{name}": the object '
            "has been modified; please apply your changes to the latest version and try again",
            details=_details(resource, name),
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
        cleaned, warnings = self._decode(
            resource,
            body,
            strict=field_validation == "Strict",
            warn=field_validation != "Ignore",
            applying=False,
        )
        written = self._write(
            resource,
            live,
            cleaned,
            manager=manager,
            subresource=subresource,
            dry_run=dry_run,
            managers=self._managers_from_body(cleaned, live),
        )
        return written, warnings

    def _managers_from_body(self, body: dict[str, Any], live: dict[str, Any]) -> list[ManagerEntry]:
        """Update semantics: managedFields in the body replace the stored ones when given."""
        given = (body.get("metadata") or {}).get("managedFields", MISSING)
        if given is MISSING or given is None:
            return decode_managers(live)
        if given == (live["metadata"].get("managedFields") or []):
            return decode_managers(live)
        if isinstance(given, list) and all(not entry for entry in given):
            return []
        return decode_managers(body)

    def _write(
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
                added = set(body_meta.get("finalizers") or ()) - set(
                    live["metadata"].get("finalizers") or ()
                )
                if added:
                    raise invalid(
                        resource,
                        live["metadata"]["name"],
                        [
                            FieldError(
                                "metadata.finalizers",
                                "Forbidden: no new finalizers can be added if the object is "
                                "being deleted",
                                reason="FieldValueForbidden",
                            )
                        ],
                    )
        new = self._finalize(resource, live, candidate, subresource)
        managers, writer = self._update_managers(
            resource, live, new, managers, manager=manager, subresource=subresource
        )
        return self._commit(
            resource, live, new, managers, writer, dry_run=dry_run, subresource=subresource
        )

    # -- apply

    def apply(
        self,
        resource: ResourceType,
        namespace: str,
        name: str,
        body: Any,
        *,
        manager: str,
        subresource: str = "",
        force: bool = False,
        dry_run: bool = False,
        field_validation: str = "Strict",
    ) -> tuple[dict[str, Any], list[str]]:
        """Server-side apply: merge, ownership, conflicts, removal of fields no longer applied."""
        if not manager:
            raise bad_request(
                "PATCH, application/apply-patch+yaml requests require fieldManager to be set"
            )
        if subresource == "scale":
            if not isinstance(body, dict):
                raise bad_request("the request body must be a JSON or YAML object")
            replicas = (body.get("spec") or {}).get("replicas")
            scale = resource.scale
            assert scale is not None
            config = {"spec": {}} if replicas is None else _nest(scale.spec_replicas, replicas)
            return self._apply_config(
                resource,
                namespace,
                name,
                config,
                manager=manager,
                subresource="scale",
                force=force,
                dry_run=dry_run,
                creating_allowed=False,
                present_scale=True,
            ), []
        meta = self._check_identity(resource, namespace, name, body)
        if meta.get("managedFields") is not None:
            raise bad_request("metadata.managedFields must be nil")
        cleaned, warnings = self._decode(
            resource,
            body,
            strict=field_validation == "Strict",
            warn=field_validation != "Ignore",
            applying=True,
        )
        live = self.find(resource, namespace if resource.namespaced else "", name)
        if live is not None:
            for key in ("resourceVersion", "uid"):
                if meta.get(key) and meta[key] != live["metadata"].get(key):
                    raise self._stale(resource, name)
        config = view(cleaned, resource, "status" if subresource == "status" else "")
        return (
            self._apply_config(
                resource,
                namespace,
                name,
                config,
                manager=manager,
                subresource=subresource,
                force=force,
                dry_run=dry_run,
                creating_allowed=subresource == "",
                present_scale=False,
                applied_body=cleaned,
            ),
            warnings,
        )

    def _apply_config(
        self,
        resource: ResourceType,
        namespace: str,
        name: str,
        config: dict[str, Any],
        *,
        manager: str,
        subresource: str,
        force: bool,
        dry_run: bool,
        creating_allowed: bool,
        present_scale: bool,
        applied_body: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        live = self.find(resource, namespace if resource.namespaced else "", name)
        if live is None and not creating_allowed:
            raise not_found(resource, name)
        if live is None:
            errors = validate_name(resource, name)
            if errors:
                raise invalid(resource, name, errors)
            self._check_namespace(resource, namespace, name)
        try:
            applied = fieldsets.applied_fields(config, resource.schema)
        except FieldError as exc:
            raise invalid(resource, name, [exc]) from exc
        managers = decode_managers(live)
        writer = (manager, "Apply", subresource)
        previous = next((entry for entry in managers if entry.key == writer), None)
        last: FieldSet = previous.fields if previous is not None else {}
        if previous is not None:
            previous.fields = applied
        else:
            managers.append(
                ManagerEntry(
                    manager, "Apply", resource.api_version, now_iso(), subresource, applied
                )
            )
        if live is None:
            base: dict[str, Any] = {"metadata": {"name": name}}
            if resource.namespaced:
                base["metadata"]["namespace"] = namespace
        else:
            base = live
        try:
            merged = fieldsets.merge(base, config, resource.schema)
            owned: FieldSet = {}
            for entry in managers:
                owned = fieldsets.union(owned, entry.fields)
            pruned = _prune_keeping_metadata(merged, resource, last, owned)
        except FieldError as exc:
            raise invalid(resource, name, [exc]) from exc
        if live is None:
            meta = dict(pruned.get("metadata") or {})
            meta.update(uid=str(uuid.uuid4()), creationTimestamp=now_iso())
            pruned = pruned | {"metadata": meta}
        domain = "status" if subresource == "status" else ""
        new = self._finalize(resource, live, pruned, domain)
        old_view = view(live, resource, domain, complete=True)
        comparison = fieldsets.compare(
            old_view, view(new, resource, domain, complete=True), resource.schema
        )
        changed = comparison.changed()
        conflicts: list[tuple[ManagerEntry, FieldSet]] = []
        for entry in managers:
            if entry.key == writer:
                continue
            clash = fieldsets.intersection(entry.fields, changed)
            if clash:
                conflicts.append((entry, clash))
        upgrading = manager == "kubectl" and subresource == "" and _last_applied(live) is not None
        if (
            conflicts
            and not force
            and not (upgrading and _conflicts_allowed_by_last_applied(resource, live, conflicts))
        ):
            raise _conflict_error(resource, name, conflicts)
        if upgrading and applied_body is not None:
            # kubectl moving from client- to server-side apply: keep its annotation in step with
            # what it applies, outside of any field ownership, as the apiserver does.
            annotation = json.dumps(_without_last_applied(applied_body), separators=(",", ":"))
            new["metadata"].setdefault("annotations", {})[LAST_APPLIED] = annotation
        clashes = {id(entry): clash for entry, clash in conflicts}
        kept: list[ManagerEntry] = []
        for entry in managers:
            if entry.key != writer:
                if id(entry) in clashes:
                    entry.fields = fieldsets.difference(entry.fields, clashes[id(entry)])
                entry.fields = fieldsets.difference(entry.fields, comparison.removed)
            if entry.fields or entry.key == writer:
                kept.append(entry)
        result = self._commit(
            resource, live, new, kept, writer, dry_run=dry_run, subresource=domain
        )
        if present_scale:
            return self.scale_of(resource, result)
        return result

    # -- scale

    def scale_of(self, resource: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
        """The autoscaling/v1 Scale view of ``obj``."""
        paths = resource.scale
        assert paths is not None
        meta = obj["metadata"]
        selector_value = _get_path(obj, paths.label_selector) if paths.label_selector else None
        selector = (
            str(selector_value or "")
            if paths.selector_is_string
            else selector_string(selector_value)
        )
        status: dict[str, Any] = {"replicas": int(_get_path(obj, paths.status_replicas) or 0)}
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
            "spec": {"replicas": int(_get_path(obj, paths.spec_replicas) or 0)},
            "status": status,
        }

    def _write_scale(
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
        paths = resource.scale
        if paths is None:
            raise not_found(resource, name)
        live = self._live(resource, namespace, name)
        current = self.scale_of(resource, live)
        if patch_type is None:
            if not isinstance(body, dict):
                raise bad_request("the request body must be a Scale object")
            wanted = (body.get("metadata") or {}).get("resourceVersion")
            if wanted and wanted != live["metadata"]["resourceVersion"]:
                raise self._stale(resource, name)
            new_scale = body
        else:
            new_scale = self._apply_patch(_scale_type(), current, patch_type, body)
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
                        f"Invalid value: {json.dumps(replicas)}: must be greater than or equal "
                        "to 0",
                    )
                ],
            )
        candidate = clone(live)
        _set_path(candidate, paths.spec_replicas, replicas)
        new = self._finalize(resource, live, candidate, "")
        managers, writer = self._update_managers(
            resource, live, new, decode_managers(live), manager=manager, subresource="scale"
        )
        result = self._commit(
            resource, live, new, managers, writer, dry_run=dry_run, subresource=""
        )
        return self.scale_of(resource, result)

    # -- delete

    def delete(
        self,
        resource: ResourceType,
        namespace: str,
        name: str,
        *,
        propagation: str | None = None,
        preconditions: dict[str, Any] | None = None,
        dry_run: bool = False,
    ) -> tuple[dict[str, Any], bool]:
        """DELETE: returns (what to answer, whether the object is gone already)."""
        live = self._live(resource, namespace, name)
        for key in ("uid", "resourceVersion"):
            wanted = (preconditions or {}).get(key)
            if wanted and wanted != live["metadata"].get(key):
                raise ApiError(
                    409,
                    "Conflict",
                    f'Operation cannot be fulfilled on {resource.qualified_plural} "{name}": '
                    f"Precondition failed: {key}: {wanted}, {key} in object meta: "
                    f"{live['metadata'].get(key)}",
                    details=_details(resource, name),
                )
        if dry_run:
            return self.present(resource, live), False
        meta = live["metadata"]
        if meta.get("deletionTimestamp"):
            return self.present(resource, live), False
        policy = propagation or "Background"
        if policy not in ("Background", "Foreground", "Orphan"):
            raise bad_request(f'unsupported propagationPolicy "{policy}"')
        finalizers = list(meta.get("finalizers") or ())
        if policy == "Foreground" and self.store.dependents(meta["uid"]):
            finalizers.append("foregroundDeletion")
        if policy == "Orphan":
            finalizers.append("orphan")
        if finalizers or _ns_finalizers(live):
            candidate = clone(live)
            candidate_meta = candidate["metadata"]
            candidate_meta["deletionTimestamp"] = now_iso()
            candidate_meta["deletionGracePeriodSeconds"] = 0
            candidate_meta["finalizers"] = finalizers
            if not finalizers:
                del candidate_meta["finalizers"]
            if resource.tracks_generation:
                candidate_meta["generation"] = int(meta.get("generation", 1)) + 1
            if resource.kind == "Namespace" and not resource.custom:
                candidate["status"] = dict(candidate.get("status") or {}, phase="Terminating")
            candidate_meta["resourceVersion"] = str(self.store.next_version())
            self.store.put(self.types.storage_key(resource), candidate, live)
            for hook in self.deletion_hooks:
                hook(resource, candidate)
            return self.present(resource, candidate), False
        final = clone(live)
        final["metadata"]["resourceVersion"] = str(self.store.next_version())
        self._remove(resource, final)
        if resource.returns_deleted_object:
            return self.present(resource, final), True
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success",
            "details": _details(resource, name, uid=meta["uid"]),
        }, True

    def remove_finalizer(self, resource: ResourceType, obj: dict[str, Any], finalizer: str) -> None:
        """Drops one finalizer (a controller finishing its part of a deletion)."""
        live = self.find(resource, obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
        if live is None:
            return
        finalizers = [f for f in live["metadata"].get("finalizers") or () if f != finalizer]
        candidate = clone(live)
        if finalizers:
            candidate["metadata"]["finalizers"] = finalizers
        else:
            candidate["metadata"].pop("finalizers", None)
        if candidate == live:
            return
        candidate["metadata"]["resourceVersion"] = str(self.store.next_version())
        if (
            candidate["metadata"].get("deletionTimestamp")
            and not finalizers
            and not _ns_finalizers(candidate)
        ):
            self._remove(resource, candidate)
        else:
            self.store.put(self.types.storage_key(resource), candidate, live)

    def delete_collection(
        self,
        resource: ResourceType,
        namespace: str | None,
        *,
        label_selector: str | None,
        field_selector: str | None,
        propagation: str | None,
        dry_run: bool,
    ) -> dict[str, Any]:
        """DELETE on a collection: deletes what the selectors match; answers the list."""
        listed = self.list_objects(
            resource, namespace, label_selector=label_selector, field_selector=field_selector
        )
        for item in listed["items"]:
            meta = item["metadata"]
            try:
                self.delete(
                    resource,
                    meta.get("namespace", ""),
                    meta["name"],
                    propagation=propagation,
                    dry_run=dry_run,
                )
            except ApiError as exc:
                if exc.code != 404:
                    raise
        return listed

    # ------------------------------------------------------------------ controllers' shortcuts

    def write_status(
        self,
        resource: ResourceType,
        obj: dict[str, Any],
        status: dict[str, Any],
        *,
        manager: str = "kube-controller-manager",
    ) -> dict[str, Any] | None:
        """A controller's status update (no-op when the status is unchanged)."""
        if obj.get("status") == status:
            return obj
        return self._controller_write(
            resource, obj, {"status": status}, manager=manager, subresource="status"
        )

    def write_object(
        self,
        resource: ResourceType,
        obj: dict[str, Any],
        *,
        manager: str = "kube-controller-manager",
    ) -> dict[str, Any] | None:
        """A controller's update of the main resource."""
        return self._controller_write(resource, obj, obj, manager=manager, subresource="")

    def _controller_write(
        self,
        resource: ResourceType,
        obj: dict[str, Any],
        body: dict[str, Any],
        *,
        manager: str,
        subresource: str,
    ) -> dict[str, Any] | None:
        """Write ``body`` over the live copy of ``obj``; None when it is gone."""
        meta = obj["metadata"]
        live = self.find(resource, meta.get("namespace", ""), meta["name"])
        if live is None:
            return None
        return self._write(
            resource,
            live,
            body,
            manager=manager,
            subresource=subresource,
            dry_run=False,
            managers=decode_managers(live),
        )

    def create_object(
        self,
        resource: ResourceType,
        obj: dict[str, Any],
        *,
        manager: str = "kube-controller-manager",
    ) -> dict[str, Any] | None:
        """A controller's create; None when the namespace is gone or terminating."""
        namespace = obj["metadata"].get("namespace", "")
        try:
            created, _ = self.create(resource, namespace, obj, manager=manager)
        except ApiError as exc:
            if exc.code in (403, 404, 409):
                return None
            raise
        return created

    def resource(self, api_version: str, kind: str) -> ResourceType:
        """A built-in type controllers rely on."""
        found = self.types.by_kind(api_version, kind)
        if found is None:
            raise KeyError(f"{api_version} {kind} is not served")
        return found

    def install_crd(self, crd: dict[str, Any]) -> list[ResourceType]:
        """Starts serving a CRD's resources."""
        types = custom_resource_types(crd)
        self.types.install(crd["metadata"]["name"], types)
        return types

    def objects_in_namespace(self, namespace: str) -> Iterable[tuple[ResourceType, dict[str, Any]]]:
        """Everything stored in ``namespace``."""
        seen: set[ResourceKey] = set()
        for resource in self.types.all():
            key = self.types.storage_key(resource)
            if not resource.namespaced or key in seen:
                continue
            seen.add(key)
            for obj in list(self.store.objects(key, namespace)):
                yield resource, obj


@functools.cache
def _scale_type() -> ResourceType:
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


def _is_struct(resource: ResourceType, key: str) -> bool:
    node = resource.schema.field(key)
    return node is not None and node.kind == "struct"


def _ns_finalizers(obj: dict[str, Any]) -> list[Any]:
    if obj.get("kind") != "Namespace" or obj.get("apiVersion") != "v1":
        return []
    return list((obj.get("spec") or {}).get("finalizers") or ())


def _spec_changed(live: dict[str, Any], new: dict[str, Any]) -> bool:
    for key in live.keys() | new.keys():
        if key in ("metadata", "status", "apiVersion", "kind"):
            continue
        if live.get(key) != new.get(key):
            return True
    return False


def _prune_keeping_metadata(
    merged: dict[str, Any], resource: ResourceType, last: FieldSet, owned: FieldSet
) -> dict[str, Any]:
    """Prunes fields no longer applied; ``metadata`` itself always stays."""
    top_remove = {k: v for k, v in last.items() if k != "f:metadata"}
    result = fieldsets.prune(merged, resource.schema, top_remove, owned)
    meta_remove = last.get("f:metadata")
    if meta_remove:
        meta_node = resource.schema.field("metadata")
        assert meta_node is not None
        meta = fieldsets.prune(
            merged.get("metadata") or {},
            meta_node,
            {k: v for k, v in meta_remove.items() if k != "."},
            owned.get("f:metadata") or {},
        )
        result = dict(result) | {"metadata": meta}
    pruned: dict[str, Any] = result
    return pruned


LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def _last_applied(obj: dict[str, Any] | None) -> str | None:
    annotations = ((obj or {}).get("metadata") or {}).get("annotations") or {}
    value = annotations.get(LAST_APPLIED)
    return value if isinstance(value, str) else None


def _without_last_applied(body: dict[str, Any]) -> dict[str, Any]:
    meta = dict(body.get("metadata") or {})
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if k != LAST_APPLIED}
    if annotations:
        meta["annotations"] = annotations
    else:
        meta.pop("annotations", None)
    return body | {"metadata": meta}


def _conflicts_allowed_by_last_applied(
    resource: ResourceType,
    live: dict[str, Any] | None,
    conflicts: list[tuple[ManagerEntry, FieldSet]],
) -> bool:
    """True when every conflict is on a field of kubectl's last client-side apply.

    The apiserver lets ``kubectl`` take over what it applied client-side without
    ``--force-conflicts``; other managers and other fields still conflict.
    """
    text = _last_applied(live)
    if text is None:
        return False
    try:
        previous = json.loads(text)
        allowed = fieldsets.applied_fields(view(previous, resource, ""), resource.schema)
    except (ValueError, TypeError, AttributeError, FieldError):
        return False
    return all(not fieldsets.difference(clash, allowed) for _, clash in conflicts)


def _conflict_error(
    resource: ResourceType, name: str, conflicts: list[tuple[ManagerEntry, FieldSet]]
) -> ApiError:
    causes: list[dict[str, str]] = []
    lines: list[str] = []
    total = 0
    for entry, clash in conflicts:
        paths = [fieldsets.format_path(p) for p in fieldsets.members(clash)]
        total += len(paths)
        for path in paths:
            causes.append(
                {
                    "reason": "FieldManagerConflict",
                    "message": f"conflict with {entry.describe()}",
                    "field": path,
                }
            )
        if len(paths) == 1:
            lines.append(f"conflict with {entry.describe()}: {paths[0]}")
        else:
            lines.append(
                f"conflicts with {entry.describe()}:\n" + "\n".join(f"- {p}" for p in paths)
            )
    plural = "conflict" if total == 1 else "conflicts"
    message = f"Apply failed with {total} {plural}: " + "\n".join(lines)
    return ApiError(409, "Conflict", message, details=_details(resource, name, causes=causes))
