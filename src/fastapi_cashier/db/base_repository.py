"""A generic async repository: flush-only, driver errors translated once, keyset pagination."""

from __future__ import annotations

import base64
import binascii
import contextlib
import functools
import json
import re
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, Generic, TypeVar

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute, make_transient_to_detached

from ..errors import ConflictError, NotFoundError, ValidationError
from .base import Base

__all__ = [
    "Page",
    "Repository",
    "decode_cursor",
    "encode_cursor",
    "is_integrity_error",
    "is_transient",
    "translate_integrity_error",
]

ModelT = TypeVar("ModelT", bound=Base)
ItemT = TypeVar("ItemT")

MAX_PAGE_SIZE = 100


# MariaDB reports a failed CHECK as error 4025 and MySQL 8 as 3819, both as OperationalError.
_MYSQL_CHECK_ERRNOS = frozenset({3819, 4025})
# Constraint names follow the metadata naming convention (see db.base.NAMING_CONVENTION).
_CONSTRAINT_NAME = re.compile(r"\b((?:uq|ck|fk|pk)_cashier_[a-z0-9_]+)")


def is_integrity_error(exc: DBAPIError) -> bool:
    """True for a constraint violation, however the driver classifies it."""
    if isinstance(exc, IntegrityError):
        return True
    args: tuple[object, ...] = tuple(getattr(exc.orig, "args", ()))
    return isinstance(exc, OperationalError) and len(args) > 0 and args[0] in _MYSQL_CHECK_ERRNOS


def is_transient(exc: BaseException) -> bool:
    """A database error that a re-run of the same transaction may not meet again.

    Deadlocks and lock-wait timeouts (MariaDB 1213 and 1205) and serialization failures and
    deadlocks (PostgreSQL SQLSTATE 40001 and 40P01).
    """
    if not isinstance(exc, DBAPIError):
        return False
    orig = exc.orig
    args = getattr(orig, "args", ())
    if args and args[0] in (1205, 1213):
        return True
    state = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    return state in ("40001", "40P01")


@functools.cache
def _column_attributes(model: type[Base]) -> tuple[tuple[Any, str], ...]:
    """Every column of ``model`` with the attribute that holds it (``metadata_`` for ``metadata``)."""
    return tuple((prop.columns[0], prop.key) for prop in sa.inspect(model).column_attrs)


def new_row_values(obj: Base) -> dict[str, Any]:
    """Every column of the new, unsaved ``obj`` by column key: the value set on it, else the
    column's Python-side default evaluated now (as a flush would), else ``None``.

    For a Core INSERT of the whole row, after which :func:`loaded_detached` makes ``obj`` the
    stored row without reading it back (every default of the data model is Python-side).
    """
    state = obj.__dict__
    values: dict[str, Any] = {}
    for column, attribute in _column_attributes(type(obj)):
        value = state.get(attribute)
        default: Any = column.default
        if value is None and default is not None:
            value = default.arg(None) if default.is_callable else default.arg
        values[column.key] = value
    return values


def loaded_detached(obj: ModelT, values: dict[str, Any]) -> ModelT:
    """``obj`` holding ``values`` (from :func:`new_row_values`, as inserted), as a detached row
    with every column loaded: ``session.add`` makes it persistent without a statement, and later
    changes to it flush as an UPDATE."""
    for column, attribute in _column_attributes(type(obj)):
        setattr(obj, attribute, values[column.key])
    make_transient_to_detached(obj)
    return obj


def translate_integrity_error(exc: DBAPIError, *, what: str) -> ConflictError:
    """Turn a driver's constraint violation into the library's :class:`ConflictError`."""
    text = str(exc.orig).lower()
    details: dict[str, str] = {}
    named = _CONSTRAINT_NAME.search(text)
    if named:
        details["constraint"] = named.group(1)
    if "unique" in text or "duplicate" in text or text.startswith("uq_"):
        kind = "unique"
        message = f"{what} already exists"
    elif "check" in text or details.get("constraint", "").startswith("ck_"):
        kind = "check"
        message = f"{what} would break a rule of the data model"
    elif "foreign key" in text:
        kind = "foreign_key"
        message = f"{what} refers to a missing object, or is still referred to"
    else:
        kind = "integrity"
        message = f"{what} conflicts with stored data"
    return ConflictError(message, details={"constraint_kind": kind, **details})


def encode_cursor(created_at: datetime, row_id: uuid.UUID) -> str:
    """An opaque cursor pointing just after the row ``(created_at, id)``."""
    raw = json.dumps([created_at.isoformat(), row_id.hex]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    """Read a cursor made by :func:`encode_cursor`; anything else is a ``ValidationError``."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        created, row_hex = json.loads(base64.urlsafe_b64decode(padded.encode()))
        when = datetime.fromisoformat(created)
        if when.tzinfo is None:
            raise ValueError("naive timestamp")
        when.astimezone(UTC)  # a forged one may have no UTC equivalent
        return when, uuid.UUID(hex=row_hex)
    except (
        ValueError,
        TypeError,
        AttributeError,
        OverflowError,
        binascii.Error,
        json.JSONDecodeError,
    ) as exc:
        # AttributeError: a row id that is not a string (``uuid.UUID(hex=5)``).
        raise ValidationError("cursor is not one this API returned", field="cursor") from exc


@dataclass(frozen=True, slots=True)
class Page(Generic[ItemT]):
    """One page of a keyset-paginated listing: ORM objects, or rows of chosen columns."""

    items: Sequence[ItemT]
    next_cursor: str | None


class Repository(Generic[ModelT]):
    """Data access for one model. Flushes, never commits: the unit of work commits.

    Subclasses set ``model_type``; ``session`` is keyword-only.
    """

    model_type: ClassVar[type[Base]]
    #: How the model is called in error messages.
    noun: ClassVar[str] = "object"
    #: The timestamp column :meth:`paginate` orders by, newest first.
    page_column: ClassVar[str] = "created_at"

    def __init__(self, *, session: AsyncSession) -> None:
        self.session = session

    @property
    def _model(self) -> type[ModelT]:
        return self.model_type  # type: ignore[return-value]

    async def get(self, object_id: uuid.UUID, *, for_update: bool = False) -> ModelT:
        """The object with this id, or :class:`NotFoundError`."""
        found = await self.get_or_none(object_id, for_update=for_update)
        if found is None:
            raise NotFoundError(f"{self.noun} {object_id} was not found", details={"id": str(object_id)})
        return found

    async def get_for_customer(self, object_id: uuid.UUID, customer_id: uuid.UUID) -> ModelT:
        """The customer's own object; another customer's answers :class:`NotFoundError` too.

        A foreign id and a missing one look the same, so ids leak nothing.
        """
        found = await self.get_or_none(object_id)
        if found is None or getattr(found, "customer_id", None) != customer_id:
            raise NotFoundError(f"{self.noun} {object_id} was not found", details={"id": str(object_id)})
        return found

    async def get_or_none(self, object_id: uuid.UUID, *, for_update: bool = False) -> ModelT | None:
        """The object with this id, or ``None``. ``for_update`` locks the row until commit."""
        stmt = sa.select(self._model).where(self._model.id == object_id)  # type: ignore[attr-defined]
        if for_update:
            stmt = stmt.with_for_update().execution_options(populate_existing=True)
        result = await self.session.execute(stmt)
        return result.scalar_one_or_none()

    async def first(
        self, *where: sa.ColumnElement[bool], for_update: bool = False, skip_locked: bool = False
    ) -> ModelT | None:
        """The first object matching every condition, or ``None``.

        ``for_update`` locks the row until commit; with ``skip_locked`` a row another
        transaction holds is passed over instead of waited for (PostgreSQL and MariaDB; SQLite
        serialises writers anyway).
        """
        stmt = sa.select(self._model).where(*where).limit(1)
        if for_update:
            stmt = stmt.with_for_update(skip_locked=skip_locked).execution_options(populate_existing=True)
        result = await self.session.execute(stmt)
        return result.scalar_one_or_none()

    async def list(
        self,
        *where: sa.ColumnElement[bool],
        order_by: Sequence[sa.ColumnElement[Any] | InstrumentedAttribute[Any]] = (),
        limit: int | None = None,
    ) -> Sequence[ModelT]:
        """Every object matching the conditions."""
        stmt = sa.select(self._model).where(*where).order_by(*order_by)
        if limit is not None:
            stmt = stmt.limit(limit)
        result = await self.session.execute(stmt)
        return result.scalars().all()

    async def count(self, *where: sa.ColumnElement[bool]) -> int:
        """How many objects match the conditions."""
        stmt = sa.select(sa.func.count()).select_from(self._model).where(*where)
        return int((await self.session.execute(stmt)).scalar_one())

    async def add(self, obj: ModelT) -> ModelT:
        """Insert ``obj`` inside a savepoint and flush.

        A unique or check violation raises :class:`ConflictError` and leaves the surrounding
        transaction usable, so callers can fall back to reading the row that won the race.
        """
        async with self.savepoint_with_conflicts():
            self.session.add(obj)
            await self.session.flush()
        return obj

    @contextlib.asynccontextmanager
    async def savepoint_with_conflicts(self) -> AsyncIterator[None]:
        """Run the block inside a savepoint; a unique or check violation rolls it back and
        raises :class:`ConflictError`, leaving the surrounding transaction usable."""
        try:
            async with self.session.begin_nested():
                yield
        except DBAPIError as exc:
            if not is_integrity_error(exc):
                raise
            raise translate_integrity_error(exc, what=self.noun) from exc

    async def flush(self) -> None:
        """Flush pending changes, translating integrity errors."""
        try:
            await self.session.flush()
        except DBAPIError as exc:
            if not is_integrity_error(exc):
                raise
            raise translate_integrity_error(exc, what=self.noun) from exc

    async def delete(self, obj: ModelT) -> None:
        """Delete ``obj`` and flush."""
        await self.session.delete(obj)
        await self.flush()

    async def paginate(
        self,
        *where: sa.ColumnElement[bool],
        limit: int = 20,
        cursor: str | None = None,
    ) -> Page[ModelT]:
        """Newest first, ``limit`` per page, continuing after ``cursor``.

        Keyset pagination on ``(created_at, id)`` (:attr:`page_column` instead of ``created_at``
        where set): stable while rows are inserted, and each page costs the same however deep
        it is.
        """
        stmt = self._page_statement(sa.select(self._model), where, limit, cursor)
        return self._page((await self.session.execute(stmt)).scalars().all(), limit)

    async def paginate_columns(
        self,
        columns: Sequence[sa.ColumnElement[Any] | InstrumentedAttribute[Any]],
        *where: sa.ColumnElement[bool],
        limit: int = 20,
        cursor: str | None = None,
    ) -> Page[sa.Row[Any]]:
        """:meth:`paginate` reading only ``columns``, as rows rather than ORM objects.

        For listings that only show a row's fields: no object is built, tracked in the
        identity map or loaded with columns the listing does not show. ``columns`` must include
        ``id`` and the :attr:`page_column`, which the cursor is made of.
        """
        stmt = self._page_statement(sa.select(*columns), where, limit, cursor)
        return self._page((await self.session.execute(stmt)).all(), limit)

    def _page_statement(
        self, stmt: sa.Select[Any], where: Sequence[sa.ColumnElement[bool]], limit: int, cursor: str | None
    ) -> sa.Select[Any]:
        if not 1 <= limit <= MAX_PAGE_SIZE:
            raise ValidationError(f"limit must be between 1 and {MAX_PAGE_SIZE}", field="limit")
        model: Any = self._model
        when = getattr(model, self.page_column)
        conditions = list(where)
        if cursor is not None:
            after_when, after_id = decode_cursor(cursor)
            conditions.append(sa.or_(when < after_when, sa.and_(when == after_when, model.id < after_id)))
        return stmt.where(*conditions).order_by(when.desc(), model.id.desc()).limit(limit + 1)

    def _page(self, rows: Sequence[Any], limit: int) -> Page[Any]:
        items = rows[:limit]
        next_cursor = None
        if len(rows) > limit:
            last = items[-1]
            row_id = last.id
            if not isinstance(row_id, uuid.UUID):
                # A row of columns may carry the id as the stored hexadecimal text.
                row_id = uuid.UUID(hex=row_id)
            next_cursor = encode_cursor(getattr(last, self.page_column), row_id)
        return Page(items=items, next_cursor=next_cursor)
