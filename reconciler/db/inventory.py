"""The inventory: which deployment owns which object (``deployment_objects``)."""

from __future__ import annotations

from collections.abc import Sequence

from reconciler.db.connection import Transactional
from reconciler.db.queries import query
from reconciler.model import ObjectRef


class _Taken(Exception):
    """Rolls the claim back: some objects belong to another deployment."""

    def __init__(self, owners: list[tuple[ObjectRef, str]]) -> None:
        super().__init__("taken")
        self.owners = owners


class Inventory(Transactional):
    async def claim_objects(
        self, *, deployment_id: int, refs: Sequence[ObjectRef]
    ) -> list[tuple[ObjectRef, str]]:
        """Record ``refs`` as the deployment's objects, all or none: the objects another
        deployment owns are returned with their owner (``project/environment``)."""
        if not refs:
            return []
        keys = {
            "groups": [r.api_version.rpartition("/")[0] for r in refs],
            "kinds": [r.kind for r in refs],
            "namespaces": [r.namespace or "" for r in refs],
            "names": [r.name for r in refs],
        }
        params = {"deployment_id": deployment_id, "versions": [r.api_version for r in refs]}
        try:
            async with self._tx() as conn:
                await conn.execute(query("claim_objects"), {**params, **keys})
                rows = await conn.execute(
                    query("foreign_owners"), {"deployment_id": deployment_id, **keys}
                )
                owners = [
                    (
                        ObjectRef(r.api_version, r.kind, r.name, r.namespace or None),
                        f"{r.project}/{r.environment}",
                    )
                    for r in rows
                ]
                if owners:
                    raise _Taken(owners)
        except _Taken as taken:
            return taken.owners
        return []
