"""What to do about one deployment: pure functions over plain data, no I/O."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from reconciler.model import AttemptResult, Deployment, Verb

LIVE_STATUSES = frozenset({"healthy", "degraded", "drifted"})
"""Current statuses of a deployment whose objects are on the cluster as it last applied them
(give or take what the watch reports): what health and drift are watched for."""


def verb_for(deployment: Deployment) -> Verb:
    """The verb ``desired_status`` asks for; an active one an admin asked to redeploy
    redeploys, and one whose objects drifted (nothing else asked of it) heals."""
    verb = {
        "stopped": Verb.STOP,
        "rollback": Verb.ROLLBACK,
        "deleted": Verb.DELETE,
    }.get(deployment.desired_status, Verb.DEPLOY)
    if verb is Verb.DEPLOY and deployment.redeploy_requested_at is not None:
        return Verb.REDEPLOY
    if verb is Verb.DEPLOY and heals(deployment):
        return Verb.HEAL
    return verb


def heals(deployment: Deployment) -> bool:
    """The watch saw drift and nothing newer is asked: the attempt re-applies what is
    deployed (a new desired state applies everything anyway)."""
    return (
        deployment.heal_requested_at is not None
        and not is_new_generation(deployment)
        and deployment.current_status in LIVE_STATUSES
    )


@dataclass(frozen=True, kw_only=True)
class Target:
    """What an attempt starts out to put on the cluster (a rollback looks its target up in
    history before it renders)."""

    verb: Verb
    image_ref: str
    values: Any


def plan(deployment: Deployment) -> Target:
    """The verb, image and values one attempt starts from.  A stop scales what is running,
    not what a pipeline wrote since."""
    verb = verb_for(deployment)
    if verb is Verb.STOP and deployment.current_image_ref:
        values = deployment.current_values if deployment.current_values is not None else {}
        return Target(verb=verb, image_ref=deployment.current_image_ref, values=values)
    return Target(verb=verb, image_ref=deployment.image_ref, values=deployment.values_override)


def is_new_generation(deployment: Deployment) -> bool:
    """The desired state changed since the daemon last finished with this deployment."""
    return deployment.generation != deployment.observed_generation


def needs_apply(deployment: Deployment, *, verb: Verb, digest: str) -> bool:
    """False only when the rendered output is exactly what is applied and healthy already: a
    commit that does not change this deployment's manifests, or a values change that renders the
    same, costs no API call.  A redeploy always applies: that is what it was asked for."""
    if verb is not Verb.DEPLOY:
        return True
    return not (deployment.current_status in LIVE_STATUSES and deployment.applied_digest == digest)


def verb_after_render(deployment: Deployment, *, verb: Verb, digest: str) -> Verb:
    """A heal whose render is not what is applied deploys instead: a commit changed the
    manifests since the last apply, and a heal only compares the live objects with the new
    render, so finding no drift there would record the new commit as applied with nothing of
    it (a pruned file, say) on the cluster.  A deploy re-applies everything, so it heals too."""
    if verb is Verb.HEAL and deployment.applied_digest != digest:
        return Verb.DEPLOY
    return verb


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """Exponential backoff with jitter, bounded attempts."""

    max_attempts: int
    base_s: float
    max_s: float

    def after_failure(
        self,
        *,
        failures_before: int,
        permanent: bool,
        rng: random.Random | None = None,
    ) -> tuple[int, float | None]:
        """Failures counted after this one, and in how many seconds to try again (None: parked
        until the desired state changes, because retrying cannot help or the attempts are used
        up).  A delay, not a time: the database adds it to its own clock."""
        failures = failures_before + 1
        if permanent or failures >= self.max_attempts:
            return failures, None
        delay = min(self.max_s, self.base_s * 2 ** (failures - 1))
        # Jitter in [0.5, 1.0) of the delay spreads retries of many deployments apart.
        jitter = (rng or random).uniform(0.5, 1.0)
        return failures, delay * jitter


def failures_before(deployment: Deployment) -> int:
    """Consecutive failures that count towards this attempt: a new desired state starts over."""
    return 0 if is_new_generation(deployment) else deployment.attempts


@dataclass(frozen=True, kw_only=True)
class RowTransition:
    """How recording an attempt changes its deployment row (``finish_attempt``'s parameters)."""

    current_status: str
    """'healthy', 'stopped', 'deleted', 'drifted' (healing is off) or 'failed' (a cancelled
    rollout too: it waits for a new desired state, or a retry); 'syncing' while the next
    attempt decides."""
    observes: bool
    """Whether ``observed_generation`` moves (to :attr:`observed_generation`)."""
    observed_generation: int
    records_current: bool
    """Whether current_image_ref, current_values, current_sha and applied_digest take the
    attempt's values: the cluster now holds what the attempt applied (or stopped).  An attempt
    that applied nothing leaves them describing what the cluster still holds."""
    applied_digest: str | None
    deployed: bool
    """Whether ``deployed_at`` becomes now."""
    restores_desired: bool
    """A healthy rollback: the desired state takes the rolled-back-to image and values and
    returns to 'active' (when the row is still at the attempt's generation: the store checks
    that in the same write)."""


def row_transition(result: AttemptResult, *, generation: int) -> RowTransition:
    """What ``result`` of an attempt at ``generation`` does to the deployment row."""
    healthy = result.status == "healthy"
    unfinished = result.status in ("superseded", "interrupted")
    current_status = {
        "healthy": "healthy",
        "stopped": "stopped",
        "deleted": "deleted",
        "drifted": "drifted",
    }.get(result.status, "failed")
    restores = result.restore_desired and healthy
    return RowTransition(
        # Superseded or interrupted: the next attempt decides the status; still rolling.
        current_status="syncing" if unfinished else current_status,
        observes=not unfinished,
        # A restore changes the desired state, so the trigger bumps generation by one; the
        # daemon made that change, so it is observed already.
        observed_generation=generation + 1 if restores else generation,
        records_current=result.applied
        and result.status in ("healthy", "stopped", "failed", "cancelled", "deleted"),
        applied_digest=result.digest if healthy else None,
        deployed=healthy,
        restores_desired=restores,
    )
