"""History retention: old ``deployment_history`` rows deleted in bounded batches."""

from __future__ import annotations

import math

from reconciler.db.connection import Transactional
from reconciler.db.queries import query
from reconciler.errors import InputError

_SECONDS_PER_DAY = 86400.0


class Retention(Transactional):
    async def prune_history(self, *, keep_days: float, batch: int = 1000) -> int:
        """Delete history rows finished more than ``keep_days`` ago, ``batch`` rows per
        transaction (so no lock is held long); returns how many.  A live deployment keeps its
        newest row and what a rollback needs (see ``prune_history`` in queries.sql)."""
        if not (keep_days >= 0 and math.isfinite(keep_days)):
            raise InputError(f"keep_days must be a finite number of days >= 0, got {keep_days!r}")
        if batch < 1:
            raise InputError(f"batch must be at least 1, got {batch!r}")
        params = {"keep_s": keep_days * _SECONDS_PER_DAY, "batch": batch}
        total = 0
        while True:
            async with self._tx() as conn:
                deleted = len((await conn.execute(query("prune_history"), params)).all())
            total += deleted
            if deleted < batch:
                return total
