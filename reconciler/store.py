"""Every SQL statement reconciler runs, as functions over plain dataclasses.

The daemon never keeps a transaction open while it talks to Kubernetes: it claims work in a short
transaction (``FOR UPDATE SKIP LOCKED`` plus a lease), and records the outcome of an attempt, with
its history row, in another.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import fields
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import asyncpg
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from reconciler.errors import (
    DatabaseError,
    DatabaseRefused,
    DatabaseUnavailable,
    InputError,
)
from reconciler.model import AttemptResult, Deployment, HistoryEntry, OpsRepo
from reconciler.models import deployment_history, deployments, metadata, ops_repos

NOTIFY_CHANNEL = "reconciler"


_DEPLOYMENT_COLUMNS = [deployments.c[f.name] for f in fields(Deployment)]
_REPO_COLUMNS = [ops_repos.c[f.name] for f in fields(OpsRepo)]
_HISTORY_COLUMNS = [deployment_history.c[f.name] for f in fields(HistoryEntry)]


def _deployment(row: sa.Row[Any]) -> Deployment:
    return Deployment(**row._mapping)


def _repo(row: sa.Row[Any]) -> OpsRepo:
    return OpsRepo(**row._mapping)


def _history(row: sa.Row[Any]) -> HistoryEntry:
    return HistoryEntry(**row._mapping)


# ---------------------------------------------------------------- connections


def sqlalchemy_url(url: str) -> str:
    """``postgresql://...`` as SQLAlchemy's asyncpg URL."""
    _scheme, sep, rest = url.partition("://")
    if not sep:
        raise DatabaseRefused(f"not a database URL: {describe_url(url)}")
    return f"postgresql+asyncpg://{rest}"


def asyncpg_dsn(url: str) -> str:
    """``postgresql://...`` as a DSN asyncpg accepts (it knows no ``+asyncpg``)."""
    _scheme, _sep, rest = url.partition("://")
    return f"postgresql://{rest}"


def describe_url(url: str) -> str:
    """Where a URL points, for messages: host (or socket dir), port and database, no password."""
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    host = parts.hostname or (query.get("host") or ["localhost"])[0]
    port = parts.port or (query.get("port") or ["5432"])[0]
    database = parts.path.lstrip("/") or "postgres"
    return f"{host}:{port}/{database}"


def create_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
    """An async engine on asyncpg.  ``pool_pre_ping`` so a restarted server costs one error, not
    a broken pool."""
    return create_async_engine(
        sqlalchemy_url(url),
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        pool_recycle=1800,
    )


def migrations_dir() -> Path:
    """``migrations/`` beside the package in a checkout, or the installed copy."""
    in_checkout = Path(__file__).resolve().parent.parent / "migrations"
    if (in_checkout / "env.py").exists():
        return in_checkout
    installed = Path(__file__).resolve().parent / "migrations"
    if (installed / "env.py").exists():
        return installed
    raise DatabaseRefused(f"migrations not found (looked in {in_checkout} and {installed})")


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    return config


class Store:
    """The database, for the daemon and the CLI.  Create with :meth:`connect`."""

    def __init__(self, *, url: str, engine: AsyncEngine) -> None:
        self.url = url
        self.engine = engine

    @classmethod
    async def connect(cls, url: str, *, pool_size: int = 10) -> Store:
        """Open the engine and check the server answers, with an error naming the host."""
        store = cls(url=url, engine=create_engine(url, pool_size=pool_size))
        try:
            async with store._tx() as conn:
                await conn.execute(sa.text("SELECT 1"))
        except DatabaseError:
            await store.close()
            raise
        return store

    async def close(self) -> None:
        await self.engine.dispose()

    @asynccontextmanager
    async def _tx(self) -> AsyncIterator[AsyncConnection]:
        """A transaction; database failures become :class:`DatabaseError` naming the server."""
        try:
            async with self.engine.begin() as conn:
                yield conn
        except (OSError, asyncpg.PostgresError, sa.exc.DBAPIError, sa.exc.TimeoutError) as exc:
            raise _database_error(exc, self.url) from exc

    # ------------------------------------------------------------ schema

    async def migrate(self, revision: str = "head") -> None:
        """Upgrade the schema to ``revision`` (idempotent)."""
        await self._alembic(lambda cfg: command.upgrade(cfg, revision))

    async def downgrade(self, revision: str = "base") -> None:
        await self._alembic(lambda cfg: command.downgrade(cfg, revision))

    async def current_revision(self) -> str | None:
        async with self._tx() as conn:
            return await conn.run_sync(
                lambda sync: MigrationContext.configure(sync).get_current_revision()
            )

    async def _alembic(self, run: Callable[[Config], None]) -> None:
        def with_connection(sync_conn: Connection) -> None:
            cfg = alembic_config()
            cfg.attributes["connection"] = sync_conn
            run(cfg)

        async with self._tx() as conn:
            await conn.run_sync(with_connection)

    async def schema_drift(self) -> list[Any]:
        """Differences between the migrated schema and :mod:`reconciler.models` (empty: none)."""
        from alembic.autogenerate import compare_metadata

        async with self._tx() as conn:
            return await conn.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync), metadata)
            )

    # ------------------------------------------------------------ ops repos

    async def add_ops_repo(
        self,
        *,
        name: str,
        repo_url: str,
        branch: str = "main",
        path: str = "",
        sync_interval_s: int = 60,
    ) -> OpsRepo:
        try:
            async with self._tx() as conn:
                row = (
                    await conn.execute(
                        sa.insert(ops_repos)
                        .values(
                            name=name,
                            repo_url=repo_url,
                            branch=branch,
                            path=path,
                            sync_interval_s=sync_interval_s,
                        )
                        .returning(*_REPO_COLUMNS)
                    )
                ).one()
        except DatabaseError as exc:
            raise _constraint_as_input_error(exc, f"ops repo {name!r}") from exc
        return _repo(row)

    async def list_ops_repos(self) -> list[OpsRepo]:
        async with self._tx() as conn:
            rows = await conn.execute(sa.select(*_REPO_COLUMNS).order_by(ops_repos.c.name))
            return [_repo(r) for r in rows]

    async def get_ops_repo(self, name: str) -> OpsRepo | None:
        async with self._tx() as conn:
            row = (
                await conn.execute(sa.select(*_REPO_COLUMNS).where(ops_repos.c.name == name))
            ).one_or_none()
        return _repo(row) if row else None

    async def ops_repos_by_id(self, ids: Sequence[int]) -> dict[int, OpsRepo]:
        if not ids:
            return {}
        async with self._tx() as conn:
            rows = await conn.execute(
                sa.select(*_REPO_COLUMNS).where(ops_repos.c.id.in_(list(ids)))
            )
            return {r.id: _repo(r) for r in rows}

    async def ops_repos_due_for_sync(self) -> list[OpsRepo]:
        """Repos some deployment uses whose last sync is older than their interval."""
        query = sa.text("""
            SELECT r.id, r.name, r.repo_url, r.branch, r.path, r.sync_interval_s,
                   r.last_synced_at, r.last_sha, r.last_error
            FROM ops_repos r
            WHERE (r.last_synced_at IS NULL
                   OR r.last_synced_at + make_interval(secs => r.sync_interval_s) <= now())
              AND EXISTS (SELECT 1 FROM deployments d WHERE d.ops_repo_id = r.id)
            ORDER BY r.id
        """)
        async with self._tx() as conn:
            return [_repo(r) for r in await conn.execute(query)]

    async def record_repo_sync(self, *, repo_id: int, sha: str | None, error: str | None) -> None:
        """After a sync attempt: a success records the sha and clears the error; a failure keeps
        the last good sha and records the error."""
        values: dict[str, Any] = {"last_synced_at": sa.func.now(), "last_error": error}
        if sha is not None:
            values["last_sha"] = sha
        async with self._tx() as conn:
            await conn.execute(sa.update(ops_repos).where(ops_repos.c.id == repo_id).values(values))

    # ------------------------------------------------------------ deployments (writers' side)

    async def upsert_deployment(
        self,
        *,
        project: str,
        environment: str,
        ops_repo_id: int,
        image_ref: str,
        namespace: str | None = None,
        values_override: Any = None,
        desired_status: str = "active",
    ) -> Deployment:
        """What a pipeline does: INSERT ... ON CONFLICT (project, environment) DO UPDATE."""
        from sqlalchemy.dialects.postgresql import insert

        values: dict[str, Any] = {
            "project": project,
            "environment": environment,
            "ops_repo_id": ops_repo_id,
            "image_ref": image_ref,
            "namespace": namespace,
            "values_override": {} if values_override is None else values_override,
            "desired_status": desired_status,
        }
        insert_stmt = insert(deployments).values(values)
        updated = ["ops_repo_id", "image_ref", "values_override", "desired_status"]
        if namespace:
            updated.append("namespace")
        stmt = insert_stmt.on_conflict_do_update(
            constraint="deployments_project_environment_key",
            set_={k: insert_stmt.excluded[k] for k in updated},
        ).returning(*_DEPLOYMENT_COLUMNS)
        try:
            async with self._tx() as conn:
                row = (await conn.execute(stmt)).one()
        except DatabaseError as exc:
            what = f"deployment {shown(project)}/{shown(environment)}"
            raise _constraint_as_input_error(exc, what) from exc
        return _deployment(row)

    async def set_desired(self, *, project: str, environment: str, **changes: Any) -> Deployment:
        """Change desired-state columns of one deployment (the CLI and tests use this)."""
        allowed = {"image_ref", "desired_status", "values_override", "namespace", "ops_repo_id"}
        unknown = set(changes) - allowed
        if unknown:
            raise InputError(f"not a desired-state column: {', '.join(sorted(unknown))}")
        try:
            async with self._tx() as conn:
                row = (
                    await conn.execute(
                        sa.update(deployments)
                        .where(
                            deployments.c.project == project,
                            deployments.c.environment == environment,
                        )
                        .values(changes)
                        .returning(*_DEPLOYMENT_COLUMNS)
                    )
                ).one_or_none()
        except DatabaseError as exc:
            what = f"deployment {shown(project)}/{shown(environment)}"
            raise _constraint_as_input_error(exc, what) from exc
        if row is None:
            raise InputError(f"no deployment {project}/{environment}")
        return _deployment(row)

    async def get_deployment(self, *, project: str, environment: str) -> Deployment | None:
        async with self._tx() as conn:
            row = (
                await conn.execute(
                    sa.select(*_DEPLOYMENT_COLUMNS).where(
                        deployments.c.project == project, deployments.c.environment == environment
                    )
                )
            ).one_or_none()
        return _deployment(row) if row else None

    async def get_deployment_by_id(self, deployment_id: int) -> Deployment | None:
        async with self._tx() as conn:
            row = (
                await conn.execute(
                    sa.select(*_DEPLOYMENT_COLUMNS).where(deployments.c.id == deployment_id)
                )
            ).one_or_none()
        return _deployment(row) if row else None

    async def list_deployments(self) -> list[Deployment]:
        async with self._tx() as conn:
            rows = await conn.execute(
                sa.select(*_DEPLOYMENT_COLUMNS).order_by(
                    deployments.c.project, deployments.c.environment
                )
            )
            return [_deployment(r) for r in rows]

    # ------------------------------------------------------------ the daemon's side

    async def claim(
        self,
        *,
        daemon_id: str,
        limit: int,
        lease_s: float,
        changed_repos: Mapping[int, str] | None = None,
        in_flight: Sequence[int] = (),
    ) -> list[Deployment]:
        """Claim up to ``limit`` deployments that need work, for ``lease_s`` seconds.

        Needing work: a new generation; a failed one whose retry is due; one left 'syncing' by a
        daemon whose lease expired; or an active healthy or failed one whose ops repo moved to
        another commit (``changed_repos``: repo id -> new sha): a commit may change its output,
        or fix what made it fail.  Rows leased by another daemon are skipped,
        and so are rows another transaction holds (SKIP LOCKED), so daemons never share work.

        A claimed row still carrying an attempt (its daemon died mid-rollout) gets that attempt
        closed as 'interrupted' in the same transaction, so it is closed exactly once.  A daemon
        restarted under the same ``daemon_id`` takes its own rows back at once; ``in_flight``
        names the rows this daemon is working on now, which it must not take again.
        """
        repo_ids = list(changed_repos or {})
        repo_shas = [changed_repos[i] for i in repo_ids] if changed_repos else []
        claim_sql = sa.text("""
            WITH candidates AS (
                SELECT d.id, d.claimed_by AS previous_owner FROM deployments d
                -- Two branches, each served by its own index (the partial
                -- deployments_needing_work, and deployments_ops_repo_id), so a converged
                -- fleet costs an index probe, not a scan.
                WHERE d.id IN (
                    SELECT id FROM deployments
                    WHERE (generation <> observed_generation
                           OR current_status IN ('syncing', 'failed'))
                      AND (generation <> observed_generation
                           OR current_status = 'syncing'
                           OR next_attempt_at <= now())
                    UNION
                    SELECT id FROM deployments
                    WHERE ops_repo_id = ANY(CAST(:repo_ids AS bigint[]))
                      AND desired_status = 'active'
                      AND current_status IN ('healthy', 'failed')
                      AND current_sha IS DISTINCT FROM
                          (CAST(:repo_shas AS text[]))[
                              array_position(CAST(:repo_ids AS bigint[]), ops_repo_id)])
                  AND (d.lease_expires_at IS NULL OR d.lease_expires_at < now()
                       OR d.claimed_by = :daemon_id)
                  AND d.id <> ALL(CAST(:in_flight AS bigint[]))
                ORDER BY d.id
                LIMIT :limit
                FOR UPDATE SKIP LOCKED
            )
            UPDATE deployments d
            SET claimed_by = :daemon_id,
                lease_expires_at = now() + make_interval(secs => :lease_s)
            FROM candidates c
            WHERE d.id = c.id
            RETURNING d.id, d.attempt_started_at, c.previous_owner
        """)
        async with self._tx() as conn:
            claimed = (
                await conn.execute(
                    claim_sql,
                    {
                        "daemon_id": daemon_id,
                        "limit": limit,
                        "lease_s": lease_s,
                        "repo_ids": repo_ids,
                        "repo_shas": repo_shas,
                        "in_flight": list(in_flight),
                    },
                )
            ).all()
            if not claimed:
                return []
            for row in claimed:
                if row.attempt_started_at is not None:
                    await self._close_interrupted(
                        conn,
                        deployment_id=row.id,
                        daemon=row.previous_owner,
                        message="the daemon running this attempt stopped before it finished",
                    )
            rows = await conn.execute(
                sa.select(*_DEPLOYMENT_COLUMNS)
                .where(deployments.c.id.in_([r.id for r in claimed]))
                .order_by(deployments.c.id)
            )
            return [_deployment(r) for r in rows]

    async def _close_interrupted(
        self, conn: AsyncConnection, *, deployment_id: int, daemon: str | None, message: str
    ) -> None:
        """Write the 'interrupted' history row of an attempt left open, and clear it."""
        await conn.execute(
            sa.text("""
            WITH old AS (
                SELECT id, attempt_started_at, attempt_action, attempt_image_ref,
                       attempt_generation, values_override
                FROM deployments
                WHERE id = :id AND attempt_started_at IS NOT NULL
                FOR UPDATE
            ), closed AS (
                UPDATE deployments d
                SET attempt_started_at = NULL, attempt_action = NULL,
                    attempt_image_ref = NULL, attempt_generation = NULL
                FROM old
                WHERE d.id = old.id
                RETURNING old.*
            )
            INSERT INTO deployment_history (deployment_id, generation, action, status, image_ref,
                                            values_override, message, daemon, started_at,
                                            finished_at, duration_ms)
            SELECT id, attempt_generation, attempt_action, 'interrupted', attempt_image_ref,
                   values_override, :message, :daemon, attempt_started_at, now(),
                   LEAST(extract(epoch FROM now() - attempt_started_at) * 1000, 2147483647)::int
            FROM closed
        """),
            {"id": deployment_id, "daemon": daemon, "message": message},
        )

    async def renew_leases(
        self, *, daemon_id: str, ids: Sequence[int], lease_s: float
    ) -> dict[int, int]:
        """Extend this daemon's leases; returns id -> current generation of the rows still ours,
        so a long rollout learns when it has been superseded even if a NOTIFY was missed."""
        if not ids:
            return {}
        async with self._tx() as conn:
            rows = await conn.execute(
                sa.text("""
                UPDATE deployments
                SET lease_expires_at = now() + make_interval(secs => :lease_s)
                WHERE id = ANY(CAST(:ids AS bigint[])) AND claimed_by = :daemon_id
                RETURNING id, generation
            """),
                {"ids": list(ids), "daemon_id": daemon_id, "lease_s": lease_s},
            )
            return {r.id: r.generation for r in rows}

    async def release(self, *, deployment_id: int, daemon_id: str) -> None:
        """Give up a claim without recording anything (shutting down before starting work)."""
        async with self._tx() as conn:
            await conn.execute(
                sa.update(deployments)
                .where(deployments.c.id == deployment_id, deployments.c.claimed_by == daemon_id)
                .values(claimed_by=None, lease_expires_at=None)
            )

    async def mark_converged(
        self, *, deployment_id: int, daemon_id: str, generation: int, sha: str | None
    ) -> None:
        """Nothing to apply (the rendered output is what is already applied and healthy): the
        generation is observed and the commit recorded, with no history row (no attempt ran)."""
        async with self._tx() as conn:
            await conn.execute(
                sa.update(deployments)
                .where(deployments.c.id == deployment_id, deployments.c.claimed_by == daemon_id)
                .values(
                    observed_generation=generation,
                    current_sha=sha,
                    claimed_by=None,
                    lease_expires_at=None,
                )
            )

    async def start_attempt(
        self, *, deployment_id: int, daemon_id: str, action: str, image_ref: str, generation: int
    ) -> dt.datetime | None:
        """Mark the deployment 'syncing' and remember the attempt, so that a crash leaves a
        trace that the next claim closes as interrupted.  Returns the attempt's start time, or
        None when the claim was lost."""
        async with self._tx() as conn:
            row = (
                await conn.execute(
                    sa.text("""
                UPDATE deployments
                SET current_status = 'syncing',
                    status_changed_at = CASE WHEN current_status = 'syncing'
                                             THEN status_changed_at ELSE now() END,
                    attempt_started_at = clock_timestamp(), attempt_action = :action,
                    attempt_image_ref = :image_ref, attempt_generation = :generation
                WHERE id = :id AND claimed_by = :daemon_id
                RETURNING attempt_started_at
            """),
                    {
                        "id": deployment_id,
                        "daemon_id": daemon_id,
                        "action": action,
                        "image_ref": image_ref,
                        "generation": generation,
                    },
                )
            ).one_or_none()
        return row.attempt_started_at if row else None

    async def finish_attempt(
        self,
        *,
        deployment_id: int,
        daemon_id: str,
        started_at: dt.datetime,
        generation: int,
        result: AttemptResult,
    ) -> bool:
        """Record an attempt: the history row and the deployment's current_* columns in one
        transaction, and release the claim.  Returns False (and writes nothing) if the attempt
        is no longer ours: another daemon took the lease over and closed it as interrupted."""
        healthy = result.status == "healthy"
        current_status = {"healthy": "healthy", "stopped": "stopped"}.get(result.status, "failed")
        if result.status in ("superseded", "interrupted"):
            # The next attempt decides the status; until then it is still rolling.
            current_status = "syncing"
        sets: dict[str, Any] = {
            "current_status": current_status,
            "status_changed_at": sa.case(
                (deployments.c.current_status == current_status, deployments.c.status_changed_at),
                else_=sa.func.now(),
            ),
            "status_message": result.message,
            "attempt_started_at": None,
            "attempt_action": None,
            "attempt_image_ref": None,
            "attempt_generation": None,
            "claimed_by": None,
            "lease_expires_at": None,
            "attempts": result.attempts,
            "next_attempt_at": result.next_attempt_at,
        }
        if result.status not in ("superseded", "interrupted"):
            sets["observed_generation"] = generation
        if result.status in ("healthy", "stopped", "failed"):
            sets["current_image_ref"] = result.image_ref
            sets["current_values"] = sa.cast(sa.literal(result.values_override, JSONB), JSONB)
            sets["current_sha"] = result.sha
            sets["applied_digest"] = result.digest if healthy else None
        if healthy:
            sets["deployed_at"] = sa.func.now()
        if result.restore_desired and healthy:
            sets["image_ref"] = result.image_ref
            sets["values_override"] = sa.cast(sa.literal(result.values_override, JSONB), JSONB)
            sets["desired_status"] = "active"
            # The trigger bumps generation by one for this change of desired state; the
            # daemon made it, so it is observed already.
            sets["observed_generation"] = generation + 1
        async with self._tx() as conn:
            updated = (
                await conn.execute(
                    sa.update(deployments)
                    .where(
                        deployments.c.id == deployment_id,
                        deployments.c.claimed_by == daemon_id,
                        deployments.c.attempt_started_at == started_at,
                    )
                    .values(sets)
                    .returning(deployments.c.id)
                )
            ).one_or_none()
            if updated is None:
                return False
            await conn.execute(
                sa.insert(deployment_history).values(
                    deployment_id=deployment_id,
                    generation=generation,
                    action=result.action,
                    status=result.status,
                    image_ref=result.image_ref,
                    sha=result.sha,
                    values_override=result.values_override,
                    digest=result.digest,
                    message=result.message,
                    daemon=daemon_id,
                    started_at=started_at,
                    finished_at=sa.func.clock_timestamp(),
                    duration_ms=sa.cast(
                        sa.func.least(
                            sa.extract("epoch", sa.func.clock_timestamp() - started_at) * 1000,
                            2147483647,
                        ),
                        sa.Integer,
                    ),
                )
            )
        return True

    async def fail_without_attempt(
        self,
        *,
        deployment_id: int,
        daemon_id: str,
        generation: int,
        action: str,
        image_ref: str,
        values_override: Any,
        sha: str | None,
        message: str,
        attempts: int,
        next_attempt_at: dt.datetime | None,
    ) -> bool:
        """An attempt that failed before touching the cluster (bad row, template error, no
        checkout): recorded like any attempt, with one history row."""
        started_at = await self.start_attempt(
            deployment_id=deployment_id,
            daemon_id=daemon_id,
            action=action,
            image_ref=image_ref,
            generation=generation,
        )
        if started_at is None:
            return False
        return await self.finish_attempt(
            deployment_id=deployment_id,
            daemon_id=daemon_id,
            started_at=started_at,
            generation=generation,
            result=AttemptResult(
                action=action,
                status="failed",
                image_ref=image_ref,
                values_override=values_override,
                sha=sha,
                digest=None,
                message=message,
                attempts=attempts,
                next_attempt_at=next_attempt_at,
            ),
        )

    async def recorded_status(
        self, *, deployment_id: int, started_at: dt.datetime, daemon_id: str
    ) -> str | None:
        """The status this daemon recorded for the attempt that started at ``started_at``, or
        None.  After a write whose acknowledgement was lost, this tells whether it committed."""
        async with self._tx() as conn:
            return (
                await conn.execute(
                    sa.select(deployment_history.c.status).where(
                        deployment_history.c.deployment_id == deployment_id,
                        deployment_history.c.started_at == started_at,
                        deployment_history.c.daemon == daemon_id,
                    )
                )
            ).scalar_one_or_none()

    async def last_healthy(
        self, *, deployment_id: int, other_than_image: str
    ) -> HistoryEntry | None:
        """The newest healthy deploy or rollback of an image other than ``other_than_image``."""
        async with self._tx() as conn:
            row = (
                await conn.execute(
                    sa.select(*_HISTORY_COLUMNS)
                    .where(
                        deployment_history.c.deployment_id == deployment_id,
                        deployment_history.c.status == "healthy",
                        deployment_history.c.action.in_(["deploy", "rollback"]),
                        deployment_history.c.image_ref != other_than_image,
                    )
                    .order_by(deployment_history.c.id.desc())
                    .limit(1)
                )
            ).one_or_none()
        return _history(row) if row else None

    async def history(self, *, deployment_id: int, limit: int = 20) -> list[HistoryEntry]:
        async with self._tx() as conn:
            rows = await conn.execute(
                sa.select(*_HISTORY_COLUMNS)
                .where(deployment_history.c.deployment_id == deployment_id)
                .order_by(deployment_history.c.id.desc())
                .limit(limit)
            )
            return [_history(r) for r in rows]

    async def status_rows(self) -> list[dict[str, Any]]:
        """The ``deployment_status`` view, as humans read it."""
        async with self._tx() as conn:
            rows = await conn.execute(sa.text("SELECT * FROM deployment_status"))
            return [dict(r._mapping) for r in rows]

    async def counts_by_status(self) -> dict[str, int]:
        async with self._tx() as conn:
            rows = await conn.execute(
                sa.select(deployments.c.current_status, sa.func.count()).group_by(
                    deployments.c.current_status
                )
            )
            return {r[0]: r[1] for r in rows}


# ---------------------------------------------------------------- LISTEN


class Listener:
    """A dedicated connection LISTENing on the ``reconciler`` channel; reconnects when lost.

    ``on_notify`` receives each payload (a deployment id, or ``repo:<id>``).  ``connected`` is
    set while the LISTEN is in place: whoever waits on it learns the connection is back and should
    poll once, since NOTIFYs sent while it was down are gone.
    """

    def __init__(
        self,
        *,
        url: str,
        on_notify: Callable[[str], None],
        on_reconnect: Callable[[], None],
        log: Callable[..., None] | None = None,
    ) -> None:
        self._dsn = asyncpg_dsn(url)
        self._url = url
        self._on_notify = on_notify
        self._on_reconnect = on_reconnect
        self._log = log
        self.connected = asyncio.Event()

    async def run(self, *, stop: asyncio.Event, backoff_max_s: float = 10.0) -> None:
        delay = 0.2
        while not stop.is_set():
            conn: asyncpg.Connection | None = None
            lost = asyncio.Event()
            try:
                conn = await asyncpg.connect(self._dsn, timeout=10)
                conn.add_termination_listener(lambda _c, lost=lost: lost.set())
                await conn.add_listener(NOTIFY_CHANNEL, self._deliver)
                self.connected.set()
                self._on_reconnect()
                delay = 0.2
                # Wake every few seconds to check the connection is alive: a server that
                # vanished without closing the socket would otherwise leave us deaf.
                while not stop.is_set() and not lost.is_set():
                    if not await _first_of(stop, lost, timeout_s=5.0):
                        await conn.execute("SELECT 1", timeout=5.0)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
                if self._log:
                    self._log(
                        "listen_lost",
                        error=str(exc) or type(exc).__name__,
                        retry_in_s=round(delay, 2),
                        database=describe_url(self._url),
                    )
            finally:
                self.connected.clear()
                if conn is not None and not conn.is_closed():
                    await conn.close(timeout=2)
            if stop.is_set():
                return
            with suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=delay)
            delay = min(delay * 2, backoff_max_s)

    def _deliver(self, _conn: object, _pid: int, _channel: str, payload: object) -> None:
        self._on_notify(str(payload))


async def _first_of(*events: asyncio.Event, timeout_s: float) -> bool:
    """Wait until one of ``events`` is set (True) or the timeout passes (False)."""
    waiters = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        done, _pending = await asyncio.wait(
            waiters, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        for waiter in waiters:
            waiter.cancel()
    return bool(done)


# ---------------------------------------------------------------- errors


# SQLSTATE classes a retry can outlive: connection exceptions, serialization failures and
# deadlocks, insufficient resources, operator intervention (shutdown, "cannot connect now").
_TRANSIENT_SQLSTATE_CLASSES = frozenset({"08", "40", "53", "57"})


def _database_error(exc: BaseException, url: str) -> DatabaseError:
    where = describe_url(url)
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip() or type(orig).__name__
    cls = DatabaseUnavailable if _is_transient(exc) else DatabaseRefused
    if (
        isinstance(orig, OSError)
        or "connect" in type(orig).__name__.lower()
        or isinstance(exc, OSError)
    ):
        return cls(f"cannot reach PostgreSQL at {where}: {text}")
    return cls(f"PostgreSQL at {where}: {text.splitlines()[0] if text else text}")


def _is_transient(exc: BaseException) -> bool:
    """Whether the same statement may succeed later: the server was unreachable, restarting,
    or dropped the connection, rather than refusing the statement itself."""
    if isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, sa.exc.TimeoutError):
        return True  # no pooled connection became free: the server is slow or away
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError | asyncpg.exceptions.ConnectionDoesNotExistError):
            return True
        sqlstate = getattr(current, "sqlstate", None)
        if isinstance(sqlstate, str) and sqlstate[:2] in _TRANSIENT_SQLSTATE_CLASSES:
            return True
        current = getattr(current, "orig", None) or current.__cause__
    return False


# Words for constraints whose server message ("new row ... violates check constraint") does not
# say what is wrong; constraints raised by the trigger carry their own words.
_CONSTRAINT_WORDS = {
    "ops_repos_name_key": "an ops repo with this name exists already",
    "ops_repos_name_is_slug": "the name must be lowercase letters, digits, '_' or '-'",
    "ops_repos_repo_url_not_blank": "the repository URL must not be empty or contain spaces",
    "ops_repos_path_is_relative": "the path must be relative and stay inside the repository",
    "deployments_image_ref_without_spaces": "image_ref must be non-empty, without spaces",
    "deployments_values_override_is_object": "values_override must be a JSON object",
    "deployments_desired_status_known": "desired_status must be active, stopped or rollback",
    "deployments_ops_repo_id_fkey": "ops_repo_id names no ops repo",
    "deployments_project_environment_key": "this project and environment exist already",
}


def _constraint_as_input_error(exc: DatabaseError, what: str) -> InputError:
    """A refused write, as the writer should read it: what, which rule, in words."""
    orig = _postgres_error(exc)
    constraint = getattr(orig, "constraint_name", None)
    sqlstate = getattr(orig, "sqlstate", None)
    server_message = str(orig) if orig is not None else str(exc)
    if sqlstate == "22021" or "0x00" in server_message:
        return InputError(f"{what}: text values must not contain NUL characters")
    if constraint in _CONSTRAINT_WORDS and "violates" in server_message:
        return InputError(f"{what}: {_CONSTRAINT_WORDS[constraint]} ({constraint})")
    if constraint:
        return InputError(f"{what}: {server_message} ({constraint})")
    return InputError(f"{what}: {exc}")


def _postgres_error(exc: BaseException) -> asyncpg.PostgresError | None:
    """The server's error behind SQLAlchemy's and our wrappers, if there is one."""
    seen: BaseException | None = exc
    for _ in range(6):
        if seen is None:
            return None
        if isinstance(seen, asyncpg.PostgresError):
            return seen
        seen = seen.__cause__ or getattr(seen, "orig", None)
    return None


def shown(name: str) -> str:
    """A user-supplied name for a message: control characters escaped, long ones cut."""
    text = name.encode("unicode_escape").decode("ascii") if not name.isprintable() else name
    return text if len(text) <= 64 else text[:61] + "..."
