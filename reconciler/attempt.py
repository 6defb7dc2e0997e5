"""One attempt at one claimed deployment: plan -> render -> apply -> wait -> one recorded result.

Every attempt ends in exactly one history row, written with the deployment's current_* columns
in one transaction (``finish_attempt``).  A failure of any stage becomes a failed attempt whose
message says what and where; nothing here lets an exception escape for one bad deployment, so
the daemon keeps serving the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from reconciler import decide
from reconciler.admission import admit
from reconciler.cluster import apply as apply_stage
from reconciler.cluster.health import HealthStatus, wait_healthy
from reconciler.errors import (
    DatabaseError,
    HealthError,
    InputError,
    OpsRepoError,
    ReconcilerError,
)
from reconciler.logs import get_logger
from reconciler.model import (
    AttemptResult,
    AttemptStatus,
    Checkout,
    Deployment,
    ObjectRef,
    RepoPolicy,
    Verb,
)
from reconciler.policy import Subject
from reconciler.ports import AttemptStore, Cluster, RenderedManifests, Renderer, RenderRequest
from reconciler.render.validation import validate_objects
from reconciler.retry import Backoff, retry
from reconciler.settings import DEFAULT_KUBERNETES_VERSION

log = get_logger("reconcile")

LOST = "lost"
"""An outcome status: the claim was taken over, nothing was recorded by this daemon."""
CONVERGED = "converged"
"""An outcome status: the rendered output is applied and healthy already; nothing ran."""
UNRECORDED = "unrecorded"
"""An outcome status: the database could not be reached to record the attempt."""
_LOST_MESSAGE = "the claim was taken over by another daemon"
CANCELLED_MESSAGE = (
    "cancelled before the rollout finished; the cluster is left as it is "
    "(a new desired state or `reconciler retry` deploys again)"
)
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


@dataclass(frozen=True, kw_only=True)
class Outcome:
    """How an attempt ended, for the daemon's bookkeeping and ``run --once``."""

    deployment_id: int
    status: str
    """healthy, stopped, failed, superseded, interrupted, converged (nothing applied), lost
    (the claim was taken over; nothing recorded) or unrecorded (the database was away)."""
    message: str


async def run_attempt(
    deployment: Deployment,
    *,
    store: AttemptStore,
    cluster: Cluster,
    checkout: Checkout,
    options: Options,
    superseded: Callable[[], bool],
    cancelled: Callable[[], bool] | None = None,
) -> Outcome:
    """Bring one claimed deployment to its desired state and record the attempt.  Its wait
    for health ends when ``superseded`` (recorded 'superseded') or ``cancelled`` (recorded
    'cancelled') says so."""
    began = time.monotonic()
    attempt = Attempt(
        deployment=deployment,
        store=store,
        cluster=cluster,
        checkout=checkout,
        options=options,
        superseded=superseded,
        cancelled=cancelled or _never,
    )
    bound = log.bind(
        deployment_id=deployment.id,
        project=deployment.project,
        environment=deployment.environment,
        action=str(attempt.verb),
        generation=deployment.generation,
    )
    try:
        outcome = await attempt.run()
    except DatabaseError as exc:
        # The outcome could not be recorded; the lease expires and the next claim closes the
        # attempt as interrupted and tries again.
        bound.error("reconcile_unrecorded", error=str(exc))
        return Outcome(deployment_id=deployment.id, status=UNRECORDED, message=str(exc))
    emit = bound.warning if outcome.status == AttemptStatus.FAILED else bound.info
    emit(
        "reconcile",
        status=outcome.status,
        image_ref=attempt.image_ref,
        sha=checkout.sha,
        duration_ms=int((time.monotonic() - began) * 1000),
        message=outcome.message,
    )
    return outcome


class Attempt:
    """The state of one attempt, so that each step reads as a line of :meth:`run`."""

    def __init__(
        self,
        *,
        deployment: Deployment,
        store: AttemptStore,
        cluster: Cluster,
        checkout: Checkout,
        options: Options,
        superseded: Callable[[], bool],
        cancelled: Callable[[], bool],
    ) -> None:
        self.d = deployment
        self.store = store
        self.cluster = cluster
        self.checkout = checkout
        self.options = options
        self.superseded = superseded
        self.cancelled = cancelled
        target = decide.plan(deployment)
        self.verb = target.verb
        self.image_ref = target.image_ref
        self.values: Any = target.values
        self.digest: str | None = None
        self.started_at: dt.datetime | None = None

    async def run(self) -> Outcome:
        try:
            return await self._run()
        except DatabaseError:
            raise
        except Exception as exc:
            # A bug (ours, or an input nobody foresaw): recorded as this deployment's failed
            # attempt, retried with backoff, with the exception in words, never a silent crash.
            log.exception("attempt_crashed", deployment_id=self.d.id)
            return await self._fail(
                f"internal error: {type(exc).__name__}: {exc}"[:2000], permanent=False
            )
        except asyncio.CancelledError:
            # Shutdown ran out of grace: close the attempt as interrupted, then stop.  One try
            # only: if the database is away, the next claim closes the attempt just the same.
            if self.started_at is not None:
                with contextlib.suppress(DatabaseError):
                    await asyncio.shield(
                        self._finish(
                            AttemptStatus.INTERRUPTED,
                            "the daemon shut down before the rollout finished",
                            wait_for_database=False,
                        )
                    )
            raise

    async def _run(self) -> Outcome:
        prepared = await self._prepare()
        if isinstance(prepared, Outcome):
            return prepared
        self.digest = prepared.digest
        if not decide.needs_apply(self.d, verb=self.verb, digest=prepared.digest):
            await self.store.mark_converged(
                deployment_id=self.d.id,
                daemon_id=self.options.daemon_id,
                generation=self.d.generation,
                sha=self.checkout.sha,
            )
            return self._outcome(CONVERGED, "the rendered manifests are applied already")
        try:
            await self._check_schema(prepared)
            rules = await self.store.policy_for(self.d.ops_repo_id)
            if rules.impersonated_user is not None:
                self.cluster = self.cluster.impersonating(rules.impersonated_user)
            objects = await self._admit(prepared.objects, rules=rules)
        except DatabaseError:
            raise
        except ReconcilerError as exc:
            return await self._fail(str(exc), permanent=exc.permanent)
        self.started_at = await self.store.start_attempt(
            deployment_id=self.d.id,
            daemon_id=self.options.daemon_id,
            action=str(self.verb),
            image_ref=self.image_ref,
            values_override=self.values,
            generation=self.d.generation,
        )
        if self.started_at is None:
            return self._outcome(LOST, _LOST_MESSAGE)
        try:
            if self.verb is Verb.STOP:
                message = await self._stop(objects)
                return await self._finish(AttemptStatus.STOPPED, message)
            return await self._deploy(objects)
        except DatabaseError:
            raise
        except ReconcilerError as exc:
            return await self._fail(str(exc), permanent=exc.permanent)

    async def _prepare(self) -> RenderedManifests | Outcome:
        """The rendered manifests, or the recorded failure that kept them from being made
        (nothing has touched the cluster yet)."""
        try:
            if self.verb is Verb.ROLLBACK:
                await self._target_of_rollback()
            request = self._render_request()
        except ReconcilerError as exc:
            return await self._fail(str(exc), permanent=exc.permanent)
        try:
            return await self.options.renderer.render(request)
        except ReconcilerError as exc:
            return await self._fail(f"render failed: {exc}", permanent=exc.permanent)

    # ------------------------------------------------------------ steps

    async def _target_of_rollback(self) -> None:
        target = await self.store.last_healthy(
            deployment_id=self.d.id, other_than_image=self.d.image_ref
        )
        if target is None:
            raise InputError(
                f"nothing to roll back to: no healthy deploy of an image other than "
                f"{self.d.image_ref} in this deployment's history"
            )
        self.image_ref = target.image_ref
        self.values = target.values_override

    async def _check_schema(self, rendered: RenderedManifests) -> None:
        """The Kubernetes schema of the target version, offline; a thread, since checking
        takes milliseconds per object and the loop serves every other deployment meanwhile."""
        await asyncio.to_thread(
            validate_objects,
            rendered.objects,
            sources=rendered.sources,
            kubernetes_version=self.options.kubernetes_version,
        )

    async def _admit(
        self, objects: tuple[dict[str, Any], ...], *, rules: RepoPolicy
    ) -> tuple[dict[str, Any], ...]:
        """Policy and ownership, before anything touches the cluster."""
        subject = Subject(
            project=self.d.project,
            environment=self.d.environment,
            namespace=self.d.namespace,
            ops_repo=self.checkout.name,
        )
        return await admit(
            objects,
            deployment_id=self.d.id,
            subject=subject,
            rules=rules,
            cluster=self.cluster,
            store=self.store,
        )

    def _render_request(self) -> RenderRequest:
        if self.checkout.path is None:
            raise OpsRepoError(
                f"ops repo {self.checkout.name} has no checkout yet: "
                f"{self.checkout.error or 'it has not been fetched'}"
            )
        return RenderRequest(
            checkout=self.checkout.path,
            subdir=self.checkout.subdir,
            project=self.d.project,
            environment=self.d.environment,
            namespace=self.d.namespace,
            image_ref=self.image_ref,
            values_override=self.values,
        )

    async def _deploy(self, objects: tuple[dict[str, Any], ...]) -> Outcome:
        await apply_stage.apply_all(
            kube=self.cluster,
            objects=objects,
            namespace=self.d.namespace,
            field_manager=self.options.field_manager,
        )
        if self.verb is Verb.REDEPLOY and self.d.redeploy_restart:
            await self._restart(objects)

        async def should_stop() -> bool:
            return self.superseded() or self.cancelled()

        health = await wait_healthy(
            refs=[ObjectRef.from_object(o) for o in objects],
            read_object=self.cluster.get,
            list_pods=self.cluster.list_pods,
            timeout_s=self.options.health_timeout_s,
            poll_interval_s=self.options.health_poll_s,
            should_stop=should_stop,
        )
        if health.status is HealthStatus.HEALTHY:
            return await self._finish(AttemptStatus.HEALTHY, "")
        if health.stopped and self.cancelled():
            return await self._finish(AttemptStatus.CANCELLED, CANCELLED_MESSAGE)
        if health.stopped:
            return await self._finish(
                AttemptStatus.SUPERSEDED,
                "a newer desired state arrived before this rollout finished",
            )
        raise HealthError(health.message)

    async def _restart(self, objects: tuple[dict[str, Any], ...]) -> None:
        """Roll the workloads' pods as ``kubectl rollout restart`` does, stamped with the time
        the redeploy was asked for: a retried attempt does not roll them a second time."""
        requested = self.d.redeploy_requested_at or dt.datetime.now(dt.UTC)
        at = requested.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
        for ref in apply_stage.restartable_workloads(objects):
            await self.cluster.restart(ref, at=at)

    async def _stop(self, objects: tuple[dict[str, Any], ...]) -> str:
        scaled: list[str] = []
        for ref in apply_stage.scalable_workloads(objects):
            if await self.cluster.get(ref) is None:
                continue
            await self.cluster.scale(ref, replicas=0)
            scaled.append(str(ref))
        if not scaled:
            return "nothing was running: no Deployment or StatefulSet of it exists"
        return "scaled to 0: " + ", ".join(scaled)

    # ------------------------------------------------------------ recording

    async def _finish(
        self, status: AttemptStatus, message: str, *, wait_for_database: bool = True
    ) -> Outcome:
        result = AttemptResult(
            action=str(self.verb),
            status=str(status),
            image_ref=self.image_ref,
            values_override=self.values,
            sha=self.checkout.sha,
            digest=self.digest,
            message=message,
            attempts=0,
            retry_in_s=None,
            restore_desired=self.verb is Verb.ROLLBACK and status is AttemptStatus.HEALTHY,
        )
        if not await self._record(result, wait_for_database=wait_for_database):
            return self._outcome(LOST, _LOST_MESSAGE)
        return self._outcome(str(status), message)

    async def _record(self, result: AttemptResult, *, wait_for_database: bool = True) -> bool:
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

    async def _fail(self, message: str, *, permanent: bool) -> Outcome:
        attempts, retry_in_s = self.options.retry.after_failure(
            failures_before=decide.failures_before(self.d), permanent=permanent
        )
        if retry_in_s is None and not permanent:
            message += f" (gave up after {attempts} attempts; a new desired state retries)"
        if self.started_at is None:
            recorded = await self._fail_unstarted(message, attempts, retry_in_s)
        else:
            recorded = await self._record(self._failed(message, attempts, retry_in_s))
        if not recorded:
            return self._outcome(LOST, _LOST_MESSAGE)
        return self._outcome(AttemptStatus.FAILED, message)

    async def _fail_unstarted(self, message: str, attempts: int, retry_in_s: float | None) -> bool:
        """A failure before anything touched the cluster (bad row, template, policy, no
        checkout): recorded like any attempt, with one history row, current_* left as they
        are.  Nothing to lose yet, so an unreachable database is not waited out."""
        self.started_at = await self.store.start_attempt(
            deployment_id=self.d.id,
            daemon_id=self.options.daemon_id,
            action=str(self.verb),
            image_ref=self.image_ref,
            values_override=self.values,
            generation=self.d.generation,
        )
        if self.started_at is None:
            return False
        result = self._failed(message, attempts, retry_in_s, applied=False)
        return await self._record(result, wait_for_database=False)

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
        )

    def _outcome(self, status: str, message: str) -> Outcome:
        return Outcome(deployment_id=self.d.id, status=str(status), message=message)


def _never() -> bool:
    return False
