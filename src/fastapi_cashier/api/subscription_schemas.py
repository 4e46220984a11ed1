"""Bodies of the subscription, invoice and portal routes."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt

from ..statuses import ProrationBehavior
from .schemas import Instant, RequestBody, Url

__all__ = [
    "CancelRequest",
    "InvoiceLineOut",
    "InvoiceOut",
    "PortalRequestIn",
    "PortalSessionOut",
    "SubscriptionOut",
    "SubscriptionUpdate",
    "UsageIn",
    "UsageOut",
]


_In = RequestBody


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class SubscriptionOut(_Out):
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
    created_at: datetime


class SubscriptionUpdate(_In):
    """Change the plan and/or the quantity; ``proration`` says how the provider bills the change."""

    plan_id: uuid.UUID | None = None
    quantity: Annotated[StrictInt, Field(ge=1, le=100_000)] | None = None
    proration: ProrationBehavior = ProrationBehavior.CREATE_PRORATIONS


class CancelRequest(_In):
    at_period_end: StrictBool = True


class UsageIn(_In):
    """Metered usage. The same ``idempotency_key`` (or ``Idempotency-Key`` header) counts once."""

    quantity: Annotated[StrictInt, Field(ge=0, le=10**12)]
    idempotency_key: Annotated[str, Field(min_length=1, max_length=255)] | None = None
    recorded_at: Instant | None = None


class UsageOut(_Out):
    id: uuid.UUID
    subscription_id: uuid.UUID
    quantity: int
    idempotency_key: str
    recorded_at: datetime
    duplicate: bool = False


class InvoiceLineOut(_Out):
    description: str
    quantity: int
    unit_amount: int
    amount: int
    currency: str
    proration: bool
    plan_id: uuid.UUID | None
    period_start: datetime | None
    period_end: datetime | None


class InvoiceOut(_Out):
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


class PortalRequestIn(_In):
    return_url: Url
    subscription_id: uuid.UUID | None = None
    provider: Annotated[str, Field(max_length=40)] | None = None


class PortalSessionOut(BaseModel):
    url: str
