"""Subscriptions, their metered usage, and invoices with their lines."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ...statuses import InvoiceStatus, SubscriptionStatus
from ..base import (
    TABLE_PREFIX,
    Base,
    BigAmount,
    CurrencyCode,
    Identifier,
    JSONDict,
    TimestampMixin,
    UTCDateTime,
    UUIDPrimaryKey,
    enum_column,
)

__all__ = ["Invoice", "InvoiceLine", "Subscription", "UsageRecord"]


class Subscription(UUIDPrimaryKey, TimestampMixin, Base):
    """A customer's subscription to a plan, mirrored from the provider.

    ``provider_updated_at`` is the time of the newest provider state applied; the webhook
    inbox's ordering guard skips events older than it.
    """

    __tablename__ = f"{TABLE_PREFIX}subscriptions"
    __table_args__ = (
        sa.UniqueConstraint("provider", "provider_subscription_id"),
        sa.CheckConstraint("quantity >= 1", name="quantity_positive"),
        sa.Index(None, "customer_id", "status"),
        sa.Index(None, "status", "current_period_end"),
    )

    customer_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey(f"{TABLE_PREFIX}customers.id", ondelete="RESTRICT")
    )
    plan_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey(f"{TABLE_PREFIX}plans.id", ondelete="RESTRICT"), index=True
    )
    provider: Mapped[str] = mapped_column(Identifier(40))
    provider_subscription_id: Mapped[str | None] = mapped_column(Identifier(255))
    status: Mapped[SubscriptionStatus] = mapped_column(
        enum_column(SubscriptionStatus), default=SubscriptionStatus.INCOMPLETE
    )
    quantity: Mapped[int] = mapped_column(default=1)
    current_period_start: Mapped[datetime | None] = mapped_column(UTCDateTime())
    current_period_end: Mapped[datetime | None] = mapped_column(UTCDateTime())
    trial_start: Mapped[datetime | None] = mapped_column(UTCDateTime())
    trial_end: Mapped[datetime | None] = mapped_column(UTCDateTime())
    cancel_at_period_end: Mapped[bool] = mapped_column(default=False)
    canceled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    paused: Mapped[bool] = mapped_column(default=False)
    #: When a worker claimed the cancel that ends the period of a subscription whose provider
    #: has no cancel at period end (the library cancels it then); a stale claim is taken again.
    cancel_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    resumes_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    provider_updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: A plan or quantity change the subscriber must approve at the provider first
    #: (``plan_id``, ``provider_price_id``, ``quantity``, ``approval_url``); cleared when the
    #: provider confirms it.
    pending_change: Mapped[dict[str, Any] | None] = mapped_column(JSONDict)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSONDict, default=dict)


class UsageRecord(UUIDPrimaryKey, TimestampMixin, Base):
    """Metered usage reported for a subscription; the idempotency key counts it once."""

    __tablename__ = f"{TABLE_PREFIX}usage_records"
    __table_args__ = (
        sa.UniqueConstraint("subscription_id", "idempotency_key"),
        sa.CheckConstraint("quantity >= 0", name="quantity_non_negative"),
        sa.Index(None, "subscription_id", "recorded_at"),
    )

    subscription_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey(f"{TABLE_PREFIX}subscriptions.id", ondelete="CASCADE")
    )
    quantity: Mapped[int] = mapped_column(sa.BigInteger)
    idempotency_key: Mapped[str] = mapped_column(Identifier(255))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())
    #: When the provider confirmed the report; ``None`` while unconfirmed.
    reported_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: A retriable provider fault left the report unconfirmed: repeating it with the same key resends it.
    provider_fault: Mapped[bool] = mapped_column(default=False, server_default=sa.false())


class Invoice(UUIDPrimaryKey, TimestampMixin, Base):
    """A bill. ``number`` is assigned gap-free when the invoice is finalised (drafts have none)."""

    __tablename__ = f"{TABLE_PREFIX}invoices"
    __table_args__ = (
        sa.UniqueConstraint("provider", "provider_invoice_id"),
        sa.CheckConstraint("tax >= 0", name="tax_non_negative"),
        sa.CheckConstraint("amount_paid >= 0", name="amount_paid_non_negative"),
        sa.CheckConstraint("total = subtotal + tax", name="total_is_subtotal_plus_tax"),
        sa.Index(None, "customer_id", "created_at", "id"),
    )

    customer_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey(f"{TABLE_PREFIX}customers.id", ondelete="RESTRICT")
    )
    subscription_id: Mapped[uuid.UUID | None] = mapped_column(
        sa.ForeignKey(f"{TABLE_PREFIX}subscriptions.id", ondelete="SET NULL"), index=True
    )
    number: Mapped[str | None] = mapped_column(Identifier(40), unique=True)
    status: Mapped[InvoiceStatus] = mapped_column(enum_column(InvoiceStatus), default=InvoiceStatus.DRAFT)
    currency: Mapped[str] = mapped_column(CurrencyCode)
    subtotal: Mapped[int] = mapped_column(BigAmount, default=0)
    tax: Mapped[int] = mapped_column(BigAmount, default=0)
    total: Mapped[int] = mapped_column(BigAmount, default=0)
    amount_paid: Mapped[int] = mapped_column(BigAmount, default=0)
    period_start: Mapped[datetime | None] = mapped_column(UTCDateTime())
    period_end: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finalized_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    provider: Mapped[str | None] = mapped_column(Identifier(40))
    provider_invoice_id: Mapped[str | None] = mapped_column(Identifier(255))
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSONDict, default=dict)
    #: The tax as decided when the invoice was recorded: treatment, rate per line, one line per
    #: rate, legal mentions, and the seller and buyer as they were then (an invoice never changes).
    tax_details: Mapped[dict[str, Any] | None] = mapped_column(JSONDict)

    lines: Mapped[list[InvoiceLine]] = relationship(
        order_by="InvoiceLine.position", cascade="all, delete-orphan", lazy="selectin"
    )


class InvoiceLine(UUIDPrimaryKey, Base):
    """One line of an invoice. Proration credits have a negative ``amount``."""

    __tablename__ = f"{TABLE_PREFIX}invoice_lines"
    __table_args__ = (sa.UniqueConstraint("invoice_id", "position"),)

    invoice_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey(f"{TABLE_PREFIX}invoices.id", ondelete="CASCADE")
    )
    position: Mapped[int]
    description: Mapped[str] = mapped_column(sa.String(500))
    plan_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid())
    quantity: Mapped[int] = mapped_column(sa.BigInteger, default=1)
    unit_amount: Mapped[int] = mapped_column(BigAmount, default=0)
    amount: Mapped[int] = mapped_column(BigAmount)
    currency: Mapped[str] = mapped_column(CurrencyCode)
    proration: Mapped[bool] = mapped_column(default=False)
    period_start: Mapped[datetime | None] = mapped_column(UTCDateTime())
    period_end: Mapped[datetime | None] = mapped_column(UTCDateTime())
