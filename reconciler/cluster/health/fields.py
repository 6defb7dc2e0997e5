"""Reading unstructured objects.

Two kinds of reader:

* Strict readers (:func:`field`, :func:`integer`, :func:`string`, :func:`flag`,
  :func:`entries`, :func:`conditions`) serve the health rules.  A missing field (or JSON
  ``null``) is absent, as Go's zero value is in gitops-engine; a field of the wrong type raises
  :class:`MalformedField`, which names the field, so a garbled status gives a clear verdict
  instead of a silently wrong one (gitops-engine fails the typed conversion and answers Unknown).
* Lenient readers (:func:`lookup`, :func:`text`, :func:`mappings`) treat a malformed field as
  absent; they serve matching pods to templates, where a mismatch simply means "no match".
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

Path = tuple[str | int, ...]


class MalformedField(ValueError):
    """A field the health rule reads has the wrong type."""

    def __init__(self, path: Path, expected: str, value: Any, *, problem: str = "") -> None:
        self.path = path
        self.expected = expected
        self.value = value
        self.problem = problem
        found = problem or f"is {_describe_value(value)}"
        super().__init__(f"{dotted(path)} {found}, expected {expected}")

    def under(self, prefix: Path) -> MalformedField:
        """The same finding, for a field read relative to the entry at ``prefix``."""
        return MalformedField(
            (*prefix, *self.path), self.expected, self.value, problem=self.problem
        )


@contextmanager
def within(prefix: Path) -> Iterator[None]:
    """Reads inside this block are relative to the entry at ``prefix``: errors say so."""
    try:
        yield
    except MalformedField as exc:
        raise exc.under(prefix) from None


def dotted(path: Path) -> str:
    """``("status", "conditions", 2, "type")`` -> ``status.conditions[2].type``."""
    text_path = ""
    for step in path:
        if isinstance(step, int) or not step.replace("_", "").isalnum():
            # Indexes, and keys like ``autoscaling.alpha.kubernetes.io/conditions``.
            text_path += f"[{step}]"
        else:
            text_path += f".{step}" if text_path else step
    return text_path or "the object"


def _describe_value(value: Any) -> str:
    shown = repr(value)
    if len(shown) > 40:
        shown = shown[:37] + "..."
    return f"{_type_name(value)} {shown}"


def _type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"a {type(value).__name__}"


def field(obj: Any, *path: str) -> Any:
    """The value at ``obj[k1][k2]...``; None when absent; MalformedField when a step on the
    way is present but not a mapping."""
    value: Any = obj
    for depth, key in enumerate(path):
        if value is None:
            return None
        if type(value) is not dict and not isinstance(value, Mapping):  # dict: the cheap test
            raise MalformedField(path[:depth], "a mapping", value)
        value = value.get(key)
    return value


def integer(obj: Any, *path: str) -> int | None:
    """An integer field that may be absent (``spec.replicas`` before defaulting)."""
    value = field(obj, *path)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise MalformedField(path, "an integer", value)
    return value


def count(obj: Any, *path: str) -> int:
    """An integer status field; absent counts as 0, as Go's zero value does."""
    value = integer(obj, *path)
    return 0 if value is None else value


def string(obj: Any, *path: str) -> str:
    """A string field; absent is the empty string."""
    value = field(obj, *path)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise MalformedField(path, "a string", value)
    return value


def flag(obj: Any, *path: str) -> bool:
    """A boolean field; absent is False."""
    value = field(obj, *path)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise MalformedField(path, "a boolean", value)
    return value


def entries(obj: Any, *path: str) -> list[Mapping[str, Any]]:
    """A list of mappings (``status.loadBalancer.ingress``); absent is the empty list."""
    value = field(obj, *path)
    return checked_entries(value, path)


def located(obj: Any, *path: str) -> list[tuple[Path, Mapping[str, Any]]]:
    """Like :func:`entries`, each with its path, to read inside it :func:`within` that path."""
    return [((*path, index), item) for index, item in enumerate(entries(obj, *path))]


def checked_entries(value: Any, path: Path) -> list[Mapping[str, Any]]:
    """``value`` as a list of mappings, or MalformedField naming ``path``."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise MalformedField(path, "a list", value)
    for index, item in enumerate(value):
        if type(item) is not dict and not isinstance(item, Mapping):
            raise MalformedField((*path, index), "a mapping", item)
    return value


@dataclass(frozen=True)
class Condition:
    """One entry of ``status.conditions``; absent fields are empty strings."""

    type: str
    status: str
    reason: str
    message: str

    @property
    def true(self) -> bool:
        """Whether the condition holds (status ``True``)."""
        return self.status == "True"


def parse_conditions(value: Any, path: Path) -> list[Condition]:
    """A conditions list (from the status or a JSON annotation), checked field by field."""
    return [
        Condition(*_condition_texts(item, path, index))
        for index, item in enumerate(checked_entries(value, path))
    ]


_CONDITION_KEYS = ("type", "status", "reason", "message")


def _condition_texts(item: Mapping[str, Any], path: Path, index: int) -> list[str]:
    # Every health look reads the conditions: a field's path is spelled out only for an error.
    texts: list[str] = []
    for key in _CONDITION_KEYS:
        value = item.get(key)
        if value is None:
            value = ""
        elif not isinstance(value, str):
            raise MalformedField((*path, index, key), "a string", value)
        texts.append(value)
    return texts


def conditions(obj: Any) -> list[Condition]:
    """The object's ``status.conditions``, in the order the controller wrote them."""
    return parse_conditions(field(obj, "status", "conditions"), ("status", "conditions"))


def first_condition(obj: Any, condition_type: str) -> Condition | None:
    """The first ``status.conditions`` entry of ``condition_type``, as gitops-engine finds it."""
    for condition in conditions(obj):
        if condition.type == condition_type:
            return condition
    return None


def annotation(obj: Any, key: str) -> str | None:
    """A ``metadata.annotations`` value, or None when the object does not carry it."""
    annotations = field(obj, "metadata", "annotations")
    if annotations is None:
        return None
    if not isinstance(annotations, Mapping):
        raise MalformedField(("metadata", "annotations"), "a mapping", annotations)
    if key not in annotations:
        return None
    value = annotations[key]
    if not isinstance(value, str):
        raise MalformedField(("metadata", "annotations", key), "a string", value)
    return value


# Lenient readers ---------------------------------------------------------------------------


def lookup(obj: Any, *keys: str) -> Any:
    """The value at ``obj[k1][k2]...``, or None when any step is absent or not a mapping."""
    value: Any = obj
    for key in keys:
        if type(value) is not dict and not isinstance(value, Mapping):  # as in field()
            return None
        value = value.get(key)
    return value


def text(value: Any) -> str:
    """A string field; absent (or malformed) is the empty string."""
    return value if isinstance(value, str) else ""


def mappings(value: Any) -> list[Mapping[str, Any]]:
    """The mapping items of a list field, skipping anything malformed."""
    if not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, Mapping)]


def api_group(api_version: str) -> str:
    """``apps/v1`` -> ``apps``; ``v1`` (the core group) -> ``""``."""
    group, slash, _version = api_version.rpartition("/")
    return group if slash else ""
