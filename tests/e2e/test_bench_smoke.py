"""The benchmarks still run: small runs of bench/wake_latency.py, bench/throughput.py,
bench/hostile_neighbours.py, bench/drift_heal.py and bench/git_freshness.py (its webhook
measure)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parents[2] / "bench"


def _run_small(script: str, *extra: str) -> dict[str, Any]:
    """Run ``bench/<script> --small`` (and ``extra``); the JSON object on its last stdout
    line."""
    # A session of its own, so a benchmark that overruns is stopped with everything it
    # started (its daemon and fakekube), not just itself.
    process = subprocess.Popen(
        [sys.executable, str(BENCH_DIR / script), "--small", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=150)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    assert process.returncode == 0, f"{script} failed:\n{stderr[-3000:]}"
    lines = stdout.strip().splitlines()
    assert lines, f"{script} printed nothing on stdout"
    payload: dict[str, Any] = json.loads(lines[-1])
    return payload


def test_wake_latency_small_ends_with_its_json_line() -> None:
    """wake_latency.py --small exits 0 and reports the latency of 10 timed updates."""
    payload = _run_small("wake_latency.py")
    assert payload["bench"] == "wake_latency"
    assert payload["updates"] == 10
    assert 0 < payload["p50_ms"] <= payload["p99_ms"]


def test_throughput_small_ends_with_its_json_line() -> None:
    """throughput.py --small exits 0, every deployment ends healthy, and requests are counted."""
    payload = _run_small("throughput.py")
    assert payload["bench"] == "throughput"
    assert payload["deployments"] == 100
    assert payload["history"] == {"healthy": 100}
    # The Deployment's applies alone: health comes from the watches, the unchanged ConfigMap
    # and Service are not applied again, and the Namespace was applied at the creation.
    assert payload["requests_per_deployment"] == 1
    assert payload["requests"]["apply"]["by_resource"] == {"deployments": 100}
    assert payload["concurrency_default"] is True
    assert set(payload["cpu_ms_per_deployment"]) >= {"daemon", "render_workers", "fakekube"}
    assert payload["bulk_update_s"] > 0


def test_hostile_neighbours_small_ends_with_its_json_line() -> None:
    """hostile_neighbours.py --small exits 0 and times 10 good deployments in both rounds."""
    payload = _run_small("hostile_neighbours.py")
    assert payload["bench"] == "hostile_neighbours"
    assert (payload["good"], payload["hostile"]) == (10, 2)
    for label in ("alone", "with_hostile"):
        figures = payload[label]
        assert figures["n"] == 10
        assert 0 < figures["p50_ms"] <= figures["p95_ms"] <= figures["max_ms"]
        assert figures["render_stage_p50_ms"] is not None


def test_drift_heal_small_heals_every_kubectl_change() -> None:
    """drift_heal.py --small exits 0: each of its 6 kubectl changes is undone and leaves a heal
    history row."""
    payload = _run_small("drift_heal.py")
    assert payload["bench"] == "drift_heal"
    assert payload["trials"] == 6
    assert payload["heal_rows"] == 6
    assert set(payload["by_kind"]) == {"set image", "scale", "delete configmap"}
    overall = payload["overall"]
    assert 0 < overall["p50_ms"] <= overall["p95_ms"] <= overall["max_ms"]


def test_git_freshness_small_times_webhook_pushes() -> None:
    """git_freshness.py --small --only webhook exits 0 and times its 8 webhook pushes."""
    payload = _run_small("git_freshness.py", "--only", "webhook")
    assert payload["bench"] == "git_freshness"
    assert payload["webhook_ms"]["n"] == 8
    assert 0 < payload["webhook_ms"]["p50"] <= payload["webhook_ms"]["max"]
