"""libyaml's fast path parses rendered manifests exactly as the pure-Python loader does."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.errors import RenderError
from reconciler.render import libyaml, load_project, render
from reconciler.render.rendering import Rendered
from tests.unit.render.helpers import CONFIGMAP, render_templates

EXAMPLE_REPO = Path(__file__).resolve().parents[3] / "ops_repos_example"

pytestmark = pytest.mark.skipif(not libyaml.AVAILABLE, reason="PyYAML without libyaml")

TEMPLATES = {
    "plain and quoted": CONFIGMAP + "data:\n  a: {{ values.n }}\n  b: '{{ values.n }}'\n"
    '  c: "{{ values.t }}"\n  d: x-{{ values.n }}\n',
    "explicit tags": CONFIGMAP + "data:\n  a: !!str {{ values.n }}\n  b: !!str 7\n",
    "retyped": CONFIGMAP + "data:\n  n: '1'\nspec:\n  replicas: {{ values.n }}\n"
    "  enabled: {{ values.yes }}\n  none: {{ values.nothing }}\n  f: {{ values.f }}\n",
    "keys": CONFIGMAP + "data:\n  {{ values.t }}: v\n  '{{ values.n }}': w\n",
    "block scalars": CONFIGMAP + "data:\n  a: |\n    {{ values.t }}\n    line: {{ values.n }}\n"
    "  b: >\n    {{ values.t }}\n",
    "structure in a value": CONFIGMAP + "data:\n  evil: {{ values.evil }}\n",
    "documents": CONFIGMAP + "---\n---\n" + CONFIGMAP.replace("settings", "second") + "...\n",
    "flow": CONFIGMAP + "data: {a: {{ values.n }}, b: [1, {{ values.t }}]}\n",
    "anchor without alias": CONFIGMAP + "data:\n  a: &x {{ values.t }}\n",
    "yaml text": CONFIGMAP + "data: {{ values.map | tojson }}\n",
}
VALUES = {
    "n": 3,
    "t": "text: with colon",
    "yes": "true",
    "nothing": "~",
    "f": "1.5",
    "evil": "x\n  injected: true\n---\nkind: Secret",
    "map": {"k": "v", "n": "3"},
}


def _both(monkeypatch: pytest.MonkeyPatch, template: str) -> tuple[Rendered, Rendered]:
    fast = render_templates({"t.yaml.j2": template}, values_override=VALUES)
    with monkeypatch.context() as patched:
        patched.setattr(libyaml, "AVAILABLE", False)
        slow = render_templates({"t.yaml.j2": template}, values_override=VALUES)
    return fast, slow


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_fast_path_gives_the_pure_python_objects(
    monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    """Each kind of template renders to the same objects and digest on both paths."""
    fast, slow = _both(monkeypatch, TEMPLATES[name])
    assert fast == slow


def test_explicit_string_tag_keeps_a_printed_number_a_string(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``!!str {{ n }}`` is the string "3", and a plain ``{{ n }}`` the number 3."""
    fast, _slow = _both(monkeypatch, TEMPLATES["explicit tags"])
    assert fast.objects[0]["data"] == {"a": "3", "b": "7"}
    retyped, _ = _both(monkeypatch, TEMPLATES["retyped"])
    assert retyped.objects[0]["spec"] == {"replicas": 3, "enabled": True, "none": None, "f": 1.5}


@pytest.mark.parametrize(
    "template",
    [
        CONFIGMAP + "data:\n  a: &x v\n  b: *x\n",
        CONFIGMAP + "data:\n  a: [unclosed\n",
        CONFIGMAP + "data:\n  a: 1\n  a: 2\n",
        CONFIGMAP + "data:\n  ? [1, 2]\n  : v\n",
        CONFIGMAP + "data:\n  a: !!binary aGk=\n",
        CONFIGMAP + "data:\n  a: .inf\n",
        CONFIGMAP + "data:\n  <<: {m: '1'}\n",
        CONFIGMAP + "data:\n  a: x\n\tb: y\n",
    ],
    ids=[
        "alias",
        "syntax",
        "duplicate key",
        "non-string key",
        "binary tag",
        "infinity",
        "merge key",
        "tab",
    ],
)
def test_refusals_read_the_same_on_both_paths(
    monkeypatch: pytest.MonkeyPatch, template: str
) -> None:
    """A refused manifest gives the same error, location included, on both paths."""
    with pytest.raises(RenderError) as fast:
        render_templates({"t.yaml.j2": template})
    with monkeypatch.context() as patched:
        patched.setattr(libyaml, "AVAILABLE", False)
        with pytest.raises(RenderError) as slow:
            render_templates({"t.yaml.j2": template})
    assert str(fast.value) == str(slow.value)


def test_the_example_ops_repo_renders_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every project of the example ops repo renders to the same objects on both paths."""
    projects = sorted(p.name for p in EXAMPLE_REPO.iterdir() if (p / "values.yaml").exists())
    assert projects
    for project in projects:
        sources = load_project(checkout=EXAMPLE_REPO, path="", project=project, environment="prod")
        arguments = {
            "project": project,
            "environment": "prod",
            "namespace": f"{project}-prod",
            "image_ref": "registry.example.com/x:1",
            "values_override": {},
        }
        fast = render(sources, **arguments)  # type: ignore[arg-type]
        with monkeypatch.context() as patched:
            patched.setattr(libyaml, "AVAILABLE", False)
            slow = render(sources, **arguments)  # type: ignore[arg-type]
        assert fast == slow, project


def test_the_fast_path_parses_and_leaves_aliases_to_the_pure_python_loader() -> None:
    """libyaml parses a plain manifest itself; an alias is handed to the pure-Python loader."""
    assert libyaml.documents(CONFIGMAP, printed=None) == [
        (1, 1, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"}})
    ]
    with pytest.raises(libyaml.NotForTheFastPath):
        libyaml.documents(CONFIGMAP + "data:\n  a: &x v\n  b: *x\n", printed=None)
