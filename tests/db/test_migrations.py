"""The shipped migrations create exactly what the models declare, and downgrade cleanly."""

from __future__ import annotations

import anyio
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from click.testing import CliRunner
from sqlalchemy.ext.asyncio import create_async_engine

from fastapi_cashier import migrations
from fastapi_cashier.cli import main
from fastapi_cashier.db import Base
from fastapi_cashier.db.base import Identifier

pytestmark = pytest.mark.anyio


def _diff(connection: sa.Connection) -> list[object]:
    context = MigrationContext.configure(
        connection,
        opts={"compare_type": True, "version_table": migrations.VERSION_TABLE},
    )
    return list(compare_metadata(context, Base.metadata))


def _table_names(connection: sa.Connection) -> set[str]:
    return set(sa.inspect(connection).get_table_names())


async def _inspect(url: str, fn):  # type: ignore[no-untyped-def]
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(fn)
    finally:
        await engine.dispose()


async def test_upgrade_matches_models_exactly(fresh_database_url: str) -> None:
    await anyio.to_thread.run_sync(migrations.upgrade, fresh_database_url)

    assert await _inspect(fresh_database_url, _diff) == []
    tables = await _inspect(fresh_database_url, _table_names)
    assert set(Base.metadata.tables) | {migrations.VERSION_TABLE} == tables
    current = await anyio.to_thread.run_sync(migrations.current_revision, fresh_database_url)
    assert current == migrations.head_revision()


async def test_downgrade_to_base_removes_every_table(fresh_database_url: str) -> None:
    await anyio.to_thread.run_sync(migrations.upgrade, fresh_database_url)
    await anyio.to_thread.run_sync(migrations.downgrade, fresh_database_url, "base")

    assert await _inspect(fresh_database_url, _table_names) == {migrations.VERSION_TABLE}
    assert await anyio.to_thread.run_sync(migrations.current_revision, fresh_database_url) is None
    # And the way back up works after a full downgrade.
    await anyio.to_thread.run_sync(migrations.upgrade, fresh_database_url)
    assert await _inspect(fresh_database_url, _diff) == []


def test_version_table_is_the_librarys_own() -> None:
    assert migrations.VERSION_TABLE == "cashier_alembic_version"
    assert migrations.head_revision() is not None


async def test_cli_upgrade_current_downgrade(
    fresh_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PAYMENTS_DATABASE__URL", fresh_database_url)
    runner = CliRunner()

    def invoke(*args: str) -> str:
        result = runner.invoke(main, list(args), catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.output

    head = migrations.head_revision()
    assert f"revision {head}" in await anyio.to_thread.run_sync(invoke, "db", "upgrade")
    assert f"{head} (up to date)" in await anyio.to_thread.run_sync(invoke, "db", "current")
    assert "revision base" in await anyio.to_thread.run_sync(invoke, "db", "downgrade", "base")
    assert "base (behind head" in await anyio.to_thread.run_sync(invoke, "db", "current")


def _identifier_columns() -> set[tuple[str, str]]:
    return {
        (table.name, column.name)
        for table in Base.metadata.sorted_tables
        for column in table.columns
        if isinstance(column.type, Identifier)
    }


def _collations(connection: sa.Connection) -> dict[tuple[str, str], str | None]:
    rows = connection.execute(
        sa.text(
            "SELECT table_name, column_name, collation_name FROM information_schema.columns"
            " WHERE table_schema = DATABASE()"
        )
    )
    return {(table, column): collation for table, column, collation in rows}


async def test_upgrade_gives_identifiers_a_binary_collation_on_mysql(fresh_database_url: str) -> None:
    if not fresh_database_url.startswith("mysql"):
        pytest.skip("collations are a MariaDB/MySQL matter; SQLite and PostgreSQL compare exactly")
    await anyio.to_thread.run_sync(migrations.upgrade, fresh_database_url)

    collations = await _inspect(fresh_database_url, _collations)

    identifiers = _identifier_columns()
    assert ("cashier_customers", "external_id") in identifiers
    assert {collations[column] for column in identifiers} <= {"utf8mb4_nopad_bin", "utf8mb4_0900_bin"}
    assert collations[("cashier_customers", "email")] not in {"utf8mb4_nopad_bin", "utf8mb4_0900_bin"}
    # Down to the revision before: the server's default collation again.
    await anyio.to_thread.run_sync(migrations.downgrade, fresh_database_url, "0002")
    collations = await _inspect(fresh_database_url, _collations)
    assert collations[("cashier_customers", "external_id")] not in {"utf8mb4_nopad_bin", "utf8mb4_0900_bin"}
