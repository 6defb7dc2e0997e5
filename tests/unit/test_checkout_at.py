"""Checkouts.checkout_at on the in-memory fetcher: when it syncs first, and what it returns."""

from __future__ import annotations

import pytest

from reconciler.checkouts import Checkouts
from reconciler.errors import OpsRepoError
from reconciler.testing.memory import InMemoryFetcher, InMemoryStore

TIP = "b" * 40
OLD = "a" * 40


async def test_a_commit_of_the_checkouts_history_needs_no_sync() -> None:
    """The commit served (or one the fetcher knows) is checked out without fetching again."""
    store = InMemoryStore()
    repo = store.add_repo("ops")
    fetcher = InMemoryFetcher(sha=TIP, history=(OLD,))
    checkouts = Checkouts(store=store, fetcher=fetcher, wake=lambda: None)
    await checkouts.ensure({repo.id})
    assert fetcher.fetched == ["ops"]
    at_tip = await checkouts.checkout_at(repo, TIP)
    old = await checkouts.checkout_at(repo, OLD)
    assert (at_tip.sha, at_tip.error, old.sha, old.error) == (TIP, None, OLD, None)
    assert at_tip.path != old.path
    assert fetcher.fetched == ["ops"]
    assert fetcher.at_commits == [("ops", TIP), ("ops", OLD)]


async def test_a_commit_the_checkout_lacks_is_synced_first_then_refused_if_unknown() -> None:
    """A sha the held checkout does not contain makes one sync before at_commit, which then
    raises OpsRepoError naming the repo and the sha when the history has no such commit."""
    store = InMemoryStore()
    repo = store.add_repo("ops")
    fetcher = InMemoryFetcher(sha=TIP, history=(OLD,))
    checkouts = Checkouts(store=store, fetcher=fetcher, wake=lambda: None)
    old = await checkouts.checkout_at(repo, OLD)  # nothing held yet: synced first
    assert (old.sha, fetcher.fetched) == (OLD, ["ops"])
    with pytest.raises(OpsRepoError, match=f"commit {'c' * 40} is not in the history of ops"):
        await checkouts.checkout_at(repo, "c" * 40)
    assert fetcher.fetched == ["ops", "ops"]
