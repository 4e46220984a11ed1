"""Request and response bodies of the catalog routes: products, plans, the provider sync.

Amounts are ``StrictInt`` minor units (a float or a string is a 422 naming the field). The rules
that span fields (tiers ascending with an open last one, no tiers on a flat plan, ...) are the
catalog service's; it answers them with a 422 whose ``errors[0].field`` names the field.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import AliasChoices, Field, StrictBool, StrictInt, field_validator

from ...billing.catalog import MAX_FEATURES, MAX_TIERS, MAX_TRIAL_DAYS, feature_value
from ...statuses import BillingInterval, PricingModel
from ._base import CurrencyCode, RequestBody, ResponseBody
from .payments import TaxQuoteOut

__all__ = [
    "PlanCreate",
    "PlanOut",
    "PlanUpdate",
    "PriceLineOut",
    "PricePreviewOut",
    "ProductCreate",
    "ProductOut",
    "ProductUpdate",
    "SyncOut",
    "TierIn",
    "TierOut",
]

Name = Annotated[str, Field(min_length=1, max_length=200)]
Description = Annotated[str, Field(max_length=5000)]
Amount = Annotated[StrictInt, Field(ge=0, le=10**15, description="Minor units (cents)")]
Metadata = Annotated[
    dict[Annotated[str, Field(max_length=40)], Annotated[str, Field(max_length=500)]],
    Field(max_length=50, description="Up to 50 string values for the host's own use."),
]
FeatureIn = StrictBool | StrictInt | Annotated[str, Field(max_length=500)]
Features = Annotated[
    dict[str, FeatureIn],
    Field(
        max_length=MAX_FEATURES,
        description=(
            "Entitlements by key (1 to 100 characters of `a-z 0-9 _ . : -`): true/false flags, "
            "integer limits (e.g. `credits_per_period`) or text."
        ),
    ),
]
IntervalCount = Annotated[StrictInt, Field(ge=1, description="Intervals per billing cycle; 1 to 12 months.")]
TrialDays = Annotated[StrictInt, Field(ge=0, le=MAX_TRIAL_DAYS)]


#: A product's VAT category for reduced rates (``ebooks``, or one of ``tax.reduced_rates``);
#: a category the library does not know is refused with a 422 problem.
TaxCategory = Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[a-z][a-z0-9_]*$")]


class ProductCreate(RequestBody):
    name: Name
    description: Description | None = None
    active: bool = True
    metadata: Metadata | None = None
    tax_category: TaxCategory | None = None


class ProductUpdate(RequestBody):
    """Only the fields sent change."""

    name: Name | None = None
    description: Description | None = None
    active: bool | None = None
    metadata: Metadata | None = None
    #: ``null`` goes back to the standard rate.
    tax_category: TaxCategory | None = None


class ProductOut(ResponseBody):
    id: uuid.UUID
    name: str
    description: str | None
    active: bool
    tax_category: str | None = None
    # The ORM attribute is ``metadata_`` (``metadata`` is SQLAlchemy's); a dict has ``metadata``.
    metadata: dict[str, Any] = Field(validation_alias=AliasChoices("metadata_", "metadata"))
    created_at: datetime
    updated_at: datetime


class TierIn(RequestBody):
    """One price tier; ``up_to`` is inclusive, ``null`` for the last (open) tier."""

    up_to: Annotated[StrictInt, Field(ge=1)] | None
    unit_amount: Amount = 0
    flat_amount: Amount = 0


class TierOut(ResponseBody):
    up_to: int | None
    unit_amount: int
    flat_amount: int


class PlanCreate(RequestBody):
    """A price for a product.

    ``unit_amount`` is per period (flat), per unit (per_unit, metered), 0 for free plans and for
    plans priced by their ``tiers`` (tiered_graduated, tiered_volume, optionally metered).
    """

    product_id: uuid.UUID
    name: Name
    pricing_model: PricingModel
    unit_amount: Amount
    currency: CurrencyCode
    interval: BillingInterval
    interval_count: IntervalCount = 1
    trial_days: TrialDays = 0
    tiers: Annotated[list[TierIn], Field(max_length=MAX_TIERS)] = []
    features: Features = {}
    active: bool = True


class PlanUpdate(RequestBody):
    """Only the fields sent change; the pricing fields only while nothing refers to the plan.

    ``features`` replaces all of the plan's features (``null`` or ``{}`` removes them).
    """

    name: Name | None = None
    active: bool | None = None
    trial_days: TrialDays | None = None
    features: Features | None = None
    pricing_model: PricingModel | None = None
    unit_amount: Amount | None = None
    currency: CurrencyCode | None = None
    interval: BillingInterval | None = None
    interval_count: IntervalCount | None = None
    tiers: Annotated[list[TierIn], Field(max_length=MAX_TIERS)] | None = None


class PlanOut(ResponseBody):
    id: uuid.UUID
    product_id: uuid.UUID
    name: str
    pricing_model: PricingModel
    unit_amount: int
    currency: str
    interval: BillingInterval
    interval_count: int
    trial_days: int
    active: bool
    tiers: list[TierOut]
    features: dict[str, bool | int | str]
    created_at: datetime
    updated_at: datetime

    @field_validator("features", mode="before")
    @classmethod
    def _features_by_key(cls, value: Any) -> Any:
        # Rows of PlanFeature become {key: limit | flag | text}.
        if isinstance(value, list):
            return {feature.key: feature_value(feature) for feature in value}
        return value


class SyncOut(ResponseBody):
    provider: str
    created: int = Field(description="Plans whose price was created at the provider.")
    unchanged: int = Field(description="Plans whose provider price was already current.")
    archived: int = Field(description="Earlier provider prices archived because the plan's price changed.")


class PriceLineOut(ResponseBody):
    """One line of a price computation: ``amount == quantity * unit_amount``."""

    description: str
    quantity: int
    unit_amount: int
    amount: int


class PricePreviewOut(ResponseBody):
    """The price of one period of a plan, in minor units."""

    plan_id: uuid.UUID
    amount: int
    currency: str
    lines: list[PriceLineOut]
    #: With tax on: ``amount`` split for a consumer in ``country`` (the seller's by default).
    tax: TaxQuoteOut | None = None
