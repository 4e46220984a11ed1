"""Database layer: models, engine and session, repositories."""

from . import models  # noqa: F401  (registers every table on Base.metadata)
from .base import Base
from .base_repository import Page, Repository
from .engine import create_engine, create_session_factory, create_tables, drop_tables, supports_row_locks

metadata = Base.metadata

__all__ = [
    "Base",
    "Page",
    "Repository",
    "create_engine",
    "create_session_factory",
    "create_tables",
    "drop_tables",
    "metadata",
    "supports_row_locks",
]
