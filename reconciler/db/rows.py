"""Result rows as the shared dataclasses of :mod:`reconciler.model`."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from reconciler.model import Deployment, HistoryEntry, OpsRepo, RepoPolicy


def deployment(row: Any) -> Deployment:
    return Deployment(**row._mapping)


def ops_repo(row: Any) -> OpsRepo:
    return OpsRepo(**row._mapping)


def history_entry(row: sa.Row[Any]) -> HistoryEntry:
    return HistoryEntry(**row._mapping)


def policy(row: Any) -> RepoPolicy:
    return RepoPolicy(
        namespaces=tuple(row.namespaces),
        cluster_kinds=tuple(row.cluster_kinds),
        denied_kinds=tuple(row.denied_kinds),
        service_account=row.service_account,
    )
