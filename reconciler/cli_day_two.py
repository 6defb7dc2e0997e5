"""The CLI's day-two commands: cancel, pause, resume, retry, redeploy, rollback, delete.

Each is one statement of ``queries.sql`` through the Store, the same an admin can run in psql
(the README lists them); the daemon does the work.  Each tells the audit it comes from the CLI
and the OS user (:func:`cli_claim`).
"""

from __future__ import annotations

import argparse
import os
import pwd
from typing import TYPE_CHECKING, TypeAlias

from reconciler.access import AuditClaim
from reconciler.errors import ConfigError, InputError
from reconciler.settings import Settings

if TYPE_CHECKING:
    # Imported lazily below: `reconciler render` must start fast, without SQLAlchemy/Alembic.
    from reconciler.db import Store

Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"

_HELPS = {
    "cancel": "cancel the rollout in flight: recorded cancelled, the cluster left as it is",
    "pause": "leave a deployment alone (no apply, no heal) until resumed",
    "resume": "reconcile a paused deployment again, with whatever changed meanwhile",
    "retry": "try a parked deployment again (retries spent, or failed permanently)",
    "redeploy": "apply a deployment again even when nothing changed",
    "rollback": "return to a healthy history row's image, values and ops repo commit",
    "delete": "remove every object the deployment owns from the cluster (history is kept)",
}


async def connect(settings: Settings) -> Store:
    from reconciler.db import Store

    if not settings.database_url:
        raise ConfigError("DATABASE_URL is not set (e.g. postgresql://user:pass@host:5432/db)")
    return await Store.connect(settings.database_url, pool_size=2)


def cli_claim() -> AuditClaim:
    """The audit claim of this CLI process: via ``cli``, by the OS user (from the password
    database, not the environment)."""
    uid = os.getuid()
    try:
        user = pwd.getpwuid(uid).pw_name
    except KeyError:
        user = f"uid {uid}"
    return AuditClaim(via="cli", actor=user)


def add_day_two_commands(commands: Commands) -> None:
    for name, text in _HELPS.items():
        command = commands.add_parser(name, help=text)
        command.add_argument("project")
        command.add_argument("environment")
        if name == "redeploy":
            command.add_argument(
                "--restart",
                action="store_true",
                help="also restart its workloads' pods, as `kubectl rollout restart` does",
            )
        if name == "rollback":
            command.add_argument(
                "--to",
                type=int,
                metavar="ID",
                help="the history row to return to (`reconciler history` shows ids); "
                "default: the newest healthy deploy of another image",
            )
        command.set_defaults(handler=_day_two, command=name)


async def _day_two(args: argparse.Namespace, settings: Settings) -> int:
    """One statement each (queries.sql); prints what was asked."""
    store = await connect(settings)
    try:
        message = await _ask(store, args)
    finally:
        await store.close()
    print(message)
    return 0


async def _ask(store: Store, args: argparse.Namespace) -> str:
    name = f"{args.project}/{args.environment}"
    where = {"project": args.project, "environment": args.environment, "claim": cli_claim()}
    if args.command == "cancel":
        generation = await store.cancel(**where)
        return f"{name}: cancelling the rollout of generation {generation}"
    if args.command in ("pause", "resume"):
        changed = await store.set_paused(**where, paused=args.command == "pause")
        state = "paused" if args.command == "pause" else "resumed"
        return f"{name}: {state}" if changed else f"{name}: {state} already"
    if args.command == "retry":
        await store.retry(**where)
        return f"{name}: un-parked, the daemon tries it again now"
    if args.command == "rollback":
        return await _rollback(store, args, name=name)
    if args.command == "delete":
        deployment = await store.set_desired(**where, desired_status="deleted")
        owned = await store.inventory_of(deployment.id)
        generation = deployment.generation
        return f"{name}: deleting the {len(owned)} object(s) it owns (generation {generation})"
    generation = await store.redeploy(**where, restart=args.restart)
    restart = ", restarting its workloads" if args.restart else ""
    return f"{name}: redeploy asked for (generation {generation}{restart})"


async def _rollback(store: Store, args: argparse.Namespace, *, name: str) -> str:
    deployment = await store.get_deployment(project=args.project, environment=args.environment)
    if deployment is None:
        raise InputError(f"no deployment {name}")
    if args.to is not None:
        row = await store.history_entry(args.to)
        if row is None or row.deployment_id != deployment.id or row.status != "healthy":
            raise InputError(
                f"history row {args.to} is not a healthy deploy of {name} "
                f"(`reconciler history {args.project} {args.environment}` lists them)"
            )
    updated = await store.set_desired(
        project=args.project,
        environment=args.environment,
        claim=cli_claim(),
        desired_status="rollback",
        rollback_to=args.to,
    )
    target = f"history row {args.to}" if args.to is not None else "the last healthy image"
    return f"{name}: rolling back to {target} (generation {updated.generation})"
