"""In-memory renderer, git and LISTEN."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reconciler.errors import OpsRepoError, ReconcilerError
from reconciler.model import Checkout, OpsRepo
from reconciler.ports import RenderedManifests, RenderRequest


@dataclass(frozen=True)
class MemoryRendered:
    objects: tuple[dict[str, Any], ...]
    digest: str
    sources: tuple[tuple[str, int], ...] = ()
    schema_checked: tuple[str, ReconcilerError | None] | None = None


def web_app(request: RenderRequest) -> tuple[dict[str, Any], ...]:
    """A Deployment of the request's image and a ConfigMap of its values."""
    labels = {"app": request.project}
    container = {"name": "app", "image": request.image_ref}
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": request.project, "namespace": request.namespace},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}},
        },
    }
    config = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": f"{request.project}-values", "namespace": request.namespace},
        "data": {"values": json.dumps(request.values_override, sort_keys=True)},
    }
    return (config, deployment)


class InMemoryRenderer:
    """:class:`reconciler.ports.Renderer` over a function; ``errors`` are raised first."""

    def __init__(
        self,
        manifests: Callable[[RenderRequest], tuple[dict[str, Any], ...]] = web_app,
    ) -> None:
        self.manifests = manifests
        self.errors: list[BaseException] = []
        self.requests: list[RenderRequest] = []
        self.closed = False

    async def render(self, request: RenderRequest) -> RenderedManifests:
        self.requests.append(request)
        if self.errors:
            raise self.errors.pop(0)
        objects = self.manifests(request)
        text = json.dumps(objects, sort_keys=True).encode()
        return MemoryRendered(objects=objects, digest=hashlib.sha256(text).hexdigest())

    async def close(self) -> None:
        self.closed = True


class InMemoryFetcher:
    """:class:`reconciler.ports.RepoFetcher`: every repo is at ``sha``, with ``history`` (older
    commits) behind it."""

    def __init__(self, *, sha: str = "a" * 40, history: tuple[str, ...] = ()) -> None:
        self.sha = sha
        self.history: set[str] = set(history)
        """Commits :meth:`at_commit` finds besides ``sha`` (a test adds and removes them)."""
        self.at_commits: list[tuple[str, str]] = []
        """(repo name, sha) of every :meth:`at_commit` asked."""
        self.fetched: list[str] = []
        self.heads_asked: list[str] = []
        """Repos whose remote head :meth:`remote_head` was asked (a cheap check)."""
        self.vanished: set[str] = set()
        """Repos whose checkout a test deleted: gone until the next fetch."""

    def _checkout(self, repo: OpsRepo) -> Checkout:
        path = Path("/memory") / repo.name
        return Checkout(name=repo.name, path=path, subdir=repo.path, sha=self.sha, error=None)

    async def fetch(self, repo: OpsRepo) -> Checkout:
        self.fetched.append(repo.name)
        self.vanished.discard(repo.name)
        return self._checkout(repo)

    async def on_disk(self, repo: OpsRepo) -> Checkout | None:
        return None

    async def contains(self, checkout: Checkout, sha: str) -> bool:
        return sha == checkout.sha or (checkout.sha == self.sha and sha in self.history)

    async def present(self, checkout: Checkout) -> bool:
        return checkout.name not in self.vanished

    async def remote_head(self, repo: OpsRepo) -> str | None:
        self.heads_asked.append(repo.name)
        return self.sha

    async def at_commit(self, repo: OpsRepo, sha: str) -> Checkout:
        self.at_commits.append((repo.name, sha))
        if sha != self.sha and sha not in self.history:
            raise OpsRepoError(
                f"commit {sha} is not in the history of ops repo '{repo.name}'"
                " (rewritten by a force push?)"
            )
        path = Path("/memory") / repo.name / sha
        return Checkout(name=repo.name, path=path, subdir=repo.path, sha=sha, error=None)


class InMemoryListener:
    """:class:`reconciler.ports.Notifications` that tests drive with :meth:`notify`."""

    def __init__(self, on_notify: Callable[[str], None], on_reconnect: Callable[[], None]):
        self.on_notify = on_notify
        self.on_reconnect = on_reconnect
        self.connected = asyncio.Event()

    async def run(self, *, stop: asyncio.Event) -> None:
        self.connected.set()
        self.on_reconnect()
        await stop.wait()
        self.connected.clear()

    def notify(self, payload: str) -> None:
        self.on_notify(payload)
