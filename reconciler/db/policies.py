"""``ops_repo_policies``: what the deployments of one ops repo may touch."""

from __future__ import annotations

from reconciler.db import rows
from reconciler.db.connection import RawConnection
from reconciler.db.errors import refused_write
from reconciler.db.inventory import Inventory
from reconciler.db.queries import query
from reconciler.errors import DatabaseError
from reconciler.model import ObjectRef, RepoPolicy


class Policies(Inventory):
    async def policy_for(self, ops_repo_id: int) -> RepoPolicy:
        """The policy of an ops repo: its row, or the defaults when it has none."""
        async with self._raw_once() as conn:
            return await self._policy_in(conn, ops_repo_id)

    async def policy_and_inventory(
        self, *, ops_repo_id: int, deployment_id: int
    ) -> tuple[RepoPolicy, list[ObjectRef]]:
        """:meth:`policy_for` the ops repo and the deployment's inventory, in one statement
        (what an attempt reads before it admits its render)."""
        params = {"ops_repo_id": ops_repo_id, "deployment_id": deployment_id}
        async with self._raw_once() as once:
            found = (await once.execute(query("policy_and_inventory"), params)).all()
        first = found[0]
        policy = rows.policy(first) if first.has_policy else RepoPolicy()
        inventory = [
            ObjectRef(r.api_version, r.kind, r.name, r.namespace or None)
            for r in found
            if r.kind is not None
        ]
        return policy, inventory

    async def _policy_in(self, conn: RawConnection, ops_repo_id: int) -> RepoPolicy:
        row = (await conn.execute(query("policy_for"), {"ops_repo_id": ops_repo_id})).one_or_none()
        return rows.policy(row) if row else RepoPolicy()

    async def set_policy(self, *, ops_repo_id: int, policy: RepoPolicy) -> RepoPolicy:
        """Set (or replace) an ops repo's policy.  For whoever administers the database: the
        daemon's and the pipelines' roles may read policies, never write them."""
        params = {
            "ops_repo_id": ops_repo_id,
            "namespaces": list(policy.namespaces),
            "cluster_kinds": list(policy.cluster_kinds),
            "denied_kinds": list(policy.denied_kinds),
            "service_account": policy.service_account,
        }
        try:
            async with self._tx() as conn:
                row = (await conn.execute(query("set_policy"), params)).one()
        except DatabaseError as exc:
            raise refused_write(exc, f"policy of ops repo {ops_repo_id}") from exc
        return rows.policy(row)
