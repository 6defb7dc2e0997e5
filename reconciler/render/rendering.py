"""Render a project: its templates and values into Kubernetes objects and their digest (pure).

The same sources and arguments always give the same objects and the same digest, which is what
lets the daemon skip an apply when nothing changed.
"""

from __future__ import annotations

import functools
import hashlib
import json
import traceback
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from jinja2 import TemplateError, TemplateNotFound, TemplateSyntaxError, UndefinedError
from jinja2.exceptions import SecurityError

from reconciler.errors import InputError, ReconcilerError, RenderError
from reconciler.render.documents import check_object, default_namespace, identity, parse_documents
from reconciler.render.messages import type_name
from reconciler.render.printed import OutputTooLarge, PrintedValues, refuse_reserved
from reconciler.render.sandbox import GuardedSandbox, make_sandbox
from reconciler.render.sources import TEMPLATE_SUFFIXES, ProjectSources
from reconciler.render.values import merge_values, parse_values

MAX_RENDERED_CHARS = 4 * 1024 * 1024
"""Largest output one template may render to."""
MAX_KEPT_VALUES_CHARS = 64 * 1024
"""Values files up to this size are parsed once per process and text (a commit's files are
the same for every render of it); larger ones are parsed each time."""


@dataclass(frozen=True)
class Rendered:
    """The objects a project renders to, and a digest that identifies them."""

    objects: tuple[dict[str, Any], ...]
    """In template-name order; within a template, in document order."""
    digest: str
    """sha256 (hex) of the canonical JSON of ``objects``."""
    sources: tuple[tuple[str, int], ...] = ()
    """Where each of ``objects`` came from: (template name, 1-based document index in it), in
    the same order.  Not part of ``digest``: moving an object between files changes nothing
    on the cluster."""
    schema_checked: tuple[str, ReconcilerError | None] | None = None
    """(Kubernetes version, the schema error or None) when a worker checked ``objects``
    against that version's schema (:mod:`reconciler.render.pool`); None: not checked."""


def render(
    sources: ProjectSources,
    *,
    project: str,
    environment: str,
    namespace: str,
    image_ref: str,
    values_override: Mapping[str, Any],
) -> Rendered:
    """Render every template of a project into Kubernetes objects (pure).

    Values merge as values.yaml < values-<environment>.yaml < ``values_override``; the override
    is used exactly as given (it is JSON from the database, not YAML).  Templates see
    ``image_ref``, ``project``, ``environment``, ``namespace`` and ``values``.
    """
    if not isinstance(values_override, Mapping):
        raise InputError(
            f"values_override must be a JSON object (a mapping), not {type_name(values_override)}"
        )
    values = merge_values(
        _values(sources.values_base, file_name="values.yaml"),
        _values(sources.values_env, file_name=sources.values_env_name),
        values_override,
    )
    context = {
        "image_ref": image_ref,
        "project": project,
        "environment": environment,
        "namespace": namespace,
        "values": values,
    }
    for context_name, context_value in context.items():
        refuse_reserved(context_value, name=context_name)
    printed = PrintedValues(max_chars=MAX_RENDERED_CHARS)
    jinja = make_sandbox(dict(sources.templates), printed=printed)
    template_names = frozenset(name for name, _text in sources.templates)

    objects: list[dict[str, Any]] = []
    origins: list[tuple[str, int]] = []
    first_seen: dict[tuple[str, str, str, str], str] = {}
    for name, _text in sources.templates:
        text = _render_template(jinja, name=name, context=context, template_names=template_names)
        for index, line, document in _documents(text, file_name=name, printed=printed):
            where = f"document {index} (line {line})"
            obj = check_object(document, location=f"{name}:{line}", index=index)
            default_namespace(obj, namespace=namespace)
            key = identity(obj)
            if key in first_seen:
                group, kind, object_namespace, object_name = key
                shown = f"{object_namespace}/{object_name}" if object_namespace else object_name
                raise RenderError(
                    f"duplicate object {kind} {shown} (API group {group or 'core'}):"
                    f" already defined in {first_seen[key]}",
                    location=f"{name}:{line}",
                )
            first_seen[key] = f"{name} {where}"
            objects.append(obj)
            origins.append((name, index))

    return Rendered(objects=tuple(objects), digest=_digest(objects), sources=tuple(origins))


def _values(text: str | None, *, file_name: str) -> dict[str, Any]:
    """A values file parsed, kept when small: merge_values copies what it takes, so a render
    never changes what another render reads."""
    if text is None or len(text) > MAX_KEPT_VALUES_CHARS:
        return parse_values(text, file_name=file_name)
    return _parsed_values(text, file_name)


@functools.lru_cache(maxsize=256)
def _parsed_values(text: str, file_name: str) -> dict[str, Any]:
    return parse_values(text, file_name=file_name)


def _documents(
    text: str, *, file_name: str, printed: PrintedValues
) -> Iterator[tuple[int, int, Any]]:
    try:
        yield from parse_documents(text, file_name=file_name, printed=printed)
    except OutputTooLarge:
        raise _too_large(file_name) from None


def _too_large(name: str) -> RenderError:
    return RenderError(
        f"rendered output is larger than the limit of {MAX_RENDERED_CHARS}"
        " characters; is a loop running away?",
        location=name,
    )


def _render_template(
    jinja: GuardedSandbox,
    *,
    name: str,
    context: Mapping[str, Any],
    template_names: frozenset[str],
) -> str:
    chunks: list[str] = []
    size = 0
    printed = jinja.printed
    # printed values count at their full length, not their placeholders'
    printed_before = printed.printed_chars
    try:
        template = jinja.get_template(name)
        for chunk in template.generate(context):
            size += len(chunk)
            if size + printed.printed_chars - printed_before > MAX_RENDERED_CHARS:
                raise _too_large(name)
            chunks.append(chunk)
    except OutputTooLarge:
        raise _too_large(name) from None
    except TemplateSyntaxError as exc:
        location = f"{exc.filename or exc.name or name}:{exc.lineno}"
        raise RenderError(f"template syntax: {exc.message}", location=location) from exc
    except UndefinedError as exc:
        raise RenderError(
            exc.message or "undefined value", location=_runtime_location(exc, name, template_names)
        ) from exc
    except SecurityError as exc:
        raise RenderError(
            f"the template sandbox refused this: {exc.message}",
            location=_runtime_location(exc, name, template_names),
        ) from exc
    except TemplateNotFound as exc:
        raise RenderError(
            f"cannot include or import {exc.name!r}: only this project's own templates"
            f" ({', '.join(TEMPLATE_SUFFIXES)}) can be included",
            location=_runtime_location(exc, name, template_names),
        ) from exc
    except TemplateError as exc:
        raise RenderError(
            f"template error: {exc.message}", location=_runtime_location(exc, name, template_names)
        ) from exc
    except RenderError:
        raise
    except Exception as exc:
        # Anything a template expression raises (TypeError, ZeroDivisionError, range limits...)
        raise RenderError(
            f"template error: {type(exc).__name__}: {exc}",
            location=_runtime_location(exc, name, template_names),
        ) from exc
    return "".join(chunks)


def _runtime_location(exc: BaseException, name: str, template_names: frozenset[str]) -> str:
    """``file:line`` of the innermost template frame (Jinja rewrites frames to template lines)."""
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if frame.filename in template_names and frame.lineno is not None:
            return f"{frame.filename}:{frame.lineno}"
    return name


def _digest(objects: Sequence[Mapping[str, Any]]) -> str:
    canonical = json.dumps(list(objects), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()
