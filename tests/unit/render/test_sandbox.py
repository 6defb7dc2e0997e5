"""Tests for the template sandbox: Python internals, huge values and output refused."""

from __future__ import annotations

import pytest

from reconciler.errors import RenderError
from reconciler.render import MAX_RENDERED_CHARS, ProjectSources, render
from tests.unit.render.helpers import configmap_with_data, render_failure, render_one

# --------------------------------------------------------------------------------------------
# The sandbox


def test_sandbox_refuses_python_internals() -> None:
    """Reaching for Python internals fails with an error saying the sandbox refused it."""
    error = render_failure(configmap_with_data("  a: \"{{ ''.__class__.__mro__ }}\"\n"))
    assert error.location == "t.yaml.j2:6"
    assert error.message == (
        "t.yaml.j2:6: the template sandbox refused this:"
        " access to attribute '__class__' of 'str' object is unsafe."
    )


@pytest.mark.parametrize(
    "expression",
    [
        pytest.param("'a' * 100000000", id="string-repetition"),
        pytest.param("100000000 * 'ab'", id="reversed-repetition"),
        pytest.param("[0] * 2000000", id="list-repetition"),
        pytest.param("2 ** 100000", id="power"),
        pytest.param("'x'.ljust(100000000)", id="ljust"),
        pytest.param("'x'.center(width=100000000)", id="center-method"),
        pytest.param("'x' | center(100000000)", id="center-filter"),
        pytest.param("'a\\nb' | indent(100000000)", id="indent-filter"),
        pytest.param("'%0100000000d' % 1", id="percent-width"),
        pytest.param("'%.100000000f' | format(1)", id="format-filter"),
        pytest.param("'{:>100000000}'.format(1)", id="str-format"),
        pytest.param("('a' * 1000).replace('a', 'b' * 2000)", id="replace-method"),
        pytest.param("range(2000) | map('string') | join('x' * 1000)", id="join-filter"),
        pytest.param("('x' * 1000).join(range(2000) | map('string'))", id="join-method"),
        pytest.param("[1] | batch(100000000, 0) | list", id="batch-filter"),
    ],
)
def test_sandbox_refuses_huge_values(expression: str) -> None:
    """Operations that would build enormous strings, lists or numbers are refused."""
    error = render_failure(f"a: 1\nb: '{{{{ {expression} }}}}'\n")
    assert error.location == "t.yaml.j2:2"
    assert "the template sandbox refused this" in error.message
    assert "the limit is" in error.message


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("'-' * 3", "---"),
        ("(2 * 3) | string", "6"),
        ("(2 ** 10) | string", "1024"),
        ("'%05d' % 42", "00042"),
        ("'ab'.ljust(4, '.')", "ab.."),
        ("'{:>4}'.format(7)", "   7"),
        ("'ab' + 'cd'", "abcd"),
        ("'x' | center(3)", " x "),
        ("['a', 'b'] | join(',')", "a,b"),
        ("'a-b'.replace('-', '_')", "a_b"),
    ],
)
def test_sandbox_allows_ordinary_operations(expression: str, expected: str) -> None:
    """The size caps leave everyday expressions alone."""
    objects = render_one(configmap_with_data(f"  a: {{{{ ({expression}) | tojson }}}}\n"))
    assert objects[0]["data"]["a"] == expected


def test_rendered_output_is_capped() -> None:
    """A template whose output grows past the limit fails with a clear message."""
    chunk = 1000
    loops = MAX_RENDERED_CHARS // chunk + 10
    error = render_failure(
        f"{{% for i in range({loops}) %}}{{{{ 'x' * {chunk} }}}}{{% endfor %}}\n"
    )
    assert error.location == "t.yaml.j2"
    assert error.message == (
        f"t.yaml.j2: rendered output is larger than the limit of {MAX_RENDERED_CHARS}"
        " characters; is a loop running away?"
    )


def test_undefined_name_inside_tojson_is_reported_as_undefined() -> None:
    """'{{ nope | tojson }}' says the name is undefined, not that JSON failed."""
    sources = ProjectSources(
        project_dir="app",
        templates=(
            (
                "cm.yaml.j2",
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n"
                "data:\n  a: {{ values.nope | tojson }}\n",
            ),
        ),
        values_base="replicas: 1\n",
        values_env=None,
        values_env_name="values-prod.yaml",
    )
    with pytest.raises(RenderError) as caught:
        render(
            sources,
            project="app",
            environment="prod",
            namespace="app-prod",
            image_ref="r/i:1",
            values_override={},
        )
    assert str(caught.value) == (
        "cm.yaml.j2:6: undefined name 'nope': no such key in the mapping (it has keys: replicas)"
    )
