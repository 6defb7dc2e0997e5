"""Fixtures for the fakekube tests: the server, kubectl, raw HTTP (their helpers are in
tests/support)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio

from reconciler.testing.fakekube import FakeKube
from reconciler.testing.fakekube.pytest_plugin import (  # noqa: F401 - fixtures, used by name
    fakekube,
    kubeconfig_path,
)
from tests.support.kubeapi import Api
from tests.support.kubectl import Kubectl, kubectl_minor


@pytest.fixture
def kubectl(
    kubeconfig_path: Path,  # noqa: F811
    tmp_path: Path,
    fakekube: FakeKube,  # noqa: F811
) -> Iterator[Kubectl]:
    """kubectl with a fresh cache dir (skipped when kubectl is missing or older than 1.27)."""
    minor = kubectl_minor()
    if minor is None:
        pytest.skip("kubectl is not installed")
    if minor < 27:
        # Older kubectl validates against /openapi/v2, which real servers serve as protobuf only.
        pytest.skip(f"kubectl 1.{minor} predates OpenAPI v3 support (1.27)")
    yield Kubectl(kubeconfig_path, tmp_path / "kubectl-cache", tmp_path)
    assert fakekube.errors == []


@pytest_asyncio.fixture
async def api(fakekube: FakeKube) -> AsyncIterator[Api]:  # noqa: F811
    """Raw HTTP access to the running fakekube (which must not hit a bug of its own)."""
    async with aiohttp.ClientSession() as session:
        yield Api(session, fakekube.url)
    assert fakekube.errors == []


@pytest_asyncio.fixture
async def quiet(fakekube: FakeKube) -> FakeKube:  # noqa: F811
    """fakekube with its controllers stopped, so only the test writes objects."""
    await fakekube.controllers.stop()
    return fakekube
