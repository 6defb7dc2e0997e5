"""``reconciler wait``'s pure part: given what was seen of a deployment, is it done, failed, or
still on its way?  No I/O: the CLI (``reconciler.cli_wait``) feeds it rows and events.

The rules (the README's "reconciler wait" section):

- done: the generation waited for is observed (``observed_generation >= target``) and the
  deployment is ``healthy``, or ``stopped`` / ``deleted`` (a stop or delete reaching its end);
- failed: observed, ``failed`` and no retry scheduled (retries spent, a permanent error, a
  cancelled rollout): the daemon gave up;
- superseded: a newer generation was written before the target was done.  Without an explicit
  ``--generation`` the wait follows it (the pipeline's goal is "the latest desired state is
  live"); with ``--generation N`` it fails, since generation N will never be rolled out as such;
- anything else (pending, syncing, degraded, drifted, failed with a retry scheduled, paused):
  keep waiting.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

DONE_STATUSES = frozenset({"healthy", "stopped", "deleted"})
"""Current statuses that end a wait once the target generation is observed."""


class Outcome(enum.Enum):
    """Where a wait stands."""

    WAITING = "waiting"
    DONE = "done"
    FAILED = "failed"


@dataclass(frozen=True, kw_only=True)
class Seen:
    """What the wait saw of its deployment: a row read, or a ``reconciler_events`` payload."""

    desired_status: str
    current_status: str
    generation: int
    observed_generation: int
    attempts: int
    retry_scheduled: bool
    message: str
    message_truncated: bool = False

    @classmethod
    def from_status_row(cls, row: Mapping[str, Any]) -> Seen:
        """A ``deployment_status`` row (its columns ``desired``, ``current``, ``generation``,
        ``observed_generation``, ``attempts``, ``next_attempt_at``, ``message``)."""
        return cls(
            desired_status=str(row["desired"]),
            current_status=str(row["current"]),
            generation=int(row["generation"]),
            observed_generation=int(row["observed_generation"]),
            attempts=int(row["attempts"]),
            retry_scheduled=row["next_attempt_at"] is not None,
            message=str(row["message"]),
        )


@dataclass(frozen=True, kw_only=True)
class Verdict:
    """The decision: the outcome, the generation now waited for, and why, in words."""

    outcome: Outcome
    target: int
    reason: str


def decide(seen: Seen, *, target: int, follow: bool) -> Verdict:
    """Done, failed or keep waiting for generation ``target`` (``follow``: a newer generation
    replaces the target instead of failing the wait)."""
    observed = seen.observed_generation >= target
    if observed and seen.current_status in DONE_STATUSES:
        return Verdict(
            outcome=Outcome.DONE,
            target=target,
            reason=f"{seen.current_status} at generation {seen.observed_generation}",
        )
    if observed and seen.current_status == "failed" and not seen.retry_scheduled:
        tries = f"after {seen.attempts} attempt(s)" if seen.attempts else "without a retry"
        return Verdict(
            outcome=Outcome.FAILED,
            target=target,
            reason=f"failed at generation {seen.observed_generation}, gave up {tries}: "
            f"{seen.message or '(no message)'}",
        )
    if seen.generation > target and not observed:
        if follow:
            return Verdict(
                outcome=Outcome.WAITING,
                target=seen.generation,
                reason=f"generation {target} superseded by {seen.generation}; waiting for it",
            )
        return Verdict(
            outcome=Outcome.FAILED,
            target=target,
            reason=f"generation {target} was superseded by generation {seen.generation} "
            "before it was done (wait without --generation to follow the newest)",
        )
    return Verdict(outcome=Outcome.WAITING, target=target, reason=describe(seen))


def describe(seen: Seen) -> str:
    """One line of progress: status, generation, attempts, message."""
    parts = [
        f"{seen.current_status} (desired {seen.desired_status}, generation "
        f"{seen.generation}, observed {seen.observed_generation})"
    ]
    if seen.attempts:
        retry = ", retry scheduled" if seen.retry_scheduled else ""
        parts.append(f"attempts {seen.attempts}{retry}")
    if seen.message:
        parts.append(seen.message + (" [cut]" if seen.message_truncated else ""))
    return ": ".join(parts[:1]) + "".join(f"; {p}" for p in parts[1:])


class BadEvent(ValueError):
    """A ``reconciler_events`` payload that is not the trigger's JSON (anyone may NOTIFY)."""


def parse_event(payload: str, *, project: str, environment: str) -> Seen | None:
    """The event for ``project``/``environment`` as a :class:`Seen`; None for another
    deployment's.  :class:`BadEvent` naming the field when the payload is not the trigger's."""
    try:
        event = json.loads(payload)
    except ValueError:
        raise BadEvent("not JSON") from None
    if not isinstance(event, dict):
        raise BadEvent(f"a JSON {type(event).__name__}, not an object")
    if event.get("project") != project or event.get("environment") != environment:
        return None
    return Seen(
        desired_status=_field(event, "desired", str),
        current_status=_field(event, "to", str),
        generation=_field(event, "generation", int),
        observed_generation=_field(event, "observed_generation", int),
        attempts=_field(event, "attempts", int),
        retry_scheduled=event.get("next_attempt_at") is not None,
        message=_field(event, "message", str),
        message_truncated=event.get("message_truncated") is True,
    )


def _field(event: dict[str, Any], name: str, kind: type[Any]) -> Any:
    value = event.get(name)
    # bool is an int in Python: a true 'generation' is as wrong as a string one.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise BadEvent(f"field {name!r} is {value!r}, not {kind.__name__}")
    return value
