"""The command line: ``reconciler`` / ``python -m reconciler``.

User errors (bad arguments, an unreachable database, a duplicate name) print one line to stderr and
exit non-zero, without a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import sys
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

import uvloop

from reconciler import settings as settings_module
from reconciler.cli_access import add_access_commands
from reconciler.cli_day_two import Commands, add_day_two_commands, connect
from reconciler.cli_ops_repo import add_ops_repo_commands
from reconciler.cli_wait import add_wait_command
from reconciler.cli_webhooks import add_webhook_commands
from reconciler.errors import InputError, ReconcilerError
from reconciler.output import format_table
from reconciler.settings import Settings

EXIT_ERROR = 1
EXIT_USAGE = 2


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        settings = settings_module.from_env()
        handler: Callable[[argparse.Namespace, Settings], Coroutine[Any, Any, int]] = args.handler
        with asyncio.Runner(loop_factory=_loop_factory(settings)) as runner:
            return runner.run(handler(args, settings))
    except ReconcilerError as exc:
        print(f"reconciler: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130


def _loop_factory(settings: Settings) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop unless RECONCILER_EVENT_LOOP asks for the standard one (None)."""
    return uvloop.new_event_loop if settings.event_loop == "uvloop" else None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="reconciler",
        description="A continuous deployer for Kubernetes driven by desired state in PostgreSQL.",
    )
    commands = parser.add_subparsers(metavar="COMMAND")
    _add_daemon_commands(commands)
    _add_read_commands(commands)
    add_day_two_commands(commands)
    add_wait_command(commands)
    _add_render_command(commands)
    _add_diff_command(commands)
    add_ops_repo_commands(commands)
    add_webhook_commands(commands)
    _add_demo_command(commands)
    add_access_commands(commands)
    return parser


def _add_daemon_commands(commands: Commands) -> None:
    migrate = commands.add_parser("migrate", help="upgrade the database schema to the latest")
    migrate.set_defaults(handler=_migrate)

    run = commands.add_parser("run", help="run the reconcile daemon")
    run.add_argument(
        "--once",
        action="store_true",
        help="one pass: reconcile what needs work, wait for it, exit 0 only if all "
        "of it ended healthy or stopped (rows another daemon holds are not its own: "
        "`reconciler wait` reports how those end)",
    )
    run.set_defaults(handler=_run)


def _add_read_commands(commands: Commands) -> None:
    status = commands.add_parser("status", help="show every deployment's status")
    status.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    status.add_argument(
        "--status",
        type=_statuses,
        metavar="S,S...",
        help=f"only these statuses (of: {', '.join(STATUS_FILTERS)})",
    )
    status.add_argument("--project", help="only this project's deployments")
    status.add_argument(
        "--wide", action="store_true", help="show whole messages (the table cuts long cells)"
    )
    status.set_defaults(handler=_status)

    history = commands.add_parser("history", help="show a deployment's history, newest first")
    history.add_argument("project")
    history.add_argument("environment")
    history.add_argument("--limit", type=int, default=20)
    history.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    history.set_defaults(handler=_history)


def _add_render_command(commands: Commands) -> None:
    render = commands.add_parser(
        "render", help="render a project from a local ops repo checkout (no cluster, no database)"
    )
    render.add_argument(
        "--ops-dir",
        required=True,
        type=Path,
        help="the ops repo checkout (or its subdirectory holding the projects)",
    )
    render.add_argument("--project", required=True)
    render.add_argument("--environment", required=True)
    render.add_argument("--image-ref", required=True)
    render.add_argument("--namespace", help="default: PROJECT-ENVIRONMENT")
    render.add_argument(
        "--values", type=Path, help="a YAML or JSON file of values that override the repo's"
    )
    render.add_argument(
        "--validate",
        action="store_true",
        help="check the objects against the Kubernetes schema (RECONCILER_KUBERNETES_VERSION) "
        "as the daemon does: exit 1 with the violations on stderr, nothing on stdout",
    )
    render.set_defaults(handler=_render)


def _add_diff_command(commands: Commands) -> None:
    diff = commands.add_parser(
        "diff",
        help="what an apply would change on the cluster (a server-side dry run, nothing is "
        "changed); exit 1 when it would change something",
    )
    diff.add_argument("project")
    diff.add_argument("environment")
    diff.add_argument("--image-ref", help="diff this image instead of the deployment's")
    diff.set_defaults(handler=_diff)


def _add_demo_command(commands: Commands) -> None:
    demo = commands.add_parser(
        "demo", help="run everything locally: PostgreSQL, fakekube, the example ops repo"
    )
    demo.add_argument(
        "--keep",
        action="store_true",
        help="keep running at the end (for psql and kubectl) until Ctrl-C",
    )
    demo.set_defaults(handler=_demo)


async def _migrate(_args: argparse.Namespace, settings: Settings) -> int:
    store = await connect(settings)
    try:
        before = await store.current_revision()
        await store.migrate()
        after = await store.current_revision()
    finally:
        await store.close()
    print(f"schema at revision {after}" + ("" if before == after else f" (was {before})"))
    return 0


async def _run(args: argparse.Namespace, settings: Settings) -> int:
    from reconciler import logs, process

    logs.configure(log_format=settings.log_format, level=settings.log_level)
    return await process.main(settings=settings, once=args.once)


STATUS_FILTERS = (
    "pending",
    "syncing",
    "healthy",
    "degraded",
    "drifted",
    "failed",
    "stopped",
    "deleted",
    "paused",
)
"""What ``status --status`` filters on: the view's current column, and paused rows."""


def _statuses(text: str) -> list[str]:
    wanted = [s.strip() for s in text.split(",") if s.strip()]
    unknown = [s for s in wanted if s not in STATUS_FILTERS]
    if unknown or not wanted:
        raise argparse.ArgumentTypeError(
            f"unknown status {', '.join(unknown) or repr(text)} "
            f"(valid: {', '.join(STATUS_FILTERS)})"
        )
    return wanted


async def _status(args: argparse.Namespace, settings: Settings) -> int:
    store = await connect(settings)
    try:
        rows = await store.status_rows(statuses=args.status, project=args.project)
    finally:
        await store.close()
    if args.json:
        for row in rows:
            print(json.dumps(row, default=_json_default))
    else:
        filtered = args.status is not None or args.project is not None
        table = format_table(rows, wide=args.wide) if rows else None
        print(table or f"no deployments{' match' if filtered else ''}")
    return 0


async def _history(args: argparse.Namespace, settings: Settings) -> int:
    store = await connect(settings)
    try:
        deployment = await store.get_deployment(project=args.project, environment=args.environment)
        if deployment is None:
            raise InputError(f"no deployment {args.project}/{args.environment}")
        entries = await store.history(deployment_id=deployment.id, limit=args.limit)
    finally:
        await store.close()
    rows = [
        {
            "finished": e.finished_at,
            "action": e.action,
            "status": e.status,
            "image": e.image_ref,
            "sha": (e.sha or "")[:10],
            "took_s": e.duration_ms / 1000,
            "message": e.message,
        }
        for e in entries
    ]
    if args.json:
        for entry in entries:
            print(json.dumps(entry.__dict__, default=_json_default))
    else:
        print(format_table(rows) if rows else "no history yet")
    return 0


async def _render(args: argparse.Namespace, settings: Settings) -> int:
    from reconciler import render

    values: Any = {}
    if args.values is not None:
        values = _read_values_file(args.values)
    render.validate_name(field="project", value=args.project)
    render.validate_name(field="environment", value=args.environment)
    sources = render.load_project(
        checkout=args.ops_dir, path="", project=args.project, environment=args.environment
    )
    rendered = render.render(
        sources,
        project=args.project,
        environment=args.environment,
        namespace=args.namespace or f"{args.project}-{args.environment}",
        image_ref=args.image_ref,
        values_override=values,
    )
    checked = ""
    if args.validate:
        from reconciler.render.validation import validate_objects

        validate_objects(
            rendered.objects,
            sources=rendered.sources,
            kubernetes_version=settings.kubernetes_version,
        )
        checked = f", valid for Kubernetes {settings.kubernetes_version}"
    sys.stdout.write(render.to_yaml(rendered.objects))
    summary = f"# {len(rendered.objects)} objects, digest {rendered.digest[:16]}{checked}"
    print(summary, file=sys.stderr)
    return 0


async def _diff(args: argparse.Namespace, settings: Settings) -> int:
    from reconciler import diff
    from reconciler.cluster.kube import Kube
    from reconciler.output import printable

    store = await connect(settings)
    try:
        target = await diff.read_target(store, project=args.project, environment=args.environment)
    finally:
        await store.close()
    kube = await Kube.connect(
        kubeconfig=settings.kubeconfig, request_timeout_s=settings.kube_timeout_s
    )
    try:
        diffs = await diff.diff_deployment(
            target, cluster=kube, settings=settings, image_ref=args.image_ref
        )
    finally:
        await kube.close()
    changed = [d for d in diffs if d.text]
    for object_diff in changed:
        for line in object_diff.text.splitlines():
            print(printable(line))
    print(f"# {len(changed)} of {len(diffs)} objects would change", file=sys.stderr)
    return EXIT_ERROR if changed else 0


def _read_values_file(path: Path) -> dict[str, Any]:
    import yaml

    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"--values {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise InputError(f"--values {path}: not valid YAML or JSON: {exc}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise InputError(f"--values {path}: must hold a mapping, got a {type(loaded).__name__}")
    return loaded


async def _demo(args: argparse.Namespace, settings: Settings) -> int:
    from reconciler import demo

    return await demo.main(settings=settings, keep=args.keep)


# ---------------------------------------------------------------- output


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return str(value)
