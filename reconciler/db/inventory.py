"""The inventory: which deployment owns which object (``deployment_objects``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from reconciler.db.connection import RawConnection, Transactional
from reconciler.db.queries import query
from reconciler.model import ObjectHealth, ObjectRef


def object_keys(refs: Sequence[ObjectRef]) -> dict[str, list[str]]:
    """The inventory's key columns of ``refs``, as arrays (the API group, not the version)."""
    return {
        "groups": [r.api_version.rpartition("/")[0] for r in refs],
        "kinds": [r.kind for r in refs],
        "namespaces": [r.namespace or "" for r in refs],
        "names": [r.name for r in refs],
    }


def _ref(row: Any) -> ObjectRef:
    return ObjectRef(row.api_version, row.kind, row.name, row.namespace or None)


class Taken(Exception):
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
        try:
            async with self._raw_tx() as conn:
                await self._claim_in(conn, deployment_id=deployment_id, refs=refs)
        except Taken as taken:
            return taken.owners
        return []

    async def _claim_in(
        self, conn: RawConnection, *, deployment_id: int, refs: Sequence[ObjectRef]
    ) -> None:
        """Claim ``refs`` in the transaction of ``conn``; :class:`Taken` (to roll it back) when
        another deployment owns some."""
        if not refs:
            return
        keys = object_keys(refs)
        params = {"deployment_id": deployment_id, "versions": [r.api_version for r in refs]}
        await conn.execute(query("claim_objects"), {**params, **keys})
        await self._raise_taken(conn, deployment_id=deployment_id, keys=keys)

    async def _raise_taken(
        self, conn: RawConnection, *, deployment_id: int, keys: dict[str, list[str]]
    ) -> None:
        """:class:`Taken` (to roll the transaction back) when another deployment owns some of
        the objects ``keys`` name; a statement of its own, so it sees owners that committed
        while this transaction's insert waited on them."""
        rows = await conn.execute(query("foreign_owners"), {"deployment_id": deployment_id, **keys})
        owners = [
            (
                ObjectRef(r.api_version, r.kind, r.name, r.namespace or None),
                f"{r.project}/{r.environment}",
            )
            for r in rows
        ]
        if owners:
            raise Taken(owners)

    async def inventory_of(self, deployment_id: int) -> list[ObjectRef]:
        """The objects the deployment owns (what prune and delete work from)."""
        async with self._raw_once() as conn:
            return await self._inventory_in(conn, deployment_id)

    async def _inventory_in(self, conn: RawConnection, deployment_id: int) -> list[ObjectRef]:
        found = await conn.execute(query("inventory_of"), {"deployment_id": deployment_id})
        return [_ref(r) for r in found]

    async def all_inventory(self) -> list[tuple[int, ObjectRef]]:
        """Every owned object with its deployment's id (what the watches must cover)."""
        async with self._tx() as conn:
            return [(r.deployment_id, _ref(r)) for r in await conn.execute(query("all_inventory"))]

    async def forget_objects(self, *, deployment_id: int, refs: Sequence[ObjectRef]) -> None:
        """Drop ``refs`` from the deployment's inventory (pruned, deleted, or let go)."""
        if refs:
            params = {"deployment_id": deployment_id, **object_keys(refs)}
            async with self._tx() as conn:
                await conn.execute(query("forget_objects"), params)

    async def record_object_health(self, healths: Sequence[ObjectHealth]) -> None:
        """The health the watch saw of owned objects (unchanged rows are not written)."""
        if not healths:
            return
        params = {
            **object_keys([h.ref for h in healths]),
            "healths": [h.health for h in healths],
            "messages": [h.message[:1000] for h in healths],
        }
        async with self._raw_once() as conn:
            await conn.execute(query("record_object_health"), params)
