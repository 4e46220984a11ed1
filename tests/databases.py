"""Scratch databases for the test suite.

SQLite always; PostgreSQL and MariaDB when ``CASHIER_TEST_POSTGRES_URL`` / ``CASHIER_TEST_MYSQL_URL``
are set. On a server the suite creates a database of its own and drops it at the end, so runs on
one server never see each other's rows.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path

from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import create_async_engine

POSTGRES_ENV = "CASHIER_TEST_POSTGRES_URL"
MYSQL_ENV = "CASHIER_TEST_MYSQL_URL"


SQLITE_ENV = "CASHIER_TEST_SQLITE"


def targets() -> list[str]:
    """The database kinds this run covers.

    SQLite always, unless ``CASHIER_TEST_SQLITE=0`` (CI's PostgreSQL and MariaDB runs set it,
    since a run of its own already covers SQLite).
    """
    kinds = [] if os.environ.get(SQLITE_ENV) == "0" else ["sqlite"]
    if os.environ.get(POSTGRES_ENV):
        kinds.append("postgresql")
    if os.environ.get(MYSQL_ENV):
        kinds.append("mysql")
    return kinds


def _server_url(kind: str) -> URL:
    return make_url(os.environ[POSTGRES_ENV if kind == "postgresql" else MYSQL_ENV])


async def _execute_autocommit(url: URL, statement: str) -> None:
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            await connection.exec_driver_sql(statement)
    finally:
        await engine.dispose()


def create_scratch(kind: str, directory: Path) -> str:
    """Create an empty database of ``kind`` and return its async URL."""
    name = f"cashier_test_{uuid.uuid4().hex[:12]}"
    if kind == "sqlite":
        return f"sqlite+aiosqlite:///{directory / (name + '.db')}"
    server = _server_url(kind)
    asyncio.run(_execute_autocommit(server, f"CREATE DATABASE {name}"))
    return server.set(database=name).render_as_string(hide_password=False)


def kind_of(url: str) -> str:
    """``"sqlite"``, ``"postgresql"`` or ``"mysql"`` (MariaDB) for a database URL."""
    backend = make_url(url).get_backend_name()
    return backend if backend in ("sqlite", "postgresql") else "mysql"


def drop_scratch(url: str) -> None:
    """Drop a database made by :func:`create_scratch` (SQLite files go with their tmp dir)."""
    kind = kind_of(url)
    if kind == "sqlite":
        return
    parsed = make_url(url)
    server = _server_url(kind)
    suffix = " WITH (FORCE)" if kind == "postgresql" else ""
    asyncio.run(_execute_autocommit(server, f"DROP DATABASE IF EXISTS {parsed.database}{suffix}"))
