"""Customers, their provider accounts, billing profiles and credit ledgers."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from ...statuses import CreditTransactionKind, TaxIdStatus
from ..base import (
    TABLE_PREFIX,
    Base,
    Identifier,
    JSONDict,
    TimestampMixin,
    UTCDateTime,
    UUIDPrimaryKey,
    enum_column,
)

__all__ = ["BillingProfile", "CreditAccount", "CreditTransaction", "Customer", "CustomerAccount"]


class Customer(UUIDPrimaryKey, TimestampMixin, Base):
    """The host's user as the billing system knows it; ``external_id`` is the host's user id."""

    __tablename__ = f"{TABLE_PREFIX}customers"
    __table_args__ = (sa.Index(None, "created_at", "id"),)

    external_id: Mapped[str] = mapped_column(Identifier(255), unique=True)
    email: Mapped[str | None] = mapped_column(sa.String(320), index=True)
    name: Mapped[str | None] = mapped_column(sa.String(200))
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSONDict, default=dict)


class CustomerAccount(UUIDPrimaryKey, TimestampMixin, Base):
    """A customer's id at one provider (a Stripe ``cus_...``)."""

    __tablename__ = f"{TABLE_PREFIX}customer_accounts"
    __table_args__ = (
        sa.UniqueConstraint("provider", "provider_customer_id"),
        sa.UniqueConstraint("customer_id", "provider"),
    )

    customer_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey(f"{TABLE_PREFIX}customers.id", ondelete="CASCADE")
    )
    provider: Mapped[str] = mapped_column(Identifier(40))
    provider_customer_id: Mapped[str] = mapped_column(Identifier(255))


class BillingProfile(UUIDPrimaryKey, TimestampMixin, Base):
    """Who and where is billed: legal name, address, country and tax id."""

    __tablename__ = f"{TABLE_PREFIX}billing_profiles"

    customer_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey(f"{TABLE_PREFIX}customers.id", ondelete="CASCADE"), unique=True
    )
    legal_name: Mapped[str | None] = mapped_column(sa.String(200))
    address_line1: Mapped[str | None] = mapped_column(sa.String(200))
    address_line2: Mapped[str | None] = mapped_column(sa.String(200))
    city: Mapped[str | None] = mapped_column(sa.String(100))
    postal_code: Mapped[str | None] = mapped_column(sa.String(20))
    state: Mapped[str | None] = mapped_column(sa.String(100))
    country: Mapped[str | None] = mapped_column(sa.CHAR(2))
    tax_id: Mapped[str | None] = mapped_column(sa.String(50))
    tax_id_status: Mapped[TaxIdStatus] = mapped_column(
        enum_column(TaxIdStatus), default=TaxIdStatus.UNVERIFIED
    )
    tax_exempt: Mapped[bool] = mapped_column(default=False)
    #: Printed on invoices of an exempted customer; set by an admin with the exemption.
    tax_exempt_reason: Mapped[str | None] = mapped_column(sa.String(200))
    #: When VIES last answered (valid or invalid) about ``tax_id``, and its consultation number.
    tax_id_checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    tax_id_consultation_number: Mapped[str | None] = mapped_column(sa.String(100))
    #: When the background job asks VIES (again); ``None`` when there is nothing to check.
    tax_id_next_check_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)


class CreditAccount(UUIDPrimaryKey, TimestampMixin, Base):
    """A customer's balance of credits; the check constraint keeps it at zero or above."""

    __tablename__ = f"{TABLE_PREFIX}credit_accounts"
    __table_args__ = (sa.CheckConstraint("balance >= 0", name="balance_non_negative"),)

    customer_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey(f"{TABLE_PREFIX}customers.id", ondelete="CASCADE"), unique=True
    )
    balance: Mapped[int] = mapped_column(sa.BigInteger, default=0)


class CreditTransaction(UUIDPrimaryKey, TimestampMixin, Base):
    """One line of the credit ledger. ``amount`` is signed: grants add, consumption subtracts."""

    __tablename__ = f"{TABLE_PREFIX}credit_transactions"
    __table_args__ = (
        sa.UniqueConstraint("account_id", "idempotency_key"),
        sa.CheckConstraint("amount <> 0", name="amount_non_zero"),
        sa.CheckConstraint("balance_after >= 0", name="balance_after_non_negative"),
        sa.Index(None, "account_id", "created_at", "id"),
    )

    account_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey(f"{TABLE_PREFIX}credit_accounts.id", ondelete="CASCADE")
    )
    kind: Mapped[CreditTransactionKind] = mapped_column(enum_column(CreditTransactionKind))
    amount: Mapped[int] = mapped_column(sa.BigInteger)
    balance_after: Mapped[int] = mapped_column(sa.BigInteger)
    reason: Mapped[str | None] = mapped_column(sa.String(500))
    reference: Mapped[str | None] = mapped_column(Identifier(255))
    idempotency_key: Mapped[str | None] = mapped_column(Identifier(255))
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
