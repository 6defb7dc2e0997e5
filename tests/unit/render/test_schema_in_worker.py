"""The schema check runs in the render worker; the attempt uses its verdict for that version."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from reconciler.render import RenderPool
from reconciler.render.rendering import Rendered
from reconciler.render.validation import SchemaError, check_rendered
from reconciler.settings import DEFAULT_KUBERNETES_VERSION

VERSION = DEFAULT_KUBERNETES_VERSION
DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: {{ values.replicas | tojson }}
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: main, image: {{ image_ref | tojson }}}]
"""


@pytest.fixture
async def pool() -> AsyncIterator[RenderPool]:
    """A one-worker pool, closed after the test."""
    render_pool = RenderPool(workers=1, timeout_s=10.0)
    yield render_pool
    await render_pool.close()


async def _render(pool: RenderPool, tmp_path: Path, replicas: object) -> Rendered:
    project = tmp_path / "web"
    project.mkdir(exist_ok=True)
    (project / "deployment.yaml.j2").write_text(DEPLOYMENT)
    (project / "values-prod.yaml").write_text("{}\n")
    return await pool.render_project(
        checkout=tmp_path,
        subdir="",
        project="web",
        environment="prod",
        namespace="web-prod",
        image_ref="reg/web:1",
        values_override={"replicas": replicas},
        kubernetes_version=VERSION,
    )


async def test_the_worker_checks_the_schema_and_says_for_which_version(
    pool: RenderPool, tmp_path: Path
) -> None:
    """A valid render comes back checked for the version asked; an invalid one with its error."""
    good = await _render(pool, tmp_path, 2)
    assert good.schema_checked == (VERSION, None)
    await check_rendered(good, kubernetes_version=VERSION)
    bad = await _render(pool, tmp_path, "two")
    assert bad.schema_checked is not None
    version, error = bad.schema_checked
    assert version == VERSION and isinstance(error, SchemaError)
    assert "spec.replicas" in str(error)
    with pytest.raises(SchemaError) as caught:
        await check_rendered(bad, kubernetes_version=VERSION)
    assert str(caught.value) == str(error)


async def test_an_unchecked_render_or_another_version_is_checked_here(
    pool: RenderPool, tmp_path: Path
) -> None:
    """Without the worker's verdict for the version asked, the objects are checked anew."""
    bad = await _render(pool, tmp_path, "two")
    for schema_checked in (None, ("1.0", None)):
        unchecked = dataclasses.replace(bad, schema_checked=schema_checked)
        with pytest.raises(SchemaError):
            await check_rendered(unchecked, kubernetes_version=VERSION)
