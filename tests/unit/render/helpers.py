"""Builders shared by the render tests: sources in memory, render them, catch the failure."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from reconciler.errors import RenderError
from reconciler.render import ProjectSources, Rendered, render

CONFIGMAP = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n"


def make_sources(
    templates: Mapping[str, str],
    *,
    values_base: str | None = None,
    values_env: str | None = None,
) -> ProjectSources:
    return ProjectSources(
        project_dir="web",
        templates=tuple(sorted(templates.items())),
        values_base=values_base,
        values_env=values_env,
        values_env_name="values-prod.yaml",
    )


def render_templates(
    templates: Mapping[str, str],
    *,
    values_base: str | None = None,
    values_env: str | None = None,
    values_override: Mapping[str, Any] | None = None,
    namespace: str = "web-prod",
    image_ref: str = "registry.example.com/web:sha-1",
) -> Rendered:
    return render(
        make_sources(templates, values_base=values_base, values_env=values_env),
        project="web",
        environment="prod",
        namespace=namespace,
        image_ref=image_ref,
        values_override={} if values_override is None else values_override,
    )


def render_one(template: str, **kwargs: Any) -> tuple[dict[str, Any], ...]:
    return render_templates({"t.yaml.j2": template}, **kwargs).objects


def render_failure(templates: Mapping[str, str] | str, **kwargs: Any) -> RenderError:
    if isinstance(templates, str):
        templates = {"t.yaml.j2": templates}
    with pytest.raises(RenderError) as caught:
        render_templates(templates, **kwargs)
    return caught.value


def configmap_with_data(data_lines: str) -> str:
    return CONFIGMAP + "data:\n" + data_lines
