"""The pure decisions: which verb, whether to apply, when to retry."""

from __future__ import annotations

import dataclasses
import datetime as dt
import random

import pytest

from reconciler.decide import (
    RetryPolicy,
    Verb,
    failures_before,
    is_new_generation,
    needs_apply,
    verb_after_render,
    verb_for,
)
from reconciler.model import Deployment

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def _deployment(**changes: object) -> Deployment:
    base = Deployment(
        id=1,
        project="web",
        environment="prod",
        namespace="web-prod",
        ops_repo_id=1,
        image_ref="reg/web:2",
        values_override={},
        desired_status="active",
        current_status="healthy",
        current_image_ref="reg/web:2",
        current_sha="abc",
        current_values={},
        deployed_at=NOW,
        status_message="",
        generation=3,
        observed_generation=3,
        claimed_by=None,
        lease_expires_at=None,
        attempt_started_at=None,
        attempt_action=None,
        attempt_image_ref=None,
        attempt_generation=None,
        attempts=0,
        next_attempt_at=None,
        applied_digest="d1",
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("desired", "verb"),
    [("active", Verb.DEPLOY), ("stopped", Verb.STOP), ("rollback", Verb.ROLLBACK)],
)
def test_verb_follows_desired_status(desired: str, verb: Verb) -> None:
    """desired_status maps to the deploy, stop or rollback verb."""
    assert verb_for(_deployment(desired_status=desired)) is verb


def test_same_digest_and_healthy_needs_no_apply() -> None:
    """A deployment healthy with the same rendered digest needs no apply."""
    assert not needs_apply(_deployment(), verb=Verb.DEPLOY, digest="d1")


@pytest.mark.parametrize(
    ("changes", "digest"),
    [
        ({}, "d2"),
        ({"current_status": "failed"}, "d1"),
        ({"current_status": "stopped"}, "d1"),
        ({"applied_digest": None}, "d1"),
    ],
)
def test_other_digest_or_unhealthy_needs_apply(changes: dict[str, object], digest: str) -> None:
    """A new rendered digest, or a deployment not healthy, is applied."""
    assert needs_apply(_deployment(**changes), verb=Verb.DEPLOY, digest=digest)


@pytest.mark.parametrize("verb", [Verb.STOP, Verb.ROLLBACK])
def test_stop_and_rollback_always_act(verb: Verb) -> None:
    """Stop and rollback act even when the digest is unchanged."""
    assert needs_apply(_deployment(), verb=verb, digest="d1")


def test_new_generation_resets_failure_count() -> None:
    """A new desired state starts counting failures from zero."""
    fresh = _deployment(generation=4, attempts=3)
    assert is_new_generation(fresh)
    assert failures_before(fresh) == 0
    assert failures_before(_deployment(attempts=3)) == 3


def test_retry_backoff_doubles_with_jitter_and_parks() -> None:
    """Retries back off exponentially within [0.5, 1) jitter, capped, then park."""
    policy = RetryPolicy(max_attempts=4, base_s=10, max_s=25)
    rng = random.Random(7)
    delays = []
    for before in range(3):
        failures, delay = policy.after_failure(failures_before=before, permanent=False, rng=rng)
        assert failures == before + 1 and delay is not None
        delays.append(delay)
    assert 5 <= delays[0] < 10
    assert 10 <= delays[1] < 20
    assert 12.5 <= delays[2] < 25  # capped at max_s before jitter
    assert policy.after_failure(failures_before=3, permanent=False) == (4, None)


def test_permanent_failure_is_never_retried() -> None:
    """A permanent failure parks at once."""
    policy = RetryPolicy(max_attempts=5, base_s=10, max_s=600)
    assert policy.after_failure(failures_before=0, permanent=True) == (1, None)


def test_a_heal_whose_render_is_not_applied_deploys() -> None:
    """A heal rendering other manifests than the applied ones (a new commit) deploys them;
    one rendering the applied manifests stays a heal, and other verbs are untouched."""
    d = _deployment(heal_requested_at=NOW)
    assert verb_after_render(d, verb=Verb.HEAL, digest="d2") is Verb.DEPLOY
    assert verb_after_render(d, verb=Verb.HEAL, digest="d1") is Verb.HEAL
    assert verb_after_render(d, verb=Verb.STOP, digest="d2") is Verb.STOP
