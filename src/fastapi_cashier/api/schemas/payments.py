"""Request and response bodies of customers, billing profiles, checkout, payments and refunds."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import AliasPath, Field, StrictInt

from ...statuses import ManualPaymentMethod, PaymentStatus
from ._base import CurrencyCode, MinorUnits, Reference, RequestBody, ResponseBody, ShortText, Url

__all__ = [
    "AdminCustomerOut",
    "BillingProfileIn",
    "BillingProfileOut",
    "CheckoutSessionCreate",
    "CheckoutSessionOut",
    "CustomerOut",
    "CustomerUpdate",
    "ManualPaymentCreate",
    "PaymentOut",
    "PaymentStatusUpdate",
    "RefundCreate",
    "RefundOut",
    "StatusChangeOut",
    "SummaryOut",
    "TaxExemptionIn",
    "TaxQuoteOut",
]


class CustomerOut(ResponseBody):
    id: uuid.UUID
    external_id: str
    email: str | None
    name: str | None


class AdminCustomerOut(CustomerOut):
    created_at: datetime


class CustomerUpdate(RequestBody):
    email: Annotated[str, Field(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")] | None = None
    name: Annotated[str, Field(min_length=1, max_length=200)] | None = None


class BillingProfileIn(RequestBody):
    legal_name: Annotated[str, Field(max_length=200)] | None = None
    address_line1: Annotated[str, Field(max_length=200)] | None = None
    address_line2: Annotated[str, Field(max_length=200)] | None = None
    city: Annotated[str, Field(max_length=100)] | None = None
    postal_code: Annotated[str, Field(max_length=20)] | None = None
    state: Annotated[str, Field(max_length=100)] | None = None
    country: Annotated[str, Field(min_length=2, max_length=2)] | None = None
    tax_id: Annotated[str, Field(max_length=50)] | None = None
    #: Accepted for compatibility; ``true`` is refused: exemptions are granted by an admin.
    tax_exempt: bool = False


class TaxExemptionIn(RequestBody):
    """An admin's tax exemption of a customer; ``reason`` is printed on its invoices."""

    tax_exempt: bool
    reason: Annotated[str, Field(max_length=200)] | None = None


class BillingProfileOut(ResponseBody):
    legal_name: str | None
    address_line1: str | None
    address_line2: str | None
    city: str | None
    postal_code: str | None
    state: str | None
    country: str | None
    tax_id: str | None
    tax_id_status: str
    tax_id_checked_at: datetime | None = None
    tax_id_consultation_number: str | None = None
    tax_exempt: bool
    tax_exempt_reason: str | None = None


class CheckoutSessionCreate(RequestBody):
    """Either ``plan_id`` (+ ``quantity``) for a subscription, or ``amount`` + ``currency``.

    Giving both or neither is refused by the checkout service with a 422 naming ``amount``.
    """

    plan_id: uuid.UUID | None = None
    quantity: Annotated[StrictInt, Field(ge=1, le=100_000)] = 1
    amount: MinorUnits | None = None
    currency: CurrencyCode | None = None
    description: ShortText | None = None
    provider: Annotated[str, Field(max_length=40)] | None = None
    success_url: Url
    cancel_url: Url
    reference: Reference | None = None


class TaxQuoteOut(ResponseBody):
    """An amount split into net, tax and gross (minor units) and why: the rate in percent as a
    decimal string, the rule applied (``domestic``, ``eu_consumer``, ``reverse_charge``,
    ``export``, ``exempt``), the country whose rate applies and the legal mention."""

    net: int
    tax: int
    gross: int
    rate: str
    treatment: str
    country: str | None
    mention: str | None


class CheckoutSessionOut(ResponseBody):
    id: uuid.UUID
    url: str | None
    provider: str
    status: str
    expires_at: datetime | None
    mode: str
    amount: int | None
    currency: str
    description: str | None
    reference: str | None
    payment_id: uuid.UUID | None
    #: Present when tax is on (``tax.seller`` is set).
    tax: TaxQuoteOut | None = Field(default=None, validation_alias=AliasPath("metadata_", "tax"))


class PaymentOut(ResponseBody):
    id: uuid.UUID
    status: PaymentStatus
    amount: int
    currency: str
    refunded_amount: int
    provider: str
    provider_payment_id: str | None
    reference: str | None
    description: str | None
    method: str | None
    payment_method_summary: str | None
    failure_code: str | None
    failure_message: str | None
    customer_id: uuid.UUID
    created_at: datetime


class StatusChangeOut(ResponseBody):
    entity_type: str
    entity_id: uuid.UUID
    from_status: str | None
    to_status: str
    cause: str
    actor: str | None
    reason: str | None
    provider_event_id: str | None
    created_at: datetime


class RefundCreate(RequestBody):
    """``amount`` omitted refunds all that is left."""

    amount: MinorUnits | None = None
    reason: ShortText | None = None


class RefundOut(ResponseBody):
    id: uuid.UUID
    payment_id: uuid.UUID
    status: str
    amount: int
    #: The VAT inside ``amount`` and the rest (``null`` for a payment without a taxed invoice).
    tax_amount: int | None = None
    net_amount: int | None = None
    currency: str
    reason: str | None
    provider_refund_id: str | None
    failure_message: str | None
    created_at: datetime


class ManualPaymentCreate(RequestBody):
    customer_id: uuid.UUID
    amount: MinorUnits
    currency: CurrencyCode
    method: ManualPaymentMethod
    reference: Reference | None = None
    description: ShortText | None = None


class PaymentStatusUpdate(RequestBody):
    status: PaymentStatus
    reason: ShortText | None = None


class PaymentTotalOut(ResponseBody):
    status: str
    provider: str
    currency: str
    count: int
    amount: int
    refunded_amount: int


class SummaryOut(ResponseBody):
    payments: list[PaymentTotalOut]
    mrr: dict[str, int]
    active_subscriptions: int
    trialing_subscriptions: int
