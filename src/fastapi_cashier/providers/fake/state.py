"""The fake provider's memory: customers, checkout sessions, payments, refunds, subscriptions, invoices.

Each record serialises itself with ``to_object()`` into the ``data.object`` of the events that
:class:`~fastapi_cashier.providers.fake.provider.FakeProvider` emits (see
:mod:`~fastapi_cashier.providers.fake.wire` for the envelope). :class:`HostedStep` tells the
router where the hosted pages send the payer next.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Final, Literal

from ...clock import utcnow
from ...errors import InvalidProviderRequestError, ValidationError
from ...money import Money
from ...pricing import PriceSpec, add_interval, price, prorate
from ...statuses import (
    BillingInterval,
    CheckoutSessionStatus,
    InvoiceStatus,
    PaymentStatus,
    PricingModel,
    RefundStatus,
    SubscriptionStatus,
)
from ...tax.amounts import compute_tax
from ..base import EventType, PlanRef, TaxRateRef

__all__ = [
    "CARD_3DS",
    "CARD_DECLINED",
    "CARD_OK",
    "Emitted",
    "FakeCheckoutSession",
    "FakeCustomer",
    "FakeInvoice",
    "FakePayment",
    "FakeRefund",
    "FakeSubscription",
    "FakeUsage",
    "HostedStep",
    "InvoiceLine",
    "check_plan",
    "new_id",
    "refused",
    "unix_time",
    "utcnow",
]

_PROVIDER: Final = "fake"

# Stripe's test cards: the plain one, the one that is declined, the one that asks for 3-D Secure.
CARD_OK: Final = "visa •••• 4242"
CARD_DECLINED: Final = "visa •••• 0002"
CARD_3DS: Final = "visa •••• 3155"

Emitted = list[tuple[EventType, dict[str, Any]]]
"""Events to emit, in order: each type with its object already serialised by ``to_object()``."""


def new_id(prefix: str) -> str:
    """A fresh fake provider id such as ``pay_fake_<24 hex digits>``."""
    return f"{prefix}_fake_{secrets.token_hex(12)}"


def unix_time(moment: datetime) -> int:
    """``moment`` in whole seconds since the epoch, as the wire format carries times."""
    return int(moment.timestamp())


def _unix_or_none(moment: datetime | None) -> int | None:
    return None if moment is None else unix_time(moment)


def refused(message: str, *, code: str = "invalid_request", **details: Any) -> InvalidProviderRequestError:
    """The error the fake provider raises when it refuses a request, as a real provider's API would."""
    return InvalidProviderRequestError(message, provider=_PROVIDER, provider_code=code, details=details)


def check_plan(plan: PlanRef, quantity: int, *, recurring: bool = True) -> Money:
    """Refuse a plan a subscription (``recurring``) or the catalog cannot use; else its price."""
    if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
        raise refused("quantity must be an integer of at least 1", field="quantity")
    if recurring and (plan.interval is BillingInterval.ONE_TIME or plan.interval_count < 1):
        raise refused(f"plan {plan.id} does not recur; a subscription needs a recurring plan", field="plan")
    if plan.trial_days < 0:
        raise refused(f"plan {plan.id} has a negative trial", field="plan")
    try:
        return price(PriceSpec.from_plan_ref(plan), quantity=quantity).total
    except (ValidationError, TypeError, ValueError) as exc:
        raise refused(f"plan {plan.id} has no valid price: {exc}", field="plan") from exc


@dataclass(slots=True)
class FakeCustomer:
    """A customer held by the fake provider."""

    id: str
    created: datetime
    local_id: uuid.UUID | None = None
    external_id: str | None = None
    email: str | None = None
    name: str | None = None


@dataclass(slots=True)
class FakeCheckoutSession:
    """A hosted checkout session; ``metadata`` holds the local ids echoed in every event."""

    id: str
    status: CheckoutSessionStatus
    amount: Money
    description: str | None
    success_url: str
    cancel_url: str
    expires_at: datetime
    customer: str
    metadata: dict[str, str]
    created: datetime
    updated: datetime
    payment: str | None = None
    mode: Literal["payment", "subscription"] = "payment"
    plan: PlanRef | None = None
    quantity: int = 1
    subscription: str | None = None
    url: str | None = None
    #: The VAT the library decided for the subscription this session starts.
    tax: TaxRateRef | None = None

    def to_object(self) -> dict[str, Any]:
        """The session as it appears in ``data.object`` of an event."""
        return {
            "object": "checkout_session",
            "id": self.id,
            "mode": self.mode,
            "status": self.status.value,
            "amount": self.amount.amount,
            "currency": self.amount.currency,
            "description": self.description,
            "customer": self.customer,
            "payment": self.payment,
            "subscription": self.subscription,
            "success_url": self.success_url,
            "cancel_url": self.cancel_url,
            "expires_at": unix_time(self.expires_at),
            "metadata": dict(self.metadata),
            "created": unix_time(self.created),
            "updated": unix_time(self.updated),
        }


@dataclass(slots=True)
class FakePayment:
    """A payment: a checkout session's attempts (a decline and a retry share it), or an invoice's."""

    id: str
    status: PaymentStatus
    amount: Money
    checkout_session: str | None
    customer: str
    description: str | None
    metadata: dict[str, str]
    created: datetime
    updated: datetime
    refunded_amount: int = 0
    payment_method_summary: str | None = None
    failure_code: str | None = None
    failure_message: str | None = None
    invoice: str | None = None
    subscription: str | None = None

    def to_object(self) -> dict[str, Any]:
        """The payment as it appears in ``data.object`` of an event."""
        return {
            "object": "payment",
            "id": self.id,
            "status": self.status.value,
            "amount": self.amount.amount,
            "currency": self.amount.currency,
            "refunded_amount": self.refunded_amount,
            "description": self.description,
            "checkout_session": self.checkout_session,
            "invoice": self.invoice,
            "subscription": self.subscription,
            "customer": self.customer,
            "payment_method_summary": self.payment_method_summary,
            "failure_code": self.failure_code,
            "failure_message": self.failure_message,
            "metadata": dict(self.metadata),
            "created": unix_time(self.created),
            "updated": unix_time(self.updated),
        }


@dataclass(slots=True)
class FakeRefund:
    """A refund of (part of) a payment."""

    id: str
    status: RefundStatus
    amount: Money
    payment: str
    reason: str | None
    metadata: dict[str, str]
    created: datetime
    updated: datetime

    def to_object(self) -> dict[str, Any]:
        """The refund as it appears in ``data.object`` of an event."""
        return {
            "object": "refund",
            "id": self.id,
            "status": self.status.value,
            "amount": self.amount.amount,
            "currency": self.amount.currency,
            "payment": self.payment,
            "reason": self.reason,
            "metadata": dict(self.metadata),
            "created": unix_time(self.created),
            "updated": unix_time(self.updated),
        }


@dataclass(frozen=True, slots=True)
class InvoiceLine:
    """One line of a fake invoice; ``amount`` is negative for a credit.

    The fake simulates a provider that computes prices, so :meth:`priced` (and
    :meth:`FakeSubscription.prorations`) use the library's own pricing math, as a real provider
    would use its own.
    """

    description: str
    quantity: int
    unit_amount: int
    amount: int
    period_start: datetime | None
    period_end: datetime | None
    plan_id: uuid.UUID | None = None
    proration: bool = False
    #: The VAT rate in percent the line is taxed at (``None``: no tax was asked for).
    tax_rate: Decimal | None = None

    @classmethod
    def priced(
        cls,
        plan: PlanRef,
        quantity: int,
        start: datetime,
        end: datetime,
        *,
        usage: int = 0,
        tax: TaxRateRef | None = None,
    ) -> list[InvoiceLine]:
        """The plan's price for ``[start, end]``: for ``quantity``, or for ``usage`` when metered."""
        preview = price(PriceSpec.from_plan_ref(plan), quantity=quantity, usage=usage)
        label = "usage" if plan.pricing_model is PricingModel.METERED else "period"
        return [
            cls(
                f"{plan.name} {label}: {line.description}",
                line.quantity,
                line.unit_amount,
                line.amount,
                start,
                end,
                plan.id,
                tax_rate=tax.rate if tax is not None else None,
            )
            for line in preview.lines
        ]

    def to_object(self) -> dict[str, Any]:
        """The line as it appears in an invoice's ``lines`` (``tax_rate`` only when taxed)."""
        obj = {
            "description": self.description,
            "quantity": self.quantity,
            "unit_amount": self.unit_amount,
            "amount": self.amount,
            "proration": self.proration,
            "period_start": _unix_or_none(self.period_start),
            "period_end": _unix_or_none(self.period_end),
            "plan_id": None if self.plan_id is None else str(self.plan_id),
        }
        if self.tax_rate is not None:
            obj["tax_rate"] = str(self.tax_rate)
        return obj


@dataclass(frozen=True, slots=True)
class FakeUsage:
    """Metered usage reported once (per idempotency key) in the period starting at ``period_start``."""

    quantity: int
    recorded_at: datetime
    period_start: datetime


@dataclass(slots=True)
class FakeSubscription:
    """A subscription to one plan; periods are stepped from ``anchor`` so month ends do not drift.

    ``current_period_end == add_interval(anchor, plan.interval, plan.interval_count * cycles)``;
    during a trial the anchor is the trial's end and ``cycles`` is 0. ``pending_lines`` are added
    to the next invoice (prorations, carried credit); ``usage`` maps idempotency keys to reports.
    ``local_id`` is the library's subscription id, once a call has told it.
    """

    id: str
    status: SubscriptionStatus
    customer: str
    plan: PlanRef
    quantity: int
    current_period_start: datetime
    current_period_end: datetime
    anchor: datetime
    cycles: int
    metadata: dict[str, str]
    created: datetime
    updated: datetime
    trial_start: datetime | None = None
    trial_end: datetime | None = None
    cancel_at_period_end: bool = False
    canceled_at: datetime | None = None
    ended_at: datetime | None = None
    paused: bool = False
    local_id: uuid.UUID | None = None
    pending_lines: list[InvoiceLine] = field(default_factory=list)
    usage: dict[str, FakeUsage] = field(default_factory=dict)
    #: The VAT the library asked for; every invoice adds it (see :class:`FakeInvoice`).
    tax: TaxRateRef | None = None

    def roll(self) -> None:
        """Start the next period where the current one ends."""
        self.cycles += 1
        self.current_period_start = self.current_period_end
        self.current_period_end = add_interval(
            self.anchor, self.plan.interval, self.plan.interval_count * self.cycles
        )

    def prorations(
        self, plan: PlanRef, quantity: int, at: datetime, *, tax: TaxRateRef | None = None
    ) -> list[InvoiceLine]:
        """Move to ``plan`` x ``quantity`` at ``at``: credit the unused old price, charge the rest of the new.

        Both parts are split by :func:`~fastapi_cashier.pricing.prorate` over the current
        period; a zero amount has no line. The credit is taxed at the old rate, the charge at
        ``tax`` (the new plan's).
        """
        split = prorate(
            old=price(PriceSpec.from_plan_ref(self.plan), quantity=self.quantity).total,
            new=price(PriceSpec.from_plan_ref(plan), quantity=quantity).total,
            period_start=self.current_period_start,
            period_end=self.current_period_end,
            at=at,
        )
        candidates = [
            (f"Unused time on {self.quantity} x {self.plan.name}", split.credit, self.plan.id, self.tax),
            (f"Remaining time on {quantity} x {plan.name}", split.charge, plan.id, tax),
        ]
        return [
            InvoiceLine(
                text,
                1,
                amount.amount,
                amount.amount,
                at,
                self.current_period_end,
                plan_id,
                True,
                line_tax.rate if line_tax is not None else None,
            )
            for text, amount, plan_id, line_tax in candidates
            if not amount.is_zero
        ]

    def used_in(self, period_start: datetime) -> int:
        """The usage reported in the period that started at ``period_start``."""
        return sum(usage.quantity for usage in self.usage.values() if usage.period_start == period_start)

    def to_object(self) -> dict[str, Any]:
        """The subscription as it appears in ``data.object`` of an event."""
        return {
            "object": "subscription",
            "id": self.id,
            "status": self.status.value,
            "customer": self.customer,
            "price": self.plan.provider_price_id,
            "quantity": self.quantity,
            "current_period_start": unix_time(self.current_period_start),
            "current_period_end": unix_time(self.current_period_end),
            "trial_start": _unix_or_none(self.trial_start),
            "trial_end": _unix_or_none(self.trial_end),
            "cancel_at_period_end": self.cancel_at_period_end,
            "canceled_at": _unix_or_none(self.canceled_at),
            "ended_at": _unix_or_none(self.ended_at),
            "paused": self.paused,
            "metadata": dict(self.metadata),
            "created": unix_time(self.created),
            "updated": unix_time(self.updated),
        }


@dataclass(slots=True)
class FakeInvoice:
    """An invoice of a subscription; its total is never negative.

    Its ``subtotal`` is the sum of its lines. Lines with a ``tax_rate`` are taxed as the library
    taxes an invoice (:func:`~fastapi_cashier.tax.compute_tax`: summed per rate, rounded half to
    even once per rate); with ``prices_include_tax`` the tax is inside the lines, otherwise it
    is added, and ``total`` is what is charged.
    """

    id: str
    status: InvoiceStatus
    currency: str
    customer: str
    subscription: str | None
    lines: list[InvoiceLine]
    period_start: datetime | None
    period_end: datetime | None
    metadata: dict[str, str]
    created: datetime
    updated: datetime
    amount_paid: int = 0
    payment: str | None = None
    prices_include_tax: bool = False

    @property
    def subtotal(self) -> int:
        """The sum of the lines."""
        return sum(line.amount for line in self.lines)

    @property
    def tax(self) -> int:
        """The tax of the lines that have a rate (0 when none has)."""
        taxed = [(line.amount, line.tax_rate) for line in self.lines if line.tax_rate is not None]
        if not taxed:
            return 0
        return compute_tax(taxed, prices_include_tax=self.prices_include_tax).tax

    @property
    def total(self) -> Money:
        """What the invoice charges: the lines, plus their tax when prices exclude it."""
        added = 0 if self.prices_include_tax else self.tax
        return Money(self.subtotal + added, self.currency)

    def to_object(self) -> dict[str, Any]:
        """The invoice as it appears in ``data.object`` of an event (``tax`` only when taxed)."""
        obj = {
            "object": "invoice",
            "id": self.id,
            "status": self.status.value,
            "currency": self.currency,
            "subtotal": self.subtotal,
            "total": self.total.amount,
            "amount_paid": self.amount_paid,
            "customer": self.customer,
            "subscription": self.subscription,
            "payment": self.payment,
            "period_start": _unix_or_none(self.period_start),
            "period_end": _unix_or_none(self.period_end),
            "lines": [line.to_object() for line in self.lines],
            "metadata": dict(self.metadata),
            "created": unix_time(self.created),
            "updated": unix_time(self.updated),
        }
        if any(line.tax_rate is not None for line in self.lines):
            obj["tax"] = self.tax
        return obj


@dataclass(frozen=True, slots=True)
class HostedStep:
    """Where the hosted pages send the payer next.

    Attributes:
        provider_payment_id: The payment the step acted on; ``None`` for a subscription
            checkout paid with nothing due (a trial) and no earlier attempt.
        redirect_url: The session's success or cancel URL; ``None`` when the payer must first
            pass the 3-D Secure challenge (``needs_authentication``).
        needs_authentication: True when the router should show the authentication page.
        provider_subscription_id: The subscription a paid subscription checkout created.
    """

    provider_payment_id: str | None
    redirect_url: str | None
    needs_authentication: bool = False
    provider_subscription_id: str | None = None
