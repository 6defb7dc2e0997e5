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
        async with self._raw_tx() as conn:
            found = await conn.execute(query("ops_repos_by_id"), {"ids": list(ids)})
            return {r.id: rows.ops_repo(r) for r in found}

    async def ops_repos_due_for_sync(self) -> list[OpsRepo]:
        """Repos some deployment uses whose last sync is older than their interval."""
        async with self._raw_tx() as conn:
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
