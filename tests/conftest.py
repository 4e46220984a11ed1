"""Shared fixtures: the async backend, and engines on every configured database."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from fastapi_cashier.db import Base, create_engine, create_session_factory, create_tables
from fastapi_cashier.settings import DatabaseSettings

from . import databases


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A run for the database servers only (``CASHIER_TEST_SQLITE=0``) keeps just the tests that
    use a database (the ``database_url`` fixture, or the ``db`` marker): the others do not
    depend on the database, and the SQLite run has already run them."""
    if "sqlite" in databases.targets():
        return
    kept: list[pytest.Item] = []
    left: list[pytest.Item] = []
    for item in items:
        uses_database = "database_url" in getattr(item, "fixturenames", ()) or item.get_closest_marker("db")
        (kept if uses_database else left).append(item)
    if left:
        config.hook.pytest_deselected(items=left)
        items[:] = kept


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def _scratch_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("databases")


_created: dict[str, str] = {}


@pytest.fixture(scope="session", params=databases.targets())
def database_url(request: pytest.FixtureRequest, _scratch_dir: Path) -> Iterator[str]:
    """A scratch database (one per kind per run) with the tables created on first use."""
    url = databases.create_scratch(request.param, _scratch_dir)
    yield url
    databases.drop_scratch(url)


@pytest.fixture
def fresh_database_url(
    request: pytest.FixtureRequest, database_url: str, _scratch_dir: Path
) -> Iterator[str]:
    """An empty database of the same kind as ``database_url``, dropped after the test."""
    url = databases.create_scratch(databases.kind_of(database_url), _scratch_dir)
    yield url
    databases.drop_scratch(url)


async def _clear(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        for table in reversed(Base.metadata.sorted_tables):
            await connection.execute(table.delete())


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on the scratch database; every row is deleted after the test."""
    engine = create_engine(DatabaseSettings(url=database_url, pool_size=20, max_overflow=20))
    if database_url not in _created:
        await create_tables(engine)
        _created[database_url] = database_url
    try:
        yield engine
    finally:
        await _clear(engine)
        await engine.dispose()


@pytest.fixture
def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return create_session_factory(engine)


@pytest.fixture
async def session(session_factory: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    async with session_factory() as session:
        yield session
