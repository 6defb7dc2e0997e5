"""Fresh ops repos without webhooks, on the in-memory fakes: a cheap head check every check
interval, a fetch only when the head moved, `run --once` fetching everything, sync now."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from collections.abc import Callable

from reconciler.daemon import Daemon
from reconciler.errors import OpsRepoError
from reconciler.model import OpsRepo
from reconciler.ports import Notifications
from reconciler.settings import Settings
from reconciler.testing.memory import (
    InMemoryCluster,
    InMemoryFetcher,
    InMemoryListener,
    InMemoryRenderer,
    InMemoryStore,
)
from tests.support.waiting import eventually

SETTINGS = Settings(
    daemon_id="unit-daemon",
    poll_interval_s=0.05,
    lease_s=3.0,
    shutdown_grace_s=0.3,
    health_timeout_s=30.0,
    concurrency=4,
    http_address=None,
)
NEW = "b" * 40


class _UnreachableRemote(InMemoryFetcher):
    """A fetcher whose remote stops answering head checks once ``down`` is set."""

    down = False

    async def remote_head(self, repo: OpsRepo) -> str | None:
        if self.down:
            self.heads_asked.append(repo.name)
            raise OpsRepoError(f"ops repo '{repo.name}': could not reach the remote")
        return await super().remote_head(repo)


def _daemon(store: InMemoryStore, fetcher: InMemoryFetcher, **settings: object) -> Daemon:
    def listen(on_notify: Callable[[str], None], on_reconnect: Callable[[], None]) -> Notifications:
        return InMemoryListener(on_notify, on_reconnect)

    return Daemon(
        store=store,
        kube=InMemoryCluster(),
        settings=dataclasses.replace(SETTINGS, **settings),  # type: ignore[arg-type]
        renderer=InMemoryRenderer(),
        fetcher=fetcher,
        listener=listen,
    )


async def _healthy(
    store: InMemoryStore, fetcher: InMemoryFetcher, **settings: object
) -> tuple[Daemon, asyncio.Task[int], int]:
    row = store.add_deployment(project="web", environment="prod", image_ref="web:1")
    daemon = _daemon(store, fetcher, **settings)
    task = asyncio.create_task(daemon.run())
    await eventually(lambda: store.deployments[row.id].current_status == "healthy")
    return daemon, task, row.id


async def test_an_unchanged_head_is_checked_every_interval_but_never_fetched_again() -> None:
    """With the remote's head where it was, each check interval asks the head (ls-remote)
    and fetches nothing."""
    store, fetcher = InMemoryStore(), InMemoryFetcher()
    daemon, task, _ = await _healthy(store, fetcher, repo_check_interval_s=0.05)
    await eventually(lambda: len(fetcher.heads_asked) >= 3)
    daemon.stop()
    assert await asyncio.wait_for(task, timeout=5) == 0
    assert fetcher.fetched == ["ops"]


async def test_a_moved_head_is_fetched_and_rendered_at_the_next_check() -> None:
    """A new commit on the remote is fetched at the next head check and its deployments are
    rendered at it, with no NOTIFY and no sync interval elapsing."""
    store, fetcher = InMemoryStore(), InMemoryFetcher()
    daemon, task, row_id = await _healthy(store, fetcher, repo_check_interval_s=0.05)
    fetcher.history.add(fetcher.sha)  # the new commit is a child of the old one
    fetcher.sha = NEW
    await eventually(lambda: store.deployments[row_id].rendered_sha == NEW)
    daemon.stop()
    assert await asyncio.wait_for(task, timeout=5) == 0
    assert fetcher.fetched == ["ops", "ops"]
    assert store.repos[1].last_sha == NEW


async def test_the_sync_interval_does_not_hold_back_the_check_interval() -> None:
    """A repo's sync_interval_s longer than the check interval does not slow its checks."""
    store, fetcher = InMemoryStore(), InMemoryFetcher()
    store.add_repo()  # sync_interval_s 60
    daemon, task, _ = await _healthy(store, fetcher, repo_check_interval_s=0.05)
    await eventually(lambda: len(fetcher.heads_asked) >= 2)
    daemon.stop()
    await asyncio.wait_for(task, timeout=5)


async def test_a_failed_head_check_records_the_error_once_and_keeps_serving() -> None:
    """A remote that stops answering: last_error says so (written once), nothing is fetched,
    the deployment stays as it was; the next good check clears the error."""
    store, fetcher = InMemoryStore(), _UnreachableRemote()
    daemon, task, row_id = await _healthy(store, fetcher, repo_check_interval_s=0.05)
    fetcher.down = True
    await eventually(lambda: store.repos[1].last_error is not None)
    failed_at = store.repos[1].last_synced_at
    asked = len(fetcher.heads_asked)
    await eventually(lambda: len(fetcher.heads_asked) >= asked + 2)
    assert store.repos[1].last_synced_at == failed_at  # the same error is not written again
    assert "could not reach the remote" in (store.repos[1].last_error or "")
    fetcher.down = False
    await eventually(lambda: store.repos[1].last_error is None)
    daemon.stop()
    assert await asyncio.wait_for(task, timeout=5) == 0
    assert fetcher.fetched == ["ops"]
    assert store.deployments[row_id].current_status == "healthy"


async def test_run_once_fetches_a_repo_that_is_not_due() -> None:
    """`run --once` fetches every repo in use before deciding, even one synced a moment ago."""
    store, fetcher = InMemoryStore(), InMemoryFetcher()
    repo = store.add_repo()
    store.repos[repo.id] = dataclasses.replace(
        repo, last_synced_at=dt.datetime.now(dt.UTC), last_sha=fetcher.sha
    )
    store.add_deployment(project="web", environment="prod", image_ref="web:1")
    daemon = _daemon(store, fetcher)
    assert await asyncio.wait_for(daemon.run(once=True), timeout=10) == 0
    assert fetcher.fetched == ["ops"]


async def test_sync_now_fetches_at_once_whatever_the_intervals() -> None:
    """sync_now (a verified webhook) fetches the repo at once, with polling and head checks
    far off."""
    store, fetcher = InMemoryStore(), InMemoryFetcher()
    daemon, task, row_id = await _healthy(
        store, fetcher, poll_interval_s=300.0, repo_check_interval_s=3600.0
    )
    fetcher.history.add(fetcher.sha)  # the new commit is a child of the old one
    fetcher.sha = NEW
    daemon.sync_now([1])
    await eventually(lambda: store.deployments[row_id].rendered_sha == NEW)
    daemon.stop()
    assert await asyncio.wait_for(task, timeout=5) == 0
    assert fetcher.fetched == ["ops", "ops"]
