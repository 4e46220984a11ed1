"""The catalog: products, plans, their tiers and features, and ids of their copies at providers."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ...statuses import BillingInterval, PricingModel
from ..base import (
    TABLE_PREFIX,
    Base,
    BigAmount,
    CurrencyCode,
    Identifier,
    JSONDict,
    TimestampMixin,
    UUIDPrimaryKey,
    enum_column,
)

__all__ = ["Plan", "PlanFeature", "PlanTier", "Product", "ProviderObject"]


class Product(UUIDPrimaryKey, TimestampMixin, Base):
    """Something sold; its plans say how it is priced."""

    __tablename__ = f"{TABLE_PREFIX}products"

    name: Mapped[str] = mapped_column(sa.String(200))
    description: Mapped[str | None] = mapped_column(sa.Text())
    active: Mapped[bool] = mapped_column(default=True)
    #: The VAT category of what is sold (``ebooks`` ...) for reduced rates; ``None``: the standard rate.
    tax_category: Mapped[str | None] = mapped_column(sa.String(40))
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSONDict, default=dict)

    plans: Mapped[list[Plan]] = relationship(back_populates="product", lazy="raise")


class Plan(UUIDPrimaryKey, TimestampMixin, Base):
    """A price for a product: pricing model, amount in minor units, currency and interval."""

    __tablename__ = f"{TABLE_PREFIX}plans"
    __table_args__ = (
        sa.CheckConstraint("unit_amount >= 0", name="unit_amount_non_negative"),
        sa.CheckConstraint("interval_count >= 1", name="interval_count_positive"),
        sa.CheckConstraint("trial_days >= 0", name="trial_days_non_negative"),
        sa.Index(None, "active", "product_id"),
    )

    product_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey(f"{TABLE_PREFIX}products.id", ondelete="RESTRICT"), index=True
    )
    name: Mapped[str] = mapped_column(sa.String(200))
    pricing_model: Mapped[PricingModel] = mapped_column(enum_column(PricingModel))
    unit_amount: Mapped[int] = mapped_column(BigAmount, default=0)
    currency: Mapped[str] = mapped_column(CurrencyCode)
    interval: Mapped[BillingInterval] = mapped_column(enum_column(BillingInterval))
    interval_count: Mapped[int] = mapped_column(default=1)
    trial_days: Mapped[int] = mapped_column(default=0)
    active: Mapped[bool] = mapped_column(default=True)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSONDict, default=dict)

    product: Mapped[Product] = relationship(back_populates="plans", lazy="raise")
    tiers: Mapped[list[PlanTier]] = relationship(
        back_populates="plan", order_by="PlanTier.position", cascade="all, delete-orphan", lazy="selectin"
    )
    features: Mapped[list[PlanFeature]] = relationship(
        back_populates="plan", order_by="PlanFeature.key", cascade="all, delete-orphan", lazy="selectin"
    )


class PlanTier(UUIDPrimaryKey, Base):
    """One tier of a tiered plan; ``up_to`` is inclusive, ``None`` for the last, open tier."""

    __tablename__ = f"{TABLE_PREFIX}plan_tiers"
    __table_args__ = (
        sa.UniqueConstraint("plan_id", "position"),
        sa.CheckConstraint("up_to IS NULL OR up_to >= 1", name="up_to_positive"),
        sa.CheckConstraint("unit_amount >= 0", name="unit_amount_non_negative"),
        sa.CheckConstraint("flat_amount >= 0", name="flat_amount_non_negative"),
    )

    plan_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey(f"{TABLE_PREFIX}plans.id", ondelete="CASCADE"))
    position: Mapped[int]
    up_to: Mapped[int | None] = mapped_column(sa.BigInteger)
    unit_amount: Mapped[int] = mapped_column(BigAmount, default=0)
    flat_amount: Mapped[int] = mapped_column(BigAmount, default=0)

    plan: Mapped[Plan] = relationship(back_populates="tiers", lazy="raise")


class PlanFeature(UUIDPrimaryKey, Base):
    """An entitlement a plan grants: a flag or value (``value``) or a numeric limit (``limit``)."""

    __tablename__ = f"{TABLE_PREFIX}plan_features"
    __table_args__ = (sa.UniqueConstraint("plan_id", "key"),)

    plan_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey(f"{TABLE_PREFIX}plans.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(Identifier(100))
    value: Mapped[str | None] = mapped_column(sa.String(500))
    limit: Mapped[int | None] = mapped_column(sa.BigInteger)

    plan: Mapped[Plan] = relationship(back_populates="features", lazy="raise")


class ProviderObject(UUIDPrimaryKey, TimestampMixin, Base):
    """A local object's copy at a provider (a plan's Stripe price, a product's PayPal product).

    A local object may have had several copies over time (a changed price is a new price);
    ``archived`` marks the ones no longer current.
    """

    __tablename__ = f"{TABLE_PREFIX}provider_objects"
    __table_args__ = (
        sa.UniqueConstraint("provider", "object_type", "provider_id"),
        sa.Index(None, "object_type", "object_id", "provider"),
    )

    provider: Mapped[str] = mapped_column(Identifier(40))
    object_type: Mapped[str] = mapped_column(Identifier(40))
    object_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid())
    provider_id: Mapped[str] = mapped_column(Identifier(255))
    archived: Mapped[bool] = mapped_column(default=False)
    fingerprint: Mapped[str | None] = mapped_column(sa.String(64))
