"""Fixtures shared by every test folder: a PostgreSQL server per session, a database per test,
the pipeline of the integration and reliability tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from reconciler.db import Store
from reconciler.testing.pg import TestDatabases
from tests.support.pipeline import Pipeline, app_pipeline


@pytest.fixture(scope="session")
def pg_server() -> Iterator[TestDatabases]:
    """One throwaway PostgreSQL server for the whole session, with a migrated template."""
    databases = TestDatabases()
    databases.start()
    try:
        yield databases
    finally:
        databases.stop()


@pytest.fixture
async def database_url(pg_server: TestDatabases) -> AsyncIterator[str]:
    """A fresh migrated database for one test."""
    url = await pg_server.create()
    yield url
    await pg_server.drop(url)


@pytest.fixture
async def empty_database_url(pg_server: TestDatabases) -> AsyncIterator[str]:
    """A fresh database with no schema at all."""
    url = await pg_server.create(migrated=False)
    yield url
    await pg_server.drop(url)


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    """A Store on a fresh migrated database."""
    store = await Store.connect(database_url)
    yield store
    await store.close()


@pytest.fixture
async def pipeline(store: Store, tmp_path: Path) -> AsyncIterator[Pipeline]:
    """A migrated store, a started fakekube, an ops repo with project 'app', no daemon yet."""
    async with app_pipeline(store=store, tmp_path=tmp_path) as result:
        yield result
