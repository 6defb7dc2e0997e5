"""Fixtures for the fakekube tests: the server, kubectl, raw HTTP, and the official clients."""

from __future__ import annotations

import asyncio
import functools
import json
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from reconciler.testing.fakekube import FakeKube
from reconciler.testing.fakekube.pytest_plugin import (  # noqa: F401 - fixtures, used by name
    fakekube,
    kubeconfig_path,
)


@dataclass
class Completed:
    """What a kubectl run returned."""

    returncode: int
    stdout: str
    stderr: str


class Kubectl:
    """kubectl against fakekube, with a cache directory of its own (discovery is per server)."""

    def __init__(self, kubeconfig: Path, cache_dir: Path, workdir: Path) -> None:
        self.kubeconfig = kubeconfig
        self.cache_dir = cache_dir
        self.workdir = workdir

    async def run(self, *args: str, check: bool = True, within: float = 60.0) -> Completed:
        """Runs kubectl without blocking the event loop fakekube serves on."""
        process = await asyncio.create_subprocess_exec(
            "kubectl",
            "--kubeconfig",
            str(self.kubeconfig),
            "--cache-dir",
            str(self.cache_dir),
            *args,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=self.workdir,
        )
        stdout, stderr = await asyncio.wait_for(process.communicate(), within)
        result = Completed(process.returncode or 0, stdout.decode(), stderr.decode())
        if check and result.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} failed:\n{result.stderr}{result.stdout}"
            )
        return result

    def write(self, name: str, text: str) -> Path:
        """Writes a manifest file next to the kubeconfig and returns its path."""
        path = self.workdir / name
        path.write_text(text, encoding="utf-8")
        return path


@functools.cache
def _kubectl_minor() -> int | None:
    """kubectl's client minor version, or None when kubectl is not installed."""
    if shutil.which("kubectl") is None:
        return None
    result = subprocess.run(
        ["kubectl", "version", "--client", "-o", "json"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return int(json.loads(result.stdout)["clientVersion"]["minor"].rstrip("+"))


@pytest.fixture
def kubectl(
    kubeconfig_path: Path,  # noqa: F811
    tmp_path: Path,
    fakekube: FakeKube,  # noqa: F811
) -> Iterator[Kubectl]:
    """kubectl with a fresh cache dir (skipped when kubectl is missing or older than 1.27)."""
    minor = _kubectl_minor()
    if minor is None:
        pytest.skip("kubectl is not installed")
    if minor < 27:
        # Older kubectl validates against /openapi/v2, which real servers serve as protobuf only.
        pytest.skip(f"kubectl 1.{minor} predates OpenAPI v3 support (1.27)")
    yield Kubectl(kubeconfig_path, tmp_path / "kubectl-cache", tmp_path)
    assert fakekube.errors == []


@dataclass
class Answer:
    """One HTTP answer from fakekube."""

    status: int
    body: Any
    headers: dict[str, str]


class Api:
    """Raw HTTP against fakekube, for the semantics clients hide."""

    def __init__(self, session: aiohttp.ClientSession, base: str) -> None:
        self.session = session
        self.base = base

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        content_type: str = "application/json",
        params: dict[str, str] | None = None,
        raw: bytes | None = None,
    ) -> Answer:
        """Sends one request; the body is JSON-encoded unless ``raw`` is given."""
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        headers = {"Content-Type": content_type} if data is not None else {}
        async with self.session.request(
            method, self.base + path, data=data, headers=headers, params=params
        ) as response:
            text = await response.text()
            try:
                parsed: Any = json.loads(text) if text else None
            except ValueError:
                parsed = text
            return Answer(response.status, parsed, dict(response.headers))

    async def get(self, path: str, **params: str) -> Answer:
        """GET."""
        return await self.request("GET", path, params=params or None)

    async def post(self, path: str, body: Any, **params: str) -> Answer:
        """POST (create)."""
        return await self.request("POST", path, body=body, params=params or None)

    async def put(self, path: str, body: Any, **params: str) -> Answer:
        """PUT (update)."""
        return await self.request("PUT", path, body=body, params=params or None)

    async def patch(self, path: str, body: Any, content_type: str, **params: str) -> Answer:
        """PATCH with the given patch content type."""
        return await self.request(
            "PATCH", path, body=body, content_type=content_type, params=params or None
        )

    async def apply(self, path: str, body: Any, manager: str = "test", **params: str) -> Answer:
        """Server-side apply as ``manager``."""
        return await self.patch(
            path, body, "application/apply-patch+yaml", fieldManager=manager, **params
        )

    async def delete(self, path: str, **params: str) -> Answer:
        """DELETE."""
        return await self.request("DELETE", path, params=params or None)


@pytest_asyncio.fixture
async def api(fakekube: FakeKube) -> AsyncIterator[Api]:  # noqa: F811
    """Raw HTTP access to the running fakekube (which must not hit a bug of its own)."""
    async with aiohttp.ClientSession() as session:
        yield Api(session, fakekube.url)
    assert fakekube.errors == []


async def eventually(
    check: Callable[[], Awaitable[bool]] | Callable[[], bool],
    *,
    within: float = 10.0,
    message: str = "condition never held",
) -> None:
    """Waits until ``check`` holds (polling; the server runs on this same loop)."""
    deadline = time.monotonic() + within
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(message)
        await asyncio.sleep(0.02)


def deployment(
    name: str = "web",
    *,
    namespace: str = "default",
    image: str = "nginx:1.25",
    replicas: int | None = 2,
    **spec: Any,
) -> dict[str, Any]:
    """A minimal Deployment manifest."""
    body: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "containers": [
                        {"name": "web", "image": image, "ports": [{"containerPort": 80}]}
                    ]
                },
            },
            **spec,
        },
    }
    if replicas is not None:
        body["spec"]["replicas"] = replicas
    return body


DEPLOYMENTS = "/apis/apps/v1/namespaces/default/deployments"


@pytest_asyncio.fixture
async def quiet(fakekube: FakeKube) -> FakeKube:  # noqa: F811
    """fakekube with its controllers stopped, so only the test writes objects."""
    await fakekube.controllers.stop()
    return fakekube
