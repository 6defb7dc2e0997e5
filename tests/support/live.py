"""Helpers for the live cache tests: labelled manifests, and a source whose watches can be held
back (so changes happen while no watch is open)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any, cast

from reconciler.cluster.live import LiveSource, PagedSource

PROJECT_LABELS = {"reconciler.io/project": "app", "reconciler.io/environment": "prod"}
SELECTOR = "reconciler.io/project=app,reconciler.io/environment=prod"


def configmap(
    name: str, namespace: str = "default", *, value: str = "0", **labels: str
) -> dict[str, Any]:
    """A ConfigMap carrying the project labels (and ``labels``)."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace, "labels": PROJECT_LABELS | labels},
        "data": {"value": value},
    }


def deployment(
    name: str, namespace: str = "default", *, image: str = "reg/app:1"
) -> dict[str, Any]:
    """A Deployment whose pod template carries the project labels too."""
    pod_labels = PROJECT_LABELS | {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(PROJECT_LABELS)},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": pod_labels},
                "spec": {"containers": [{"name": "app", "image": image}]},
            },
        },
    }


def pod(name: str, namespace: str = "default", **labels: str) -> dict[str, Any]:
    """A Pod with the project labels and ``labels``."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": PROJECT_LABELS | labels},
        "spec": {"containers": [{"name": "app", "image": "reg/app:1"}]},
    }


class GatedSource:
    """``source``, with watches that wait while the gate is closed: what happens meanwhile is
    only learnt when the next watch opens (a replay, or 410 Expired)."""

    def __init__(self, source: LiveSource) -> None:
        self.source = source
        self.gate = asyncio.Event()
        self.gate.set()
        self.waiting = 0
        """How many watches wait at the closed gate."""

    async def list_objects(
        self, *, api_version: str, kind: str, label_selector: str
    ) -> tuple[list[dict[str, Any]], str]:
        """The source's list."""
        return await self.source.list_objects(
            api_version=api_version, kind=kind, label_selector=label_selector
        )

    async def list_pages(
        self, *, api_version: str, kind: str, label_selector: str
    ) -> AsyncIterator[tuple[list[dict[str, Any]], str]]:
        """The source's pages (a source that only lists at once gives one page)."""
        if isinstance(self.source, PagedSource):
            pages = self.source.list_pages(
                api_version=api_version, kind=kind, label_selector=label_selector
            )
            async for page in pages:
                yield page
            return
        yield await self.list_objects(
            api_version=api_version, kind=kind, label_selector=label_selector
        )

    async def watch_objects(
        self,
        *,
        api_version: str,
        kind: str,
        label_selector: str,
        resource_version: str,
        timeout_s: float,
    ) -> AsyncIterator[dict[str, Any]]:
        """The source's watch, opened once the gate is open."""
        self.waiting += 1
        try:
            await self.gate.wait()
        finally:
            self.waiting -= 1
        stream = self.source.watch_objects(
            api_version=api_version,
            kind=kind,
            label_selector=label_selector,
            resource_version=resource_version,
            timeout_s=timeout_s,
        )
        # Closed with this one, so a real watch's connection is released at once.
        async with contextlib.aclosing(cast(AsyncGenerator[dict[str, Any], None], stream)):
            async for event in stream:
                yield event
