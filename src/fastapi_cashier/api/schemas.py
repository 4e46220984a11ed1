"""Request and response bodies of the HTTP API.

Amounts are ``StrictInt`` minor units: a float, a string or a bool is refused with a 422 problem
that names the field, never rounded. Currency codes are checked against ISO 4217.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Generic, TypeVar

from pydantic import AfterValidator, AliasPath, BaseModel, ConfigDict, Field, StrictInt, field_validator

from ..currencies import normalize_currency
from ..errors import UnknownCurrencyError
from ..statuses import ManualPaymentMethod, PaymentStatus

__all__ = [
    "AdminCustomerOut",
    "BillingProfileIn",
    "BillingProfileOut",
    "CheckoutSessionCreate",
    "CheckoutSessionOut",
    "CustomerOut",
    "CustomerUpdate",
    "ManualPaymentCreate",
    "Page",
    "PaymentOut",
    "PaymentStatusUpdate",
    "RefundCreate",
    "RefundOut",
    "RequestBody",
    "StatusChangeOut",
    "SummaryOut",
    "TaxExemptionIn",
    "TaxQuoteOut",
]

T = TypeVar("T")


def _currency(value: str) -> str:
    try:
        return normalize_currency(value)
    except UnknownCurrencyError as exc:
        raise ValueError(exc.message) from None


def _http_url(value: str) -> str:
    if not value.startswith(("http://", "https://")) or len(value) > 2048:
        raise ValueError("must be an absolute http(s) URL of at most 2048 characters")
    return value


def utc_representable(value: datetime) -> datetime:
    """Refuse a time zone-aware timestamp that has no UTC equivalent (``0001-01-01T00:00+01:00``)."""
    if value.utcoffset() is not None:
        try:
            value.astimezone(UTC)
        except OverflowError:
            raise ValueError(f"{value.isoformat()} is out of range once converted to UTC") from None
    return value


CurrencyCode = Annotated[str, AfterValidator(_currency)]
Instant = Annotated[datetime, AfterValidator(utc_representable)]
MinorUnits = Annotated[StrictInt, Field(gt=0, le=10**15, description="Amount in minor units (cents)")]
Url = Annotated[str, AfterValidator(_http_url)]
ShortText = Annotated[str, Field(max_length=500)]
Reference = Annotated[str, Field(min_length=1, max_length=255)]


def _contains_nul(value: object) -> bool:
    """Whether a text, or any text inside a list or a mapping (keys too), contains U+0000."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_contains_nul(key) or _contains_nul(item) for key, item in value.items())
    if isinstance(value, list | tuple):
        return any(_contains_nul(item) for item in value)
    return False


class RequestBody(BaseModel):
    """The base of every request body: unknown fields and NUL characters in text are refused.

    PostgreSQL cannot store or compare text containing U+0000 (the driver fails, the request
    would be a 500), so it is refused on every database alike, with a 422 naming the field.
    """

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _refuse_nul(cls, value: Any) -> Any:
        if _contains_nul(value):
            raise ValueError("text must not contain NUL (U+0000) characters")
        return value


_In = RequestBody


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class Page(BaseModel, Generic[T]):
    """A page of a listing; pass ``next_cursor`` as ``cursor`` for the next one."""

    items: list[T]
    next_cursor: str | None


class CustomerOut(_Out):
    id: uuid.UUID
    external_id: str
    email: str | None
    name: str | None


class AdminCustomerOut(CustomerOut):
    created_at: datetime


class CustomerUpdate(_In):
    email: Annotated[str, Field(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")] | None = None
    name: Annotated[str, Field(min_length=1, max_length=200)] | None = None


class BillingProfileIn(_In):
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


class TaxExemptionIn(_In):
    """An admin's tax exemption of a customer; ``reason`` is printed on its invoices."""

    tax_exempt: bool
    reason: Annotated[str, Field(max_length=200)] | None = None


class BillingProfileOut(_Out):
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


class CheckoutSessionCreate(_In):
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


class TaxQuoteOut(BaseModel):
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


class CheckoutSessionOut(_Out):
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


class PaymentOut(_Out):
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


class StatusChangeOut(_Out):
    entity_type: str
    entity_id: uuid.UUID
    from_status: str | None
    to_status: str
    cause: str
    actor: str | None
    reason: str | None
    provider_event_id: str | None
    created_at: datetime


class RefundCreate(_In):
    """``amount`` omitted refunds all that is left."""

    amount: MinorUnits | None = None
    reason: ShortText | None = None


class RefundOut(_Out):
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


class ManualPaymentCreate(_In):
    customer_id: uuid.UUID
    amount: MinorUnits
    currency: CurrencyCode
    method: ManualPaymentMethod
    reference: Reference | None = None
    description: ShortText | None = None


class PaymentStatusUpdate(_In):
    status: PaymentStatus
    reason: ShortText | None = None


class PaymentTotalOut(_Out):
    status: str
    provider: str
    currency: str
    count: int
    amount: int
    refunded_amount: int


class SummaryOut(_Out):
    payments: list[PaymentTotalOut]
    mrr: dict[str, int]
    active_subscriptions: int
    trialing_subscriptions: int


def dump(model: type[BaseModel], obj: Any) -> dict[str, Any]:
    """Serialise a row through a response model (JSON mode)."""
    return model.model_validate(obj).model_dump(mode="json")
