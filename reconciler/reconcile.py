"""Reconcile one claimed deployment: render, decide, apply, wait for health, record.

Every attempt ends in exactly one history row, written with the deployment's current_* columns
in one transaction (:meth:`Store.finish_attempt`).  A failure of any stage becomes a failed
attempt whose message says what and where; nothing here lets an exception escape for one bad
deployment, so the daemon keeps serving the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from reconciler import render as render_stage
from reconciler.cluster import apply as apply_stage
from reconciler.cluster.health import HealthStatus, wait_healthy
from reconciler.cluster.kube import Kube
from reconciler.decide import RetryPolicy, failures_before, needs_apply, verb_for
from reconciler.errors import DatabaseError, KubernetesError, ReconcilerError
from reconciler.logs import get_logger
from reconciler.model import AttemptResult, Checkout, Deployment, ObjectRef, Verb
from reconciler.render_pool import RenderPool
from reconciler.store import Store

log = get_logger("reconcile")

# Waiting out an unreachable database to record an attempt: the first delay and the longest.
_RECORD_RETRY_FIRST_S = 0.5
_RECORD_RETRY_MAX_S = 10.0


@dataclass(frozen=True, kw_only=True)
class Options:
    """What a reconcile needs from the settings."""

    field_manager: str
    health_timeout_s: float
    health_poll_s: float
    retry: RetryPolicy
    daemon_id: str
    renderer: RenderPool


@dataclass(frozen=True, kw_only=True)
class Outcome:
    """How a reconcile ended, for the daemon's bookkeeping and ``run --once``."""

    deployment_id: int
    status: str
    """healthy, stopped, failed, superseded, interrupted, converged (nothing applied) or lost
    (the claim was taken over; nothing recorded)."""
    message: str


class _AttemptFailed(Exception):
    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.message = message
        self.permanent = permanent


async def reconcile(
    deployment: Deployment,
    *,
    store: Store,
    kube: Kube,
    checkout: Checkout,
    options: Options,
    superseded: Callable[[], bool],
) -> Outcome:
    """Bring one claimed deployment to its desired state and record the attempt."""
    began = time.monotonic()
    verb = verb_for(deployment)
    bound = log.bind(
        deployment_id=deployment.id,
        project=deployment.project,
        environment=deployment.environment,
        action=str(verb),
        generation=deployment.generation,
    )
    attempt = _Attempt(
        deployment=deployment,
        verb=verb,
        store=store,
        kube=kube,
        checkout=checkout,
        options=options,
        superseded=superseded,
    )
    try:
        outcome = await attempt.run()
    except DatabaseError as exc:
        # The outcome could not be recorded; the lease expires and the next claim closes the
        # attempt as interrupted and tries again.
        bound.error("reconcile_unrecorded", error=str(exc))
        return Outcome(deployment_id=deployment.id, status="unrecorded", message=str(exc))
    bound.info(
        "reconcile",
        status=outcome.status,
        image_ref=attempt.image_ref,
        sha=checkout.sha,
        duration_ms=int((time.monotonic() - began) * 1000),
        message=outcome.message,
    )
    return outcome


class _Attempt:
    """The state of one attempt, so each step reads as a line of :meth:`run`."""

    def __init__(
        self,
        *,
        deployment: Deployment,
        verb: Verb,
        store: Store,
        kube: Kube,
        checkout: Checkout,
        options: Options,
        superseded: Callable[[], bool],
    ) -> None:
        self.d = deployment
        self.verb = verb
        self.store = store
        self.kube = kube
        self.checkout = checkout
        self.options = options
        self.superseded = superseded
        self.image_ref = deployment.image_ref
        self.values: Any = deployment.values_override
        self.digest: str | None = None
        self.started_at: dt.datetime | None = None

    async def run(self) -> Outcome:
        try:
            self._target_of_stop()
            if self.verb is Verb.ROLLBACK:
                await self._target_of_rollback()
            rendered = await self._render()
            self.digest = rendered.digest
            if self.verb is Verb.DEPLOY and not needs_apply(
                self.d, verb=self.verb, digest=rendered.digest
            ):
                await self.store.mark_converged(
                    deployment_id=self.d.id,
                    daemon_id=self.options.daemon_id,
                    generation=self.d.generation,
                    sha=self.checkout.sha,
                )
                return self._outcome("converged", "the rendered manifests are applied already")
            self.started_at = await self.store.start_attempt(
                deployment_id=self.d.id,
                daemon_id=self.options.daemon_id,
                action=str(self.verb),
                image_ref=self.image_ref,
                generation=self.d.generation,
            )
            if self.started_at is None:
                return self._outcome("lost", "the claim was taken over by another daemon")
            if self.verb is Verb.STOP:
                message = await self._stop(rendered.objects)
                return await self._finish("stopped", message)
            return await self._deploy(rendered.objects)
        except _AttemptFailed as failure:
            return await self._fail(failure.message, permanent=failure.permanent)
        except asyncio.CancelledError:
            # Shutdown ran out of grace: close the attempt as interrupted, then stop.  One try
            # only: if the database is away, the next claim closes the attempt just the same.
            if self.started_at is not None:
                with contextlib.suppress(DatabaseError):
                    await asyncio.shield(
                        self._finish(
                            "interrupted",
                            "the daemon shut down before the rollout finished",
                            wait_for_database=False,
                        )
                    )
            raise

    # ------------------------------------------------------------ steps

    def _target_of_stop(self) -> None:
        if self.verb is Verb.STOP and self.d.current_image_ref:
            # Scale what is running, not what a pipeline wrote since.
            self.image_ref = self.d.current_image_ref
            self.values = self.d.current_values if self.d.current_values is not None else {}

    async def _target_of_rollback(self) -> None:
        target = await self.store.last_healthy(
            deployment_id=self.d.id, other_than_image=self.d.image_ref
        )
        if target is None:
            raise _AttemptFailed(
                f"nothing to roll back to: no healthy deploy of an image other than "
                f"{self.d.image_ref} in this deployment's history",
                permanent=True,
            )
        self.image_ref = target.image_ref
        self.values = target.values_override

    async def _render(self) -> render_stage.Rendered:
        if self.checkout.path is None:
            raise _AttemptFailed(
                f"ops repo {self.checkout.name} has no checkout yet: "
                f"{self.checkout.error or 'it has not been fetched'}",
                permanent=False,
            )
        try:
            render_stage.validate_name(field="project", value=self.d.project)
            render_stage.validate_name(field="environment", value=self.d.environment)
            sources = render_stage.load_project(
                checkout=self.checkout.path,
                path=self.checkout.subdir,
                project=self.d.project,
                environment=self.d.environment,
            )
            return await self.options.renderer.render(
                sources,
                project=self.d.project,
                environment=self.d.environment,
                namespace=self.d.namespace,
                image_ref=self.image_ref,
                values_override=self.values,
            )
        except ReconcilerError as exc:
            raise _AttemptFailed(f"render failed: {exc}", permanent=exc.permanent) from exc

    async def _deploy(self, objects: tuple[dict[str, Any], ...]) -> Outcome:
        try:
            await apply_stage.apply_all(
                kube=self.kube,
                objects=objects,
                namespace=self.d.namespace,
                field_manager=self.options.field_manager,
            )
            refs = [ObjectRef.from_object(o) for o in objects]

            async def should_stop() -> bool:
                return self.superseded()

            health = await wait_healthy(
                refs=refs,
                read_object=self.kube.get,
                list_pods=self.kube.list_pods,
                timeout_s=self.options.health_timeout_s,
                poll_interval_s=self.options.health_poll_s,
                should_stop=should_stop,
            )
        except KubernetesError as exc:
            raise _AttemptFailed(str(exc), permanent=exc.permanent) from exc
        if health.status is HealthStatus.HEALTHY:
            return await self._finish("healthy", "")
        if health.stopped:
            return await self._finish(
                "superseded", "a newer desired state arrived before this rollout finished"
            )
        raise _AttemptFailed(health.message, permanent=False)

    async def _stop(self, objects: tuple[dict[str, Any], ...]) -> str:
        scaled: list[str] = []
        try:
            for ref in apply_stage.scalable_workloads(objects):
                if await self.kube.get(ref) is None:
                    continue
                await self.kube.scale(ref, replicas=0)
                scaled.append(str(ref))
        except KubernetesError as exc:
            raise _AttemptFailed(str(exc), permanent=exc.permanent) from exc
        if not scaled:
            return "nothing was running: no Deployment or StatefulSet of it exists"
        return "scaled to 0: " + ", ".join(scaled)

    # ------------------------------------------------------------ recording

    async def _finish(
        self, status: str, message: str, *, wait_for_database: bool = True
    ) -> Outcome:
        result = AttemptResult(
            action=str(self.verb),
            status=status,
            image_ref=self.image_ref,
            values_override=self.values,
            sha=self.checkout.sha,
            digest=self.digest,
            message=message,
            attempts=0,
            next_attempt_at=None,
            restore_desired=self.verb is Verb.ROLLBACK and status == "healthy",
        )
        if not await self._record(result, wait_for_database=wait_for_database):
            return self._outcome("lost", "the claim was taken over by another daemon")
        return self._outcome(status, message)

    async def _record(self, result: AttemptResult, *, wait_for_database: bool = True) -> bool:
        """Record the started attempt (history row and current_* columns); False when it is no
        longer ours.

        The cluster has been touched, so an unreachable database is waited out, with backoff,
        instead of leaving the attempt for the next claim to close as interrupted: its outcome
        would be lost.  The write only updates a row still claimed by this daemon with this
        attempt open, so retrying after a lost acknowledgement cannot record it twice.
        """
        assert self.started_at is not None
        delay = _RECORD_RETRY_FIRST_S
        retried = False
        while True:
            try:
                recorded = await self.store.finish_attempt(
                    deployment_id=self.d.id,
                    daemon_id=self.options.daemon_id,
                    started_at=self.started_at,
                    generation=self.d.generation,
                    result=result,
                )
            except DatabaseError as exc:
                if exc.permanent or not wait_for_database:
                    raise
                log.warning(
                    "record_retry",
                    deployment_id=self.d.id,
                    project=self.d.project,
                    environment=self.d.environment,
                    status=result.status,
                    error=str(exc),
                    retry_in_s=round(delay, 2),
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, _RECORD_RETRY_MAX_S) * random.uniform(0.8, 1.0)
                retried = True
                continue
            if recorded or not retried:
                return recorded
            # An earlier try may have committed and only its answer been lost.
            return (
                await self.store.recorded_status(
                    deployment_id=self.d.id,
                    started_at=self.started_at,
                    daemon_id=self.options.daemon_id,
                )
                == result.status
            )

    async def _fail(self, message: str, *, permanent: bool) -> Outcome:
        attempts, next_at = self.options.retry.after_failure(
            failures_before=failures_before(self.d),
            permanent=permanent,
            now=dt.datetime.now(dt.UTC),
        )
        if next_at is None and not permanent:
            message += f" (gave up after {attempts} attempts; a new desired state retries)"
        if self.started_at is None:
            recorded = await self.store.fail_without_attempt(
                deployment_id=self.d.id,
                daemon_id=self.options.daemon_id,
                generation=self.d.generation,
                action=str(self.verb),
                image_ref=self.image_ref,
                values_override=self.values,
                sha=self.checkout.sha,
                message=message,
                attempts=attempts,
                next_attempt_at=next_at,
            )
        else:
            recorded = await self._record(
                AttemptResult(
                    action=str(self.verb),
                    status="failed",
                    image_ref=self.image_ref,
                    values_override=self.values,
                    sha=self.checkout.sha,
                    digest=self.digest,
                    message=message,
                    attempts=attempts,
                    next_attempt_at=next_at,
                )
            )
        if not recorded:
            return self._outcome("lost", "the claim was taken over by another daemon")
        return self._outcome("failed", message)

    def _outcome(self, status: str, message: str) -> Outcome:
        return Outcome(deployment_id=self.d.id, status=status, message=message)
