"""Render in worker processes, with a deadline and a memory cap.

Templates come from ops repos, and Jinja2 cannot bound CPU time: nested ``range()`` loops can spin
for hours without producing output.  Rendering in the daemon's event loop would freeze every other
deployment behind one bad template, and a thread cannot be stopped.  A worker process can.

The pool is N independent single-worker processes fed from one queue.  A render's deadline starts
when a worker takes it, so time spent waiting behind other renders is not charged to it; a render
that overruns kills and replaces only its own worker, so renders beside it are untouched.  A
project job reads its files in the worker too, so big sources never enter the daemon's memory.

Renders of real templates take milliseconds.  When one has held its worker for ``slow_after_s``
and renders are waiting, the pool starts a spare worker (up to ``spares``), so a few templates that
loop until the deadline cannot make every other render wait for it; idle spares exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import multiprocessing
import multiprocessing.connection
import os
import resource
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Protocol

from reconciler.errors import OpsRepoError, ReconcilerError, RenderError
from reconciler.render.rendering import Rendered, render
from reconciler.render.sources import ProjectSources, load_project
from reconciler.render.validation import validate_objects

STARTUP_TIMEOUT_S = 60.0
"""How long a new worker may take to start (spawn and imports); not charged to any render."""

SPARE_IDLE_S = 30.0
"""A spare worker idle this long exits."""

KEPT_PROJECTS = 512
"""Projects a worker keeps as read from immutable snapshots: rendering one again at the same
commit (another image, a heal, a redeploy) reads no files."""

_READY = "ready"


class _Job(Protocol):
    """What a worker runs: picklable, and named for messages."""

    @property
    def location(self) -> str: ...

    def run(self) -> Rendered: ...


@dataclass(frozen=True)
class _RenderSources:
    """Render sources the daemon already holds."""

    sources: ProjectSources
    context: dict[str, Any]

    @property
    def location(self) -> str:
        return self.sources.project_dir

    def run(self) -> Rendered:
        return render(self.sources, **self.context)


@dataclass(frozen=True)
class _RenderProject:
    """Read a project from a checkout, then render it: the files stay in the worker.  With
    ``kubernetes_version``, the objects are checked against that version's schema here too,
    off the daemon's event loop (the verdict travels back in ``Rendered.schema_checked``)."""

    checkout: Path
    subdir: str
    project: str
    environment: str
    context: dict[str, Any]
    kubernetes_version: str | None = None
    immutable: bool = False
    """The checkout is a snapshot of one commit: the worker may keep the project read."""

    @property
    def location(self) -> str:
        return (PurePosixPath(self.subdir) / self.project).as_posix()

    def run(self) -> Rendered:
        read = _kept_project if self.immutable else _read_project
        try:
            sources = read(self.checkout, self.subdir, self.project, self.environment)
        except RenderError as exc:
            if self.checkout.is_dir():
                raise  # the checkout is there: the project (or a file of it) is not
            # The checkout itself is gone, before or while it was read (the repos directory was
            # deleted, a snapshot pruned): transient, a sync brings it back.
            raise OpsRepoError(
                f"the ops repo checkout {self.checkout} vanished (deleted while rendering)"
            ) from exc
        rendered = render(
            sources, project=self.project, environment=self.environment, **self.context
        )
        if self.kubernetes_version is None:
            return rendered
        return dataclasses.replace(
            rendered, schema_checked=(self.kubernetes_version, _schema_error(rendered, self))
        )


def _read_project(checkout: Path, subdir: str, project: str, environment: str) -> ProjectSources:
    return load_project(checkout=checkout, path=subdir, project=project, environment=environment)


# A snapshot never changes, so what was read from it stays true; errors are not kept (a
# project read again after a failure is read from disk).  Kept per worker: a few KB each.
_kept_project = functools.lru_cache(maxsize=KEPT_PROJECTS)(_read_project)


def _schema_error(rendered: Rendered, job: _RenderProject) -> ReconcilerError | None:
    assert job.kubernetes_version is not None
    try:
        validate_objects(
            rendered.objects, sources=rendered.sources, kubernetes_version=job.kubernetes_version
        )
    except ReconcilerError as exc:
        return exc
    return None


def _worker_main(connection: multiprocessing.connection.Connection, max_bytes: int) -> None:
    """A worker process: runs one job at a time, sending back ("ok", result) or ("error", exc)."""
    # A template that builds a huge structure fails with MemoryError here instead of
    # exhausting the machine.
    resource.setrlimit(resource.RLIMIT_AS, (max_bytes, max_bytes))
    # A daemon killed with SIGKILL cannot stop its workers: they leave when it is gone.
    parent = multiprocessing.parent_process()
    if parent is not None:
        threading.Thread(target=_exit_with, args=(parent.sentinel,), daemon=True).start()
    connection.send(_READY)
    while True:
        try:
            job: _Job = connection.recv()
        except EOFError:
            return
        connection.send(_run_job(job))


def _run_job(job: _Job) -> tuple[str, Any]:
    try:
        return "ok", job.run()
    except ReconcilerError as exc:
        return "error", exc
    except MemoryError:
        message = "rendering used more memory than allowed (a template builds something huge?)"
        return "error", RenderError(message, location=job.location)
    except Exception as exc:  # a bug of ours: say what it was, keep the worker serving
        return "error", RenderError(f"render failed: {type(exc).__name__}: {exc}")


def _exit_with(parent_sentinel: int) -> None:
    multiprocessing.connection.wait([parent_sentinel])
    os._exit(0)


async def _readable(connection: multiprocessing.connection.Connection, timeout_s: float) -> bool:
    """Wait until ``connection`` has data (or EOF); False when ``timeout_s`` passed first."""
    loop = asyncio.get_running_loop()
    ready = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_reader(connection.fileno(), wake)
    try:
        async with asyncio.timeout(timeout_s):
            await ready
    except TimeoutError:
        return False
    finally:
        loop.remove_reader(connection.fileno())
    return True


class _Worker:
    """One worker process, started when first needed and replaced when killed."""

    def __init__(self, *, memory_bytes: int) -> None:
        self._memory_bytes = memory_bytes
        self._process: multiprocessing.process.BaseProcess | None = None
        self._connection: multiprocessing.connection.Connection | None = None

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    async def run(self, job: _Job, *, timeout_s: float) -> Rendered:
        connection = await self._started(location=job.location)
        try:
            connection.send(job)
        except OSError:  # the idle worker died (killed from outside?): the job has not started
            await self.stop()
            connection = await self._started(location=job.location)
            connection.send(job)
        if not await _readable(connection, timeout_s):
            await self.stop()
            raise RenderError(
                f"rendering took longer than {timeout_s:g}s and was stopped "
                "(a template loops too long?)",
                location=job.location,
            )
        try:
            kind, payload = connection.recv()
        except (EOFError, OSError):
            await self.stop()
            raise RenderError(
                "the render worker died (out of memory?)", location=job.location
            ) from None
        if kind == "error":
            raise payload
        result: Rendered = payload
        return result

    async def _started(self, *, location: str) -> multiprocessing.connection.Connection:
        if self._connection is not None:
            return self._connection
        context = multiprocessing.get_context("spawn")
        ours, theirs = context.Pipe()
        process = context.Process(
            target=_worker_main, args=(theirs, self._memory_bytes), daemon=True
        )
        process.start()
        theirs.close()
        self._process, self._connection = process, ours
        if not await _readable(ours, STARTUP_TIMEOUT_S) or not _received_ready(ours):
            await self.stop()
            raise RenderError("the render worker did not start", location=location)
        return ours

    async def stop(self) -> None:
        """Kill the process (it may be stuck in a template); the next job starts a new one."""
        process, connection = self._process, self._connection
        self._process = self._connection = None
        if connection is not None:
            connection.close()
        if process is not None:
            process.kill()
            await asyncio.to_thread(process.join, 5.0)


def _received_ready(connection: multiprocessing.connection.Connection) -> bool:
    try:
        return bool(connection.recv() == _READY)
    except (EOFError, OSError):
        return False


@dataclass
class _Queued:
    job: _Job
    result: asyncio.Future[Rendered] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class RenderPool:
    """Render processes fed from a queue: :meth:`render` is :func:`reconciler.render.render`
    with a deadline, :meth:`render_project` also reads the project in the worker.  Workers start
    lazily, with the ``spawn`` method (no fork of a threaded process)."""

    def __init__(
        self,
        *,
        workers: int = 2,
        timeout_s: float = 10.0,
        memory_bytes: int = 1024 * 1024 * 1024,
        spares: int = 6,
        slow_after_s: float = 1.0,
    ) -> None:
        self.workers = workers
        self.timeout_s = timeout_s
        self.memory_bytes = memory_bytes
        self.spares = spares
        self.slow_after_s = slow_after_s
        self._workers = [_Worker(memory_bytes=memory_bytes) for _ in range(workers)]
        self._queue: asyncio.Queue[_Queued] = asyncio.Queue()
        self._serving: list[asyncio.Task[None]] = []
        self._spare_workers: dict[asyncio.Task[None], _Worker] = {}

    @property
    def worker_pids(self) -> list[int]:
        """Process ids of the workers running now."""
        workers = [*self._workers, *self._spare_workers.values()]
        return [pid for worker in workers if (pid := worker.pid) is not None]

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
        return await self._submit(_RenderSources(sources, context))

    async def render_project(
        self,
        *,
        checkout: Path,
        subdir: str,
        project: str,
        environment: str,
        namespace: str,
        image_ref: str,
        values_override: Mapping[str, Any],
        kubernetes_version: str | None = None,
        immutable: bool = False,
    ) -> Rendered:
        """Read ``<checkout>/<subdir>/<project>`` in a worker and render it there (and check
        the objects against ``kubernetes_version``'s schema there, when given).  ``immutable``:
        the checkout is a snapshot of one commit, so the worker may keep what it read."""
        context = {
            "namespace": namespace,
            "image_ref": image_ref,
            "values_override": values_override,
        }
        job = _RenderProject(
            checkout, subdir, project, environment, context, kubernetes_version, immutable
        )
        return await self._submit(job)

    async def _submit(self, job: _Job) -> Rendered:
        if not self._serving:
            self._serving = [asyncio.create_task(self._serve(w)) for w in self._workers]
        queued = _Queued(job)
        await self._queue.put(queued)
        return await queued.result

    async def _serve(self, worker: _Worker, *, spare: bool = False) -> None:
        while True:
            queued = await self._next(worker, spare=spare)
            if queued is None:
                return  # an idle spare
            if queued.result.done():
                continue  # its caller gave up waiting
            try:
                rendered = await self._run_watched(worker, queued.job)
            except asyncio.CancelledError:
                _fail(queued, "the render pool was closed during this render")
                raise
            except ReconcilerError as exc:
                if not queued.result.done():
                    queued.result.set_exception(exc)
            except Exception as exc:  # a bug of ours: fail this render, keep serving
                await worker.stop()
                _fail(queued, f"render failed: {type(exc).__name__}: {exc}")
            else:
                if not queued.result.done():
                    queued.result.set_result(rendered)

    async def _next(self, worker: _Worker, *, spare: bool) -> _Queued | None:
        if not spare:
            return await self._queue.get()
        try:
            return await asyncio.wait_for(self._queue.get(), timeout=SPARE_IDLE_S)
        except TimeoutError:
            await worker.stop()
            return None

    async def _run_watched(self, worker: _Worker, job: _Job) -> Rendered:
        """Run ``job``; if it holds the worker for long while others wait, start a spare.

        A timer, not a task beside the render: every render would pay for the task."""
        watch = asyncio.get_running_loop().call_later(self.slow_after_s, self._spare_if_waiting)
        try:
            return await worker.run(job, timeout_s=self.timeout_s)
        finally:
            watch.cancel()

    def _spare_if_waiting(self) -> None:
        if not self._queue.empty():
            self._start_spare()

    def _start_spare(self) -> None:
        if len(self._spare_workers) >= self.spares or not self._serving:
            return
        worker = _Worker(memory_bytes=self.memory_bytes)
        task = asyncio.create_task(self._serve(worker, spare=True))
        self._spare_workers[task] = worker
        task.add_done_callback(lambda done: self._spare_workers.pop(done, None))

    async def close(self) -> None:
        """Stop the workers; renders still waiting or running fail with a message saying so.
        A later render starts the pool afresh."""
        spares = dict(self._spare_workers)
        serving, self._serving = [*self._serving, *spares], []
        for task in serving:
            task.cancel()
        for task in serving:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        while not self._queue.empty():
            _fail(self._queue.get_nowait(), "the render pool was closed before this render started")
        for worker in [*self._workers, *spares.values()]:
            await worker.stop()


def _fail(queued: _Queued, message: str) -> None:
    if not queued.result.done():
        queued.result.set_exception(RenderError(message, location=queued.job.location))
