"""The render worker tells a vanished checkout (transient) from a project not in the repo."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from reconciler.errors import OpsRepoError, RenderError
from reconciler.render import RenderPool


@pytest.fixture
async def pool() -> AsyncIterator[RenderPool]:
    render_pool = RenderPool(workers=1, timeout_s=5.0)
    yield render_pool
    await render_pool.close()


async def _render(pool: RenderPool, checkout: Path) -> object:
    return await pool.render_project(
        checkout=checkout,
        subdir="apps",
        project="web",
        environment="prod",
        namespace="web-prod",
        image_ref="reg/web:1",
        values_override={},
    )


async def test_a_missing_checkout_is_a_transient_ops_repo_error(
    pool: RenderPool, tmp_path: Path
) -> None:
    """The checkout root is gone (the repos dir was deleted): OpsRepoError, retried."""
    missing = tmp_path / "repos" / ".snapshots" / "ops" / ("a" * 40)
    with pytest.raises(OpsRepoError, match=f"the ops repo checkout {missing} vanished") as caught:
        await _render(pool, missing)
    assert not caught.value.permanent


async def test_a_missing_project_stays_a_permanent_render_error(
    pool: RenderPool, tmp_path: Path
) -> None:
    """The checkout is there but the project is not: RenderError, permanent, as before."""
    (tmp_path / "apps").mkdir()
    with pytest.raises(RenderError, match="project directory apps/web does not exist") as caught:
        await _render(pool, tmp_path)
    assert caught.value.permanent
