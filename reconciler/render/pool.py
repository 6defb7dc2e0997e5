"""Render in worker processes, with a deadline and a memory cap.

Templates come from ops repos, and Jinja2 cannot bound CPU time: nested ``range()`` loops can spin
for hours without producing output.  Rendering in the daemon's event loop would freeze every other
deployment behind one bad template, and a thread cannot be stopped.  A worker process can: when a
render overruns its deadline, its workers are killed and replaced, and the render fails with a
message that says why.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import multiprocessing
import multiprocessing.connection
import os
import resource
import threading
from collections.abc import Mapping
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from reconciler.errors import RenderError
from reconciler.render.rendering import Rendered, render
from reconciler.render.sources import ProjectSources


def _start_worker(max_bytes: int) -> None:
    """Runs in each worker when it starts."""
    # A template that builds a huge structure fails with MemoryError here instead of
    # exhausting the machine.
    resource.setrlimit(resource.RLIMIT_AS, (max_bytes, max_bytes))
    # A daemon killed with SIGKILL cannot stop its workers: they leave when it is gone.
    parent = multiprocessing.parent_process()
    if parent is not None:
        threading.Thread(target=_exit_with, args=(parent.sentinel,), daemon=True).start()


def _exit_with(parent_sentinel: int) -> None:
    multiprocessing.connection.wait([parent_sentinel])
    os._exit(0)


def _render_in_worker(sources: ProjectSources, context: dict[str, Any]) -> Rendered:
    try:
        return render(sources, **context)
    except MemoryError:
        raise RenderError(
            "rendering used more memory than allowed (a template builds something huge?)",
            location=sources.project_dir,
        ) from None


class RenderPool:
    """A small pool of render processes; :meth:`render` is :func:`reconciler.render.render` with a
    deadline.  Workers start lazily, with the ``spawn`` method (no fork of a threaded process)."""

    def __init__(
        self, *, workers: int = 2, timeout_s: float = 10.0, memory_bytes: int = 1024 * 1024 * 1024
    ) -> None:
        self.workers = workers
        self.timeout_s = timeout_s
        self.memory_bytes = memory_bytes
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None
        self._lock = asyncio.Lock()

    def _executor(self) -> concurrent.futures.ProcessPoolExecutor:
        if self._pool is None:
            self._pool = concurrent.futures.ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_start_worker,
                initargs=(self.memory_bytes,),
            )
        return self._pool

    async def render(
        self,
        sources: ProjectSources,
        *,
        project: str,
        environment: str,
        namespace: str,
        image_ref: str,
        values_override: Mapping[str, Any],
    ) -> Rendered:
        context = {
            "project": project,
            "environment": environment,
            "namespace": namespace,
            "image_ref": image_ref,
            "values_override": values_override,
        }
        loop = asyncio.get_running_loop()
        pool = self._executor()
        try:
            future = loop.run_in_executor(pool, _render_in_worker, sources, context)
            return await asyncio.wait_for(future, timeout=self.timeout_s)
        except TimeoutError:
            await self._replace(pool)
            raise RenderError(
                f"rendering took longer than {self.timeout_s:g}s and was stopped "
                "(a template loops too long?)",
                location=sources.project_dir,
            ) from None
        except BrokenProcessPool:
            await self._replace(pool)
            raise RenderError(
                "the render worker died (out of memory?)", location=sources.project_dir
            ) from None

    async def _replace(self, pool: concurrent.futures.ProcessPoolExecutor) -> None:
        """Kill the workers of ``pool`` (one of them is stuck) and start afresh next time."""
        async with self._lock:
            if self._pool is pool:
                self._pool = None
            for process in list(getattr(pool, "_processes", {}).values()):
                process.kill()
            await asyncio.to_thread(pool.shutdown, wait=True, cancel_futures=True)

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await asyncio.to_thread(pool.shutdown, wait=True, cancel_futures=True)
