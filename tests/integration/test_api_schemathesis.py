"""A property-based run of the HTTP API against its OpenAPI document: every operation, with a
valid admin token, against a real daemon (real PostgreSQL, fakekube): no 5xx, and every answer
conforms to the document."""

from __future__ import annotations

import asyncio
from pathlib import Path

from reconciler.model import Deployment
from reconciler.web.api import document
from tests.support.api import make_token
from tests.support.api_fuzz import fuzz_api
from tests.support.pipeline import Pipeline
from tests.support.probes import EPHEMERAL, port_of


def _healthy(d: Deployment) -> bool:
    return d.current_status == "healthy"


async def test_schemathesis_finds_no_server_error_and_no_nonconformance(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    """Every operation, 25 generated requests each (derandomized): no 5xx, every status,
    content type, header and body as documented."""
    daemon = await pipeline.start_daemon(http_address=EPHEMERAL)
    await pipeline.deploy("app")
    await pipeline.wait_for("app", until=_healthy)
    token = await make_token(pipeline.store, "fuzzer", "admin")
    port = await port_of(daemon)
    report = await asyncio.to_thread(
        fuzz_api,
        document(),
        base_url=f"http://127.0.0.1:{port}",
        token=token,
        known_paths={"project": "app", "environment": "prod", "name": "ops"},
        max_examples=25,
        scratch=tmp_path,
    )
    assert report.failures == []
    assert len(report.cases) == 13  # every operation, the document's own included
    assert all(count > 0 for count in report.cases.values()), report.cases
