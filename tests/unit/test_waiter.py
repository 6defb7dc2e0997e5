"""reconciler.waiter: the pure decision of ``reconciler wait`` and the event payload parser."""

from __future__ import annotations

import dataclasses
import io
import json

import pytest

from reconciler.cli_wait import Progress
from reconciler.output import printable
from reconciler.waiter import BadEvent, Outcome, Seen, decide, describe, parse_event

SYNCING = Seen(
    desired_status="active",
    current_status="syncing",
    generation=3,
    observed_generation=2,
    attempts=0,
    retry_scheduled=False,
    message="",
)


def _seen(**changes: object) -> Seen:
    return dataclasses.replace(SYNCING, **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize("status", ["healthy", "stopped", "deleted"])
def test_done_once_the_target_is_observed_at_an_end_status(status: str) -> None:
    """Healthy, stopped or deleted with observed_generation at the target is done."""
    verdict = decide(_seen(current_status=status, observed_generation=3), target=3, follow=True)
    assert verdict.outcome is Outcome.DONE
    assert verdict.reason == f"{status} at generation 3"


def test_healthy_at_an_older_generation_keeps_waiting() -> None:
    """Healthy before the target is observed is the old rollout's health: keep waiting."""
    verdict = decide(_seen(current_status="healthy"), target=3, follow=True)
    assert (verdict.outcome, verdict.target) == (Outcome.WAITING, 3)


def test_a_rollback_that_bumped_the_generation_is_done() -> None:
    """A healthy rollback observes the generation it restored (one past the target): done."""
    seen = _seen(current_status="healthy", generation=4, observed_generation=4)
    assert decide(seen, target=3, follow=False).outcome is Outcome.DONE


def test_failed_with_no_retry_at_the_target_fails_with_the_message() -> None:
    """Failed, observed, no retry scheduled: the daemon gave up; the reason carries the
    message and the attempts."""
    seen = _seen(current_status="failed", observed_generation=3, attempts=5, message="boom")
    verdict = decide(seen, target=3, follow=True)
    assert verdict.outcome is Outcome.FAILED
    assert verdict.reason == "failed at generation 3, gave up after 5 attempt(s): boom"


def test_failed_with_a_retry_scheduled_keeps_waiting() -> None:
    """A failure the daemon will retry is not the end."""
    seen = _seen(current_status="failed", observed_generation=3, attempts=1, retry_scheduled=True)
    assert decide(seen, target=3, follow=True).outcome is Outcome.WAITING


def test_a_failure_of_an_older_generation_keeps_waiting() -> None:
    """An older generation's give-up (its event arriving late) does not end the wait."""
    seen = _seen(current_status="failed", generation=3, observed_generation=2)
    assert decide(seen, target=3, follow=True).outcome is Outcome.WAITING


def test_superseded_without_generation_follows_the_newer_one() -> None:
    """Without --generation, a newer generation becomes the target."""
    verdict = decide(_seen(generation=5), target=3, follow=True)
    assert (verdict.outcome, verdict.target) == (Outcome.WAITING, 5)
    assert "superseded by 5" in verdict.reason


def test_superseded_with_an_explicit_generation_fails() -> None:
    """With --generation N, a newer generation written before N was done fails the wait."""
    verdict = decide(_seen(generation=5), target=3, follow=False)
    assert verdict.outcome is Outcome.FAILED
    assert "generation 3 was superseded by generation 5" in verdict.reason


@pytest.mark.parametrize("status", ["pending", "syncing", "degraded", "drifted"])
def test_in_between_statuses_keep_waiting(status: str) -> None:
    """Pending, syncing, degraded and drifted at the target keep the wait going."""
    seen = _seen(current_status=status, observed_generation=3)
    assert decide(seen, target=3, follow=True).outcome is Outcome.WAITING


def test_describe_names_status_attempts_and_message() -> None:
    """The progress line shows the status, generations, attempts, retry and message."""
    seen = _seen(attempts=2, retry_scheduled=True, message="CrashLoopBackOff")
    assert describe(seen) == (
        "syncing (desired active, generation 3, observed 2); attempts 2, retry scheduled; "
        "CrashLoopBackOff"
    )


def _payload(**changes: object) -> str:
    event = {
        "project": "web",
        "environment": "prod",
        "desired": "active",
        "to": "failed",
        "generation": 3,
        "observed_generation": 3,
        "attempts": 1,
        "next_attempt_at": None,
        "message": "boom",
        "message_truncated": True,
    }
    return json.dumps({**event, **changes})


def test_parse_event_reads_the_triggers_payload() -> None:
    """The trigger's JSON becomes a Seen; next_attempt_at null means no retry."""
    seen = parse_event(_payload(), project="web", environment="prod")
    assert seen == _seen(
        current_status="failed",
        observed_generation=3,
        attempts=1,
        message="boom",
        message_truncated=True,
    )


def test_parse_event_skips_other_deployments() -> None:
    """An event for another deployment is None, not an error."""
    assert parse_event(_payload(environment="stage"), project="web", environment="prod") is None


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        ("not json", "not JSON"),
        ("[1]", "a JSON list, not an object"),
        (_payload(generation="3"), "field 'generation' is '3', not int"),
        (_payload(generation=True), "field 'generation' is True, not int"),
        (_payload(to=None), "field 'to' is None, not str"),
    ],
)
def test_parse_event_refuses_a_foreign_payload_naming_the_field(payload: str, error: str) -> None:
    """Anyone may NOTIFY the channel: a payload that is not the trigger's is a BadEvent."""
    with pytest.raises(BadEvent, match=error.replace("[", r"\[")):
        parse_event(payload, project="web", environment="prod")


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_on_a_tty_rewrites_one_line() -> None:
    """On a TTY each change rewrites the same line (carriage return, clear), control
    characters escaped; the end closes it with one newline."""
    terminal = _Terminal()
    progress = Progress(stream=terminal)
    progress.show("syncing")
    progress.show("syncing")
    progress.show("failed: bad\x1b[31m")
    progress.end()
    assert (
        terminal.getvalue() == "\r\x1b[Ksyncing\r\x1b[K" + printable("failed: bad\x1b[31m") + "\n"
    )


def test_progress_off_a_tty_prints_one_line_per_change() -> None:
    """Off a TTY each change is a line of its own; repeats are not printed."""
    log = io.StringIO()
    progress = Progress(stream=log)
    for line in ("pending", "pending", "syncing", "healthy"):
        progress.show(line)
    progress.end()
    assert log.getvalue() == "pending\nsyncing\nhealthy\n"


def test_a_status_row_becomes_a_seen() -> None:
    """A deployment_status row (as reconciler wait reads it) maps to the same Seen."""
    row = {
        "desired": "active",
        "current": "syncing",
        "generation": 3,
        "observed_generation": 2,
        "attempts": 0,
        "next_attempt_at": None,
        "gave_up": False,
        "message": "",
    }
    assert Seen.from_status_row(row) == SYNCING
