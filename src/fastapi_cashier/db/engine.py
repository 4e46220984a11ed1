"""Engine and session factory built from :class:`~fastapi_cashier.settings.DatabaseSettings`."""

from __future__ import annotations

import importlib
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import AsyncAdaptedQueuePool

from ..errors import MissingDependencyError
from ..settings import DatabaseSettings
from .base import Base

__all__ = [
    "create_engine",
    "create_session_factory",
    "create_tables",
    "drop_tables",
    "is_sqlite_memory",
    "require_driver",
    "supports_row_locks",
]

#: The async drivers the extras install: URL driver name -> (modules it imports, extra).
_DRIVERS: dict[str, tuple[tuple[str, ...], str]] = {
    "asyncpg": (("asyncpg",), "postgres"),
    "aiomysql": (("aiomysql", "pymysql"), "mysql"),
}


def require_driver(url: str | URL) -> None:
    """Check that the optional database driver of ``url`` can be imported.

    Raises:
        MissingDependencyError: the driver of a ``postgresql+asyncpg://`` or
            ``mysql+aiomysql://`` URL is not installed; the message names the extra to install.
    """
    modules, extra = _DRIVERS.get(make_url(url).get_driver_name(), ((), ""))
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise MissingDependencyError(module, extra) from exc


def create_engine(settings: DatabaseSettings) -> AsyncEngine:
    """Create the async engine for ``settings.url``.

    SQLite gets foreign keys switched on, a busy timeout, and ``BEGIN IMMEDIATE`` for every
    writing transaction: SQLite has one writer at a time, and taking the write lock up front
    turns would-be deadlocks between concurrent requests into short waits. Sessions of
    :func:`create_session_factory` with ``read_only=True`` begin with a plain (deferred)
    ``BEGIN`` instead, so reads never wait for the write lock. MariaDB/MySQL run at
    ``READ COMMITTED`` like PostgreSQL, so row locks behave the same on both.

    An in-memory SQLite database (``sqlite+aiosqlite:///:memory:``) lives only as long as its one
    connection, so every session shares that connection, one transaction at a time: a pool of
    exactly one connection that requests and the background loop wait for in turn.

    Pooled connections are replaced after ``pool_recycle_seconds``; a connection the server
    dropped fails its first statement, and SQLAlchemy then discards every pooled connection
    opened before it. ``pool_pre_ping`` checks each connection at checkout instead, at the cost
    of a round trip per checkout (two on asyncpg).

    Raises:
        MissingDependencyError: the URL names a driver that is not installed; the message names
            the extra to install.
    """
    url = make_url(settings.url)
    require_driver(url)
    kwargs: dict[str, Any] = {"echo": settings.echo, "pool_pre_ping": settings.pool_pre_ping}
    backend = url.get_backend_name()
    if backend == "sqlite":
        kwargs["connect_args"] = {"timeout": 30}
        if is_sqlite_memory(url):
            kwargs.update(poolclass=AsyncAdaptedQueuePool, pool_size=1, max_overflow=0, pool_timeout=60)
    else:
        kwargs["pool_size"] = settings.pool_size
        kwargs["max_overflow"] = settings.max_overflow
        kwargs["pool_recycle"] = settings.pool_recycle_seconds
    if backend in ("mysql", "mariadb"):
        kwargs["isolation_level"] = "READ COMMITTED"
    engine = create_async_engine(url, **kwargs)
    if backend == "sqlite":
        _configure_sqlite(engine)
    return engine


def is_sqlite_memory(url: URL) -> bool:
    """True for a SQLite URL naming a private in-memory database (``:memory:`` or no file)."""
    if url.get_backend_name() != "sqlite":
        return False
    database = url.database or ""
    return database in ("", ":memory:") or url.query.get("mode") == "memory"


def _configure_sqlite(engine: AsyncEngine) -> None:
    sync_engine = engine.sync_engine

    @sa.event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @sa.event.listens_for(sync_engine, "begin")
    def _on_begin(connection: sa.Connection) -> None:
        if connection.get_execution_options().get(_READ_ONLY, False):
            connection.exec_driver_sql("BEGIN")
        else:
            connection.exec_driver_sql("BEGIN IMMEDIATE")


#: Execution option marking a read-only engine view: SQLite begins its transactions deferred.
_READ_ONLY = "cashier_read_only"


def create_session_factory(
    engine: AsyncEngine, *, read_only: bool = False
) -> async_sessionmaker[AsyncSession]:
    """A session factory whose objects stay readable after commit.

    Args:
        engine: The engine of :func:`create_engine`.
        read_only: Sessions that only read. On SQLite their transactions begin deferred, so
            they never take (or wait for) the write lock; a write in such a session may fail
            with ``database is locked`` under concurrency. Elsewhere it changes nothing.
    """
    bind = engine.execution_options(**{_READ_ONLY: True}) if read_only else engine
    return async_sessionmaker(bind, expire_on_commit=False)


def supports_row_locks(engine: AsyncEngine | sa.Engine | sa.Connection) -> bool:
    """True where ``SELECT ... FOR UPDATE [SKIP LOCKED]`` is available (PostgreSQL, MariaDB)."""
    return engine.dialect.name in ("postgresql", "mysql", "mariadb")


async def create_tables(engine: AsyncEngine) -> None:
    """Create every missing fastapi-cashier table (development and tests; use Alembic in production)."""
    async with engine.begin() as connection:
        await connection.run_sync(Base.metadata.create_all)


async def drop_tables(engine: AsyncEngine) -> None:
    """Drop every fastapi-cashier table. Destroys data; for tests."""
    async with engine.begin() as connection:
        await connection.run_sync(Base.metadata.drop_all)
