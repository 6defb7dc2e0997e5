"""The CLI's ``ops-repo`` commands: add, set, remove, list, sync.

``add`` (and ``set`` when the URL or branch changes) asks the remote for the branch's head
before anything is recorded, so a typo in the URL or the branch is refused at once, naming
both (the URL redacted); ``--no-check`` skips that (a remote only the daemon can reach).
``sync`` asks the running daemon, over NOTIFY, to fetch now.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from typing import Any

from reconciler.cli_day_two import Commands, connect
from reconciler.errors import InputError
from reconciler.output import format_table
from reconciler.settings import Settings

__all__ = ["add_ops_repo_commands"]

EXIT_ERROR = 1


def add_ops_repo_commands(commands: Commands) -> None:
    """``ops-repo add|set|remove|list|sync``."""
    ops_repo = commands.add_parser("ops-repo", help="register and inspect ops repos")
    ops_commands = ops_repo.add_subparsers(metavar="ACTION")
    add = ops_commands.add_parser(
        "add", help="register an ops repo (after checking the remote has the branch)"
    )
    add.add_argument("name")
    add.add_argument("url")
    add.add_argument("--branch", default="main")
    add.add_argument("--path", default="", help="subdirectory holding the projects")
    add.add_argument("--sync-interval", type=int, default=60, metavar="SECONDS")
    _no_check(add)
    add.set_defaults(handler=_add)
    change = ops_commands.add_parser(
        "set", help="change an ops repo's URL, branch, path or sync interval"
    )
    change.add_argument("name")
    change.add_argument("--url")
    change.add_argument("--branch")
    change.add_argument("--path", help="subdirectory holding the projects ('' for the root)")
    change.add_argument("--sync-interval", type=int, metavar="SECONDS")
    _no_check(change)
    change.set_defaults(handler=_set)
    remove = ops_commands.add_parser(
        "remove", help="unregister an ops repo no deployment uses (its policy goes with it)"
    )
    remove.add_argument("name")
    remove.set_defaults(handler=_remove)
    listing = ops_commands.add_parser("list", help="list ops repos")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=_list)
    sync = ops_commands.add_parser(
        "sync", help="ask the running daemon to sync ops repos now (it owns their checkouts)"
    )
    sync.add_argument("names", nargs="*", help="default: all")
    sync.add_argument(
        "--wait",
        type=float,
        metavar="SECONDS",
        help="wait this long for each sync, print its commit or error (exit 1 on either failing)",
    )
    sync.set_defaults(handler=_sync)


def _no_check(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--no-check",
        action="store_true",
        help="record it without asking the remote whether it has the branch",
    )


def _interval(value: int | None) -> None:
    if value is not None and value < 0:
        raise InputError("--sync-interval must be 0 or more seconds")


async def _check_remote(*, url: str, branch: str, settings: Settings) -> None:
    from reconciler.repos.remote import require_branch

    await require_branch(url=url, branch=branch, timeout_s=settings.git_timeout_s)


async def _add(args: argparse.Namespace, settings: Settings) -> int:
    from reconciler.repos.urls import redact_url, validate_repo_url

    validate_repo_url(args.url)
    _interval(args.sync_interval)
    if not args.no_check:
        await _check_remote(url=args.url, branch=args.branch, settings=settings)
    store = await connect(settings)
    try:
        repo = await store.add_ops_repo(
            name=args.name,
            repo_url=args.url,
            branch=args.branch,
            path=args.path,
            sync_interval_s=args.sync_interval,
        )
    finally:
        await store.close()
    print(
        f"added ops repo {repo.name} (id {repo.id}): {redact_url(repo.repo_url)} "
        f"branch {repo.branch}"
    )
    return 0


async def _set(args: argparse.Namespace, settings: Settings) -> int:
    from reconciler.repos.urls import redact_url, validate_repo_url

    if args.url is not None:
        validate_repo_url(args.url)
    _interval(args.sync_interval)
    if all(v is None for v in (args.url, args.branch, args.path, args.sync_interval)):
        raise InputError("nothing to change: give --url, --branch, --path or --sync-interval")
    store = await connect(settings)
    try:
        current = await store.get_ops_repo(args.name)
        if current is None:
            raise InputError(f"no ops repo named {args.name!r}")
        url = args.url if args.url is not None else current.repo_url
        branch = args.branch if args.branch is not None else current.branch
        moved = (url, branch) != (current.repo_url, current.branch)
        if moved and not args.no_check:
            await _check_remote(url=url, branch=branch, settings=settings)
        repo = await store.update_ops_repo(
            name=args.name,
            repo_url=args.url,
            branch=args.branch,
            path=args.path,
            sync_interval_s=args.sync_interval,
        )
    finally:
        await store.close()
    if repo is None:
        raise InputError(f"no ops repo named {args.name!r}")
    print(
        f"ops repo {repo.name}: {redact_url(repo.repo_url)} branch {repo.branch}"
        f" path {repo.path or '(root)'} sync interval {repo.sync_interval_s} s"
    )
    return 0


async def _remove(args: argparse.Namespace, settings: Settings) -> int:
    store = await connect(settings)
    try:
        try:
            users = await store.remove_ops_repo(args.name)
        except LookupError:
            raise InputError(f"no ops repo named {args.name!r}") from None
    finally:
        await store.close()
    if users:
        shown = ", ".join(users[:20]) + (f" and {len(users) - 20} more" if len(users) > 20 else "")
        raise InputError(
            f"ops repo {args.name!r} is still used by {len(users)} deployment"
            f"{'s' if len(users) != 1 else ''}: {shown}"
            " (point them at another ops repo, or delete them, first)"
        )
    print(f"removed ops repo {args.name}")
    return 0


async def _list(args: argparse.Namespace, settings: Settings) -> int:
    from reconciler.repos.urls import redact, redact_url

    store = await connect(settings)
    try:
        repos = await store.list_ops_repos()
    finally:
        await store.close()
    rows = [
        {
            "id": r.id,
            "name": r.name,
            "url": redact_url(r.repo_url),
            "branch": r.branch,
            "path": r.path,
            "sync_s": r.sync_interval_s,
            "synced": r.last_synced_at,
            "sha": (r.last_sha or "")[:10],
            "error": redact(r.last_error, url=r.repo_url) if r.last_error else "",
        }
        for r in repos
    ]
    if args.json:
        for row in rows:
            print(json.dumps(row, default=_json_default))
    else:
        print(format_table(rows) if rows else "no ops repos")
    return 0


async def _sync(args: argparse.Namespace, settings: Settings) -> int:
    from reconciler.repo_sync import request_syncs, wait_for_syncs

    if args.wait is not None and not args.wait > 0:
        raise InputError("--wait must be a positive number of seconds")
    store = await connect(settings)
    try:
        repos = await request_syncs(
            store=store,
            names=args.names,
            announce=lambda name: print(f"{name}: asked the daemon to sync", flush=True),
        )
        if args.wait is None:
            return 0
        answers = await wait_for_syncs(store=store, repos=repos, timeout_s=args.wait)
    finally:
        await store.close()
    for answer in answers:
        status = f"failed: {answer.error}" if answer.error else f"at {answer.sha}"
        print(f"{answer.name}: {status}")
    return EXIT_ERROR if any(a.error for a in answers) else 0


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return str(value)
