"""pytest fixtures for fakekube.

Load them with ``pytest_plugins = ["reconciler.testing.fakekube.pytest_plugin"]`` in the rootdir
conftest (pytest refuses ``pytest_plugins`` in nested conftests), or import them by name.

- ``fakekube``: a started FakeKube (function scope), stopped after the test;
- ``kubeconfig_path``: a kubeconfig for it, written into the test's ``tmp_path``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from .cluster import FakeKube


@pytest_asyncio.fixture
async def fakekube() -> AsyncIterator[FakeKube]:
    """A started FakeKube on a free port."""
    async with FakeKube() as server:
        yield server


@pytest.fixture
def kubeconfig_path(fakekube: FakeKube, tmp_path: Path) -> Path:
    """A kubeconfig for ``fakekube`` in ``tmp_path``."""
    return fakekube.write_kubeconfig(tmp_path / "kubeconfig")
