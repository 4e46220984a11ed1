"""The declarative ``Base``, its naming convention, the common columns and portable column types."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from ..clock import utcnow

__all__ = [
    "TABLE_PREFIX",
    "Base",
    "BigAmount",
    "CurrencyCode",
    "Identifier",
    "JSONDict",
    "LongBinary",
    "LongText",
    "TimestampMixin",
    "UTCDateTime",
    "UUIDPrimaryKey",
    "enum_column",
    "utcnow",
]

TABLE_PREFIX = "cashier_"

NAMING_CONVENTION = {
    "pk": "pk_%(table_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
}


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """A timestamp that is always timezone-aware UTC in Python.

    PostgreSQL stores ``TIMESTAMP WITH TIME ZONE``; SQLite and MariaDB, which have no time zones,
    store the UTC wall time (microseconds kept: ``DATETIME(6)`` on MariaDB). Naive datetimes are
    refused on the way in, so local times never slip into the database unnoticed.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(sa.DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r} refused: pass a timezone-aware datetime")
        value = value.astimezone(UTC)
        if dialect.name == "postgresql":
            return value
        return value.replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


#: The binary, no-pad collation of identifiers on each MySQL-family server.
MARIADB_IDENTIFIER_COLLATION = "utf8mb4_nopad_bin"
MYSQL_IDENTIFIER_COLLATION = "utf8mb4_0900_bin"


class Identifier(sa.types.TypeDecorator[str]):
    """Text compared byte for byte: ids, keys, references, subjects.

    SQLite and PostgreSQL compare text exactly already. MariaDB and MySQL compare with the
    server's default collation, which ignores case, accents and (MariaDB) trailing spaces, so
    ``ALICE``, ``Àlice`` and ``alice `` would all be ``alice``: there the column gets a binary
    collation without padding (``utf8mb4_nopad_bin`` on MariaDB, ``utf8mb4_0900_bin`` on MySQL).
    """

    impl = sa.String
    cache_ok = True

    def __init__(self, length: int) -> None:
        super().__init__(length)
        self.length = length

    def load_dialect_impl(self, dialect: Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name in ("mysql", "mariadb"):
            collation = (
                MARIADB_IDENTIFIER_COLLATION
                if getattr(dialect, "is_mariadb", False)
                else MYSQL_IDENTIFIER_COLLATION
            )
            return dialect.type_descriptor(mysql.VARCHAR(self.length, charset="utf8mb4", collation=collation))
        return dialect.type_descriptor(sa.String(self.length))


# Minor-unit amounts: 64-bit integers everywhere.
BigAmount = sa.BigInteger
# ISO 4217 codes are exactly three letters.
CurrencyCode = sa.CHAR(3)
# JSON objects; MariaDB stores them as LONGTEXT with a JSON_VALID check.
JSONDict = sa.JSON().with_variant(mysql.JSON(), "mysql", "mariadb")
# Raw webhook bodies may be up to a few MiB; MySQL's BLOB/TEXT stop at 64 KiB.
LongBinary = sa.LargeBinary().with_variant(mysql.LONGBLOB(), "mysql", "mariadb")
LongText = sa.Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")


def enum_column(enum: type[StrEnum], *, name: str | None = None) -> sa.Enum:
    """A portable enum column: ``VARCHAR`` plus a named ``CHECK`` listing the values."""
    return sa.Enum(
        enum,
        native_enum=False,
        create_constraint=True,
        length=32,
        validate_strings=True,
        values_callable=lambda members: [member.value for member in members],
        name=name or _snake(enum.__name__),
    )


def _snake(name: str) -> str:
    out = [f"_{char.lower()}" if char.isupper() else char for char in name]
    return "".join(out).lstrip("_")


class Base(DeclarativeBase):
    """The declarative base of every fastapi-cashier table.

    Hosts that run their own Alembic environment can add ``fastapi_cashier.metadata``
    (``Base.metadata``) to their ``target_metadata``.
    """

    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


class UUIDPrimaryKey:
    """A UUID primary key generated in Python, so ids are known before the insert."""

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid(), primary_key=True, default=uuid.uuid4)


class TimestampMixin:
    """``created_at`` / ``updated_at`` in UTC, computed per row (never once at import)."""

    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime(), default=utcnow, onupdate=utcnow, nullable=False
    )
