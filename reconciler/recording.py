"""Recording one attempt: exactly one history row, with the deployment's current_* columns.

:class:`Recorder` is the half of an attempt that writes its outcome; :mod:`reconciler.attempt`
is the half that decides and acts.  An attempt that touched the cluster waits out an unreachable
database rather than lose its outcome; one that did not is recorded once, or left for the next
claim.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from reconciler import decide
from reconciler.errors import DatabaseError
from reconciler.logs import get_logger
from reconciler.model import AttemptResult, AttemptStatus, Checkout, Deployment, ObjectRef, Verb
from reconciler.ports import AttemptStore, Renderer
from reconciler.retry import Backoff, retry
from reconciler.settings import DEFAULT_KUBERNETES_VERSION, Settings

log = get_logger("reconcile")

LOST = "lost"
"""An outcome status: the claim was taken over, nothing was recorded by this daemon."""
CONVERGED = "converged"
"""An outcome status: the rendered output is applied and healthy already; nothing ran."""
UNRECORDED = "unrecorded"
"""An outcome status: the database could not be reached to record the attempt."""
LOST_MESSAGE = "the claim was taken over by another daemon"
RECORD_BACKOFF = Backoff(base_s=0.5, max_s=10.0, jitter=0.8)


@dataclass(frozen=True, kw_only=True)
class Options:
    """What an attempt needs from the settings."""

    field_manager: str
    health_timeout_s: float
    health_poll_s: float
    retry: decide.RetryPolicy
    daemon_id: str
    renderer: Renderer
    kubernetes_version: str = DEFAULT_KUBERNETES_VERSION
    """The Kubernetes schema rendered objects must match before anything is applied."""
    record_backoff: Backoff = RECORD_BACKOFF
    """Waiting out an unreachable database to record an attempt that touched the cluster."""
    self_heal: bool = True
    """Re-apply drifted objects of deployments whose ``self_heal`` column is NULL."""
    skip_unchanged: bool = True
    """Leave out the applies the watch cache shows would change nothing."""

    def skips_for(self, deployment: Deployment) -> bool:
        """Whether an attempt of ``deployment`` may leave out unchanged applies: only when
        this daemon wrote its objects last, so that no write of another daemon is in flight
        past the watch cache (drift checks do not flag our own field manager's writes)."""
        return self.skip_unchanged and deployment.last_writer == self.daemon_id

    @classmethod
    def from_settings(cls, settings: Settings, *, renderer: Renderer) -> Options:
        """The options ``settings`` give (health read every 0.5 s where no cache serves it)."""
        return cls(
            field_manager=settings.field_manager,
            health_timeout_s=settings.health_timeout_s,
            health_poll_s=0.5,
            daemon_id=settings.daemon_id,
            retry=decide.RetryPolicy(
                max_attempts=settings.max_attempts,
                base_s=settings.retry_base_s,
                max_s=settings.retry_max_s,
            ),
            renderer=renderer,
            kubernetes_version=settings.kubernetes_version,
            self_heal=settings.self_heal,
            skip_unchanged=settings.skip_unchanged_applies,
        )


@dataclass(frozen=True, kw_only=True)
class Outcome:
    """How an attempt ended, for the daemon's bookkeeping and ``run --once``."""

    deployment_id: int
    status: str
    """healthy, stopped, deleted, drifted, failed, superseded, interrupted, cancelled,
    converged (nothing applied), lost (the claim was taken over; nothing recorded) or
    unrecorded (the database was away)."""
    message: str


@dataclass(kw_only=True)
class Recorder:
    """The state an attempt records from: what it worked on, and when it started."""

    d: Deployment
    store: AttemptStore
    checkout: Checkout
    options: Options
    verb: Verb
    image_ref: str
    values: Any
    digest: str | None = None
    started_at: dt.datetime | None = None
    rolled_back_to: int | None = None
    rendered_sha: str | None = None
    applied_objects: tuple[ObjectRef, ...] = ()

    async def start(self, verb: Verb | None = None) -> bool:
        """Mark the row 'syncing' with this attempt; False when the claim was lost."""
        self.started_at = await self.store.start_attempt(
            deployment_id=self.d.id,
            daemon_id=self.options.daemon_id,
            action=str(verb or self.verb),
            image_ref=self.image_ref,
            values_override=self.values,
            generation=self.d.generation,
        )
        return self.started_at is not None

    async def finish(
        self,
        status: AttemptStatus,
        message: str,
        *,
        wait_for_database: bool = True,
        applied: bool = True,
    ) -> Outcome:
        result = AttemptResult(
            action=str(self.verb),
            status=str(status),
            image_ref=self.image_ref,
            values_override=self.values,
            sha=self.checkout.sha,
            digest=self.digest if applied else None,
            message=message,
            attempts=0,
            retry_in_s=None,
            applied=applied,
            restore_desired=self.verb is Verb.ROLLBACK and status is AttemptStatus.HEALTHY,
            rolled_back_to=self.rolled_back_to,
            rendered_sha=self.rendered_sha,
            applied_objects=self.applied_objects if applied else (),
        )
        if not await self.record(result, wait_for_database=wait_for_database):
            return self.outcome(LOST, LOST_MESSAGE)
        return self.outcome(str(status), message)

    async def record(self, result: AttemptResult, *, wait_for_database: bool = True) -> bool:
        """Record the started attempt (history row and current_* columns); False when it is no
        longer ours.

        The cluster has been touched, so an unreachable database is waited out, with backoff,
        instead of leaving the attempt for the next claim to close as interrupted: its outcome
        would be lost.  The write only updates a row still claimed by this daemon with this
        attempt open, so retrying after a lost acknowledgement cannot record it twice.
        """
        started_at = self.started_at
        assert started_at is not None
        retried = False

        def again(exc: BaseException, attempt: int) -> float | None:
            nonlocal retried
            if not isinstance(exc, DatabaseError) or exc.permanent or not wait_for_database:
                return None
            delay = self.options.record_backoff.delay(attempt)
            log.warning(
                "record_retry",
                deployment_id=self.d.id,
                project=self.d.project,
                environment=self.d.environment,
                status=result.status,
                error=str(exc),
                retry_in_s=round(delay, 2),
            )
            retried = True
            return delay

        async def write() -> bool:
            return await self.store.finish_attempt(
                deployment_id=self.d.id,
                daemon_id=self.options.daemon_id,
                started_at=started_at,
                generation=self.d.generation,
                result=result,
            )

        recorded = await retry(write, decide=again, catch=(DatabaseError,))
        if recorded or not retried:
            return recorded
        # An earlier try may have committed and only its answer been lost.
        status = await self.store.recorded_status(
            deployment_id=self.d.id, started_at=started_at, daemon_id=self.options.daemon_id
        )
        return status == result.status

    async def fail(self, message: str, *, permanent: bool) -> Outcome:
        attempts, retry_in_s = self.options.retry.after_failure(
            failures_before=decide.failures_before(self.d), permanent=permanent
        )
        if retry_in_s is None and not permanent:
            message += f" (gave up after {attempts} attempts; a new desired state retries)"
        if self.started_at is None:
            recorded = await self._fail_unstarted(message, attempts, retry_in_s)
        else:
            recorded = await self.record(self._failed(message, attempts, retry_in_s))
        if not recorded:
            return self.outcome(LOST, LOST_MESSAGE)
        return self.outcome(AttemptStatus.FAILED, message)

    async def _fail_unstarted(self, message: str, attempts: int, retry_in_s: float | None) -> bool:
        """A failure before anything touched the cluster (bad row, template, policy, no
        checkout): recorded like any attempt, with one history row, current_* left as they
        are.  Nothing to lose yet, so an unreachable database is not waited out."""
        if not await self.start():
            return False
        result = self._failed(message, attempts, retry_in_s, applied=False)
        return await self.record(result, wait_for_database=False)

    def _failed(
        self, message: str, attempts: int, retry_in_s: float | None, *, applied: bool = True
    ) -> AttemptResult:
        return AttemptResult(
            action=str(self.verb),
            status=AttemptStatus.FAILED,
            image_ref=self.image_ref,
            values_override=self.values,
            sha=self.checkout.sha,
            digest=self.digest if applied else None,
            message=message,
            attempts=attempts,
            retry_in_s=retry_in_s,
            # A started attempt may have applied part of what it rendered.
            applied=applied,
            rolled_back_to=self.rolled_back_to,
        )

    async def interrupted(self) -> None:
        """Shutdown ran out of grace: close the attempt as interrupted.  One try only: if the
        database is away, the next claim closes the attempt just the same."""
        if self.started_at is None:
            return
        with contextlib.suppress(DatabaseError):
            await asyncio.shield(
                self.finish(
                    AttemptStatus.INTERRUPTED,
                    "the daemon shut down before the rollout finished",
                    wait_for_database=False,
                )
            )

    def outcome(self, status: str, message: str) -> Outcome:
        return Outcome(deployment_id=self.d.id, status=str(status), message=message)


def never() -> bool:
    return False


Predicate = Callable[[], bool]
