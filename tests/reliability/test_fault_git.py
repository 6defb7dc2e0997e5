"""Fault 4: the ops repo's remote becomes unreachable, is deleted, has its history force-pushed,
loses its branch, or stops answering.  Each failure is named in ``ops_repos.last_error`` and
the last good checkout keeps serving: a new image still deploys, rendered from it."""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.support.audit import audit
from tests.support.fault_table import FaultRow
from tests.support.pipeline import Pipeline
from tests.support.waiting import wait_until

SECRET = "s3cret-token"
GIT_TIMEOUT_S = 2.0
SLOW_GIT_TIMEOUT_S = 6.0


@dataclass
class GitFault:
    """How to break the remote, how to mend it, and what ``last_error`` must then say."""

    name: str
    break_it: Callable[[Pipeline, str], Awaitable[None]]
    mend_it: Callable[[Pipeline], Awaitable[None]]
    last_error: str | None
    """A regular expression searched in the error, or None when the sync must succeed (a
    force-push is followed)."""
    hangs: bool = False
    """Fetches hang until the git timeout: deployments must not wait for them."""


@dataclass
class SilentRemote:
    """An HTTP 'git server' that accepts connections and never answers."""

    url: str
    fetches: asyncio.Queue[None]
    """One item per accepted connection: a fetch has started and will hang."""


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def _set_url(world: Pipeline, url: str) -> None:
    # What an operator does with psql; the trigger NOTIFYs the daemon to sync at once.
    async with world.store.engine.begin() as conn:
        await conn.execute(
            sa.text("UPDATE ops_repos SET repo_url = :url WHERE id = :id"),
            {"url": url, "id": world.ops_repo_id},
        )


async def _unreachable(world: Pipeline, _context: str) -> None:
    # Credentials in the URL: the error must name the remote without them.
    await _set_url(world, f"http://deployer:{SECRET}@127.0.0.1:{_closed_port()}/ops.git")


async def _original_url(world: Pipeline) -> None:
    await _set_url(world, str(world.ops.path))


async def _delete_repository(world: Pipeline, _context: str) -> None:
    world.ops.path.rename(world.ops.path.with_name("ops-remote.deleted"))


async def _restore_repository(world: Pipeline) -> None:
    world.ops.path.with_name("ops-remote.deleted").rename(world.ops.path)


async def _force_push(world: Pipeline, _context: str) -> None:
    # A new root commit replaces main: none of the commits the checkout knows survive.
    world.ops._git("checkout", "-q", "--orphan", "rewritten")
    world.ops.write_project("app", greeting="rewritten")
    world.ops.commit("history rewritten")
    world.ops._git("branch", "-M", "rewritten", "main")


async def _nothing(_world: Pipeline) -> None:
    return None


async def _delete_branch(world: Pipeline, _context: str) -> None:
    world.ops._git("checkout", "-q", "-b", "elsewhere")
    world.ops._git("branch", "-q", "-D", "main")


async def _restore_branch(world: Pipeline) -> None:
    world.ops._git("checkout", "-q", "-b", "main")
    world.ops._git("branch", "-q", "-D", "elsewhere")


async def _slow_remote(world: Pipeline, context: str) -> None:
    await _set_url(world, context)


FAULTS = [
    GitFault("unreachable", _unreachable, _original_url, "remote unreachable"),
    GitFault("deleted", _delete_repository, _restore_repository, "repository not found"),
    GitFault("force-pushed", _force_push, _nothing, None),
    GitFault(
        "branch deleted",
        _delete_branch,
        _restore_branch,
        re.escape("branch 'main' does not exist on the remote"),
    ),
    GitFault(
        "slow remote",
        _slow_remote,
        _original_url,
        # Whichever git call meets the silent remote first: the head check or a fetch.
        rf"timed out after {SLOW_GIT_TIMEOUT_S:g} s while (fetching|asking the remote for the"
        r" head of) branch 'main'; git was stopped",
        hangs=True,
    ),
]


@pytest.fixture
async def silent_remote() -> AsyncIterator[SilentRemote]:
    """A remote that accepts connections and never answers."""
    held: list[asyncio.StreamWriter] = []
    fetches: asyncio.Queue[None] = asyncio.Queue()

    async def accept(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)
        fetches.put_nowait(None)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield SilentRemote(url=f"http://127.0.0.1:{port}/ops.git", fetches=fetches)
    finally:
        for writer in held:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
        server.close()
        await server.wait_closed()


async def _last_error(world: Pipeline) -> str | None:
    repo = await world.store.get_ops_repo("ops")
    assert repo is not None
    return repo.last_error


async def _deploys_from(
    world: Pipeline, *, image_ref: str, sha: str, remote: SilentRemote | None = None
) -> float:
    """Write ``image_ref``; it must end healthy, rendered from commit ``sha``.  Returns how
    long that took; with a ``remote``, the write waits until a fetch from it has started."""
    if remote is not None:
        while not remote.fetches.empty():
            remote.fetches.get_nowait()
        await asyncio.wait_for(remote.fetches.get(), timeout=SLOW_GIT_TIMEOUT_S * 3)
    began = time.monotonic()
    await world.store.set_desired(project="app", environment="prod", image_ref=image_ref)
    d = await world.wait_for(
        "app",
        until=lambda d: d.current_status == "healthy" and d.current_image_ref == image_ref,
        timeout_s=30,
    )
    took = time.monotonic() - began
    assert d.current_sha == sha
    live = world.fakekube.get_object(
        api_version="apps/v1", kind="Deployment", name="app", namespace="app-prod"
    )
    assert live is not None
    assert live["spec"]["template"]["spec"]["containers"][0]["image"] == image_ref
    [latest, *_] = await world.store.history(deployment_id=d.id)
    assert (latest.status, latest.image_ref, latest.sha) == ("healthy", image_ref, sha)
    return took


@pytest.mark.reliability
@pytest.mark.parametrize("fault", FAULTS, ids=[f.name for f in FAULTS])
async def test_git_fault_is_named_and_the_last_good_checkout_serves(
    fault: GitFault,
    world: Pipeline,
    silent_remote: SilentRemote,
    fault_table: Callable[[FaultRow], None],
    tmp_path: Path,
) -> None:
    """last_error names the fault, without credentials; the last good checkout keeps serving."""
    world.fakekube.rollout_delay_s = 0.1
    git_timeout_s = SLOW_GIT_TIMEOUT_S if fault.hangs else GIT_TIMEOUT_S
    await world.start_daemon(git_timeout_s=git_timeout_s)
    await world.deploy("app", image_ref="reg/app:1")
    first = await world.wait_for("app", until=lambda d: d.current_status == "healthy", timeout_s=30)
    good_sha = first.current_sha
    assert good_sha is not None and await _last_error(world) is None

    await fault.break_it(world, silent_remote.url)
    if fault.last_error is None:
        # A rewritten history is followed: the new root commit is deployed, no error.
        new_sha = world.ops._git("rev-parse", "HEAD")

        async def followed() -> bool:
            d = await world.store.get_deployment(project="app", environment="prod")
            return d is not None and d.current_sha == new_sha and d.current_status == "healthy"

        await wait_until(followed, timeout_s=30, what="the rewritten history to be deployed")
        assert await _last_error(world) is None
        config = world.fakekube.get_object(
            api_version="v1", kind="ConfigMap", name="app-config", namespace="app-prod"
        )
        assert config is not None and config["data"]["greeting"] == "rewritten"
        await _deploys_from(world, image_ref="reg/app:2", sha=new_sha)
        error_seen = ""
    else:
        expected = fault.last_error

        async def named() -> bool:
            return re.search(expected, await _last_error(world) or "") is not None

        await wait_until(named, timeout_s=30, what=f"last_error to say {expected!r}")
        error_seen = await _last_error(world) or ""
        assert SECRET not in error_seen
        assert error_seen.startswith("ops repo 'ops' (")
        # Written while a fetch hangs (for the slow remote), a new image still deploys at once.
        remote = silent_remote if fault.hangs else None
        took = await _deploys_from(world, image_ref="reg/app:2", sha=good_sha, remote=remote)
        # A restarted daemon serves the checkout it finds on disk just the same.
        await world.stop_daemons()
        await world.start_daemon(git_timeout_s=git_timeout_s)
        took = max(
            took,
            await _deploys_from(world, image_ref="reg/app:3", sha=good_sha, remote=remote),
        )
        if fault.hangs:
            assert took < git_timeout_s / 2, f"a deployment waited {took:.1f}s for a fetch"
        assert re.search(expected, await _last_error(world) or "") is not None

        await fault.mend_it(world)

        async def cleared() -> bool:
            return await _last_error(world) is None

        await wait_until(cleared, timeout_s=30, what="last_error to clear")
    await world.stop_daemons()

    result = await audit(world.store)
    fault_table(
        FaultRow(
            fault=f"4. git: {fault.name}",
            injected="1",
            converged=not result.problems,
            deployments=result.deployments,
            history_rows=result.history_rows,
            lost=result.lost,
            duplicated=result.duplicated,
            notes=(
                f"last_error: ...): {error_seen.split('): ', 1)[-1][:100]}"
                if error_seen
                else "no error: the rewritten history was followed and deployed"
            ),
        )
    )
    assert result.problems == []
    assert result.statuses["interrupted"] == 0
