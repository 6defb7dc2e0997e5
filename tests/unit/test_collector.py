"""collector.settle: what exists is frozen out of collections, objects made later are not,
and young objects are collected less often."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from reconciler import collector


@pytest.fixture
def restored_gc() -> Iterator[None]:
    """Puts the collector back as the test session had it."""
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


@pytest.mark.usefixtures("restored_gc")
def test_settling_freezes_what_exists_and_raises_the_thresholds() -> None:
    """After settling, objects that existed are frozen (not walked by collections), objects
    made later are not, and the thresholds are the settled ones."""
    made_before = [["kept"]]
    collector.settle()
    made_after = [["made later"]]
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == collector.THRESHOLDS
    tracked = {id(obj) for obj in gc.get_objects()}
    assert id(made_after) in tracked
    assert id(made_before) not in tracked and id(made_before[0]) not in tracked
