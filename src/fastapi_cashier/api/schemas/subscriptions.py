"""Bodies of the subscription, invoice and portal routes."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import Field, StrictBool, StrictInt

from ...statuses import ProrationBehavior
from ._base import Instant, RequestBody, ResponseBody, Url

__all__ = [
    "CancelRequest",
    "InvoiceLineOut",
    "InvoiceOut",
    "PendingChangeOut",
    "PortalRequestIn",
    "PortalSessionOut",
    "SubscriptionOut",
    "SubscriptionUpdate",
    "TaxDetailsOut",
    "TaxLineOut",
    "UsageIn",
    "UsageOut",
]


class PendingChangeOut(ResponseBody):
    """A change waiting for the subscriber's approval at the provider (``approval_url``)."""

    plan_id: uuid.UUID | None = None
    quantity: int | None = None
    approval_url: str | None = None


class SubscriptionOut(ResponseBody):
    id: uuid.UUID
    status: str
    plan_id: uuid.UUID
    quantity: int
    provider: str
    current_period_start: datetime | None
    current_period_end: datetime | None
    cancel_at_period_end: bool
    trial_start: datetime | None
    trial_end: datetime | None
    canceled_at: datetime | None
    ended_at: datetime | None
    paused: bool
    pending_change: PendingChangeOut | None = None
    created_at: datetime


class SubscriptionUpdate(RequestBody):
    """Change the plan and/or the quantity; ``proration`` says how the provider bills the change."""

    plan_id: uuid.UUID | None = None
    quantity: Annotated[StrictInt, Field(ge=1, le=100_000)] | None = None
    proration: ProrationBehavior = ProrationBehavior.CREATE_PRORATIONS


class CancelRequest(RequestBody):
    at_period_end: StrictBool = True


class UsageIn(RequestBody):
    """Metered usage. The same ``idempotency_key`` (or ``Idempotency-Key`` header) counts once."""

    quantity: Annotated[StrictInt, Field(ge=0, le=10**12)]
    idempotency_key: Annotated[str, Field(min_length=1, max_length=255)] | None = None
    recorded_at: Instant | None = None


class UsageOut(ResponseBody):
    id: uuid.UUID
    subscription_id: uuid.UUID
    quantity: int
    idempotency_key: str
    recorded_at: datetime
    duplicate: bool = False


class InvoiceLineOut(ResponseBody):
    description: str
    quantity: int
    unit_amount: int
    amount: int
    currency: str
    proration: bool
    plan_id: uuid.UUID | None
    period_start: datetime | None
    period_end: datetime | None


class TaxLineOut(ResponseBody):
    """The lines of one rate: rate in percent (a decimal string), net, tax and gross."""

    rate: str
    net: int
    tax: int
    gross: int


class TaxDetailsOut(ResponseBody):
    """How an invoice was taxed; ``source`` is ``computed`` here or reported by the ``provider``."""

    source: str
    treatment: str | None = None
    country: str | None = None
    prices_include_tax: bool | None = None
    mentions: list[str] = Field(default_factory=list)
    lines: list[TaxLineOut] = Field(default_factory=list)
    seller: dict[str, Any] = Field(default_factory=dict)
    buyer: dict[str, Any] = Field(default_factory=dict)


class InvoiceOut(ResponseBody):
    id: uuid.UUID
    number: str | None
    status: str
    currency: str
    subtotal: int
    tax: int
    total: int
    amount_paid: int
    subscription_id: uuid.UUID | None
    period_start: datetime | None
    period_end: datetime | None
    paid_at: datetime | None
    created_at: datetime
    lines: list[InvoiceLineOut]
    tax_details: TaxDetailsOut | None = None


class PortalRequestIn(RequestBody):
    return_url: Url
    subscription_id: uuid.UUID | None = None
    provider: Annotated[str, Field(max_length=40)] | None = None


class PortalSessionOut(ResponseBody):
    url: str
