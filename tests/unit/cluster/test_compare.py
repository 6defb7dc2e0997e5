"""Live against applied objects as a unified diff: what is left out, what a new object shows."""

from __future__ import annotations

from typing import Any

from reconciler.cluster.compare import unified_diff
from reconciler.testing.memory import InMemoryCluster


def config(data: dict[str, str], **metadata: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "c", "namespace": "n"} | metadata,
        "data": data,
    }


def test_server_bookkeeping_and_status_are_left_out() -> None:
    """Managed fields, resourceVersion, generation, uid, creation time and status never differ."""
    live = config({"a": "1"}, resourceVersion="5", uid="u1", generation=1) | {"status": {"x": 1}}
    applied = config(
        {"a": "1"},
        resourceVersion="6",
        uid="u2",
        generation=2,
        creationTimestamp="2026-01-01T00:00:00Z",
        managedFields=[{"manager": "reconciler"}],
    )
    assert unified_diff(live, applied, label="ConfigMap n/c") == ""


def test_a_change_is_a_unified_diff_with_live_and_applied_headers() -> None:
    """A changed value shows as one removed and one added line under live/ and applied/."""
    text = unified_diff(config({"a": "1"}), config({"a": "2"}), label="ConfigMap n/c")
    lines = text.splitlines()
    assert lines[:2] == ["--- live/ConfigMap n/c", "+++ applied/ConfigMap n/c"]
    assert [line for line in lines[3:] if line[0] in "+-"] == ["-  a: '1'", "+  a: '2'"]


def test_an_object_to_be_created_is_all_added() -> None:
    """Without a live object every line is added."""
    lines = unified_diff(None, config({"a": "1"}), label="ConfigMap n/c").splitlines()
    assert lines[0] == "--- live/ConfigMap n/c"
    assert lines[3:] and all(line.startswith("+") for line in lines[3:])


async def test_the_in_memory_cluster_stores_nothing_on_a_dry_run() -> None:
    """A dry-run apply answers the would-be object and stores nothing."""
    cluster = InMemoryCluster()
    answer = await cluster.apply(config({"a": "1"}), field_manager="m", dry_run=True)
    assert answer["data"] == {"a": "1"}
    assert (cluster.objects, cluster.applied, len(cluster.dry_runs)) == ({}, [], 1)
