"""The render stage: ops-repo templates + values -> Kubernetes objects.

Two layers.  ``load_project`` is the only code here that touches the filesystem: it reads one
project directory of an ops repo checkout into a ``ProjectSources`` of plain text.  Everything
else (``merge_values``, ``render``, ``to_yaml``) is pure: the same sources and arguments always
give the same objects and the same digest, which is what lets the daemon skip an apply when
nothing changed.

Templates run in Jinja2's immutable sandbox with ``StrictUndefined`` and
``keep_trailing_newline``; other Jinja options keep their defaults, so a template line holding
only a block tag still yields a (blank) line and YAML error lines match template lines wherever
no loop or include intervenes.  The loader serves only the project's own templates: a template
may ``{% include %}`` or ``{% import %}`` a sibling (for example a ``_macros.yaml.j2`` holding
only macros, which renders to no documents), never another file.

The sandbox also refuses operations that would build huge values (string or list repetition,
``**``, padding and replacing methods and filters) and each template's output is capped.  These
limits raise the bar for a runaway or hostile template; they are not a full resource guard (a
deeply nested loop can still burn CPU), so callers that distrust ops repos should also bound
the time a render may take.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import math
import re
import string
import traceback
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, TypeGuard

import yaml
from jinja2 import (
    BaseLoader,
    Environment,
    StrictUndefined,
    TemplateError,
    TemplateNotFound,
    TemplateSyntaxError,
    Undefined,
    UndefinedError,
)
from jinja2.exceptions import SecurityError
from jinja2.filters import sync_do_join
from jinja2.nodes import EvalContext
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import missing, pass_eval_context
from yaml.composer import ComposerError
from yaml.constructor import ConstructorError
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, Node, ScalarNode

from reconciler.errors import InputError, RenderError

__all__ = [
    "CLUSTER_SCOPED_KINDS",
    "MAX_RENDERED_CHARS",
    "MAX_SOURCE_BYTES",
    "ProjectSources",
    "Rendered",
    "load_project",
    "merge_values",
    "render",
    "to_yaml",
    "validate_name",
]

MAX_SOURCE_BYTES = 1024 * 1024
"""Largest template or values file the loader reads."""

MAX_RENDERED_CHARS = 4 * 1024 * 1024
"""Largest output one template may render to."""

MAX_SANDBOX_LENGTH = 1024 * 1024
"""Largest string or list one sandboxed operation (``*``, ``ljust``, ``indent``...) may build."""

MAX_POWER_BITS = 4096
"""Largest integer (in bits) ``**`` may build inside a template."""

MAX_NAME_LENGTH = 253

CLUSTER_SCOPED_KINDS: frozenset[str] = frozenset(
    {
        # core
        "Namespace",
        "Node",
        "PersistentVolume",
        "ComponentStatus",
        # apiextensions / apiregistration
        "CustomResourceDefinition",
        "APIService",
        # rbac
        "ClusterRole",
        "ClusterRoleBinding",
        # storage
        "StorageClass",
        "VolumeAttachment",
        "CSIDriver",
        "CSINode",
        "VolumeAttributesClass",
        # scheduling / node / networking
        "PriorityClass",
        "RuntimeClass",
        "IngressClass",
        "IPAddress",
        "ServiceCIDR",
        # admission
        "MutatingWebhookConfiguration",
        "ValidatingWebhookConfiguration",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
        "MutatingAdmissionPolicy",
        "MutatingAdmissionPolicyBinding",
        # certificates / flowcontrol / resource / internal
        "CertificateSigningRequest",
        "ClusterTrustBundle",
        "FlowSchema",
        "PriorityLevelConfiguration",
        "DeviceClass",
        "ResourceSlice",
        "StorageVersion",
        "StorageVersionMigration",
        # authentication / authorization reviews
        "TokenReview",
        "SelfSubjectReview",
        "SubjectAccessReview",
        "SelfSubjectAccessReview",
        "SelfSubjectRulesReview",
    }
)
"""Built-in kinds that live outside namespaces; every other kind gets the deployment namespace
when its manifest names none.  Custom cluster-scoped kinds are not known here: the API server
ignores a namespace on them, and the apply stage decides by discovery."""

_TEMPLATE_SUFFIXES = (".yaml", ".yml", ".yaml.j2", ".yml.j2")
_NAME_PATTERN = re.compile(r"[A-Za-z0-9._-]+")
_SHOWN_VALUE_CHARS = 64


# --------------------------------------------------------------------------------------------
# Data


@dataclass(frozen=True)
class ProjectSources:
    """Everything ``render`` needs from one project directory, as plain text."""

    project_dir: str
    """The project directory relative to the checkout root (``apps/web``), for messages."""
    templates: tuple[tuple[str, str], ...]
    """(file name, text) for every template, sorted by file name."""
    values_base: str | None
    """Text of ``values.yaml``; None when the file is absent."""
    values_env: str | None
    """Text of ``values-<environment>.yaml``; None when the file is absent."""
    values_env_name: str
    """``values-<environment>.yaml``, for messages."""


@dataclass(frozen=True)
class Rendered:
    """The objects a project renders to, and a digest that identifies them."""

    objects: tuple[dict[str, Any], ...]
    """In template-name order; within a template, in document order."""
    digest: str
    """sha256 (hex) of the canonical JSON of ``objects``."""


# --------------------------------------------------------------------------------------------
# Loading (the only I/O)


def validate_name(*, field: str, value: str) -> None:
    """Refuse a project or environment name that is malformed or could leave the ops repo."""
    reason: str | None = None
    if not value:
        reason = "it is empty"
    elif len(value) > MAX_NAME_LENGTH:
        reason = f"it is longer than {MAX_NAME_LENGTH} characters"
    elif value in (".", ".."):
        reason = "it names a directory, not a project"
    elif "\x00" in value:
        reason = "it contains a NUL character"
    elif value.startswith(("/", "\\")):
        reason = "it is an absolute path"
    elif "/" in value or "\\" in value:
        reason = "it contains a path separator"
    elif not _NAME_PATTERN.fullmatch(value):
        reason = "only letters, digits, '.', '_' and '-' are allowed"
    if reason is not None:
        raise InputError(f"invalid {field} name {_shown(value)}: {reason}")


def load_project(*, checkout: Path, path: str, project: str, environment: str) -> ProjectSources:
    """Read ``<checkout>/<path>/<project>/``: its templates and its two values files.

    Templates are the directory's own ``*.yaml``, ``*.yml``, ``*.yaml.j2`` and ``*.yml.j2`` files
    (not subdirectories, not dot files, not ``values*.yaml`` / ``values*.yml``).  Any file or
    directory that resolves outside the checkout, symlinks included, is refused.
    """
    validate_name(field="project", value=project)
    validate_name(field="environment", value=environment)
    relative_dir = _project_relative_dir(path=path, project=project)
    project_dir_text = relative_dir.as_posix()

    try:
        root = checkout.resolve(strict=True)
    except OSError as exc:
        raise RenderError(f"ops repo checkout {checkout} does not exist or cannot be read") from exc

    project_dir = root.joinpath(*relative_dir.parts)
    resolved_dir = project_dir.resolve()
    if not resolved_dir.is_relative_to(root):
        raise RenderError(
            f"project directory {project_dir_text} resolves outside the ops repo checkout"
            " (a symlink?); refusing to read it"
        )
    if not resolved_dir.is_dir():
        raise RenderError(
            f"project directory {project_dir_text} does not exist in the ops repo"
            " (check the project name and the ops repo's path)"
        )

    templates: list[tuple[str, str]] = []
    try:
        entries = sorted(resolved_dir.iterdir(), key=lambda entry: entry.name)
    except OSError as exc:
        raise RenderError(f"cannot list project directory {project_dir_text}: {exc}") from exc
    for entry in entries:
        if _is_template_name(entry.name):
            text = _read_source(entry, root=root, project_dir=project_dir_text)
            templates.append((entry.name, text))
    if not templates:
        raise RenderError(
            f"project directory {project_dir_text} holds no templates"
            f" (expected files ending in {', '.join(_TEMPLATE_SUFFIXES)})"
        )

    values_env_name = f"values-{environment}.yaml"
    return ProjectSources(
        project_dir=project_dir_text,
        templates=tuple(templates),
        values_base=_read_optional(resolved_dir / "values.yaml", root, project_dir_text),
        values_env=_read_optional(resolved_dir / values_env_name, root, project_dir_text),
        values_env_name=values_env_name,
    )


def _project_relative_dir(*, path: str, project: str) -> PurePosixPath:
    """``<path>/<project>`` as a relative path, refusing a path that could leave the checkout."""
    if "\x00" in path:
        raise InputError(f"ops repo path {_shown(path)} contains a NUL character")
    relative = PurePosixPath(path)
    if relative.is_absolute():
        raise InputError(f"ops repo path {_shown(path)} must be relative to the repo root")
    if ".." in relative.parts:
        raise InputError(f"ops repo path {_shown(path)} must not contain '..'")
    return relative / project


def _is_template_name(name: str) -> bool:
    if name.startswith(".") or not name.endswith(_TEMPLATE_SUFFIXES):
        return False
    is_values_file = name.startswith("values") and name.endswith((".yaml", ".yml"))
    return not is_values_file


def _read_optional(file: Path, root: Path, project_dir: str) -> str | None:
    # a dangling symlink is reported by _read_source, not taken for a missing file
    if not file.is_symlink() and not file.exists():
        return None
    return _read_source(file, root=root, project_dir=project_dir)


def _read_source(file: Path, *, root: Path, project_dir: str) -> str:
    """Read one template or values file, within the checkout and the size limit."""
    where = f"in project directory {project_dir}"
    resolved = file.resolve()
    if not resolved.is_relative_to(root):
        raise RenderError(
            f"resolves outside the ops repo checkout (a symlink?); refusing to read it ({where})",
            location=file.name,
        )
    if not resolved.is_file():
        raise RenderError(f"is not a regular file ({where})", location=file.name)
    too_big = RenderError(
        f"is larger than the limit of {MAX_SOURCE_BYTES} bytes per file ({where})",
        location=file.name,
    )
    try:
        if resolved.stat().st_size > MAX_SOURCE_BYTES:
            raise too_big
        with resolved.open("rb") as handle:
            data = handle.read(MAX_SOURCE_BYTES + 1)
    except OSError as exc:
        raise RenderError(f"cannot be read ({where}): {exc}", location=file.name) from exc
    if len(data) > MAX_SOURCE_BYTES:
        raise too_big
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise RenderError(
            f"is not valid UTF-8 (byte {exc.start}) ({where})", location=file.name
        ) from exc


# --------------------------------------------------------------------------------------------
# Values


def merge_values(*layers: Mapping[str, Any]) -> dict[str, Any]:
    """Merge layers deeply, later wins: mappings merge, lists and scalars replace.

    The result shares nothing with the inputs, which are left untouched.
    """
    merged: dict[str, Any] = {}
    for layer in layers:
        _merge_into(merged, layer)
    return merged


def _merge_into(target: dict[str, Any], layer: Mapping[str, Any]) -> None:
    for key, value in layer.items():
        existing = target.get(key)
        if isinstance(value, Mapping) and isinstance(existing, dict):
            _merge_into(existing, value)
        elif isinstance(value, Mapping):
            target[key] = merge_values(value)
        else:
            target[key] = copy.deepcopy(value)


def _parse_values(text: str | None, *, file_name: str) -> dict[str, Any]:
    if text is None:
        return {}
    try:
        loaded = yaml.load(text, Loader=_ValuesLoader)
    except yaml.YAMLError as exc:
        raise _yaml_error(exc, file_name=file_name) from exc
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise RenderError(
            f"values must be a mapping of names to values at the top level, not"
            f" {_type_name(loaded)}",
            location=file_name,
        )
    return loaded


# --------------------------------------------------------------------------------------------
# YAML: safe loading, with the surprises of YAML 1.1 turned into errors


class _ValuesLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys and aliases and keeps dates as strings."""

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        # Aliases can expand exponentially ("billion laughs") once the data is serialised;
        # Jinja variables and macros do the same job safely.
        if self.check_event(AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise ComposerError(
                None,
                None,
                "aliases (*name) are not supported; use a Jinja variable or macro instead",
                event.start_mark,
            )
        return super().compose_node(parent, index)

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # '<<' merge keys are flattened by SafeLoader
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, str | int | float | bool):
                continue  # unhashable keys are refused by SafeLoader itself
            if key in seen:
                raise ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    f"found duplicate key {key!r}",
                    key_node.start_mark,
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


# Dates stay strings: Kubernetes objects are JSON, which has no date type.
_ValuesLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


class _ManifestLoader(_ValuesLoader):
    """Loader for rendered manifests: additionally refuses what JSON cannot hold."""

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        for key_node, _value_node in node.value:
            if not (isinstance(key_node, ScalarNode) and key_node.tag == "tag:yaml.org,2002:str"):
                raise ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    "found a key that is not a string; quote it",
                    key_node.start_mark,
                )
        return super().construct_mapping(node, deep=deep)

    def construct_yaml_float(self, node: ScalarNode) -> float:
        value: float = super().construct_yaml_float(node)
        if not math.isfinite(value):
            raise ConstructorError(
                None, None, "found a number JSON cannot hold (inf or nan)", node.start_mark
            )
        return value

    def _refuse_non_json(self, node: Node) -> Any:
        raise ConstructorError(
            None, None, f"found tag {node.tag!r}, which JSON cannot hold", node.start_mark
        )


_ManifestLoader.add_constructor("tag:yaml.org,2002:float", _ManifestLoader.construct_yaml_float)
for _tag in ("binary", "set", "omap", "pairs", "timestamp"):
    _ManifestLoader.add_constructor(f"tag:yaml.org,2002:{_tag}", _ManifestLoader._refuse_non_json)


def _yaml_error(exc: yaml.YAMLError, *, file_name: str) -> RenderError:
    """A RenderError at the line YAML complains about."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    location = f"{file_name}:{mark.line + 1}" if mark is not None else file_name
    problem = getattr(exc, "problem", None) or str(exc)
    return RenderError(f"YAML: {problem}", location=location)


# --------------------------------------------------------------------------------------------
# The sandbox


class _ExplainingUndefined(StrictUndefined):
    """StrictUndefined whose message names the missing name the way an operator thinks of it."""

    __slots__ = ()

    @property
    def _undefined_message(self) -> str:
        if self._undefined_hint:
            return self._undefined_hint
        name = self._undefined_name
        if self._undefined_obj is missing:
            return f"undefined name {name!r}"
        owner = self._undefined_obj
        if isinstance(owner, Mapping):
            keys = sorted(str(key) for key in owner)
            shown = ", ".join(keys[:10]) + (", ..." if len(keys) > 10 else "")
            where = f"it has keys: {shown}" if keys else "it is empty"
            return f"undefined name {name!r}: no such key in the mapping ({where})"
        return f"undefined name {name!r}: {type(owner).__name__} value has no such attribute"


class _ProjectLoader(BaseLoader):
    """Serves the project's own templates by file name, and nothing else."""

    def __init__(self, templates: Mapping[str, str]) -> None:
        self._templates = dict(templates)

    def get_source(
        self, environment: Environment, template: str
    ) -> tuple[str, str | None, Callable[[], bool] | None]:
        try:
            source = self._templates[template]
        except KeyError:
            raise TemplateNotFound(template) from None
        # the file name becomes the traceback filename, which locates runtime errors
        return source, template, lambda: True

    def list_templates(self) -> list[str]:
        return sorted(self._templates)


def _ensure_small(size: int, *, what: str) -> None:
    if size > MAX_SANDBOX_LENGTH:
        raise SecurityError(
            f"{what} would build a string or list of {size} elements;"
            f" the limit is {MAX_SANDBOX_LENGTH}"
        )


def _spec_number(digits: str) -> int:
    # int() refuses very long digit strings; anything this long is over every limit anyway
    return int(digits) if len(digits) <= 18 else 10**18


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")


def _check_percent_format(template: str) -> None:
    for match in _PERCENT_SPEC.finditer(template):
        for number in match.groups():
            if number == "*":
                raise SecurityError("'*' widths in % formatting are not allowed")
            if number is not None:
                _ensure_small(_spec_number(number), what="a % format width")


def _check_brace_format(template: str) -> None:
    for _literal, _field, spec, _conversion in string.Formatter().parse(template):
        if not spec:
            continue
        if "{" in spec:
            raise SecurityError("nested fields in a format spec are not allowed")
        for number in re.findall(r"\d+", spec):
            _ensure_small(_spec_number(number), what="a format width")


def _check_str_method(
    owner: str, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[Any, ...]:
    """Refuse str methods whose result would be far larger than their inputs.

    Returns the arguments to call with: an iterator given to ``join`` is made a list first, so
    its size can be checked.
    """
    if method == "join" and args and not isinstance(args[0], Collection):
        args = (list(args[0]), *args[1:])
    first = args[0] if args else None
    if method in ("ljust", "rjust", "center", "zfill"):
        width = kwargs.get("width", first)
        if _is_int(width):
            _ensure_small(width, what=f"str.{method}")
    elif method == "expandtabs":
        tab_size = kwargs.get("tabsize", 8 if first is None else first)
        if _is_int(tab_size):
            _ensure_small(len(owner) + owner.count("\t") * tab_size, what="str.expandtabs")
    elif method == "replace" and len(args) >= 2:
        _check_replace(owner, args[0], args[1])
    elif method == "join" and isinstance(first, Collection):
        _check_join(separator=owner, items=first)
    elif method == "translate" and isinstance(first, Mapping):
        longest = max((len(v) for v in first.values() if isinstance(v, str)), default=1)
        _ensure_small(len(owner) * longest, what="str.translate")
    elif method in ("format", "format_map"):
        _check_brace_format(owner)
    return args


def _check_replace(owner: object, old: object, new: object) -> None:
    if isinstance(owner, str) and isinstance(old, str) and isinstance(new, str):
        count = owner.count(old) if old else len(owner) + 1
        _ensure_small(len(owner) + count * max(0, len(new) - len(old)), what="replace")


def _check_join(*, separator: object, items: Collection[Any]) -> None:
    separator_length = len(separator) if isinstance(separator, str) else 0
    parts = sum(len(item) for item in items if isinstance(item, str))
    _ensure_small(parts + separator_length * max(0, len(items) - 1), what="join")


def _guard_filter(original: Callable[..., Any], check: Callable[..., None]) -> Callable[..., Any]:
    # functools.wraps copies Jinja's pass-context markers, so the wrapper gets the same arguments
    @functools.wraps(original)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        check(*args, **kwargs)
        return original(*args, **kwargs)

    return guarded


def _check_center_filter(value: object, width: object = 80) -> None:
    if _is_int(width):
        _ensure_small(width, what="the center filter")


def _check_indent_filter(
    text: object, width: object = 4, first: object = False, blank: object = False
) -> None:
    del first, blank
    prefix = width if _is_int(width) else len(str(width))
    lines = str(text).count("\n") + 1
    _ensure_small(len(str(text)) + lines * prefix, what="the indent filter")


def _check_replace_filter(
    eval_ctx: object, text: object, old: object, new: object, count: object = None
) -> None:
    del eval_ctx, count
    _check_replace(text, old, new)


@pass_eval_context
def _guarded_join_filter(
    eval_ctx: EvalContext, value: Iterable[Any], separator: str = "", attribute: Any = None
) -> str:
    # map/select hand over generators: make a list so the size can be checked before joining
    items = value if isinstance(value, Collection) else list(value)
    _check_join(separator=separator, items=items)
    return sync_do_join(eval_ctx, items, separator, attribute)


def _check_format_filter(value: object, *args: object, **kwargs: object) -> None:
    del args, kwargs
    if isinstance(value, str):
        _check_percent_format(value)


def _check_grouping_filter(value: object, count: object, fill_with: object = None) -> None:
    del value, fill_with
    if _is_int(count):
        _ensure_small(count, what="the batch/slice filter")


_FILTER_GUARDS: dict[str, Callable[..., None]] = {
    "center": _check_center_filter,
    "indent": _check_indent_filter,
    "replace": _check_replace_filter,
    "format": _check_format_filter,
    "batch": _check_grouping_filter,
    "slice": _check_grouping_filter,
}


class _GuardedSandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox, with size caps on operations that can build huge values."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            for sequence, times in ((left, right), (right, left)):
                if isinstance(sequence, str | list | tuple) and _is_int(times):
                    _ensure_small(len(sequence) * times, what="repetition with '*'")
        elif operator == "+":
            if isinstance(left, str | list | tuple) and isinstance(right, str | list | tuple):
                _ensure_small(len(left) + len(right), what="concatenation with '+'")
        elif operator == "**":
            if _is_int(left) and _is_int(right) and abs(left) > 1 and right > 0:
                bits = right * abs(left).bit_length()
                if bits > MAX_POWER_BITS:
                    raise SecurityError(
                        f"'**' would build an integer of about {bits} bits;"
                        f" the limit is {MAX_POWER_BITS}"
                    )
        elif operator == "%" and isinstance(left, str):
            _check_percent_format(left)
        return super().call_binop(context, operator, left, right)

    def call(self, context: Context, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        # str.format arrives wrapped by the sandbox; the original is in __wrapped__
        target = getattr(obj, "__wrapped__", obj)
        owner = getattr(target, "__self__", None)
        if isinstance(owner, str):
            args = _check_str_method(owner, getattr(target, "__name__", ""), args, kwargs)
        return super().call(context, obj, *args, **kwargs)


def _make_environment(templates: Mapping[str, str]) -> _GuardedSandbox:
    environment = _GuardedSandbox(
        loader=_ProjectLoader(templates),
        undefined=_ExplainingUndefined,
        keep_trailing_newline=True,
        autoescape=False,
        auto_reload=False,
    )
    # Render must be deterministic (the digest decides whether to apply): no randomness.
    environment.globals.pop("lipsum", None)
    environment.filters.pop("random", None)
    for name, check in _FILTER_GUARDS.items():
        environment.filters[name] = _guard_filter(environment.filters[name], check)
    environment.filters["join"] = _guarded_join_filter
    # json.dumps does not stringify an Undefined (which would raise the clear error); make it.
    environment.policies["json.dumps_kwargs"] = {"sort_keys": True, "default": _json_default}
    return environment


def _json_default(value: Any) -> Any:
    if isinstance(value, Undefined):
        value._fail_with_undefined_error()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


# --------------------------------------------------------------------------------------------
# Rendering


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
            f"values_override must be a JSON object (a mapping), not {_type_name(values_override)}"
        )
    values = merge_values(
        _parse_values(sources.values_base, file_name="values.yaml"),
        _parse_values(sources.values_env, file_name=sources.values_env_name),
        values_override,
    )
    context = {
        "image_ref": image_ref,
        "project": project,
        "environment": environment,
        "namespace": namespace,
        "values": values,
    }
    jinja = _make_environment(dict(sources.templates))
    template_names = frozenset(name for name, _text in sources.templates)

    objects: list[dict[str, Any]] = []
    first_seen: dict[tuple[str, str, str, str], str] = {}
    for name, _text in sources.templates:
        text = _render_template(jinja, name=name, context=context, template_names=template_names)
        for index, line, document in _parse_documents(text, file_name=name):
            where = f"document {index} (line {line})"
            obj = _check_object(document, location=f"{name}:{line}", index=index)
            _default_namespace(obj, namespace=namespace)
            key = _identity(obj)
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

    return Rendered(objects=tuple(objects), digest=_digest(objects))


def _render_template(
    jinja: _GuardedSandbox,
    *,
    name: str,
    context: Mapping[str, Any],
    template_names: frozenset[str],
) -> str:
    chunks: list[str] = []
    size = 0
    try:
        template = jinja.get_template(name)
        for chunk in template.generate(context):
            size += len(chunk)
            if size > MAX_RENDERED_CHARS:
                raise RenderError(
                    f"rendered output is larger than the limit of {MAX_RENDERED_CHARS}"
                    " characters; is a loop running away?",
                    location=name,
                )
            chunks.append(chunk)
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
            f" ({', '.join(_TEMPLATE_SUFFIXES)}) can be included",
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


def _parse_documents(text: str, *, file_name: str) -> Iterator[tuple[int, int, Any]]:
    """(1-based document index, 1-based first line, data) for each non-empty document."""
    loader = _ManifestLoader(text)
    try:
        index = 0
        while loader.check_node():
            node = loader.get_node()
            index += 1
            if node is None:
                continue
            data = loader.construct_document(node)
            if data is None:
                continue
            yield index, node.start_mark.line + 1, data
    except yaml.YAMLError as exc:
        raise _yaml_error(exc, file_name=file_name) from exc
    finally:
        loader.dispose()


def _check_object(document: Any, *, location: str, index: int) -> dict[str, Any]:
    if not isinstance(document, dict):
        raise RenderError(
            f"document {index} is {_type_name(document)}, not a mapping;"
            " every document must be one Kubernetes object",
            location=location,
        )
    for field in ("apiVersion", "kind"):
        _require_string(document.get(field), field=field, index=index, location=location)
    metadata = document.get("metadata")
    if not isinstance(metadata, dict):
        missing_or_bad = (
            "has no metadata" if metadata is None else "has metadata that is not a mapping"
        )
        raise RenderError(f"document {index} {missing_or_bad}", location=location)
    _require_string(metadata.get("name"), field="metadata.name", index=index, location=location)
    object_namespace = metadata.get("namespace")
    if object_namespace is not None and not isinstance(object_namespace, str):
        raise RenderError(
            f"document {index}: metadata.namespace must be a string,"
            f" not {_type_name(object_namespace)}",
            location=location,
        )
    return document


def _require_string(value: Any, *, field: str, index: int, location: str) -> None:
    if value is None or value == "":
        raise RenderError(f"document {index} has no {field}", location=location)
    if not isinstance(value, str):
        raise RenderError(
            f"document {index}: {field} must be a string, not {_type_name(value)}",
            location=location,
        )


def _default_namespace(obj: dict[str, Any], *, namespace: str) -> None:
    if obj["kind"] in CLUSTER_SCOPED_KINDS:
        return
    if not obj["metadata"].get("namespace"):
        obj["metadata"]["namespace"] = namespace


def _identity(obj: Mapping[str, Any]) -> tuple[str, str, str, str]:
    """(API group, kind, namespace, name): what makes two manifests the same object."""
    api_version: str = obj["apiVersion"]
    group = api_version.rpartition("/")[0]
    return group, obj["kind"], obj["metadata"].get("namespace") or "", obj["metadata"]["name"]


def _digest(objects: Sequence[Mapping[str, Any]]) -> str:
    canonical = json.dumps(list(objects), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def to_yaml(objects: Sequence[Mapping[str, Any]]) -> str:
    """Multi-document YAML (each document starting with ``---``), keys in their given order."""
    return yaml.safe_dump_all(
        [_plain(obj) for obj in objects],
        explicit_start=True,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
    )


def _plain(value: Any) -> Any:
    # safe_dump refuses Mapping subclasses it does not know; hand it plain dicts and lists
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


# --------------------------------------------------------------------------------------------
# Small helpers


def _shown(value: str) -> str:
    """repr of a possibly hostile value, truncated so a message stays readable."""
    if len(value) > _SHOWN_VALUE_CHARS:
        return f"{value[:_SHOWN_VALUE_CHARS]!r}... ({len(value)} characters)"
    return repr(value)


def _type_name(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return f"a {type(value).__name__}"
