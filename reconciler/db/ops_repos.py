"""The ``ops_repos`` table: registering repos and recording their syncs."""

from __future__ import annotations

from collections.abc import Sequence

from reconciler.db import rows
from reconciler.db.connection import Transactional
from reconciler.db.errors import refused_write
from reconciler.db.listener import NOTIFY_CHANNEL
from reconciler.db.queries import query
from reconciler.errors import DatabaseError
from reconciler.model import OpsRepo


class OpsRepos(Transactional):
    async def add_ops_repo(
        self,
        *,
        name: str,
        repo_url: str,
        branch: str = "main",
        path: str = "",
        sync_interval_s: int = 60,
    ) -> OpsRepo:
        params = {
            "name": name,
            "repo_url": repo_url,
            "branch": branch,
            "path": path,
            "sync_interval_s": sync_interval_s,
        }
        try:
            async with self._tx() as conn:
                row = (await conn.execute(query("add_ops_repo"), params)).one()
        except DatabaseError as exc:
            raise refused_write(exc, f"ops repo {name!r}") from exc
        return rows.ops_repo(row)

    async def list_ops_repos(self) -> list[OpsRepo]:
        async with self._tx() as conn:
            return [rows.ops_repo(r) for r in await conn.execute(query("list_ops_repos"))]

    async def get_ops_repo(self, name: str) -> OpsRepo | None:
        async with self._tx() as conn:
            row = (await conn.execute(query("get_ops_repo"), {"name": name})).one_or_none()
        return rows.ops_repo(row) if row else None

    async def ops_repos_by_id(self, ids: Sequence[int]) -> dict[int, OpsRepo]:
        if not ids:
            return {}
        async with self._raw_once() as conn:
            found = await conn.execute(query("ops_repos_by_id"), {"ids": list(ids)})
            return {r.id: rows.ops_repo(r) for r in found}

    async def ops_repos_due_for_sync(self) -> list[OpsRepo]:
        """Repos some deployment uses whose last sync is older than their interval."""
        async with self._raw_once() as conn:
            return [rows.ops_repo(r) for r in await conn.execute(query("ops_repos_due_for_sync"))]

    async def record_repo_sync(self, *, repo_id: int, sha: str | None, error: str | None) -> None:
        """After a sync attempt: a success records the sha and clears the error; a failure keeps
        the last good sha and records the error."""
        async with self._tx() as conn:
            await conn.execute(
                query("record_repo_sync"), {"repo_id": repo_id, "sha": sha, "error": error}
            )

    async def notify_repo_sync(self, repo_ids: Sequence[int]) -> list[int]:
        """Ask the daemon listening on the database to sync these repos now; returns the ids
        it was asked for (the known ones).  The NOTIFYs go out when the transaction commits."""
        if not repo_ids:
            return []
        async with self._tx() as conn:
            notified = await conn.execute(
                query("notify_repo_sync"), {"channel": NOTIFY_CHANNEL, "ids": list(repo_ids)}
            )
            return [r.id for r in notified]

    # ---- git webhooks and freshness

    async def ops_repos_in_use(self) -> list[OpsRepo]:
        """Every ops repo some deployment uses (the daemon checks their heads)."""
        async with self._raw_once() as conn:
            return [rows.ops_repo(r) for r in await conn.execute(query("ops_repos_in_use"))]

    async def update_ops_repo(
        self,
        *,
        name: str,
        repo_url: str | None = None,
        branch: str | None = None,
        path: str | None = None,
        sync_interval_s: int | None = None,
    ) -> OpsRepo | None:
        """Change the given columns of ops repo ``name`` (None leaves one as it is); None when
        there is no such repo.  A new path makes its deployments render again."""
        params = {
            "name": name,
            "set_repo_url": repo_url is not None,
            "repo_url": repo_url,
            "set_branch": branch is not None,
            "branch": branch,
            "set_path": path is not None,
            "path": path,
            "set_sync_interval_s": sync_interval_s is not None,
            "sync_interval_s": sync_interval_s,
        }
        try:
            async with self._tx() as conn:
                before = (await conn.execute(query("get_ops_repo"), {"name": name})).one_or_none()
                row = (await conn.execute(query("update_ops_repo"), params)).one_or_none()
                if row is not None and before is not None and before.path != row.path:
                    await conn.execute(query("rerender_ops_repo"), {"ops_repo_id": row.id})
        except DatabaseError as exc:
            raise refused_write(exc, f"ops repo {name!r}") from exc
        return rows.ops_repo(row) if row else None

    async def remove_ops_repo(self, name: str) -> list[str]:
        """Delete ops repo ``name`` unless a deployment uses it.  Returns the deployments
        (``project/environment``) that still use it, empty when it was removed; LookupError
        when there is no such repo."""
        try:
            async with self._tx() as conn:
                removed = (await conn.execute(query("remove_ops_repo"), {"name": name})).first()
                if removed is not None:
                    return []
                users = await conn.execute(query("deployments_of_ops_repo"), {"name": name})
                found = [f"{u.project}/{u.environment}" for u in users]
        except DatabaseError as exc:
            raise refused_write(exc, f"ops repo {name!r}") from exc
        if not found:
            raise LookupError(name)
        return found
