"""One repository per aggregate, on top of :class:`~fastapi_cashier.db.base_repository.Repository`."""

from __future__ import annotations

import contextlib
import functools
import uuid
from collections.abc import Sequence as SequenceOf
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from ..errors import ConflictError, ValidationError
from ..statuses import WebhookEventStatus
from . import models as m
from .base_repository import Repository, loaded_detached, new_row_values

__all__ = [
    "BillingProfileRepository",
    "CheckoutSessionRepository",
    "CreditAccountRepository",
    "CreditTransactionRepository",
    "CustomerAccountRepository",
    "CustomerRepository",
    "IdempotencyKeyRepository",
    "InvoiceRepository",
    "PaymentRepository",
    "PlanRepository",
    "ProductRepository",
    "ProviderObjectRepository",
    "RefundRepository",
    "SequenceRepository",
    "StatusChangeRepository",
    "StoredDelivery",
    "SubscriptionRepository",
    "UsageRecordRepository",
    "WebhookEventRepository",
]


class ProductRepository(Repository[m.Product]):
    model_type = m.Product
    noun = "product"


class PlanRepository(Repository[m.Plan]):
    model_type = m.Plan
    noun = "plan"

    async def list_active(self) -> SequenceOf[m.Plan]:
        """Active plans of active products, cheapest first."""
        stmt = (
            sa.select(m.Plan)
            .join(m.Product, m.Product.id == m.Plan.product_id)
            .where(m.Plan.active.is_(True), m.Product.active.is_(True))
            .order_by(m.Plan.unit_amount, m.Plan.name, m.Plan.id)
        )
        return (await self.session.execute(stmt)).scalars().all()


class ProviderObjectRepository(Repository[m.ProviderObject]):
    model_type = m.ProviderObject
    noun = "provider object"

    async def current(self, provider: str, object_type: str, object_id: uuid.UUID) -> m.ProviderObject | None:
        """The current (not archived) provider copy of a local object."""
        return await self.first(
            m.ProviderObject.provider == provider,
            m.ProviderObject.object_type == object_type,
            m.ProviderObject.object_id == object_id,
            m.ProviderObject.archived.is_(False),
        )

    async def by_provider_id(
        self, provider: str, object_type: str, provider_id: str
    ) -> m.ProviderObject | None:
        """The local link for a provider's object id."""
        return await self.first(
            m.ProviderObject.provider == provider,
            m.ProviderObject.object_type == object_type,
            m.ProviderObject.provider_id == provider_id,
        )


class CustomerRepository(Repository[m.Customer]):
    model_type = m.Customer
    noun = "customer"

    async def get_by_external_id(self, external_id: str) -> m.Customer | None:
        """The customer for the host's user id (a statement built once: every signed-in request
        asks)."""
        params = {"external_id": external_id}
        return (await self.session.execute(_CUSTOMER_BY_EXTERNAL_ID, params)).scalar_one_or_none()


#: The statement of :meth:`CustomerRepository.get_by_external_id`.
_CUSTOMER_BY_EXTERNAL_ID = (
    sa.select(m.Customer).where(m.Customer.external_id == sa.bindparam("external_id")).limit(1)
)


class CustomerAccountRepository(Repository[m.CustomerAccount]):
    model_type = m.CustomerAccount
    noun = "customer account"

    async def for_customer(self, customer_id: uuid.UUID, provider: str) -> m.CustomerAccount | None:
        """The customer's account at ``provider``."""
        return await self.first(
            m.CustomerAccount.customer_id == customer_id, m.CustomerAccount.provider == provider
        )

    async def by_provider_id(self, provider: str, provider_customer_id: str) -> m.CustomerAccount | None:
        """The account with this provider customer id."""
        return await self.first(
            m.CustomerAccount.provider == provider,
            m.CustomerAccount.provider_customer_id == provider_customer_id,
        )


class BillingProfileRepository(Repository[m.BillingProfile]):
    model_type = m.BillingProfile
    noun = "billing profile"

    async def for_customer(
        self, customer_id: uuid.UUID, *, for_update: bool = False
    ) -> m.BillingProfile | None:
        """The customer's billing profile, if one was saved."""
        return await self.first(m.BillingProfile.customer_id == customer_id, for_update=for_update)


class CreditAccountRepository(Repository[m.CreditAccount]):
    model_type = m.CreditAccount
    noun = "credit account"

    async def for_customer(
        self, customer_id: uuid.UUID, *, for_update: bool = False
    ) -> m.CreditAccount | None:
        """The customer's credit account, if one exists."""
        return await self.first(m.CreditAccount.customer_id == customer_id, for_update=for_update)

    async def consume(self, account_id: uuid.UUID, amount: int) -> int | None:
        """Take ``amount`` credits atomically; the new balance, or ``None`` when too few are left.

        One conditional ``UPDATE ... WHERE balance >= amount``: concurrent consumers can never
        take the balance below zero, on any database.
        """
        stmt = (
            sa.update(m.CreditAccount)
            .where(m.CreditAccount.id == account_id, m.CreditAccount.balance >= amount)
            .values(balance=m.CreditAccount.balance - amount, updated_at=sa.func.now())
            .execution_options(synchronize_session=False)
        )
        result = await self.session.execute(stmt)
        if result.rowcount != 1:  # type: ignore[attr-defined]
            return None
        balance = await self.session.scalar(
            sa.select(m.CreditAccount.balance).where(m.CreditAccount.id == account_id)
        )
        return int(balance) if balance is not None else None


class CreditTransactionRepository(Repository[m.CreditTransaction]):
    model_type = m.CreditTransaction
    noun = "credit transaction"


class CheckoutSessionRepository(Repository[m.CheckoutSession]):
    model_type = m.CheckoutSession
    noun = "checkout session"

    async def by_provider_id(
        self, provider: str, provider_session_id: str, *, for_update: bool = False
    ) -> m.CheckoutSession | None:
        """The session with this provider session id."""
        return await self.first(
            m.CheckoutSession.provider == provider,
            m.CheckoutSession.provider_session_id == provider_session_id,
            for_update=for_update,
        )

    async def by_local_or_provider_id(
        self,
        provider: str,
        local_id: uuid.UUID | None,
        provider_session_id: str | None,
        *,
        for_update: bool = False,
    ) -> m.CheckoutSession | None:
        """The ``provider`` session with id ``local_id``, else the one with ``provider_session_id``.

        One statement for both keys (an event about an unknown checkout misses both in one
        round trip). ``LIMIT 1`` with the locking clause locks only the row returned on
        PostgreSQL.
        """
        if local_id is None and not provider_session_id:
            return None
        stmt = _checkout_lookup(local_id is not None, bool(provider_session_id), for_update)
        params = {"provider": provider, "local_id": local_id, "provider_session_id": provider_session_id}
        return (await self.session.execute(stmt, params)).scalar_one_or_none()


@functools.cache
def _checkout_lookup(
    by_local_id: bool, by_provider_id: bool, for_update: bool
) -> sa.Select[m.CheckoutSession]:
    """The statement of :meth:`CheckoutSessionRepository.by_local_or_provider_id`, built once
    per shape (building and keying a statement costs more Python than running it)."""
    session_ = m.CheckoutSession
    keys: list[sa.ColumnElement[bool]] = []
    if by_local_id:
        keys.append(session_.id == sa.bindparam("local_id", type_=session_.id.type))
    if by_provider_id:
        keys.append(session_.provider_session_id == sa.bindparam("provider_session_id"))
    stmt = sa.select(session_).where(session_.provider == sa.bindparam("provider"), sa.or_(*keys)).limit(1)
    if len(keys) == 2:
        # The local id wins when both keys match different rows.
        stmt = stmt.order_by(sa.case((keys[0], 0), else_=1))
    if for_update:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    return stmt


class PaymentRepository(Repository[m.Payment]):
    model_type = m.Payment
    noun = "payment"

    async def by_provider_id(
        self, provider: str, provider_payment_id: str, *, for_update: bool = False
    ) -> m.Payment | None:
        """The payment with this provider payment id."""
        params = {"provider": provider, "provider_payment_id": provider_payment_id}
        return (await self.session.execute(_payment_lookup(for_update), params)).scalar_one_or_none()

    async def add_new(self, payment: m.Payment) -> m.Payment:
        """Insert the new ``payment`` with one Core INSERT built once instead of a flush of the
        unit of work; a payment that is stored already raises :class:`ConflictError` and leaves
        the transaction usable.

        On SQLite and PostgreSQL the INSERT is ``ON CONFLICT DO NOTHING`` (a unique key taken
        inserts nothing, so no statement fails and no savepoint is needed); on MariaDB/MySQL it
        runs inside a savepoint, where a unique or check violation is rolled back. The one check
        a new payment can break, a positive amount, is refused before either.

        The columns left unset (or ``None``) take their defaults, as a flush gives them; the
        object is then attached to the session as a loaded, persistent row, so later changes to
        it are flushed as an UPDATE and reads of it in this session see it.
        """
        values = new_row_values(payment)
        if not isinstance(values["amount"], int) or values["amount"] <= 0:
            raise ConflictError(
                "payment would break a rule of the data model: its amount must be positive",
                details={"constraint_kind": "check", "constraint": "amount_positive"},
            )
        # On the session's connection: the ORM's execute path has nothing to add here.
        dialect = self.session.get_bind().dialect.name
        if dialect in ("postgresql", "sqlite"):
            connection = await self.session.connection()
            if not (await connection.execute(_payment_insert_once(dialect), values)).rowcount:
                raise ConflictError("payment already exists", details={"constraint_kind": "unique"})
        else:
            async with self.savepoint_with_conflicts():
                # Asked for inside the block: the savepoint is begun with the connection.
                await (await self.session.connection()).execute(_PAYMENT_INSERT, values)
        self.session.add(loaded_detached(payment, values))
        return payment

    async def add_refunded(self, payment_id: uuid.UUID, amount: int) -> bool:
        """Add ``amount`` to ``refunded_amount`` only if it stays within the payment's amount.

        A conditional update, so two concurrent refunds can never overdraw a payment even
        where row locks are unavailable. Returns False when nothing was changed.
        """
        stmt = (
            sa.update(m.Payment)
            .where(m.Payment.id == payment_id, m.Payment.refunded_amount + amount <= m.Payment.amount)
            .values(refunded_amount=m.Payment.refunded_amount + amount)
            .execution_options(synchronize_session=False)
        )
        result = await self.session.execute(stmt)
        return bool(result.rowcount == 1)  # type: ignore[attr-defined]


_PAYMENTS: sa.Table = m.Payment.__table__  # type: ignore[assignment]
#: Every column of ``payments`` bound under its own name.
_PAYMENT_BINDS = {column.key: sa.bindparam(column.key, type_=column.type) for column in _PAYMENTS.columns}
#: The INSERT of :meth:`PaymentRepository.add_new` on MariaDB/MySQL, built once.
_PAYMENT_INSERT = sa.insert(_PAYMENTS).values(_PAYMENT_BINDS)


@functools.cache
def _payment_insert_once(dialect: str) -> sa.Executable:
    """:data:`_PAYMENT_INSERT` that inserts nothing when a unique key is taken (SQLite, PostgreSQL)."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert(_PAYMENTS).values(_PAYMENT_BINDS).on_conflict_do_nothing()


@functools.cache
def _payment_lookup(for_update: bool) -> sa.Select[m.Payment]:
    """The statement of :meth:`PaymentRepository.by_provider_id`, built once."""
    stmt = (
        sa.select(m.Payment)
        .where(
            m.Payment.provider == sa.bindparam("provider"),
            m.Payment.provider_payment_id == sa.bindparam("provider_payment_id"),
        )
        .limit(1)
    )
    if for_update:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    return stmt


class RefundRepository(Repository[m.Refund]):
    model_type = m.Refund
    noun = "refund"


class SubscriptionRepository(Repository[m.Subscription]):
    model_type = m.Subscription
    noun = "subscription"

    async def by_provider_id(
        self, provider: str, provider_subscription_id: str, *, for_update: bool = False
    ) -> m.Subscription | None:
        """The subscription with this provider subscription id."""
        return await self.first(
            m.Subscription.provider == provider,
            m.Subscription.provider_subscription_id == provider_subscription_id,
            for_update=for_update,
        )


class UsageRecordRepository(Repository[m.UsageRecord]):
    model_type = m.UsageRecord
    noun = "usage record"


class InvoiceRepository(Repository[m.Invoice]):
    model_type = m.Invoice
    noun = "invoice"


class StatusChangeRepository(Repository[m.StatusChange]):
    model_type = m.StatusChange
    noun = "status change"

    async def for_entity(self, entity_type: str, entity_id: uuid.UUID) -> SequenceOf[m.StatusChange]:
        """The audit trail of one object, oldest first."""
        return await self.list(
            m.StatusChange.entity_type == entity_type,
            m.StatusChange.entity_id == entity_id,
            order_by=[m.StatusChange.created_at, m.StatusChange.id],
        )


class WebhookEventRepository(Repository[m.WebhookEvent]):
    model_type = m.WebhookEvent
    noun = "webhook event"
    page_column = "received_at"

    async def by_event_id(self, provider: str, event_id: str) -> m.WebhookEvent | None:
        """The stored delivery of ``event_id`` from ``provider``."""
        return await self.first(m.WebhookEvent.provider == provider, m.WebhookEvent.event_id == event_id)

    async def insert_once(self, values: dict[str, Any]) -> StoredDelivery | None:
        """Insert a delivery unless ``(provider, event_id)`` is stored already; no flush, no ORM.

        One statement decides, and on SQLite and PostgreSQL also answers for a duplicate:

        * PostgreSQL: ``INSERT ... ON CONFLICT DO NOTHING`` in a CTE, with the read of a stored
          row in the same statement;
        * SQLite: an upsert whose update writes the stored row's own ``provider`` back, returning
          the row (the new one, or the stored one);
        * MariaDB: ``INSERT IGNORE``, returning the new id or nothing; a duplicate's status is
          then read in the same transaction.

        A duplicate never fails a statement, so it needs no savepoint and leaves no error in the
        server's log. A concurrent first delivery of the same event makes the statement wait for
        that transaction's end.

        ``INSERT IGNORE`` would also turn a too-long value into a truncated one with a warning,
        so every text is checked against its column's length first, on every database.

        Args:
            values: The new row's columns, ``id`` included.

        Returns:
            The row and its status: the new one (``inserted``), or the one stored before. ``None``
            when the stored row was deleted between the insert and the read.

        Raises:
            ValidationError: a value is longer than its column allows.
        """
        _check_lengths(values)
        connection = await self.session.connection()
        key = {"provider": values["provider"], "event_id": values["event_id"]}
        # Core statements on the session's connection: no ORM bulk-insert path, built once.
        if connection.dialect.name == "postgresql":
            # The INSERT and the read of a stored row in one statement (one round trip for a
            # duplicate). The read sees the rows committed when the statement began: one that a
            # concurrent first delivery committed while this INSERT waited on its key is found
            # by the separate read below.
            stmt = _insert_or_read_postgresql(tuple(sorted(values)))
            params = {f"new_{name}": value for name, value in values.items()}
            decided = (await connection.execute(stmt, {**params, **key})).first()
            if decided is not None:
                return StoredDelivery(decided.id, decided.status, inserted=decided.inserted)
        elif connection.dialect.name == "sqlite":
            # One statement for a duplicate too: the upsert's no-op update returns the stored row
            # (the whole transaction holds SQLite's write lock already).
            decided = (await connection.execute(_SQLITE_INSERT_OR_READ, values)).one()
            return StoredDelivery(decided.id, decided.status, inserted=decided.id == values["id"])
        else:
            if (await connection.execute(_MARIADB_INSERT_ONCE, values)).scalar() is not None:
                return StoredDelivery(values["id"], WebhookEventStatus(values["status"]), inserted=True)
        row = (await connection.execute(_STORED_DELIVERY, key)).one_or_none()
        return None if row is None else StoredDelivery(row.id, row.status, inserted=False)


_WEBHOOK_EVENTS: sa.Table = m.WebhookEvent.__table__  # type: ignore[assignment]
#: The length of every bounded text column of ``webhook_events``.
_TEXT_LENGTHS: dict[str, int] = {
    column.name: column.type.length  # type: ignore[attr-defined]
    for column in _WEBHOOK_EVENTS.columns
    if getattr(column.type, "length", None) is not None
}


#: The id and status of a stored delivery.
_STORED_DELIVERY = sa.select(_WEBHOOK_EVENTS.c.id, _WEBHOOK_EVENTS.c.status).where(
    _WEBHOOK_EVENTS.c.provider == sa.bindparam("provider"),
    _WEBHOOK_EVENTS.c.event_id == sa.bindparam("event_id"),
)


#: MariaDB's store-once INSERT, returning the new id (nothing for a duplicate).
_MARIADB_INSERT_ONCE = mysql.insert(_WEBHOOK_EVENTS).prefix_with("IGNORE").returning(_WEBHOOK_EVENTS.c.id)

#: SQLite's store-once INSERT, returning the new row's id and status, or the stored row's (an
#: upsert whose update writes back the value the row has).
_SQLITE_INSERT_OR_READ = (
    sqlite.insert(_WEBHOOK_EVENTS)
    .on_conflict_do_update(
        index_elements=["provider", "event_id"], set_={"provider": _WEBHOOK_EVENTS.c.provider}
    )
    .returning(_WEBHOOK_EVENTS.c.id, _WEBHOOK_EVENTS.c.status)
)


@functools.cache
def _insert_or_read_postgresql(columns: tuple[str, ...]) -> sa.Executable:
    """PostgreSQL's store-once INSERT of ``columns`` (bound as ``new_<column>``) as a CTE, and the
    stored row's id and status: ``inserted`` true for the new row, false for the one found."""
    table = _WEBHOOK_EVENTS
    new_row = (
        postgresql.insert(table)
        .values({name: sa.bindparam(f"new_{name}", type_=table.c[name].type) for name in columns})
        .on_conflict_do_nothing(index_elements=["provider", "event_id"])
        .returning(table.c.id, table.c.status)
        .cte("stored_now")
    )
    return sa.union_all(
        sa.select(new_row.c.id, new_row.c.status, sa.true().label("inserted")),
        sa.select(table.c.id, table.c.status, sa.false()).where(
            table.c.provider == sa.bindparam("provider"), table.c.event_id == sa.bindparam("event_id")
        ),
    )


def _check_lengths(values: dict[str, Any]) -> None:
    for name, length in _TEXT_LENGTHS.items():
        value = values.get(name)
        if isinstance(value, str) and len(value) > length:
            raise ValidationError(f"{name} is longer than {length} characters", field=name)


@dataclass(frozen=True, slots=True)
class StoredDelivery:
    """A webhook delivery's row as :meth:`WebhookEventRepository.insert_once` found or made it."""

    id: uuid.UUID
    status: WebhookEventStatus
    inserted: bool


class IdempotencyKeyRepository(Repository[m.IdempotencyKey]):
    model_type = m.IdempotencyKey
    noun = "idempotency key"

    async def find(self, principal: str, key: str) -> m.IdempotencyKey | None:
        """The stored key of ``principal``."""
        return await self.first(m.IdempotencyKey.principal == principal, m.IdempotencyKey.key == key)


class SequenceRepository(Repository[m.Sequence]):
    model_type = m.Sequence
    noun = "sequence"

    async def next_value(self, name: str) -> int:
        """Advance the counter ``name`` and return its new value.

        The row stays locked until the transaction ends, so numbers are handed out one at a time
        and a rolled-back transaction gives its number back: the series has no gaps.
        """
        for _ in range(2):
            stmt = (
                sa.update(m.Sequence)
                .where(m.Sequence.name == name)
                .values(value=m.Sequence.value + 1)
                .execution_options(synchronize_session=False)
            )
            result = await self.session.execute(stmt)
            if result.rowcount == 1:  # type: ignore[attr-defined]
                value = await self.session.scalar(sa.select(m.Sequence.value).where(m.Sequence.name == name))
                return int(value or 0)
            await self._create(name)
        raise RuntimeError(f"sequence {name!r} could not be advanced")

    async def _create(self, name: str) -> None:
        """Create the counter ``name`` at zero, tolerating a concurrent creator.

        On PostgreSQL and MariaDB the row is inserted and committed on a connection of its own:
        inserting it inside the caller's transaction would hold a lock on the new key while
        concurrent creators wait for it with their own locks, which InnoDB resolves by killing
        one transaction as a deadlock. SQLite serialises writers, so the row is inserted in the
        caller's transaction there (a second connection would wait on the caller's write lock).
        """
        bind = self.session.bind
        if isinstance(bind, AsyncEngine) and bind.dialect.name != "sqlite":
            async with bind.connect() as connection:
                with contextlib.suppress(IntegrityError):
                    await connection.execute(sa.insert(m.Sequence).values(name=name, value=0))
                    await connection.commit()
            return
        with contextlib.suppress(ConflictError):
            # A concurrent transaction may create the row first; the next UPDATE then waits
            # for it and advances the committed row.
            await self.add(m.Sequence(name=name, value=0))
