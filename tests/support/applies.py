"""Counting the server-side applies fakekube received, from its request log."""

from __future__ import annotations

import collections
from collections.abc import Iterable, Iterator

from reconciler.testing.fakekube import FakeKube, RequestRecord


def _apply_paths(log: Iterable[RequestRecord]) -> Iterator[list[str]]:
    """The path segments of every server-side apply in ``log``, accepted or refused."""
    for record in log:
        if record.method == "PATCH" and record.content_type == "application/apply-patch+yaml":
            yield record.path.strip("/").split("/")


def count_applies(
    cluster: FakeKube, *, kind_plural: str = "deployments", name: str | None = None
) -> int:
    """Server-side apply requests that reached fakekube for a kind (and name)."""
    return sum(
        1
        for parts in _apply_paths(cluster.request_log)
        if len(parts) >= 2 and parts[-2] == kind_plural and (name is None or parts[-1] == name)
    )


def applies_per_object(cluster: FakeKube, *, plural: str = "deployments") -> dict[str, int]:
    """Server-side applies of one kind that fakekube accepted or refused, per namespace/name."""
    counts: dict[str, int] = collections.Counter()
    for parts in _apply_paths(cluster.request_log):
        if len(parts) >= 4 and parts[-2] == plural and parts[-4] == "namespaces":
            counts[f"{parts[-3]}/{parts[-1]}"] += 1
    return dict(counts)
