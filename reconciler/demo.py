"""``reconciler demo``: the whole product on one machine, telling its story as it goes.

Starts a local PostgreSQL (``.data/pg``) and fakekube unless DATABASE_URL / KUBECONFIG point
elsewhere, migrates, registers ``ops_repos_example`` as a git repo, writes desired rows as a
pipeline would, runs the daemon, and walks through: deploy, a new image, a failing image, its
rollback, a stop.  It ends by itself; ``--keep`` leaves everything running for psql and kubectl.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from reconciler import logs
from reconciler.cluster.kube import Kube
from reconciler.cluster.live import LiveCache
from reconciler.daemon import OWNED_SELECTOR, Daemon
from reconciler.db import Store
from reconciler.errors import ConfigError, ReconcilerError
from reconciler.localpg import LocalPostgres
from reconciler.model import Deployment, ObjectRef
from reconciler.output import format_table
from reconciler.repos import publish as ops_repo
from reconciler.retry import poll_until
from reconciler.settings import Settings

DATA_DIR = Path(".data")
EXAMPLE_DIR = Path(__file__).resolve().parent.parent / "ops_repos_example"
FAILING_IMAGE = "registry.example.com/shop/web:2.0.0-broken"


def _say(text: str) -> None:
    print(f"\n== {text}", flush=True)


@asynccontextmanager
async def _database(settings: Settings) -> AsyncIterator[str]:
    if settings.database_url:
        yield settings.database_url
        return
    server = LocalPostgres(data_dir=(DATA_DIR / "pg").resolve())
    await asyncio.to_thread(server.start)
    _say(f"started a local PostgreSQL in {DATA_DIR / 'pg'}")
    try:
        yield server.url()
    finally:
        await asyncio.to_thread(server.stop)


@asynccontextmanager
async def _cluster(settings: Settings) -> AsyncIterator[tuple[str, Callable[[str], None]]]:
    """The kubeconfig to use, and a function that makes an image fail (fakekube only)."""
    if settings.kubeconfig:
        yield settings.kubeconfig, lambda _image: None
        return
    from reconciler.testing.fakekube import FakeKube

    kubeconfig = (DATA_DIR / "kubeconfig").resolve()
    try:
        fake = FakeKube(rollout_delay_s=0.3, time_factor=0.05)
    except RuntimeError as exc:  # its schema package is missing
        raise ConfigError(f"the demo's local cluster cannot start: {exc}") from None
    async with fake as kube:
        kube.write_kubeconfig(kubeconfig)
        _say(f"started fakekube at {kube.url} (kubeconfig {kubeconfig})")
        yield str(kubeconfig), kube.faults.crashloop_images.append


async def main(*, settings: Settings, keep: bool) -> int:
    if not EXAMPLE_DIR.is_dir():
        raise ConfigError(f"the example ops repo is missing: {EXAMPLE_DIR}")
    await asyncio.to_thread(DATA_DIR.mkdir, exist_ok=True)
    logs.configure(log_format=settings.log_format or "console", level="warning")
    async with _database(settings) as database_url, _cluster(settings) as (kubeconfig, fail):
        settings = dataclasses.replace(
            settings,
            database_url=database_url,
            kubeconfig=kubeconfig,
            repos_dir=(DATA_DIR / "repos").resolve(),
            poll_interval_s=2.0,
            # Any free local port: the demo must not fail because 8080 is taken.
            http_address=("127.0.0.1", 0),
            health_timeout_s=min(settings.health_timeout_s, 60.0),
            retry_base_s=30.0,
        )
        store = await Store.connect(database_url)
        await store.migrate()
        kube = await Kube.connect(kubeconfig=kubeconfig, request_timeout_s=settings.kube_timeout_s)
        live = LiveCache(kube, label_selector=OWNED_SELECTOR)
        daemon = Daemon(store=store, kube=kube, settings=settings, live=live)
        daemon_task = asyncio.create_task(daemon.run())
        try:
            return await _story(
                store,
                kube=kube,
                fail=fail,
                keep=keep,
                database_url=database_url,
                kubeconfig=kubeconfig,
            )
        finally:
            daemon.stop()
            await daemon_task
            await live.close()
            await kube.close()
            await store.close()


async def _story(
    store: Store,
    *,
    kube: Kube,
    fail: Callable[[str], None],
    keep: bool,
    database_url: str,
    kubeconfig: str,
) -> int:
    url = await asyncio.to_thread(
        ops_repo.publish_directory,
        source=EXAMPLE_DIR,
        repo=(DATA_DIR / "ops-example").resolve(),
        message="ops_repos_example",
    )
    repo = await store.get_ops_repo("example") or await store.add_ops_repo(
        name="example", repo_url=url, sync_interval_s=5
    )
    _say(f"registered ops repo 'example' ({url})")

    _say("a pipeline writes desired state: web in staging and prod, worker in prod")
    for project, environment, image in (
        ("web", "staging", "registry.example.com/shop/web:1.4.0"),
        ("web", "prod", "registry.example.com/shop/web:1.4.0"),
        ("worker", "prod", "registry.example.com/shop/worker:3.1.0"),
    ):
        await store.upsert_deployment(
            project=project, environment=environment, ops_repo_id=repo.id, image_ref=image
        )
    await _wait(store, "all healthy", lambda ds: all(d.current_status == "healthy" for d in ds))
    await _day_two(store, fail=fail)
    await _live_state(store, kube=kube)
    await _show_history(store)
    if keep:
        _say("still running; Ctrl-C to stop. In another shell:")
        print(f"  export DATABASE_URL='{database_url}'")
        print(f"  export KUBECONFIG='{kubeconfig}'")
        print("  reconciler status; kubectl get deploy -A")
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.Event().wait()
    _say("done")
    return 0


async def _day_two(store: Store, *, fail: Callable[[str], None]) -> None:
    """A new image, a broken one, a rollback and a stop, each waited for."""
    _say("web/prod gets a new image: 1.5.0")
    await store.set_desired(
        project="web", environment="prod", image_ref="registry.example.com/shop/web:1.5.0"
    )
    await _wait(store, "web/prod healthy on 1.5.0", _is("web", "prod", "healthy", "1.5.0"))

    _say(f"web/prod gets a broken image ({FAILING_IMAGE.rsplit(':', 1)[1]}): it crash-loops")
    fail(FAILING_IMAGE)
    await store.set_desired(project="web", environment="prod", image_ref=FAILING_IMAGE)
    await _wait(store, "web/prod failed", _is("web", "prod", "failed", "broken"))

    _say("UPDATE deployments SET desired_status = 'rollback': back to the last healthy image")
    await store.set_desired(project="web", environment="prod", desired_status="rollback")
    await _wait(
        store,
        "web/prod healthy on 1.5.0 again, desired back to active",
        lambda ds: (
            _is("web", "prod", "healthy", "1.5.0")(ds)
            and _find(ds, "web", "prod").desired_status == "active"
        ),
    )

    _say("UPDATE deployments SET desired_status = 'stopped' for worker/prod: scaled to 0")
    await store.set_desired(project="worker", environment="prod", desired_status="stopped")
    await _wait(store, "worker/prod stopped", _is("worker", "prod", "stopped", ""))


async def _live_state(store: Store, *, kube: Kube) -> None:
    """Someone scales a managed Deployment by hand: healed; then a deployment is deleted."""
    _say("someone scales web/staging by hand (as `kubectl scale --replicas=5` would)")
    web = ObjectRef("apps/v1", "Deployment", "web", "web-staging")
    await kube.scale(web, replicas=5)
    staging = await store.get_deployment(project="web", environment="staging")
    assert staging is not None

    async def healed() -> bool:
        history = await store.history(deployment_id=staging.id, limit=1)
        return bool(history) and history[0].action == "heal"

    await poll_until(healed, timeout_s=60.0, interval_s=0.2)
    [entry] = await store.history(deployment_id=staging.id, limit=1)
    print(f"-- {entry.message}")

    _say("UPDATE deployments SET desired_status = 'deleted' for web/staging: its objects go")
    await store.set_desired(project="web", environment="staging", desired_status="deleted")
    await _wait(store, "web/staging deleted", _is("web", "staging", "deleted", ""))


async def _show_history(store: Store) -> None:
    web = await store.get_deployment(project="web", environment="prod")
    assert web is not None
    _say("reconciler history web prod")
    print(
        format_table(
            [
                {
                    "finished": e.finished_at,
                    "action": e.action,
                    "status": e.status,
                    "image": e.image_ref,
                    "took_s": e.duration_ms / 1000,
                    "message": e.message,
                }
                for e in await store.history(deployment_id=web.id)
            ]
        )
    )


def _find(deployments: list[Deployment], project: str, environment: str) -> Deployment:
    return next(d for d in deployments if (d.project, d.environment) == (project, environment))


def _is(
    project: str, environment: str, status: str, image_part: str
) -> Callable[[list[Deployment]], bool]:
    def check(deployments: list[Deployment]) -> bool:
        d = _find(deployments, project, environment)
        return d.current_status == status and image_part in (d.current_image_ref or "")

    return check


async def _wait(
    store: Store, what: str, done: Callable[[list[Deployment]], bool], *, timeout_s: float = 120.0
) -> None:
    began = time.monotonic()

    async def reached() -> bool:
        return done(await store.list_deployments())

    try:
        await poll_until(reached, timeout_s=timeout_s, interval_s=0.2)
    except TimeoutError:
        print(format_table(await store.status_rows()))
        raise ReconcilerError(f"demo: gave up after {timeout_s:g}s waiting for: {what}") from None
    print(f"-- {what} after {time.monotonic() - began:.1f}s")
    print(
        format_table(
            [{k: v for k, v in row.items() if k != "since"} for row in await store.status_rows()]
        )
    )
