"""Checkouts.in_use: the ops repos in use are read again only when a pass needs their rows."""

from __future__ import annotations

from reconciler.checkouts import Checkouts
from reconciler.testing.memory import InMemoryFetcher, InMemoryStore


def _checkouts(store: InMemoryStore) -> Checkouts:
    return Checkouts(
        store=store, fetcher=InMemoryFetcher(sha="b" * 40), wake=lambda: None, check_interval_s=60
    )


async def test_a_pass_with_no_check_due_reuses_the_rows_it_read() -> None:
    """Read once, then not again while no head check is due and nothing was forced."""
    store = InMemoryStore()
    repo = store.add_repo("ops")
    store.add_deployment(project="app", environment="prod", image_ref="reg/app:1")
    checkouts = _checkouts(store)
    first = await checkouts.in_use()
    await checkouts.start_syncs(first, wait=True)  # checks the head: not due for 60 s now
    assert [r.id for r in await checkouts.in_use()] == [repo.id]
    assert store.calls.count("ops_repos_in_use") == 1


async def test_a_forced_fetch_a_due_check_or_a_reconnect_reads_them_again() -> None:
    """A NOTIFY's fetch, a repo never checked, a reconnected listener and ``fresh`` read anew."""
    store = InMemoryStore()
    store.add_repo("ops")
    store.add_deployment(project="app", environment="prod", image_ref="reg/app:1")
    checkouts = _checkouts(store)
    await checkouts.in_use()
    await checkouts.in_use()  # never checked: a check is due, so the rows are read again
    assert store.calls.count("ops_repos_in_use") == 2
    await checkouts.start_syncs(await checkouts.in_use(), wait=True)
    calls = store.calls.count("ops_repos_in_use")
    checkouts.force(1)
    await checkouts.in_use()
    checkouts.forced.clear()
    checkouts.forget_in_use()
    await checkouts.in_use()
    await checkouts.in_use(fresh=True)
    assert store.calls.count("ops_repos_in_use") == calls + 3
