"""Totals for the admin summary: payments by status, provider and currency; MRR; subscriptions."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from fractions import Fraction

import sqlalchemy as sa

from ..db.models import Payment, Plan, Subscription
from ..statuses import BillingInterval, SubscriptionStatus
from ._base import DomainService

__all__ = ["PaymentTotal", "ReportService", "Summary", "monthly_amount"]

#: Subscriptions that count as active for MRR and the active count.
ACTIVE_SUBSCRIPTION_STATUSES = (SubscriptionStatus.ACTIVE, SubscriptionStatus.PAST_DUE)

_MONTHS_PER_INTERVAL = {
    BillingInterval.DAY: Fraction(12, 365),
    BillingInterval.WEEK: Fraction(12, 52),
    BillingInterval.MONTH: Fraction(1),
    BillingInterval.YEAR: Fraction(12),
}


@dataclass(frozen=True, slots=True)
class PaymentTotal:
    """Payments sharing a status, provider and currency."""

    status: str
    provider: str
    currency: str
    count: int
    amount: int
    refunded_amount: int


@dataclass(frozen=True, slots=True)
class Summary:
    """The admin dashboard's numbers. Money stays per currency: totals are never mixed."""

    payments: list[PaymentTotal] = field(default_factory=list)
    mrr: dict[str, int] = field(default_factory=dict)
    active_subscriptions: int = 0
    trialing_subscriptions: int = 0


def monthly_amount(
    unit_amount: int, quantity: int, interval: BillingInterval, interval_count: int
) -> Fraction:
    """The exact monthly equivalent of a recurring price (one-time prices count zero)."""
    if interval is BillingInterval.ONE_TIME:
        return Fraction(0)
    return Fraction(unit_amount * quantity) / (_MONTHS_PER_INTERVAL[interval] * interval_count)


class ReportService(DomainService):
    """Read-only aggregates."""

    async def summary(self) -> Summary:
        """Totals by status, provider and currency; MRR per currency; subscription counts."""
        payment_rows = await self.session.execute(
            sa.select(
                Payment.status,
                Payment.provider,
                Payment.currency,
                sa.func.count(),
                sa.func.sum(Payment.amount),
                sa.func.sum(Payment.refunded_amount),
            )
            .group_by(Payment.status, Payment.provider, Payment.currency)
            .order_by(Payment.currency, Payment.provider, Payment.status)
        )
        totals = [
            PaymentTotal(
                status=status.value,
                provider=provider,
                currency=currency,
                count=int(count),
                amount=int(amount or 0),
                refunded_amount=int(refunded or 0),
            )
            for status, provider, currency, count, amount, refunded in payment_rows
        ]

        subscription_rows = await self.session.execute(
            sa.select(
                Subscription.status,
                Subscription.quantity,
                Plan.unit_amount,
                Plan.currency,
                Plan.interval,
                Plan.interval_count,
            )
            .join(Plan, Plan.id == Subscription.plan_id)
            .where(Subscription.status.in_([*ACTIVE_SUBSCRIPTION_STATUSES, SubscriptionStatus.TRIALING]))
        )
        mrr: dict[str, Fraction] = defaultdict(Fraction)
        active = trialing = 0
        for status, quantity, unit_amount, currency, interval, interval_count in subscription_rows:
            if status is SubscriptionStatus.TRIALING:
                trialing += 1
                continue
            active += 1
            mrr[currency] += monthly_amount(unit_amount, quantity, interval, interval_count)
        return Summary(
            payments=totals,
            mrr={currency: round(value) for currency, value in sorted(mrr.items())},
            active_subscriptions=active,
            trialing_subscriptions=trialing,
        )
