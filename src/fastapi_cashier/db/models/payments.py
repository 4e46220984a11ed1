"""Money movement: checkout sessions (the intent rows), payments and refunds."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from ...money import Money
from ...statuses import CheckoutSessionStatus, PaymentStatus, RefundStatus
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

__all__ = ["CheckoutSession", "Payment", "Refund"]


class CheckoutSession(UUIDPrimaryKey, TimestampMixin, Base):
    """The intent row: written before the provider is called; its id keys the provider call.

    ``mode`` is ``"payment"`` for a one-off amount or ``"subscription"`` for a plan.
    """

    __tablename__ = f"{TABLE_PREFIX}checkout_sessions"
    __table_args__ = (
        sa.UniqueConstraint("provider", "provider_session_id"),
        sa.CheckConstraint("amount IS NULL OR amount > 0", name="amount_positive"),
        sa.CheckConstraint("quantity >= 1", name="quantity_positive"),
        sa.CheckConstraint("mode IN ('payment', 'subscription')", name="mode_known"),
        sa.Index(None, "customer_id", "created_at", "id"),
    )

    customer_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey(f"{TABLE_PREFIX}customers.id", ondelete="RESTRICT")
    )
    provider: Mapped[str] = mapped_column(Identifier(40))
    provider_session_id: Mapped[str | None] = mapped_column(Identifier(255))
    mode: Mapped[str] = mapped_column(sa.String(20))
    status: Mapped[CheckoutSessionStatus] = mapped_column(
        enum_column(CheckoutSessionStatus), default=CheckoutSessionStatus.OPEN
    )
    plan_id: Mapped[uuid.UUID | None] = mapped_column(
        sa.ForeignKey(f"{TABLE_PREFIX}plans.id", ondelete="RESTRICT")
    )
    quantity: Mapped[int] = mapped_column(default=1)
    amount: Mapped[int | None] = mapped_column(BigAmount)
    currency: Mapped[str] = mapped_column(CurrencyCode)
    description: Mapped[str | None] = mapped_column(sa.String(500))
    reference: Mapped[str | None] = mapped_column(Identifier(255), index=True)
    url: Mapped[str | None] = mapped_column(sa.String(2048))
    success_url: Mapped[str | None] = mapped_column(sa.String(2048))
    cancel_url: Mapped[str | None] = mapped_column(sa.String(2048))
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: When the library claimed the provider's completion step (PayPal capture); set once.
    completion_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    payment_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid())
    subscription_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid())
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSONDict, default=dict)


class Payment(UUIDPrimaryKey, TimestampMixin, Base):
    """A payment as the provider reports it, with the local audit trail.

    ``refunded_amount <= amount`` is enforced by the database, so no race can overdraw it.
    ``reference`` is the host's own id for what was paid (a booking, an order).
    """

    __tablename__ = f"{TABLE_PREFIX}payments"
    __table_args__ = (
        sa.UniqueConstraint("provider", "provider_payment_id"),
        sa.CheckConstraint("amount > 0", name="amount_positive"),
        sa.CheckConstraint("refunded_amount >= 0", name="refunded_amount_non_negative"),
        sa.CheckConstraint("refunded_amount <= amount", name="refunded_amount_within_amount"),
        sa.Index(None, "customer_id", "created_at", "id"),
        sa.Index(None, "created_at", "id"),
        sa.Index(None, "status", "provider", "currency"),
    )

    customer_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey(f"{TABLE_PREFIX}customers.id", ondelete="RESTRICT")
    )
    provider: Mapped[str] = mapped_column(Identifier(40))
    provider_payment_id: Mapped[str | None] = mapped_column(Identifier(255))
    checkout_session_id: Mapped[uuid.UUID | None] = mapped_column(
        sa.ForeignKey(f"{TABLE_PREFIX}checkout_sessions.id", ondelete="SET NULL"), unique=True
    )
    subscription_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid(), index=True)
    invoice_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid(), index=True)
    status: Mapped[PaymentStatus] = mapped_column(enum_column(PaymentStatus), default=PaymentStatus.PENDING)
    amount: Mapped[int] = mapped_column(BigAmount)
    currency: Mapped[str] = mapped_column(CurrencyCode)
    refunded_amount: Mapped[int] = mapped_column(BigAmount, default=0)
    description: Mapped[str | None] = mapped_column(sa.String(500))
    reference: Mapped[str | None] = mapped_column(Identifier(255), index=True)
    method: Mapped[str | None] = mapped_column(sa.String(40))
    payment_method_summary: Mapped[str | None] = mapped_column(sa.String(100))
    failure_code: Mapped[str | None] = mapped_column(sa.String(100))
    failure_message: Mapped[str | None] = mapped_column(sa.String(500))
    provider_updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSONDict, default=dict)

    @property
    def money(self) -> Money:
        """The amount as :class:`~fastapi_cashier.money.Money`."""
        return Money(self.amount, self.currency)

    @property
    def refundable_amount(self) -> int:
        """What is left to refund, in minor units."""
        return self.amount - self.refunded_amount


class Refund(UUIDPrimaryKey, TimestampMixin, Base):
    """A refund of (part of) a payment. Written before the provider is called."""

    __tablename__ = f"{TABLE_PREFIX}refunds"
    __table_args__ = (
        sa.UniqueConstraint("provider", "provider_refund_id"),
        sa.CheckConstraint("amount > 0", name="amount_positive"),
        sa.CheckConstraint(
            "tax_amount IS NULL OR (tax_amount >= 0 AND tax_amount <= amount)",
            name="tax_amount_within_amount",
        ),
    )

    payment_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey(f"{TABLE_PREFIX}payments.id", ondelete="RESTRICT"), index=True
    )
    provider: Mapped[str] = mapped_column(Identifier(40))
    provider_refund_id: Mapped[str | None] = mapped_column(Identifier(255))
    status: Mapped[RefundStatus] = mapped_column(enum_column(RefundStatus), default=RefundStatus.PENDING)
    amount: Mapped[int] = mapped_column(BigAmount)
    currency: Mapped[str] = mapped_column(CurrencyCode)
    reason: Mapped[str | None] = mapped_column(sa.String(500))
    #: The VAT inside ``amount`` (its share of the payment's tax); ``None`` for an untaxed payment.
    tax_amount: Mapped[int | None] = mapped_column(BigAmount)
    failure_message: Mapped[str | None] = mapped_column(sa.String(500))
    #: A retriable provider fault left the refund pending: the background loop asks again.
    provider_fault: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    actor: Mapped[str | None] = mapped_column(sa.String(255))

    @property
    def net_amount(self) -> int | None:
        """``amount`` without its VAT; ``None`` for an untaxed payment."""
        return None if self.tax_amount is None else self.amount - self.tax_amount
