"""A deployment's render, as the attempt asks for it: a worker process reads the project's files
and renders them (a template that loops for ever cannot freeze the daemon, and big sources never
enter its memory).
"""

from __future__ import annotations

from reconciler.ports import RenderedManifests, RenderRequest
from reconciler.render.pool import RenderPool


class PoolRenderer:
    """:class:`reconciler.ports.Renderer` over a :class:`RenderPool`."""

    def __init__(self, *, timeout_s: float) -> None:
        self.pool = RenderPool(timeout_s=timeout_s)

    async def render(self, request: RenderRequest) -> RenderedManifests:
        return await self.pool.render_project(
            checkout=request.checkout,
            subdir=request.subdir,
            project=request.project,
            environment=request.environment,
            namespace=request.namespace,
            image_ref=request.image_ref,
            values_override=request.values_override,
            kubernetes_version=request.kubernetes_version,
            immutable=request.immutable,
        )

    async def close(self) -> None:
        await self.pool.close()
