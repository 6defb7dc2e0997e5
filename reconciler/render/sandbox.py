"""The Jinja2 sandbox templates run in: the security boundary between ops repos and the daemon.

Templates run in Jinja2's immutable sandbox with ``StrictUndefined`` and
``keep_trailing_newline``; other Jinja options keep their defaults, so a template line holding
only a block tag still yields a (blank) line and YAML error lines match template lines wherever
no loop or include intervenes.  The loader serves only the project's own templates: a template
may ``{% include %}`` or ``{% import %}`` a sibling (for example a ``_macros.yaml.j2`` holding
only macros, which renders to no documents), never another file.

Values are data, not code (:mod:`.printed`): whatever ``{{ ... }}`` prints, wherever it is
printed (plain or quoted scalar, block scalar, key), ends up inside one scalar and cannot add
keys, documents or objects.  A template that means to emit structure says so with a filter that
serialises the data itself: ``{{ values.resources | tojson }}`` or ``{{ values.resources | toyaml
| indent(10) }}``.  A macro's result is printed as YAML too (its own prints are data), and stays
so through ``indent`` and ``trim``; any other reworking of it prints as one string.  Output that
bypasses ``{{ ... }}`` is held to the same rule: a ``{% filter %}`` block takes constant
arguments only, and ``{% call %}`` calls a macro.

The sandbox also refuses operations that would build huge values (string or list repetition,
``**``, padding and replacing methods and filters) and each template's output is capped.  These
limits raise the bar for a runaway or hostile template; they are not a full resource guard (a
deeply nested loop can still burn CPU), so callers that distrust ops repos should also bound
the time a render may take.
"""

from __future__ import annotations

import functools
import re
import string
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterable, Mapping
from types import CodeType
from typing import Any, TypeGuard

import yaml
from jinja2 import (
    BaseLoader,
    Environment,
    StrictUndefined,
    TemplateNotFound,
    TemplateSyntaxError,
    Undefined,
    nodes,
)
from jinja2.bccache import Bucket, BytecodeCache
from jinja2.exceptions import SecurityError
from jinja2.filters import sync_do_join
from jinja2.nodes import EvalContext
from jinja2.runtime import Context, Macro
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import missing, pass_eval_context

from reconciler.render.printed import PrintedValues, YamlText

MAX_SANDBOX_LENGTH = 1024 * 1024
"""Largest string or list one sandboxed operation (``*``, ``ljust``, ``indent``...) may build."""

MAX_POWER_BITS = 4096
"""Largest integer (in bits) ``**`` may build inside a template."""

COMPILED_TEMPLATES_KEPT = 512
"""Compiled templates a process keeps (the newest used); a render of the same text reuses one."""
MAX_CACHED_SOURCE_CHARS = 256 * 1024
"""Templates longer than this are compiled again each time rather than kept."""


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


class GuardedSandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox, with size caps on operations that can build huge values."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})
    printed: PrintedValues
    """What this render's templates printed (set by :func:`make_sandbox`)."""

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
        if "caller" in kwargs and not isinstance(obj, Macro):
            # a {% call %} block's result is output without finalize: only a macro's will do
            raise SecurityError("{% call %} must call a macro")
        # str.format arrives wrapped by the sandbox; the original is in __wrapped__
        target = getattr(obj, "__wrapped__", obj)
        owner = getattr(target, "__self__", None)
        if isinstance(owner, str):
            args = _check_str_method(owner, getattr(target, "__name__", ""), args, kwargs)
        result = super().call(context, obj, *args, **kwargs)
        if isinstance(obj, Macro) and isinstance(result, str):
            # the macro's own prints are placeholders already: its text is the template's
            return YamlText(result)
        return result

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        tree = super()._parse(source, name, filename)
        for block in tree.find_all(nodes.FilterBlock):
            # the block's filtered text is output without finalize: a value given to the
            # filter (replace(..., values.x)) would land in the YAML as it is
            if not _constant_arguments(block.filter):
                raise TemplateSyntaxError(
                    "a {% filter %} block takes constant arguments only (a value given to"
                    " it would become YAML); filter a macro's result instead",
                    block.lineno,
                    name,
                    filename,
                )
        return tree


def _constant_arguments(node: nodes.Node) -> bool:
    """Whether every argument of a chain of filters is a constant."""
    if not isinstance(node, nodes.Filter):
        return True
    arguments = [*node.args, *(keyword.value for keyword in node.kwargs)]
    if node.dyn_args is not None or node.dyn_kwargs is not None:
        return False
    for argument in arguments:
        try:
            argument.as_const()
        except nodes.Impossible:
            return False
    return node.node is None or _constant_arguments(node.node)


class _CompiledTemplates(BytecodeCache):
    """Compiled template code by template name and source, kept in this process's memory.

    Compiling is most of a small render's cost, and a commit's templates are rendered again
    for every deployment and image.  Sharing code between sandboxes is sound because every
    sandbox is configured alike and nothing render-specific is baked in at compile time:
    printed values are finalized at run time (:func:`_finalize`), never folded as constants.
    """

    def __init__(self, *, kept: int) -> None:
        self._kept = kept
        self._codes: OrderedDict[tuple[str, str], CodeType] = OrderedDict()

    def get_bucket(
        self, environment: Environment, name: str, filename: str | None, source: str
    ) -> Bucket:
        bucket = super().get_bucket(environment, name, filename, source)
        if len(source) > MAX_CACHED_SOURCE_CHARS:
            bucket.checksum = ""  # marks it as not to be kept
        return bucket

    def load_bytecode(self, bucket: Bucket) -> None:
        code = self._codes.get((bucket.key, bucket.checksum))
        if code is not None:
            self._codes.move_to_end((bucket.key, bucket.checksum))
            bucket.code = code

    def dump_bytecode(self, bucket: Bucket) -> None:
        if bucket.code is None or not bucket.checksum:
            return
        self._codes[(bucket.key, bucket.checksum)] = bucket.code
        while len(self._codes) > self._kept:
            self._codes.popitem(last=False)


_COMPILED = _CompiledTemplates(kept=COMPILED_TEMPLATES_KEPT)


@pass_eval_context
def _finalize(eval_ctx: EvalContext, value: Any) -> Any:
    """Jinja's ``finalize``, through the render's own table of printed values.  Taking the
    evaluation context keeps Jinja from finalizing constants at compile time, which would bake
    one render's placeholders into code shared with others."""
    environment = eval_ctx.environment
    assert isinstance(environment, GuardedSandbox)
    return environment.printed.finalize(value)


def make_sandbox(templates: Mapping[str, str], *, printed: PrintedValues) -> GuardedSandbox:
    """The sandbox for one render; what its templates print is recorded in ``printed``."""
    environment = GuardedSandbox(
        loader=_ProjectLoader(templates),
        undefined=_ExplainingUndefined,
        keep_trailing_newline=True,
        autoescape=False,
        auto_reload=False,
        finalize=_finalize,
        bytecode_cache=_COMPILED,
    )
    environment.printed = printed
    # Render must be deterministic (the digest decides whether to apply): no randomness.
    environment.globals.pop("lipsum", None)
    environment.filters.pop("random", None)
    for name, check in _FILTER_GUARDS.items():
        environment.filters[name] = _guard_filter(environment.filters[name], check)
    environment.filters["join"] = _guarded_join_filter
    # json.dumps does not stringify an Undefined (which would raise the clear error); make it.
    environment.policies["json.dumps_kwargs"] = {"sort_keys": True, "default": _json_default}
    environment.filters["tojson"] = _as_yaml_text(environment.filters["tojson"])
    environment.filters["toyaml"] = _toyaml_filter
    for name in ("indent", "trim"):
        environment.filters[name] = _keeping_yaml_text(environment.filters[name])
    return environment


def _as_yaml_text(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def serialised(*args: Any, **kwargs: Any) -> YamlText:
        return YamlText(original(*args, **kwargs))

    return serialised


def _keeping_yaml_text(original: Callable[..., Any]) -> Callable[..., Any]:
    """``original`` (indent, trim), whose result is YAML when its text was and only spaces or
    constant characters are added or removed."""

    @functools.wraps(original)
    def keeping(text: Any, *args: Any, **kwargs: Any) -> Any:
        result = original(text, *args, **kwargs)
        width = kwargs.get("width", args[0] if args else None)
        # indent's width may be a string prefix: only spaces keep the structure
        spaces_only = not isinstance(width, str) or width.strip(" ") == ""
        if isinstance(text, YamlText) and isinstance(result, str) and spaces_only:
            return YamlText(result)
        return result

    return keeping


class _YamlTextDumper(yaml.SafeDumper):
    """SafeDumper that raises the clear error for an undefined name inside the data."""


def _represent_undefined(dumper: yaml.SafeDumper, value: Undefined) -> Any:
    value._fail_with_undefined_error()


_YamlTextDumper.add_multi_representer(Undefined, _represent_undefined)
_YamlTextDumper.add_representer(tuple, yaml.SafeDumper.represent_list)


def _toyaml_filter(value: Any) -> YamlText:
    """``{{ data | toyaml }}``: data serialised as block YAML, without a final newline."""
    if isinstance(value, Undefined):
        value._fail_with_undefined_error()
    # ASCII only: a placeholder inside the data is then always quoted, never retyped
    text = yaml.dump(
        value,
        Dumper=_YamlTextDumper,
        default_flow_style=False,
        sort_keys=False,
        allow_unicode=False,
        width=1_000_000_000,
    )
    return YamlText(text.removesuffix("\n...\n").removesuffix("\n"))


def _json_default(value: Any) -> Any:
    if isinstance(value, Undefined):
        value._fail_with_undefined_error()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")
