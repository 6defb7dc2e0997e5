"""Compiled templates are kept per process and shared between renders of the same text."""

from __future__ import annotations

from reconciler.render import sandbox
from reconciler.render.printed import PrintedValues
from tests.unit.render.helpers import configmap_with_data, render_one, render_templates

TEMPLATE = "{% macro m() %}{{ 'from-macro' }}{% endmacro %}\n" + configmap_with_data(
    '  literal: {{ "a: b" }}\n'
    "  image: {{ image_ref }}\n"
    '  joined: {{ "x" ~ "y" }}\n'
    "  macro: {{ m() }}\n"
)


def test_a_second_render_of_the_same_text_reuses_the_compiled_code() -> None:
    """The second render of a template text compiles nothing: the code is the cache's."""
    text = configmap_with_data("  only-here: {{ image_ref }}-compiled-once\n")
    compiled: list[str] = []
    original = sandbox.GuardedSandbox.compile

    def counting(self: sandbox.GuardedSandbox, *args: object, **kwargs: object) -> object:
        compiled.append("x")
        return original(self, *args, **kwargs)  # type: ignore[call-overload]

    sandbox.GuardedSandbox.compile = counting  # type: ignore[assignment,method-assign]
    try:
        first = render_one(text, image_ref="reg/a:1")
        second = render_one(text, image_ref="reg/a:2")
    finally:
        sandbox.GuardedSandbox.compile = original  # type: ignore[method-assign]
    assert len(compiled) == 1
    assert first[0]["data"]["only-here"] == "reg/a:1-compiled-once"
    assert second[0]["data"]["only-here"] == "reg/a:2-compiled-once"


def test_constant_prints_stay_data_in_every_render_sharing_the_code() -> None:
    """Constant strings printed by a shared compiled template are each render's own data."""
    for image in ("reg/web:1", "reg/web:2", "reg/web:3"):
        (obj,) = render_one(TEMPLATE, image_ref=image)
        assert obj["data"] == {
            "literal": "a: b",
            "image": image,
            "joined": "xy",
            "macro": "from-macro",
        }


def test_same_name_different_text_is_compiled_apart() -> None:
    """Two projects' templates of the same name but different text never share code."""
    first = render_templates({"t.yaml.j2": configmap_with_data("  v: one-{{ image_ref }}\n")})
    second = render_templates({"t.yaml.j2": configmap_with_data("  v: two-{{ image_ref }}\n")})
    assert first.objects[0]["data"]["v"].startswith("one-")
    assert second.objects[0]["data"]["v"].startswith("two-")


def test_the_cache_keeps_at_most_its_limit() -> None:
    """The process keeps a bounded number of compiled templates, dropping the oldest."""
    cache = sandbox._CompiledTemplates(kept=2)
    for index in range(3):
        environment = sandbox.make_sandbox({}, printed=PrintedValues(max_chars=100))
        bucket = cache.get_bucket(environment, f"t{index}", None, f"text {index}")
        bucket.code = compile("0", "t", "eval")
        cache.set_bucket(bucket)
    assert len(cache._codes) == 2
