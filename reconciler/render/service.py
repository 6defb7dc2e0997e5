"""A deployment's render, as the attempt asks for it: the project's files are read off the event
loop, then rendered in the worker pool (a template that loops for ever cannot freeze the daemon).
"""

from __future__ import annotations

import asyncio

from reconciler.ports import RenderedManifests, RenderRequest
from reconciler.render.pool import RenderPool
from reconciler.render.sources import load_project


class PoolRenderer:
    """:class:`reconciler.ports.Renderer` over a :class:`RenderPool`."""

    def __init__(self, *, timeout_s: float) -> None:
        self.pool = RenderPool(timeout_s=timeout_s)

    async def render(self, request: RenderRequest) -> RenderedManifests:
        sources = await asyncio.to_thread(
            load_project,
            checkout=request.checkout,
            path=request.subdir,
            project=request.project,
            environment=request.environment,
        )
        return await self.pool.render(
            sources,
            project=request.project,
            environment=request.environment,
            namespace=request.namespace,
            image_ref=request.image_ref,
            values_override=request.values_override,
        )

    async def close(self) -> None:
        await self.pool.close()
