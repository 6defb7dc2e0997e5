"""One attempt at one claimed deployment: plan, render, apply, wait, prune, one recorded result.

Every attempt ends in exactly one history row, written with the deployment's current_* columns
in one transaction (:mod:`reconciler.recording`).  A failure of any stage becomes a failed
attempt whose message says what and where; nothing here lets an exception escape for one bad
deployment, so the daemon keeps serving the others.

Verbs: deploy (and redeploy) applies, waits, then prunes what is no longer rendered; rollback
does the same with a healthy history row's image, values and ops repo commit; heal looks for
drift with a dry-run and re-applies (or records ``drifted`` when healing is off); stop scales
the workloads to 0; delete removes every object the deployment owns.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from reconciler import decide
from reconciler.admission import admit_by_policy, ownership_error
from reconciler.cluster import apply as apply_stage
from reconciler.cluster.health import HealthStatus
from reconciler.cluster.namespaces import KnownNamespaces, seen_by
from reconciler.errors import (
    DatabaseError,
    HealthError,
    InputError,
    OpsRepoError,
    OwnershipError,
    ReconcilerError,
)
from reconciler.healing import find_drift
from reconciler.logs import get_logger
from reconciler.model import (
    AttemptStatus,
    Checkout,
    Deployment,
    HistoryEntry,
    ObjectRef,
    RepoPolicy,
    Verb,
)
from reconciler.policy import Subject
from reconciler.ports import AttemptStore, Cluster, LiveView, RenderedManifests, RenderRequest
from reconciler.pruning import Removal, delete_all, prune, refuse_pruning_everything
from reconciler.recording import (
    CONVERGED,
    LOST,
    LOST_MESSAGE,
    UNRECORDED,
    Options,
    Outcome,
    Predicate,
    Recorder,
    never,
)
from reconciler.render.validation import check_rendered
from reconciler.waiting import wait_for_health

__all__ = [
    "CANCELLED_MESSAGE",
    "CONVERGED",
    "LOST",
    "UNRECORDED",
    "Hooks",
    "Options",
    "Outcome",
    "run_attempt",
]

log = get_logger("reconcile")

CANCELLED_MESSAGE = (
    "cancelled before the rollout finished; the cluster is left as it is "
    "(a new desired state or `reconciler retry` deploys again)"
)
_SUPERSEDED_MESSAGE = "a newer desired state arrived before this rollout finished"
_ROLLBACK_SOURCES = frozenset({"deploy", "rollback", "redeploy", "heal"})
_WORTH_A_WARNING = frozenset({AttemptStatus.FAILED, AttemptStatus.DRIFTED})


def _nothing() -> None:
    return None


def _not_counted(_action: str, _outcome: str, _seconds: float) -> None:
    return None


@dataclass(frozen=True, kw_only=True)
class Hooks:
    """What the daemon lends an attempt beyond the store and the cluster."""

    live: LiveView | None = None
    """Health from the watch cache; None: poll the API."""
    applied: Callable[[], None] = _nothing
    """Called once the apply is done: waiting for health holds no concurrency slot."""
    checkout_at: Callable[[str], Awaitable[Checkout]] | None = None
    """The ops repo at a given commit (a rollback renders the commit that was healthy)."""
    finished: Callable[[str, str, float], None] = _not_counted
    """Called as the attempt ends with its action, outcome and seconds taken (the metrics)."""
    namespaces: KnownNamespaces | None = None
    """The namespaces the daemon's applies saw; None: apply the Namespace every attempt."""


async def run_attempt(
    deployment: Deployment,
    *,
    store: AttemptStore,
    cluster: Cluster,
    checkout: Checkout,
    options: Options,
    superseded: Predicate,
    cancelled: Predicate | None = None,
    hooks: Hooks | None = None,
) -> Outcome:
    """Bring one claimed deployment to its desired state and record the attempt.  Its wait
    for health ends when ``superseded`` (recorded 'superseded') or ``cancelled`` (recorded
    'cancelled') says so."""
    began = time.monotonic()
    target = decide.plan(deployment)
    attempt = Attempt(
        d=deployment,
        store=store,
        checkout=checkout,
        options=options,
        verb=target.verb,
        image_ref=target.image_ref,
        values=target.values,
        cluster=cluster,
        superseded=superseded,
        cancelled=cancelled or never,
        hooks=hooks or Hooks(),
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
        attempt.hooks.finished(str(attempt.verb), UNRECORDED, time.monotonic() - began)
        return Outcome(deployment_id=deployment.id, status=UNRECORDED, message=str(exc))
    took_s = time.monotonic() - began
    # Failures and drift left in place are what an operator must see at the default level.
    emit = bound.warning if outcome.status in _WORTH_A_WARNING else bound.info
    emit(
        "reconcile",
        action=str(attempt.verb),
        status=outcome.status,
        image_ref=attempt.image_ref,
        sha=attempt.checkout.sha,
        duration_ms=int(took_s * 1000),
        message=outcome.message,
    )
    attempt.hooks.finished(str(attempt.verb), outcome.status, took_s)
    return outcome


@dataclass(kw_only=True)
class Attempt(Recorder):
    """The state of one attempt, so that each step reads as a line of :meth:`run`."""

    cluster: Cluster
    superseded: Predicate
    cancelled: Predicate
    hooks: Hooks
    drift: list[str] = field(default_factory=list)
    inventory: list[ObjectRef] = field(default_factory=list)
    """What the deployment owned before this attempt's render was admitted."""
    claims: list[ObjectRef] = field(default_factory=list)
    """The inventory rows the admitted objects need, claimed as the attempt starts."""
    user: str | None = None
    """Who the cluster requests are made as (None: the daemon itself)."""

    async def run(self) -> Outcome:
        try:
            return await self._run()
        except DatabaseError:
            raise
        except Exception as exc:
            # A bug (ours, or an input nobody foresaw): recorded as this deployment's failed
            # attempt, retried with backoff, with the exception in words, never a silent crash.
            log.exception("attempt_crashed", deployment_id=self.d.id)
            return await self.fail(
                f"internal error: {type(exc).__name__}: {exc}"[:2000], permanent=False
            )
        except asyncio.CancelledError:
            await self.interrupted()
            raise

    async def _run(self) -> Outcome:
        if self.verb is Verb.DELETE:
            return await self._delete()
        prepared = await self._prepare()
        if isinstance(prepared, Outcome):
            return prepared
        self.digest = prepared.digest
        self.verb = decide.verb_after_render(self.d, verb=self.verb, digest=prepared.digest)
        if self.verb is not Verb.HEAL and not decide.needs_apply(
            self.d, verb=self.verb, digest=prepared.digest
        ):
            return await self._converged("the rendered manifests are applied already")
        try:
            objects = await self._checked(prepared)
            if self.verb is Verb.HEAL:
                self.drift = await find_drift(
                    objects, cluster=self.cluster, field_manager=self.options.field_manager
                )
                if not self.drift:
                    return await self._converged("nothing had drifted")
        except DatabaseError:
            raise
        except ReconcilerError as exc:
            return await self.fail(str(exc), permanent=exc.permanent)
        try:
            started = await self._start_claiming()
        except OwnershipError as exc:
            return await self.fail(str(exc), permanent=exc.permanent)
        if not started:
            return self.outcome(LOST, LOST_MESSAGE)
        try:
            return await self._act(objects)
        except DatabaseError:
            raise
        except ReconcilerError as exc:
            return await self.fail(str(exc), permanent=exc.permanent)

    async def _act(self, objects: tuple[dict[str, Any], ...]) -> Outcome:
        if self.verb is Verb.STOP:
            message = await self._stop(objects)
            return await self.finish(AttemptStatus.STOPPED, message)
        if self.verb is Verb.HEAL and not self._heals():
            detail = "; ".join(self.drift)
            message = f"drifted (self-heal is off, nothing re-applied): {detail}"
            return await self.finish(AttemptStatus.DRIFTED, message, applied=False)
        return await self._deploy(objects)

    def _heals(self) -> bool:
        return self.d.self_heal if self.d.self_heal is not None else self.options.self_heal

    async def _converged(self, message: str) -> Outcome:
        await self.store.mark_converged(
            deployment_id=self.d.id,
            daemon_id=self.options.daemon_id,
            generation=self.d.generation,
            sha=self.checkout.sha,
            heal_seen=self.d.heal_requested_at,
        )
        return self.outcome(CONVERGED, message)

    async def _prepare(self) -> RenderedManifests | Outcome:
        """The rendered manifests, or the recorded failure that kept them from being made
        (nothing has touched the cluster yet)."""
        try:
            if self.verb is Verb.ROLLBACK:
                await self._target_of_rollback()
            request = self._render_request()
        except ReconcilerError as exc:
            return await self.fail(str(exc), permanent=exc.permanent)
        try:
            return await self.options.renderer.render(request)
        except ReconcilerError as exc:
            return await self.fail(f"render failed: {exc}", permanent=exc.permanent)

    async def _checked(self, rendered: RenderedManifests) -> tuple[dict[str, Any], ...]:
        """Schema, policy and the prune guard, before anything touches the cluster: the
        objects to apply, labelled with their owner."""
        await check_rendered(rendered, kubernetes_version=self.options.kubernetes_version)
        rules, self.inventory = await self.store.policy_and_inventory(
            ops_repo_id=self.d.ops_repo_id, deployment_id=self.d.id
        )
        if rules.impersonated_user is not None:
            self.cluster = self.cluster.impersonating(rules.impersonated_user)
        self.user = rules.impersonated_user
        if self.verb is not Verb.STOP:
            refuse_pruning_everything(
                self.d,
                inventory=self.inventory,
                rendered=[ObjectRef.from_object(o) for o in rendered.objects],
            )
        return await self._admit(rendered.objects, rules=rules)

    # ------------------------------------------------------------ steps

    async def _target_of_rollback(self) -> None:
        """The history row to return to: the one ``rollback_to`` names, else the newest
        healthy deploy of another image; and its ops repo commit, to render at."""
        target = await self._rollback_row()
        self.image_ref = target.image_ref
        self.values = target.values_override
        self.rolled_back_to = target.id
        if target.sha and target.sha != self.checkout.sha and self.hooks.checkout_at:
            tip = self.checkout.sha
            self.checkout = await self.hooks.checkout_at(target.sha)
            # Counted as rendered at the tip: it stays at the old commit until a new one.
            self.rendered_sha = tip

    async def _rollback_row(self) -> HistoryEntry:
        name = f"{self.d.project}/{self.d.environment}"
        if self.d.rollback_to is not None:
            row = await self.store.history_entry(self.d.rollback_to)
            if (
                row is None
                or row.deployment_id != self.d.id
                or row.status != AttemptStatus.HEALTHY
                or row.action not in _ROLLBACK_SOURCES
            ):
                raise InputError(
                    f"rollback_to = {self.d.rollback_to} is not a healthy deploy of {name} "
                    f"(`reconciler history {self.d.project} {self.d.environment}` lists them)"
                )
            return row
        target = await self.store.last_healthy(
            deployment_id=self.d.id, other_than_image=self.d.image_ref
        )
        if target is None:
            raise InputError(
                f"nothing to roll back to: no healthy deploy of an image other than "
                f"{self.d.image_ref} in the history of {name}"
            )
        return target

    async def _admit(
        self, objects: tuple[dict[str, Any], ...], *, rules: RepoPolicy
    ) -> tuple[dict[str, Any], ...]:
        """Policy, before anything touches the cluster (ownership: :meth:`_start_claiming`)."""
        admitted = await admit_by_policy(
            objects, subject=self._subject(), rules=rules, cluster=self.cluster
        )
        self.claims = admitted.refs
        return admitted.objects

    def _subject(self) -> Subject:
        return Subject(
            project=self.d.project,
            environment=self.d.environment,
            namespace=self.d.namespace,
            ops_repo=self.checkout.name,
        )

    async def _start_claiming(self) -> bool:
        """Start and claim the admitted objects in one transaction; False: the claim was lost;
        OwnershipError (nothing written): another deployment owns some."""
        started = await self.store.start_claiming(
            deployment_id=self.d.id,
            daemon_id=self.options.daemon_id,
            action=str(self.verb),
            image_ref=self.image_ref,
            values_override=self.values,
            generation=self.d.generation,
            refs=self.claims,
        )
        if started.taken:
            raise ownership_error(started.taken, subject=self._subject())
        self.started_at = started.started_at
        return self.started_at is not None

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
            kubernetes_version=self.options.kubernetes_version,
            immutable=self.checkout.immutable,
        )

    async def _deploy(self, objects: tuple[dict[str, Any], ...]) -> Outcome:
        applied = await apply_stage.apply_all(
            kube=self.cluster,
            objects=objects,
            namespace=self.d.namespace,
            field_manager=self.options.field_manager,
            known=seen_by(self.hooks.namespaces, self.user),
            live=self.hooks.live if self.options.skips_for(self.d) else None,
        )
        self.applied_objects = refs = tuple(ObjectRef.from_object(o) for o in objects)
        if self.verb is Verb.REDEPLOY and self.d.redeploy_restart:
            applied = await self._restart(objects, applied)
        self.hooks.applied()

        async def should_stop() -> bool:
            return self.superseded() or self.cancelled()

        health = await wait_for_health(
            objects=objects,
            applied=applied,
            cluster=self.cluster,
            live=self.hooks.live,
            timeout_s=self.options.health_timeout_s,
            poll_interval_s=self.options.health_poll_s,
            should_stop=should_stop,
        )
        if health.status is HealthStatus.HEALTHY:
            try:
                removal = await prune(
                    self.d,
                    rendered=refs,
                    inventory=self.inventory,
                    cluster=self.cluster,
                    store=self.store,
                )
            except DatabaseError as exc:
                # The rollout is healthy and must be recorded (that waits the database out);
                # what to prune is still in the inventory for the next rollout.
                log.warning("prune_skipped", deployment_id=self.d.id, error=str(exc))
                removal = Removal(
                    note="prune skipped (database unreachable); the next rollout prunes"
                )
            return await self.finish(AttemptStatus.HEALTHY, self._healthy_message(removal))
        if health.stopped and self.cancelled():
            return await self.finish(AttemptStatus.CANCELLED, CANCELLED_MESSAGE)
        if health.stopped:
            return await self.finish(AttemptStatus.SUPERSEDED, _SUPERSEDED_MESSAGE)
        raise HealthError(health.message)

    def _healthy_message(self, removal: Removal) -> str:
        parts = []
        if self.drift:
            parts.append("healed: " + "; ".join(self.drift))
        if self.rolled_back_to is not None:
            parts.append(f"rolled back to history row {self.rolled_back_to}")
        pruned = removal.describe("pruned")
        if pruned:
            parts.append(pruned)
        return "; ".join(parts)

    async def _restart(
        self, objects: tuple[dict[str, Any], ...], applied: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """Roll the workloads' pods as ``kubectl rollout restart`` does, stamped with the time
        the redeploy was asked for: a retried attempt does not roll them a second time.
        Returns ``applied`` with the restarted workloads as they are now (a newer generation
        the health wait must see)."""
        requested = self.d.redeploy_requested_at or dt.datetime.now(dt.UTC)
        at = requested.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
        restarted = set(apply_stage.restartable_workloads(objects))
        now = list(applied)
        for index, obj in enumerate(objects):
            ref = ObjectRef.from_object(obj)
            if ref in restarted:
                await self.cluster.restart(ref, at=at, field_manager=self.options.field_manager)
                now[index] = await self.cluster.get(ref) or applied[index]
        return now

    async def _stop(self, objects: tuple[dict[str, Any], ...]) -> str:
        scaled: list[str] = []
        for ref in apply_stage.scalable_workloads(objects):
            if await self.cluster.get(ref) is None:
                continue
            await self.cluster.scale(ref, replicas=0, field_manager=self.options.field_manager)
            scaled.append(str(ref))
        if not scaled:
            return "nothing was running: no Deployment or StatefulSet of it exists"
        return "scaled to 0: " + ", ".join(scaled)

    async def _delete(self) -> Outcome:
        """Remove every object the deployment owns; no render needed, so a broken template
        or a vanished ops repo cannot keep a deployment from being deleted."""
        try:
            rules = await self.store.policy_for(self.d.ops_repo_id)
            if rules.impersonated_user is not None:
                self.cluster = self.cluster.impersonating(rules.impersonated_user)
            if not await self.start():
                return self.outcome(LOST, LOST_MESSAGE)
            removal = await delete_all(
                self.d,
                cluster=self.cluster,
                store=self.store,
                timeout_s=self.options.health_timeout_s,
                should_stop=self.superseded,
                live=self.hooks.live,
            )
        except DatabaseError:
            raise
        except ReconcilerError as exc:
            return await self.fail(str(exc), permanent=exc.permanent)
        if self.superseded():
            return await self.finish(AttemptStatus.SUPERSEDED, _SUPERSEDED_MESSAGE)
        message = removal.describe("deleted") or "nothing to delete: it owned no objects"
        return await self.finish(AttemptStatus.DELETED, message)
