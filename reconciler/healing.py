"""Finding drift: what someone else changed or deleted among a deployment's applied objects.

Each rendered object is applied as a server-side dry-run (the live object with our fields
merged in, as the heal would leave it) and compared with the live object: the differing
fields are exactly what a heal changes back.  Which field managers changed them comes from the
live object's ``managedFields``.  The comparison is pure (:mod:`reconciler.cluster.drift`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from reconciler.cluster.drift import changed_by, describe_drift, drifted_fields
from reconciler.model import ObjectRef
from reconciler.ports import Cluster


async def find_drift(
    objects: Sequence[Mapping[str, Any]], *, cluster: Cluster, field_manager: str
) -> list[str]:
    """One description per drifted object (empty: nothing drifted)."""
    found = await asyncio.gather(
        *(_drift_of(obj, cluster=cluster, field_manager=field_manager) for obj in objects)
    )
    return [description for description in found if description]


async def _drift_of(obj: Mapping[str, Any], *, cluster: Cluster, field_manager: str) -> str:
    ref = ObjectRef.from_object(obj)
    live = await cluster.get(ref)
    if live is None:
        return describe_drift(str(ref), drifted_fields(desired=obj, live=None), [])
    desired = await cluster.apply(obj, field_manager=field_manager, dry_run=True)
    paths = drifted_fields(desired=desired, live=live)
    if not paths:
        return ""
    managers = changed_by(live=live, paths=paths, our_manager=field_manager)
    return describe_drift(str(ref), paths, managers)
