"""Rendered objects against the Kubernetes schema of the target version, offline.

The schemas are kubernetes-validate's bundle, in its strict form: a string where an integer
belongs and a field Kubernetes does not know are both refused, before anything is applied.  Kinds
of API groups that are not Kubernetes' own (custom resources) are skipped: the bundle has no
schema for them, and their API server checks them on apply.
"""

from __future__ import annotations

import asyncio
import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import jsonschema
import kubernetes_validate
from kubernetes_validate import utils as kubernetes_validate_utils
from referencing import Registry, Resource

from reconciler.errors import ConfigError, RenderError
from reconciler.ports import RenderedManifests
from reconciler.render.quick_schema import QuickCheck, quick_check

_LEGACY_GROUPS = frozenset({"apps", "autoscaling", "batch", "extensions", "policy"})
"""Kubernetes' own API groups without the ``.k8s.io`` suffix."""
MAX_REPORTED = 20
"""At most this many invalid objects are named in one error; the rest are counted."""


class SchemaError(RenderError):
    """A rendered object does not match the Kubernetes schema of the target version."""


@functools.cache
def supported_versions() -> tuple[str, ...]:
    """The Kubernetes versions (``major.minor``) whose schemas are bundled, oldest first."""
    bundled = kubernetes_validate_utils.all_versions()
    found = {kubernetes_validate_utils.major_minor(version) for version in bundled}
    return tuple(sorted(found, key=lambda v: tuple(int(part) for part in v.split("."))))


def check_version(version: str) -> None:
    """Refuse a Kubernetes version the bundle has no schema for, listing the ones it has."""
    supported = supported_versions()
    if version not in supported:
        raise ConfigError(
            f"RECONCILER_KUBERNETES_VERSION {version} has no bundled schema"
            f" (kubernetes-validate has {supported[0]} to {supported[-1]})"
        )


def validate_objects(
    objects: Sequence[Mapping[str, Any]],
    *,
    sources: Sequence[tuple[str, int]] = (),
    kubernetes_version: str,
) -> None:
    """Raise :class:`SchemaError` naming each object that breaks the schema: its file, its
    document, and the field with the schema's message.  ``sources`` is ``Rendered.sources``;
    without it objects are named by their position."""
    check_version(kubernetes_version)
    problems: list[str] = []
    for position, obj in enumerate(objects):
        problem = _problem(obj, kubernetes_version=kubernetes_version)
        if problem is not None:
            where = _where(sources, position)
            problems.append(f"{where}: {_describe(obj)}: {problem}")
    if not problems:
        return
    shown = problems[:MAX_REPORTED]
    if len(problems) > len(shown):
        shown.append(f"and {len(problems) - len(shown)} more")
    raise SchemaError(
        f"rendered objects do not match the Kubernetes {kubernetes_version} schema: "
        + "; ".join(shown)
    )


async def check_rendered(rendered: RenderedManifests, *, kubernetes_version: str) -> None:
    """:func:`validate_objects` for a render: the render worker's verdict when it checked
    this version, else checked in a thread (checking takes milliseconds per object, and the
    event loop serves every other deployment meanwhile)."""
    checked = rendered.schema_checked
    if checked is not None and checked[0] == kubernetes_version:
        if checked[1] is not None:
            raise checked[1]
        return
    await asyncio.to_thread(
        validate_objects,
        rendered.objects,
        sources=rendered.sources,
        kubernetes_version=kubernetes_version,
    )


def _problem(obj: Mapping[str, Any], *, kubernetes_version: str) -> str | None:
    """The first schema violation of ``obj`` as ``field.path: message``, or None."""
    api_version = str(obj.get("apiVersion", ""))
    if not is_builtin_group(api_version):
        return None
    kind = str(obj.get("kind", ""))
    validator = _validator(kubernetes_version, api_version, kind)
    if validator is None:
        # A kind (or version of it) the bundle does not have: the API server still checks it.
        return None
    quick = _quick_check(kubernetes_version, api_version, kind)
    if quick is not None and quick(obj):
        return None
    try:
        validator.validate(dict(obj))
    except jsonschema.ValidationError as exc:
        return _violation(exc)
    return None


@functools.lru_cache(maxsize=1024)
def _validator(version: str, api_version: str, kind: str) -> Any:
    """The strict validator of one kind, built once: reading the bundle's files costs ~10 ms a
    call, validating against a built validator well under one.  Same files, same draft and the
    same error as ``kubernetes_validate.validate``; None when the bundle lacks the kind."""
    found = _schema(version, api_version, kind)
    if found is None:
        return None
    schema, definitions = found
    registry = Resource.from_contents(schema) @ (Resource.from_contents(definitions) @ Registry())
    return jsonschema.validators.Draft202012Validator(schema, registry=registry)


@functools.lru_cache(maxsize=1024)
def _quick_check(version: str, api_version: str, kind: str) -> QuickCheck | None:
    found = _schema(version, api_version, kind)
    return quick_check(*found) if found is not None else None


def _schema(version: str, api_version: str, kind: str) -> tuple[Any, Any] | None:
    """The bundle's strict schema of one kind and the definitions it refers to; None when the
    bundle lacks the kind."""
    schema_dir = f"v{_bundled(version)}-local-strict"
    # The bundle's file names: the API group loses its domain, '/' becomes '-'.
    group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    try:
        schema = kubernetes_validate_utils.schema_contents(
            f"kubernetes-json-schema/{schema_dir}/{kind.lower()}-{group_version}.json", version
        )
    except (FileNotFoundError, kubernetes_validate.InvalidSchemaError):
        return None
    return schema, _definitions(schema_dir, version)


@functools.cache
def _definitions(schema_dir: str, version: str) -> Any:
    return kubernetes_validate_utils.schema_contents(
        f"kubernetes-json-schema/{schema_dir}/_definitions.json", version
    )


@functools.cache
def _bundled(version: str) -> str:
    """The newest bundled schema version not newer than ``version`` (major.minor)."""
    wanted = _as_tuple(version)
    candidates = [
        v
        for v in kubernetes_validate_utils.all_versions()
        if _as_tuple(kubernetes_validate_utils.major_minor(v)) <= wanted
    ]
    return str(candidates[-1])


def _as_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def _violation(exc: jsonschema.ValidationError) -> str:
    path = list(exc.absolute_path)
    if exc.validator == "additionalProperties":
        unknown = _unknown_fields(exc.instance, exc.schema)
        if unknown:
            fields = ", ".join(field_path([*path, name]) for name in unknown)
            noun = "field" if len(unknown) == 1 else "fields"
            return f"{fields}: unknown {noun} (not in the schema)"
    return f"{field_path(path) or '(the object)'}: {exc.message}"


def _unknown_fields(instance: Any, schema: Any) -> list[str]:
    if not isinstance(instance, Mapping) or not isinstance(schema, Mapping):
        return []
    known = schema.get("properties") or {}
    return sorted(str(name) for name in instance if name not in known)


def field_path(parts: Iterable[Any]) -> str:
    """``spec.template.spec.containers[0].image`` from the path's keys and indexes."""
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def is_builtin_group(api_version: str) -> bool:
    """Whether ``api_version`` is one of Kubernetes' own API groups (core included)."""
    if "/" not in api_version:
        return True
    group = api_version.split("/", 1)[0]
    return group in _LEGACY_GROUPS or group.endswith(".k8s.io")


def _where(sources: Sequence[tuple[str, int]], position: int) -> str:
    if position < len(sources):
        template, document = sources[position]
        return f"{template}, document {document}"
    return f"object {position + 1}"


def _describe(obj: Mapping[str, Any]) -> str:
    metadata = obj.get("metadata")
    metadata = metadata if isinstance(metadata, Mapping) else {}
    name = metadata.get("name", "?")
    namespace = metadata.get("namespace")
    return f"{obj.get('kind', '?')} {f'{namespace}/{name}' if namespace else name}"
