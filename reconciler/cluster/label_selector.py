"""Label selectors in the API's string syntax, matched against an object's labels locally.

The syntax is the one :func:`reconciler.cluster.health.workload_pods.pod_selector` writes and
kube-apiserver reads: terms joined by commas, each ``key=value``, ``key==value``,
``key!=value``, ``key in (a,b)``, ``key notin (a,b)``, ``key`` (exists) or ``!key`` (absent).
An empty selector matches everything.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from reconciler.errors import InputError

Labels = Mapping[str, str]
Requirement = Callable[[Labels], bool]

_KEY = r"[A-Za-z0-9][-A-Za-z0-9_./]*"
_VALUE = r"[-A-Za-z0-9_.]*"
_SET = re.compile(rf"^\s*({_KEY})\s+(in|notin)\s*\(([^()]*)\)\s*$")
_EQUALS = re.compile(rf"^\s*({_KEY})\s*(==|=|!=)\s*({_VALUE})\s*$")
_EXISTS = re.compile(rf"^\s*(!?)\s*({_KEY})\s*$")


class Selector:
    """A parsed selector; ``Selector.parse("app=web,tier in (a,b)").matches(labels)``."""

    def __init__(self, text: str, requirements: tuple[Requirement, ...]) -> None:
        self.text = text
        self._requirements = requirements

    @classmethod
    def parse(cls, text: str) -> Selector:
        """Parse ``text``; InputError naming the selector and the term it cannot read."""
        return cls(text, tuple(_requirement(term, text) for term in _terms(text)))

    def matches(self, labels: Labels) -> bool:
        """Whether an object with ``labels`` is selected."""
        return all(requirement(labels) for requirement in self._requirements)

    def matches_object(self, obj: Mapping[str, Any]) -> bool:
        """Whether the object's ``metadata.labels`` are selected."""
        metadata = obj.get("metadata")
        labels = metadata.get("labels") if isinstance(metadata, Mapping) else None
        return self.matches(labels if isinstance(labels, Mapping) else {})

    def __repr__(self) -> str:
        return f"Selector({self.text!r})"


def _terms(text: str) -> list[str]:
    """The comma-separated terms, keeping the commas inside ``in (a,b)`` together."""
    terms: list[str] = []
    depth = 0
    current: list[str] = []
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            terms.append("".join(current))
            current = []
        else:
            current.append(char)
    terms.append("".join(current))
    if len(terms) == 1 and not terms[0].strip():
        return []
    return terms


def _requirement(term: str, text: str) -> Requirement:
    """One term as a test of labels."""
    match = _SET.match(term)
    if match is not None:
        key, operator, listed = match.groups()
        values = frozenset(value.strip() for value in listed.split(",") if value.strip())
        if operator == "in":
            return lambda labels: labels.get(key) in values
        return lambda labels: labels.get(key) not in values
    match = _EQUALS.match(term)
    if match is not None:
        key, operator, value = match.groups()
        if operator == "!=":
            return lambda labels: labels.get(key) != value
        return lambda labels: key in labels and labels[key] == value
    match = _EXISTS.match(term)
    if match is not None:
        negated, key = match.groups()
        if negated:
            return lambda labels: key not in labels
        return lambda labels: key in labels
    raise InputError(f"label selector {text!r}: cannot read the term {term.strip()!r}")
