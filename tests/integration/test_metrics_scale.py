"""A scrape over 10,000 deployments asks the database one question, not one per row."""

from __future__ import annotations

import dataclasses
from typing import Any

import sqlalchemy as sa

from reconciler.daemon import Daemon
from reconciler.db import Store
from reconciler.settings import Settings
from reconciler.testing.memory import InMemoryCluster, InMemoryFetcher, InMemoryRenderer
from reconciler.web import serve
from tests.support.probes import EPHEMERAL, scrape, value

ROWS = 10_000


async def test_a_scrape_over_ten_thousand_deployments_is_one_query(store: Store) -> None:
    """/metrics counts deployments by status with one aggregate statement, whatever the rows."""
    repo = await store.add_ops_repo(name="ops", repo_url="https://git.example/ops.git")
    async with store.engine.begin() as conn:
        await conn.execute(
            sa.text(
                "INSERT INTO deployments (project, environment, ops_repo_id, image_ref) "
                "SELECT 'svc' || n, 'prod', :repo, 'reg/app:1' FROM generate_series(1, :rows) n"
            ),
            {"repo": repo.id, "rows": ROWS},
        )
    settings = dataclasses.replace(Settings(), http_address=EPHEMERAL, daemon_id="scale")
    daemon = Daemon(
        store=store,
        kube=InMemoryCluster(),
        settings=settings,
        renderer=InMemoryRenderer(),
        fetcher=InMemoryFetcher(),
    )
    server = await serve(daemon)
    assert server is not None
    statements: list[str] = []

    def executed(*args: Any) -> None:
        statements.append(str(args[2]))

    sa.event.listen(store.engine.sync_engine, "before_cursor_execute", executed)
    try:
        samples = await scrape(server.port)
    finally:
        sa.event.remove(store.engine.sync_engine, "before_cursor_execute", executed)
        await server.stop()
    assert len(statements) == 1, statements
    assert "GROUP BY current_status" in statements[0]
    assert value(samples, "reconciler_deployments", status="pending") == ROWS
