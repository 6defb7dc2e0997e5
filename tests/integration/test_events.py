"""Events on ``reconciler_events``, the status view's pipeline columns, and ``reconciler
wait`` as a process against an in-process daemon."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import asyncpg

from reconciler.db import asyncpg_dsn
from tests.support.database import login_role
from tests.support.events import listening
from tests.support.pipeline import Pipeline
from tests.support.processes import run_cli
from tests.support.waiting import eventually

APP = {"project": "app", "environment": "prod"}
_SET = "UPDATE deployments SET {} WHERE project = 'app' AND environment = 'prod'"


async def _wait_cli(pipeline: Pipeline, *args: str) -> subprocess.CompletedProcess[str]:
    """``reconciler wait ARGS`` as a process, off the loop (the daemon runs in this one)."""
    return await asyncio.to_thread(run_cli, "wait", *args, database_url=pipeline.store.url)


async def _start_wait(url: str, *args: str) -> asyncio.subprocess.Process:
    """``reconciler wait ARGS`` on ``url`` as a process whose stdout the test reads as it
    goes."""
    env = {**os.environ, "DATABASE_URL": url}
    return await asyncio.create_subprocess_exec(
        sys.executable,
        *("-m", "reconciler", "wait", *args),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def test_a_deploy_publishes_its_transitions_as_json(pipeline: Pipeline) -> None:
    """A deploy publishes pending -> syncing and syncing -> healthy, with the generations,
    image and gave_up false."""
    async with listening(pipeline.store.url) as log:
        await pipeline.start_daemon()
        written = await pipeline.deploy("app", image_ref="reg/app:1")
        healthy = await log.wait_for(lambda e: e["to"] == "healthy")
    assert log.transitions("app") == [("pending", "syncing"), ("syncing", "healthy")]
    assert healthy["environment"] == "prod"
    assert healthy["generation"] == healthy["observed_generation"] == written.generation
    assert (healthy["image_ref"], healthy["current_image_ref"]) == ("reg/app:1", "reg/app:1")
    assert (healthy["gave_up"], healthy["message_truncated"]) == (False, False)


async def test_a_failure_that_gives_up_says_so(pipeline: Pipeline) -> None:
    """A permanent failure (no project directory) is an event to 'failed' with gave_up true
    and the message; the view shows gave_up and the new columns last."""
    async with listening(pipeline.store.url) as log:
        await pipeline.start_daemon()
        await pipeline.deploy("missing")
        failed = await log.wait_for(lambda e: e["to"] == "failed")
    assert failed["gave_up"] is True and failed["next_attempt_at"] is None
    assert "project directory missing does not exist" in failed["message"]
    [row] = await pipeline.store.status_rows(project="missing")
    assert list(row)[-5:] == [
        "generation",
        "observed_generation",
        "attempts",
        "next_attempt_at",
        "gave_up",
    ]
    assert (row["generation"], row["observed_generation"], row["gave_up"]) == (1, 1, True)
    assert row["attempts"] == 1 and row["next_attempt_at"] is None


async def test_wait_exits_zero_once_healthy_as_the_pipeline_role(pipeline: Pipeline) -> None:
    """The README's pipeline step: the UPDATE and the wait as a reconciler_pipeline login;
    wait exits 0 once healthy at the new generation, one line per transition off a TTY."""
    await pipeline.start_daemon()
    await pipeline.deploy("app", image_ref="reg/app:1")
    await pipeline.wait_for("app", until=lambda d: d.current_status == "healthy")
    async with login_role(pipeline.store.url, member_of="reconciler_pipeline") as url:
        conn = await asyncpg.connect(asyncpg_dsn(url))
        try:
            await conn.execute(_SET.format("image_ref = 'reg/app:2'"))
        finally:
            await conn.close()
        process = await _start_wait(url, "app", "prod", "--timeout", "60")
        out, errors = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, errors.decode()
    lines = out.decode().splitlines()
    assert lines[0].startswith("app/prod generation 2: ")
    assert lines[-1] == "app/prod: healthy at generation 2"


async def test_wait_follows_the_transitions_it_sees(pipeline: Pipeline) -> None:
    """wait, started before any daemon, prints pending (its read after LISTEN), then syncing,
    then ends healthy: exit 0."""
    await pipeline.deploy("app")
    process = await _start_wait(pipeline.store.url, "app", "prod", "--timeout", "60")
    assert process.stdout is not None
    first = await asyncio.wait_for(process.stdout.readline(), timeout=30)
    # It printed what it read after its LISTEN: the daemon starts only now.
    assert first.decode().startswith("app/prod generation 1: pending")
    await pipeline.start_daemon()
    rest, errors = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, errors.decode()
    lines = rest.decode().splitlines()
    assert lines[0].startswith("app/prod generation 1: syncing")
    assert lines[-1] == "app/prod: healthy at generation 1"


async def test_wait_exits_one_on_a_failure_that_gave_up(pipeline: Pipeline) -> None:
    """wait exits 1 with the status message on stderr when the daemon gave up; status --json
    shows the pipeline columns."""
    await pipeline.start_daemon()
    await pipeline.deploy("missing")
    result = await _wait_cli(pipeline, "missing", "prod", "--timeout", "60")
    assert result.returncode == 1
    assert "gave up" in result.stderr
    assert "project directory missing does not exist" in result.stderr
    status = await asyncio.to_thread(
        run_cli, "status", "--json", "--project", "missing", database_url=pipeline.store.url
    )
    [row] = [json.loads(line) for line in status.stdout.splitlines()]
    assert (row["generation"], row["observed_generation"], row["attempts"]) == (1, 1, 1)
    assert (row["next_attempt_at"], row["gave_up"]) == (None, True)


async def test_wait_exits_two_on_timeout_saying_what_it_saw(pipeline: Pipeline) -> None:
    """With no daemon, wait times out: exit 2, naming the last status it saw; payloads on
    the channel that are not the trigger's (anyone may NOTIFY) change nothing."""
    await pipeline.deploy("app")
    process = await _start_wait(pipeline.store.url, "app", "prod", "--timeout", "2")
    assert process.stdout is not None
    await asyncio.wait_for(process.stdout.readline(), timeout=30)  # it is listening now
    for junk in ("not json", "[1]", '{"project": "app", "environment": "prod", "to": 7}'):
        await pipeline.sql("SELECT pg_notify('reconciler_events', $1)", junk)
    _out, errors = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode == 2
    message = errors.decode()
    assert "timed out after 2 s waiting for generation 1" in message
    assert "last saw pending" in message
    assert "Traceback" not in message


async def test_wait_for_an_explicit_generation_fails_when_superseded(pipeline: Pipeline) -> None:
    """--generation N fails (exit 1) once a newer generation replaced N before it was done."""
    await pipeline.deploy("app", image_ref="reg/app:1")
    await pipeline.deploy("app", image_ref="reg/app:2")
    result = await _wait_cli(pipeline, "app", "prod", "--generation", "1", "--timeout", "30")
    assert result.returncode == 1
    assert "generation 1 was superseded by generation 2" in result.stderr


async def test_wait_refuses_an_unknown_deployment(pipeline: Pipeline) -> None:
    """wait names a deployment that does not exist, exit 1."""
    result = await _wait_cli(pipeline, "app", "prdo", "--timeout", "5")
    assert result.returncode == 1
    assert "no deployment app/prdo" in result.stderr


async def _seed_app(pipeline: Pipeline) -> None:
    await pipeline.deploy("app")


async def test_syncing_to_syncing_is_not_an_event_but_failing_again_is(
    pipeline: Pipeline,
) -> None:
    """Writes that leave current_status alone publish nothing, syncing -> syncing neither;
    a failed row whose observed_generation moves (it failed again) publishes once."""
    await _seed_app(pipeline)
    async with listening(pipeline.store.url) as log:
        await pipeline.sql(_SET.format("current_status = 'syncing'"))
        await pipeline.sql(_SET.format("current_status = 'syncing', attempts = 1"))
        await pipeline.sql(_SET.format("current_status = 'failed', observed_generation = 1"))
        await pipeline.sql(_SET.format("image_ref = 'reg/app:2'"))  # generation 2, still failed
        await pipeline.sql(_SET.format("observed_generation = 2, status_message = 'again'"))
        # Events arrive in commit order: once the last is in, so are the others.
        again = await log.wait_for(lambda e: e["message"] == "again")
    assert log.transitions("app") == [
        ("pending", "syncing"),
        ("syncing", "failed"),
        ("failed", "failed"),
    ]
    assert (again["generation"], again["observed_generation"]) == (2, 2)
    assert again["gave_up"] is True  # failed, observed, no retry scheduled


async def test_a_huge_hostile_message_and_image_ref_are_cut_below_8000_bytes(
    pipeline: Pipeline,
) -> None:
    """A status message of 50,000 control characters and an image ref of 4,000 do not break
    the write: the payload stays under 8000 bytes and says the message was cut."""
    await pipeline.deploy("app", image_ref="\x01" * 4000)
    async with listening(pipeline.store.url) as log:
        status = await pipeline.sql(
            _SET.format("current_status = 'failed', status_message = $1"), "\x02" * 50_000
        )
        assert status == "UPDATE 1"
        event = await log.wait_for(lambda e: e["to"] == "failed")
    assert max(log.sizes) < 8000
    assert event["message_truncated"] is True and event["message_length"] == 50_000
    assert event["message"] and set(event["message"]) == {"\x02"}
    assert event["image_ref"] and set(event["image_ref"]) == {"\x01"}
    d = await pipeline.store.get_deployment(**APP)
    assert d is not None and len(d.status_message) == 50_000


async def test_wait_survives_losing_its_connections(pipeline: Pipeline) -> None:
    """Every connection of a running wait is terminated (its LISTEN too): it reconnects,
    LISTENs again, reads the row, and still exits 0 once the deploy is healthy."""
    await pipeline.deploy("app")
    process = await _start_wait(pipeline.store.url, "app", "prod", "--timeout", "60")
    assert process.stdout is not None
    first = await asyncio.wait_for(process.stdout.readline(), timeout=30)
    assert first.decode().startswith("app/prod generation 1: pending")
    admin = await asyncpg.connect(asyncpg_dsn(pipeline.store.url))
    try:
        terminated = await admin.fetchval(
            "SELECT array_agg(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        assert terminated
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) pid", terminated
        )

        async def listening_again() -> bool:
            # A new backend (not one being terminated) LISTENing on the events channel.
            found: bool = await admin.fetchval(
                "SELECT count(*) > 0 FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> ALL($1::int[]) "
                "AND query LIKE 'LISTEN %reconciler_events%'",
                terminated,
            )
            return found

        await eventually(listening_again, within=30, message="wait never LISTENed again")
    finally:
        await admin.close()
    await pipeline.start_daemon()
    rest, errors = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, errors.decode()
    assert rest.decode().splitlines()[-1] == "app/prod: healthy at generation 1"


async def test_wait_counts_a_stop_reaching_stopped_as_done(pipeline: Pipeline) -> None:
    """A stop is done once stopped at its generation: wait exits 0."""
    await pipeline.start_daemon()
    await pipeline.deploy("app")
    await pipeline.wait_for("app", until=lambda d: d.current_status == "healthy")
    await pipeline.sql(_SET.format("desired_status = 'stopped'"))
    result = await _wait_cli(pipeline, "app", "prod", "--timeout", "60")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "app/prod: stopped at generation 2"
