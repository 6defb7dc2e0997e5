"""The CLI of the HTTP API's access and of the audit: ``token create|list|revoke``, ``audit``.

Tokens are shown once, when created; the database keeps only their hash.  ``audit`` reads
``deployment_audit``, newest first.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from reconciler.access import (
    SCOPE_ORDER,
    AuditEntry,
    check_project,
    check_token_name,
    parse_scope,
)
from reconciler.cli_day_two import Commands, connect
from reconciler.output import format_table
from reconciler.settings import Settings


def add_access_commands(commands: Commands) -> None:
    """``token create|list|revoke`` and ``audit``."""
    token = commands.add_parser("token", help="create, list and revoke HTTP API tokens")
    actions = token.add_subparsers(metavar="ACTION")
    create = actions.add_parser("create", help="create a token; it is printed once, never again")
    create.add_argument(
        "name", type=_token_name, help="a slug naming the token (the audit's actor)"
    )
    create.add_argument(
        "--scope",
        required=True,
        type=_scope,
        help=f"one of {', '.join(SCOPE_ORDER)} (each implies the ones before it)",
    )
    create.add_argument("--project", type=_project, help="limit the token to this project")
    create.set_defaults(handler=_token_create)
    listing = actions.add_parser("list", help="list tokens (never their secrets)")
    listing.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    listing.set_defaults(handler=_token_list)
    revoke = actions.add_parser("revoke", help="revoke a token: it is refused from now on")
    revoke.add_argument("name")
    revoke.set_defaults(handler=_token_revoke)

    audit = commands.add_parser("audit", help="who changed which desired state, newest first")
    audit.add_argument("project", nargs="?")
    audit.add_argument("environment", nargs="?")
    audit.add_argument("--limit", type=_positive, default=50)
    audit.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    audit.set_defaults(handler=_audit)


def _scope(text: str) -> str:
    try:
        return parse_scope(text).value
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _token_name(text: str) -> str:
    try:
        return check_token_name(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _project(text: str) -> str:
    try:
        return check_project(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _positive(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be a positive whole number, got {text!r}")
    return number


async def _token_create(args: argparse.Namespace, settings: Settings) -> int:
    store = await connect(settings)
    try:
        token, secret = await store.create_token(
            name=args.name, scope=args.scope, project=args.project
        )
    finally:
        await store.close()
    where = f"project {token.project}" if token.project else "every project"
    print(secret)
    print(
        f"token {token.name}: scope {token.scope}, {where}; shown once, store it now "
        "(use it as `Authorization: Bearer <token>`)",
        file=sys.stderr,
    )
    return 0


async def _token_list(args: argparse.Namespace, settings: Settings) -> int:
    store = await connect(settings)
    try:
        tokens = await store.list_tokens()
    finally:
        await store.close()
    rows = [
        {
            "name": t.name,
            "scope": t.scope,
            "project": t.project or "(all)",
            "created": t.created_at,
            "last_used": t.last_used_at,
            "revoked": t.revoked_at,
        }
        for t in tokens
    ]
    if args.json:
        for row in rows:
            print(json.dumps(row, default=str))
    else:
        print(format_table(rows) if rows else "no tokens")
    return 0


async def _token_revoke(args: argparse.Namespace, settings: Settings) -> int:
    store = await connect(settings)
    try:
        token = await store.revoke_token(args.name)
    finally:
        await store.close()
    print(f"token {token.name}: revoked")
    return 0


async def _audit(args: argparse.Namespace, settings: Settings) -> int:
    store = await connect(settings)
    try:
        entries = await store.audit_rows(
            project=args.project, environment=args.environment, limit=args.limit
        )
    finally:
        await store.close()
    if args.json:
        for entry in entries:
            print(json.dumps(entry.__dict__, default=str))
    elif entries:
        print(format_table([audit_row(e) for e in entries]))
    else:
        print("no audited changes" + (" match" if args.project else ""))
    return 0


def audit_row(entry: AuditEntry) -> dict[str, Any]:
    """One audit row as a human reads it: who (claimed in brackets), what changed."""
    who = entry.actor or entry.db_user
    if entry.claimed_via:
        who += f" [claimed {entry.claimed_via} {entry.claimed_actor or ''}]".replace(" ]", "]")
    return {
        "at": entry.at,
        "deployment": f"{entry.project}/{entry.environment}",
        "op": entry.operation,
        "gen": entry.generation,
        "via": entry.via,
        "who": who,
        "db_user": entry.db_user,
        "changes": describe_changes(entry.changes),
    }


def describe_changes(changes: dict[str, Any]) -> str:
    """``image_ref: a -> b, paused: false -> true``; values shown as JSON."""
    if not changes:
        return "(written again unchanged: a new generation)"
    parts = []
    for column, change in changes.items():
        before = json.dumps(change.get("from"))
        after = json.dumps(change.get("to"))
        parts.append(f"{column}: {before} -> {after}")
    return ", ".join(parts)
