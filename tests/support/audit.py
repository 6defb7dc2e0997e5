"""The history invariants every fault test asserts, read straight from the database."""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
from collections.abc import Callable

import asyncpg

from reconciler.db import Store, asyncpg_dsn


@dataclasses.dataclass
class Audit:
    """What the database says after a fault: the figures and every broken invariant."""

    deployments: int
    history_rows: int
    terminal_rows: int
    interrupted: set[tuple[int, dt.datetime]]
    """(deployment id, started_at) of every 'interrupted' row."""
    failed_messages: list[str]
    duplicated: int
    """Attempts recorded more than once (same deployment and start time)."""
    lost: int
    """Generations a deployment reached with no row saying how they ended."""
    statuses: collections.Counter[str]
    problems: list[str]


async def audit(
    store: Store, *, allow_failed: Callable[[str], bool] = lambda _message: False
) -> Audit:
    """Check what every fault test asserts: each deployment converged (healthy on its image,
    its generation observed, no claim, no open attempt, never left 'syncing'); its latest
    generation ended in exactly one healthy row, its last; no generation has two outcomes from
    one commit; no attempt is recorded twice.  Failed rows are problems unless
    ``allow_failed(message)``."""
    deployments, history = await _read(store)
    problems: list[str] = []
    by_deployment: dict[int, list[asyncpg.Record]] = collections.defaultdict(list)
    for row in history:
        by_deployment[row["deployment_id"]].append(row)
    attempts = collections.Counter((r["deployment_id"], r["started_at"]) for r in history)
    duplicated = sum(count - 1 for count in attempts.values() if count > 1)
    if duplicated:
        problems.append(f"{duplicated} attempts recorded more than once")
    lost = 0
    failed_messages: list[str] = []
    for d in deployments:
        found = _check_deployment(d, by_deployment.get(d["id"], []), allow_failed=allow_failed)
        problems += found.problems
        failed_messages += found.failed_messages
        lost += found.lost
    return Audit(
        deployments=len(deployments),
        history_rows=len(history),
        terminal_rows=sum(1 for r in history if r["status"] != "interrupted"),
        interrupted={
            (r["deployment_id"], r["started_at"]) for r in history if r["status"] == "interrupted"
        },
        failed_messages=failed_messages,
        duplicated=duplicated,
        lost=lost,
        statuses=collections.Counter(r["status"] for r in history),
        problems=problems,
    )


async def _read(store: Store) -> tuple[list[asyncpg.Record], list[asyncpg.Record]]:
    """Every deployment row and every history row, each in id order."""
    conn = await asyncpg.connect(asyncpg_dsn(store.url))
    try:
        deployments = await conn.fetch(
            "SELECT id, project, environment, generation, observed_generation, current_status,"
            " claimed_by, attempt_started_at, image_ref, current_image_ref, status_message"
            " FROM deployments ORDER BY id"
        )
        history = await conn.fetch(
            "SELECT id, deployment_id, generation, status, sha, started_at, message"
            " FROM deployment_history ORDER BY id"
        )
    finally:
        await conn.close()
    return deployments, history


@dataclasses.dataclass
class _Found:
    """What the audit found about one deployment."""

    problems: list[str]
    failed_messages: list[str]
    lost: int
    """1 when its latest generation has no single healthy row saying how it ended, else 0."""


def _check_deployment(
    d: asyncpg.Record, rows: list[asyncpg.Record], *, allow_failed: Callable[[str], bool]
) -> _Found:
    """One deployment's row and its history rows (in id order) against the invariants."""
    found = _Found(problems=[], failed_messages=[], lost=0)
    name = f"{d['project']}/{d['environment']}"
    if d["current_status"] != "healthy" or d["current_image_ref"] != d["image_ref"]:
        found.problems.append(
            f"{name} is {d['current_status']} on {d['current_image_ref']} "
            f"(wanted {d['image_ref']}): {d['status_message']}"
        )
    if d["generation"] != d["observed_generation"]:
        found.problems.append(f"{name}: generation {d['generation']} not observed")
    if d["claimed_by"] is not None or d["attempt_started_at"] is not None:
        found.problems.append(f"{name}: still claimed by {d['claimed_by']} or with an open attempt")
    # A generation may be deployed again from a new commit; from the same commit, never.
    outcomes: dict[tuple[int, str | None], list[str]] = collections.defaultdict(list)
    for r in rows:
        if r["status"] in ("healthy", "superseded"):
            outcomes[(r["generation"], r["sha"])].append(r["status"])
        elif r["status"] == "failed":
            found.failed_messages.append(r["message"])
            if not allow_failed(r["message"]):
                found.problems.append(f"{name}: unexpected failed attempt: {r['message']}")
        elif r["status"] != "interrupted":
            found.problems.append(f"{name}: unexpected {r['status']} row")
    for (generation, sha), ended in outcomes.items():
        if len(ended) > 1:
            found.problems.append(
                f"{name}: generation {generation} at {sha} ended {len(ended)} times"
            )
    final = [r for r in rows if r["generation"] == d["generation"] and r["status"] == "healthy"]
    if len(final) != 1:
        found.lost = 1
        found.problems.append(f"{name}: {len(final)} healthy rows for generation {d['generation']}")
    elif rows[-1]["id"] != final[0]["id"]:
        found.problems.append(f"{name}: the healthy row of its generation is not its last row")
    return found


async def converged(store: Store) -> bool:
    """Every deployment observed its generation, ended healthy, and is free of claims."""
    for d in await store.list_deployments():
        if (
            d.generation != d.observed_generation
            or d.current_status != "healthy"
            or d.claimed_by is not None
        ):
            return False
    return True
