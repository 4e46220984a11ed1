"""Alembic migrations shipped inside the package.

They keep their own version table, ``cashier_alembic_version``, so they never collide with the
host application's migration history.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import create_async_engine

__all__ = [
    "VERSION_TABLE",
    "alembic_config",
    "current_revision",
    "downgrade",
    "head_revision",
    "upgrade",
]

T = TypeVar("T")

VERSION_TABLE = "cashier_alembic_version"
SCRIPT_LOCATION = Path(__file__).resolve().parent


def alembic_config(database_url: str) -> Config:
    """An Alembic ``Config`` for the shipped migrations against ``database_url``."""
    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    # ConfigParser interpolation: a literal % in a URL (an escaped password) must be doubled.
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    config.attributes["database_url"] = database_url
    return config


def _with_connection(database_url: str, action: Callable[[Config, Connection], T]) -> T:
    """Run ``action`` with a sync connection from a fresh async engine, inside one transaction."""

    async def run() -> T:
        engine = create_async_engine(database_url)
        try:
            async with engine.begin() as connection:
                return await connection.run_sync(lambda sync: action(_bound(database_url, sync), sync))
        finally:
            await engine.dispose()

    return asyncio.run(run())


def _bound(database_url: str, connection: Connection) -> Config:
    config = alembic_config(database_url)
    config.attributes["connection"] = connection
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Apply the shipped migrations up to ``revision``. Call from sync code (not in an event loop)."""
    _with_connection(database_url, lambda config, _conn: command.upgrade(config, revision))


def downgrade(database_url: str, revision: str = "-1") -> None:
    """Revert the shipped migrations down to ``revision`` (``"base"`` removes every table)."""
    _with_connection(database_url, lambda config, _conn: command.downgrade(config, revision))


def current_revision(database_url: str) -> str | None:
    """The revision the database is at, or ``None`` when no migration was applied."""

    def read(_config: Config, connection: Connection) -> str | None:
        context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
        return context.get_current_revision()

    return _with_connection(database_url, read)


def head_revision() -> str | None:
    """The newest revision shipped with this version of the package."""
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
