"""Rendering in worker processes: results, errors, a runaway template stopped, recovery."""

from __future__ import annotations

import pytest

from reconciler.errors import RenderError
from reconciler.render import ProjectSources
from reconciler.render_pool import RenderPool

CONFIGMAP = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ project }}
data:
  image: {{ image_ref | tojson }}
"""


def _sources(template: str) -> ProjectSources:
    return ProjectSources(
        project_dir="app",
        templates=(("cm.yaml.j2", template),),
        values_base=None,
        values_env=None,
        values_env_name="values-prod.yaml",
    )


async def _render(pool: RenderPool, template: str) -> object:
    return await pool.render(
        _sources(template),
        project="app",
        environment="prod",
        namespace="app-prod",
        image_ref="reg/app:1",
        values_override={},
    )


@pytest.fixture
async def pool() -> RenderPool:
    """A pool with a short deadline, closed after the test."""
    render_pool = RenderPool(workers=1, timeout_s=2.0)
    yield render_pool  # type: ignore[misc]
    await render_pool.close()


async def test_renders_like_render(pool: RenderPool) -> None:
    """A render in the pool gives the same objects as the pure function."""
    rendered = await _render(pool, CONFIGMAP)
    assert rendered.objects[0]["data"] == {"image": "reg/app:1"}  # type: ignore[attr-defined]


async def test_errors_keep_file_and_line(pool: RenderPool) -> None:
    """A render error from a worker keeps its location and message."""
    with pytest.raises(RenderError, match=r"cm.yaml.j2:6: undefined name 'nope'"):
        await _render(pool, CONFIGMAP.replace("image_ref", "nope"))


async def test_runaway_template_is_stopped_and_the_pool_recovers(pool: RenderPool) -> None:
    """A template that loops for ever is stopped at the deadline; the next render works."""
    runaway = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"
    with pytest.raises(RenderError, match=r"^app: rendering took longer than 2s and was stopped"):
        await _render(pool, CONFIGMAP + runaway)
    rendered = await _render(pool, CONFIGMAP)
    assert rendered.objects[0]["metadata"]["name"] == "app"  # type: ignore[attr-defined]
