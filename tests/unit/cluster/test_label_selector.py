"""Label selectors matched locally, with kube-apiserver's semantics."""

from __future__ import annotations

import pytest

from reconciler.cluster.label_selector import Selector
from reconciler.errors import InputError


@pytest.mark.parametrize(
    ("selector", "labels", "expected"),
    [
        ("", {}, True),
        ("app=web", {"app": "web"}, True),
        ("app==web", {"app": "web"}, True),
        ("app=web", {}, False),
        ("app!=web", {}, True),  # != and notin select objects without the label
        ("app!=web", {"app": "web"}, False),
        ("tier in (a, b)", {"tier": "b"}, True),
        ("tier in (a,b)", {}, False),
        ("tier notin (a,b)", {}, True),
        ("tier notin (a,b)", {"tier": "a"}, False),
        ("owner", {"owner": ""}, True),
        ("!owner", {"owner": ""}, False),
        ("app=web,tier in (a,b),!legacy", {"app": "web", "tier": "a"}, True),
        ("example.com/part-of=x", {"example.com/part-of": "x"}, True),
    ],
)
def test_matching(selector: str, labels: dict[str, str], expected: bool) -> None:
    """Each term's semantics, and terms joined by commas all having to hold."""
    assert Selector.parse(selector).matches(labels) is expected


@pytest.mark.parametrize("selector", ["=x", "app=web,", "tier in (a", "a b", "app=we b"])
def test_an_unreadable_selector_names_itself(selector: str) -> None:
    """A selector that cannot be read raises InputError naming it."""
    with pytest.raises(InputError, match="label selector"):
        Selector.parse(selector)
