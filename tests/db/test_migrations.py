"""The shipped migrations create exactly what the models declare, and downgrade cleanly."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

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


async def _execute(url: str, *statements: sa.Executable) -> list[sa.Row[Any]]:
    engine = create_async_engine(url)
    rows: list[sa.Row[Any]] = []
    try:
        async with engine.begin() as connection:
            for statement in statements:
                result = await connection.execute(statement)
                if result.returns_rows:
                    rows.extend(result.all())
    finally:
        await engine.dispose()
    return rows


_EVENTS = sa.table(
    "cashier_webhook_events",
    sa.column("id", sa.Uuid()),
    sa.column("provider", sa.String()),
    sa.column("event_id", sa.String()),
    sa.column("type", sa.String()),
    sa.column("raw_body", sa.LargeBinary()),
    sa.column("received_at", sa.DateTime(timezone=True)),
    sa.column("status", sa.String()),
    sa.column("attempts", sa.Integer()),
    sa.column("last_error", sa.Text()),
)


async def test_the_ignored_reason_moves_out_of_last_error_and_back(fresh_database_url: str) -> None:
    await anyio.to_thread.run_sync(migrations.upgrade, fresh_database_url, "0005")
    row = {"provider": "stripe", "type": "balance.available", "raw_body": b"{}", "attempts": 1}
    await _execute(
        fresh_database_url,
        _EVENTS.insert().values(
            id=uuid.uuid4(),
            event_id="evt_ignored",
            received_at=datetime.now(UTC),
            status="ignored",
            last_error="no handler for balance.available events",
            **row,
        ),
        _EVENTS.insert().values(
            id=uuid.uuid4(),
            event_id="evt_failed",
            received_at=datetime.now(UTC),
            status="failed",
            last_error="ConnectionResetError",
            **row,
        ),
    )

    await anyio.to_thread.run_sync(migrations.upgrade, fresh_database_url)

    columns = sa.text(
        "SELECT event_id, last_error, ignored_reason FROM cashier_webhook_events ORDER BY event_id"
    )
    assert [tuple(r) for r in await _execute(fresh_database_url, columns)] == [
        ("evt_failed", "ConnectionResetError", None),
        ("evt_ignored", None, "no handler for balance.available events"),
    ]
    await anyio.to_thread.run_sync(migrations.downgrade, fresh_database_url, "0005")
    before = sa.text("SELECT event_id, last_error FROM cashier_webhook_events ORDER BY event_id")
    assert [tuple(r) for r in await _execute(fresh_database_url, before)] == [
        ("evt_failed", "ConnectionResetError"),
        ("evt_ignored", "no handler for balance.available events"),
    ]
