"""The daemon's side of ``deployments``: the lease and attempt state machine.

The daemon never keeps a transaction open while it talks to Kubernetes: it claims work in a short
statement (``FOR UPDATE SKIP LOCKED`` plus a lease), and records the outcome of an attempt, with
its history row, in another.  Every transition after the claim is guarded by the claim, so a
daemon whose lease was taken over writes nothing.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from reconciler.access import AuditClaim
from reconciler.db import rows
from reconciler.db.audit import claim_change
from reconciler.db.inventory import Inventory, Taken, object_keys
from reconciler.db.queries import query
from reconciler.decide import row_transition
from reconciler.model import AttemptResult, Deployment, ObjectRef, StartedAttempt

_INTERRUPTED = "the daemon running this attempt stopped before it finished"


class Attempts(Inventory):
    async def claim(
        self,
        *,
        daemon_id: str,
        limit: int,
        lease_s: float,
        in_flight: Sequence[int] = (),
    ) -> list[Deployment]:
        """Claim up to ``limit`` deployments that need work, for ``lease_s`` seconds.

        Needing work: a new generation; a failed one whose retry is due; one left 'syncing' by a
        daemon whose lease expired; or an active (or rollback) healthy or failed one not rendered
        at its ops repo's last synced commit, whoever synced it: a commit may change its output,
        or fix what made it fail.  Rows leased by another daemon are skipped,
        and so are rows another transaction holds (SKIP LOCKED), so daemons never share work.

        A claimed row still carrying an attempt (its daemon died mid-rollout) gets that attempt
        closed as 'interrupted' in the same statement, so it is closed exactly once.  A daemon
        restarted under the same ``daemon_id`` takes its own rows back at once; ``in_flight``
        names the rows this daemon is working on now, which it must not take again.
        """
        params = {
            "daemon_id": daemon_id,
            "limit": limit,
            "lease_s": lease_s,
            "in_flight": list(in_flight),
            "message": _INTERRUPTED,
        }
        # One statement (the claim, the closes and the rows as they are after), so no BEGIN
        # and COMMIT: a pass that finds nothing costs the server one statement.
        async with self._raw_once() as conn:
            found = await conn.execute(query("claim_closing_interrupted"), params)
            return [rows.deployment(r) for r in found]

    async def renew_leases(
        self, *, daemon_id: str, ids: Sequence[int], lease_s: float
    ) -> dict[int, int]:
        """Extend this daemon's leases; returns id -> current generation of the rows still ours,
        so a long rollout learns when it has been superseded even if a NOTIFY was missed."""
        if not ids:
            return {}
        params = {"ids": list(ids), "daemon_id": daemon_id, "lease_s": lease_s}
        async with self._raw_once() as conn:
            renewed = await conn.execute(query("renew_leases"), params)
            return {r.id: r.generation for r in renewed}

    async def mark_converged(
        self,
        *,
        deployment_id: int,
        daemon_id: str,
        generation: int,
        sha: str | None,
        heal_seen: dt.datetime | None = None,
    ) -> None:
        """Nothing to apply (the rendered output is what is already applied and healthy): the
        generation is observed and the commit recorded, with no history row (no attempt ran).
        A heal request up to ``heal_seen`` is done with (nothing had drifted)."""
        params = {
            "id": deployment_id,
            "daemon_id": daemon_id,
            "generation": generation,
            "sha": sha,
            "heal_seen": heal_seen,
        }
        async with self._tx() as conn:
            await conn.execute(query("mark_converged"), params)

    async def start_attempt(
        self,
        *,
        deployment_id: int,
        daemon_id: str,
        action: str,
        image_ref: str,
        values_override: Any,
        generation: int,
    ) -> dt.datetime | None:
        """Mark the deployment 'syncing' and remember the attempt (its image and values), so
        that a crash leaves a trace that the next claim closes as interrupted.  Returns the
        attempt's start time, or None when the claim was lost."""
        started = await self.start_claiming(
            deployment_id=deployment_id,
            daemon_id=daemon_id,
            action=action,
            image_ref=image_ref,
            values_override=values_override,
            generation=generation,
            refs=(),
        )
        return started.started_at

    async def start_claiming(
        self,
        *,
        deployment_id: int,
        daemon_id: str,
        action: str,
        image_ref: str,
        values_override: Any,
        generation: int,
        refs: Sequence[ObjectRef],
    ) -> StartedAttempt:
        """:meth:`start_attempt` and :meth:`~reconciler.db.inventory.Inventory.claim_objects`
        in one transaction, all or nothing: no attempt starts when the claim was lost or when
        another deployment owns some of ``refs`` (returned in ``taken``)."""
        params = {
            "id": deployment_id,
            "daemon_id": daemon_id,
            "action": action,
            "image_ref": image_ref,
            "values_override": json.dumps(values_override),
            "generation": generation,
        }
        keys = object_keys(refs)
        params |= {**keys, "versions": [r.api_version for r in refs]}
        statement = query("start_attempt_claiming")
        try:
            if not refs:
                async with self._raw_once() as once:
                    row = (await once.execute(statement, params)).one_or_none()
            else:
                async with self._raw_tx() as conn:
                    row = (await conn.execute(statement, params)).one_or_none()
                    if row is not None and row.owned < len(refs):
                        # Some are another deployment's: which (a statement of its own, READ
                        # COMMITTED, sees an owner that committed while the insert waited).
                        await self._raise_taken(conn, deployment_id=deployment_id, keys=keys)
        except Taken as taken:
            return StartedAttempt(started_at=None, taken=tuple(taken.owners))
        if row is None:
            return StartedAttempt(started_at=None)  # the claim was lost: nothing is claimed
        return StartedAttempt(started_at=row.attempt_started_at)

    async def finish_attempt(
        self,
        *,
        deployment_id: int,
        daemon_id: str,
        started_at: dt.datetime,
        generation: int,
        result: AttemptResult,
    ) -> bool:
        """Record an attempt: the history row and the deployment's current_* columns in one
        transaction, and release the claim.  Returns False (and writes nothing) if the attempt
        is no longer ours: another daemon took the lease over and closed it as interrupted."""
        applied = object_keys(result.applied_objects)
        params: dict[str, Any] = {
            **asdict(row_transition(result, generation=generation)),
            **applied,
            "id": deployment_id,
            "daemon_id": daemon_id,
            "started_at": started_at,
            "generation": generation,
            "image_ref": result.image_ref,
            "values_override": json.dumps(result.values_override),
            "sha": result.sha,
            "message": result.message,
            "attempts": result.attempts,
            "retry_in_s": result.retry_in_s,
            "rendered_sha": result.rendered_sha,
            "action": result.action,
            "status": result.status,
            "digest": result.digest,
            "rolled_back_to": result.rolled_back_to,
        }
        statement = query("finish_attempt_recording")
        if params["restores_desired"]:
            async with self._raw_tx() as conn:
                # A healthy rollback writes image_ref back: the audit records the daemon did.
                await claim_change(conn, AuditClaim(via="daemon", actor=daemon_id))
                updated = (await conn.execute(statement, params)).one_or_none()
        else:
            # One statement: the row, its history row and the applied objects commit together
            # (or not at all), and the answer comes after the commit.
            async with self._raw_once() as once:
                updated = (await once.execute(statement, params)).one_or_none()
        return updated is not None

    async def recorded_status(
        self, *, deployment_id: int, started_at: dt.datetime, daemon_id: str
    ) -> str | None:
        """The status this daemon recorded for the attempt that started at ``started_at``, or
        None.  After a write whose acknowledgement was lost, this tells whether it committed."""
        params = {"deployment_id": deployment_id, "started_at": started_at, "daemon": daemon_id}
        async with self._tx() as conn:
            status: str | None = (
                await conn.execute(query("recorded_status"), params)
            ).scalar_one_or_none()
            return status
