"""The CLI's outgoing webhooks: ``reconciler webhook add|list|remove|deliveries``.

Each runs one statement of ``queries.sql`` (the README shows them as SQL too); the daemon
delivers.  URLs are shown without credentials, and secrets are never shown at all.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from reconciler.cli_day_two import Commands, connect
from reconciler.delivery_format import FORMATS, STATUSES, check_webhook
from reconciler.errors import InputError
from reconciler.output import format_table
from reconciler.settings import Settings

_MAX_SECRET_BYTES = 4096


def add_webhook_commands(commands: Commands) -> None:
    """``webhook add``, ``list``, ``remove`` and ``deliveries``."""
    webhook = commands.add_parser("webhook", help="outgoing webhooks for deployment events")
    actions = webhook.add_subparsers(metavar="ACTION")
    add = actions.add_parser("add", help="POST every matching status transition to URL")
    add.add_argument("name", help="a slug: lowercase letters, digits and '-'")
    add.add_argument("url", help="http:// or https://")
    add.add_argument("--project", help="only this project's events (default: any)")
    add.add_argument("--environment", help="only this environment's events (default: any)")
    add.add_argument("--format", choices=FORMATS, default="json", help="the body (default json)")
    add.add_argument(
        "--secret-file",
        type=Path,
        metavar="F",
        help="sign each request with the secret in this file (HMAC-SHA256)",
    )
    add.add_argument(
        "--status",
        action="extend",
        nargs="+",
        choices=STATUSES,
        metavar="S",
        help=f"only transitions to these statuses (default: every one; {', '.join(STATUSES)})",
    )
    add.set_defaults(handler=_add)
    listing = actions.add_parser("list", help="list webhooks (URLs without credentials)")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    listing.set_defaults(handler=_list)
    remove = actions.add_parser("remove", help="unregister a webhook and its deliveries")
    remove.add_argument("name")
    remove.set_defaults(handler=_remove)
    deliveries = actions.add_parser(
        "deliveries", help="the latest deliveries (of one webhook), with code and error"
    )
    deliveries.add_argument("name", nargs="?", help="one webhook's deliveries (default: all)")
    deliveries.add_argument("--limit", type=int, default=20, help="how many (default 20)")
    deliveries.add_argument("--json", action="store_true", help="one JSON object per line")
    deliveries.set_defaults(handler=_deliveries)


def read_secret(path: Path) -> str:
    """The secret in ``path`` without its trailing newline; InputError naming the file when it
    cannot be read, is empty, or is not text."""
    try:
        raw = path.read_bytes()[: _MAX_SECRET_BYTES + 1]
    except OSError as exc:
        raise InputError(f"--secret-file {path}: {exc.strerror or exc}") from None
    if len(raw) > _MAX_SECRET_BYTES:
        raise InputError(f"--secret-file {path}: longer than {_MAX_SECRET_BYTES} bytes")
    try:
        secret = raw.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError:
        raise InputError(f"--secret-file {path}: not UTF-8 text") from None
    if not secret or "\x00" in secret:
        raise InputError(f"--secret-file {path}: empty, or holds a NUL character")
    return secret


async def _add(args: argparse.Namespace, settings: Settings) -> int:
    from reconciler.deliveries import shown_url

    statuses = tuple(dict.fromkeys(args.status)) if args.status else None
    check_webhook(name=args.name, url=args.url, format=args.format, statuses=statuses)
    secret = read_secret(args.secret_file) if args.secret_file is not None else None
    store = await connect(settings)
    try:
        webhook = await store.add_webhook(
            name=args.name,
            url=args.url,
            project=args.project,
            environment=args.environment,
            format=args.format,
            secret=secret,
            statuses=statuses,
        )
    finally:
        await store.close()
    scope = f"{webhook.project or '*'}/{webhook.environment or '*'}"
    to = f" to {', '.join(webhook.statuses)}" if webhook.statuses else ""
    signed = "signed" if webhook.signed else "unsigned"
    print(
        f"added webhook {webhook.name} (id {webhook.id}): {webhook.format} events of {scope}"
        f"{to}, {signed}, to {shown_url(webhook.url)}"
    )
    return 0


async def _list(args: argparse.Namespace, settings: Settings) -> int:
    from reconciler.deliveries import shown_url

    store = await connect(settings)
    try:
        webhooks = await store.list_webhooks()
    finally:
        await store.close()
    rows = [
        {
            "name": w.name,
            "url": shown_url(w.url),
            "project": w.project or "*",
            "environment": w.environment or "*",
            "statuses": ",".join(w.statuses) if w.statuses else "*",
            "format": w.format,
            "signed": w.signed,
            "enabled": w.enabled,
        }
        for w in webhooks
    ]
    _print(rows, as_json=args.json, none="no webhooks")
    return 0


async def _remove(args: argparse.Namespace, settings: Settings) -> int:
    store = await connect(settings)
    try:
        await store.remove_webhook(args.name)
    finally:
        await store.close()
    print(f"removed webhook {args.name}")
    return 0


async def _deliveries(args: argparse.Namespace, settings: Settings) -> int:
    if args.limit < 1:
        raise InputError("--limit must be at least 1")
    store = await connect(settings)
    try:
        if args.name is not None and args.name not in {w.name for w in await store.list_webhooks()}:
            raise InputError(f"no webhook {args.name!r}")
        rows = await store.recent_deliveries(webhook=args.name, limit=args.limit)
    finally:
        await store.close()
    _print(rows, as_json=args.json, none="no deliveries")
    return 0


def _print(rows: list[dict[str, Any]], *, as_json: bool, none: str) -> None:
    if as_json:
        for row in rows:
            print(json.dumps(row, default=str))
    else:
        print(format_table(rows) if rows else none)
