"""Request and response bodies of the entitlement and credit routes."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import Field, StrictInt, field_validator, model_validator

from ...billing.credits import MAX_CREDITS
from ...statuses import CreditTransactionKind, SubscriptionStatus
from ._base import Instant, RequestBody, ResponseBody

__all__ = [
    "AdminCreditChange",
    "CreditBalanceOut",
    "CreditTransactionOut",
    "EntitledSubscriptionOut",
    "EntitlementsOut",
]


class EntitledSubscriptionOut(ResponseBody):
    id: uuid.UUID
    plan_id: uuid.UUID
    plan_name: str
    status: SubscriptionStatus


class EntitlementsOut(ResponseBody):
    """What the customer may use: entitling subscriptions (trialing, active, past_due), their
    plans, and the plans' features merged (limits by maximum, flags by "true wins")."""

    subscriptions: list[EntitledSubscriptionOut]
    plan_ids: list[uuid.UUID]
    features: dict[str, bool | int | str]


class CreditBalanceOut(ResponseBody):
    balance: int


class CreditTransactionOut(ResponseBody):
    """One line of the credit ledger; ``amount`` is signed (grants add, consumption subtracts)."""

    id: uuid.UUID
    kind: CreditTransactionKind
    amount: int
    balance_after: int
    reason: str | None
    reference: str | None
    expires_at: datetime | None
    created_at: datetime


class AdminCreditChange(RequestBody):
    """A positive ``amount`` grants credits (optionally expiring); a negative one takes them
    away, never below zero."""

    amount: Annotated[
        StrictInt,
        Field(
            ge=-MAX_CREDITS,
            le=MAX_CREDITS,
            description="Credits to add (positive) or take away (negative); not zero.",
        ),
    ]
    reason: Annotated[str, Field(min_length=1, max_length=500)]
    expires_at: Instant | None = Field(
        default=None, description="When granted credits expire (positive amounts only); with a time zone."
    )

    @field_validator("amount")
    @classmethod
    def _not_zero(cls, value: int) -> int:
        if value == 0:
            raise ValueError("amount must not be zero")
        return value

    @field_validator("expires_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and (value.tzinfo is None or value.utcoffset() is None):
            raise ValueError("expires_at must include a time zone")
        return value

    @model_validator(mode="after")
    def _expiry_only_for_grants(self) -> AdminCreditChange:
        if self.expires_at is not None and self.amount < 0:
            raise ValueError("expires_at is only allowed with a positive amount")
        return self
