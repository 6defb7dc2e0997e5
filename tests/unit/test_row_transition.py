"""row_transition: how each way an attempt ends changes its deployment row."""

from __future__ import annotations

import dataclasses

import pytest

from reconciler.decide import RowTransition, row_transition
from reconciler.model import AttemptResult


def _result(status: str, **changes: object) -> AttemptResult:
    result = AttemptResult(
        action="deploy",
        status=status,
        image_ref="reg/app:2",
        values_override={"replicas": 2},
        sha="abc",
        digest="d2",
        message="",
        attempts=0,
        retry_in_s=None,
    )
    return dataclasses.replace(result, **changes)  # type: ignore[arg-type]


def test_healthy_records_what_was_applied_and_observes_the_generation() -> None:
    """A healthy attempt observes its generation, records current_* and the digest."""
    assert row_transition(_result("healthy"), generation=7) == RowTransition(
        current_status="healthy",
        observes=True,
        observed_generation=7,
        records_current=True,
        applied_digest="d2",
        deployed=True,
        restores_desired=False,
    )


def test_failed_records_current_but_no_digest() -> None:
    """A failed attempt observes its generation and records current_* without a digest."""
    assert row_transition(_result("failed", attempts=3), generation=7) == RowTransition(
        current_status="failed",
        observes=True,
        observed_generation=7,
        records_current=True,
        applied_digest=None,
        deployed=False,
        restores_desired=False,
    )


def test_stopped_records_current_but_no_digest() -> None:
    """A stop observes its generation and records current_*, with no digest and no deploy."""
    assert row_transition(_result("stopped", action="stop"), generation=4) == RowTransition(
        current_status="stopped",
        observes=True,
        observed_generation=4,
        records_current=True,
        applied_digest=None,
        deployed=False,
        restores_desired=False,
    )


@pytest.mark.parametrize("status", ["superseded", "interrupted"])
def test_an_unfinished_attempt_leaves_the_row_syncing_and_unobserved(status: str) -> None:
    """Superseded or interrupted: still syncing, nothing observed or recorded as current."""
    transition = row_transition(_result(status), generation=7)
    assert transition.current_status == "syncing"
    assert not transition.observes
    assert not transition.records_current
    assert not transition.deployed
    assert not transition.restores_desired
    assert transition.applied_digest is None


def test_a_healthy_rollback_restores_the_desired_state_and_observes_its_bump() -> None:
    """A healthy rollback with restore_desired restores and observes generation + 1."""
    result = _result("healthy", action="rollback", restore_desired=True)
    assert row_transition(result, generation=7) == RowTransition(
        current_status="healthy",
        observes=True,
        observed_generation=8,
        records_current=True,
        applied_digest="d2",
        deployed=True,
        restores_desired=True,
    )


def test_a_failed_rollback_restores_nothing() -> None:
    """restore_desired counts only when the rollback ended healthy."""
    result = _result("failed", action="rollback", restore_desired=True)
    transition = row_transition(result, generation=7)
    assert not transition.restores_desired
    assert transition.observed_generation == 7


def test_a_failure_that_applied_nothing_keeps_the_current_columns() -> None:
    """A failed attempt that never reached the cluster observes its generation but leaves
    current_* and the digest describing what the cluster still holds."""
    result = _result("failed", applied=False, attempts=1)
    assert row_transition(result, generation=7) == RowTransition(
        current_status="failed",
        observes=True,
        observed_generation=7,
        records_current=False,
        applied_digest=None,
        deployed=False,
        restores_desired=False,
    )
