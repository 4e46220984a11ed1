"""The VAT of a customer's purchases: quotes for checkouts and previews, the tax of invoices.

Tax is on when ``settings.tax.seller`` is set. The rules are :func:`fastapi_cashier.tax.decide_tax`
applied to the customer's billing profile on the day of supply; amounts are split with
:func:`fastapi_cashier.tax.compute_tax` (rounded half to even once per rate of an invoice).
A provider that computes tax itself (:func:`~fastapi_cashier.providers.base.computes_tax`) is
believed instead.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import sqlalchemy as sa

from ..db.model_repositories import BillingProfileRepository
from ..db.models import BillingProfile, Invoice, InvoiceLine, Payment, Plan, Product, Refund, Subscription
from ..errors import CashierError, ValidationError
from ..providers.base import (
    Capability,
    SubscriptionChange,
    SubscriptionProvider,
    TaxRateRef,
    computes_tax,
)
from ..statuses import ProrationBehavior, RefundStatus, SubscriptionStatus
from ..tax import (
    TAX_CATEGORIES,
    DatedRate,
    TaxBuyer,
    TaxDecision,
    TaxLine,
    TaxRateTable,
    compute_tax,
    decide_tax,
    refund_tax,
    split_tax,
)
from ._base import DomainService, now

__all__ = ["TaxQuote", "TaxService"]

logger = logging.getLogger("fastapi_cashier")

#: Subscriptions whose provider is told a new rate (a paused one is told when it changes plan).
_SYNCED_STATUSES = (SubscriptionStatus.TRIALING, SubscriptionStatus.ACTIVE, SubscriptionStatus.PAST_DUE)


@dataclass(frozen=True, slots=True)
class TaxQuote:
    """An amount split into net, tax and gross with the decision behind it."""

    net: int
    tax: int
    gross: int
    decision: TaxDecision

    def as_dict(self) -> dict[str, Any]:
        """The quote as the API shows it."""
        return {
            "net": self.net,
            "tax": self.tax,
            "gross": self.gross,
            "rate": str(self.decision.rate),
            "treatment": self.decision.treatment.value,
            "country": self.decision.country,
            "mention": self.decision.mention,
        }


class TaxService(DomainService):
    """The tax of one customer's purchases and invoices."""

    @property
    def enabled(self) -> bool:
        """Whether tax is computed at all (a seller is configured)."""
        return self.svc.settings.tax.seller is not None

    def rate_table(self) -> TaxRateTable:
        """The built-in standard and reduced rates, with ``tax.reduced_rates`` over them."""
        overrides = {
            category: {country: (DatedRate(date.min, rate),) for country, rate in rates.items()}
            for category, rates in self.svc.settings.tax.reduced_rates.items()
        }
        return TaxRateTable().with_overrides(overrides)

    def categories(self) -> frozenset[str]:
        """The product tax categories known: the package's and those of ``tax.reduced_rates``."""
        return TAX_CATEGORIES | frozenset(self.svc.settings.tax.reduced_rates)

    def check_category(self, category: str | None) -> str | None:
        """``category`` if known (``None`` is the standard rate).

        Raises:
            ValidationError: an unknown category (a 422 problem listing the known ones).
        """
        if category is None or category in self.categories():
            return category
        known = ", ".join(sorted(self.categories()))
        raise ValidationError(
            f"unknown tax category {category!r}; known categories: {known} (or null for the standard rate)",
            field="tax_category",
        )

    async def plan_category(self, plan_id: uuid.UUID) -> str | None:
        """The tax category of a plan's product."""
        return await self.session.scalar(
            sa.select(Product.tax_category)
            .join(Plan, Plan.product_id == Product.id)
            .where(Plan.id == plan_id)
        )

    async def rate_ref(
        self, customer_id: uuid.UUID, *, category: str | None = None, on: datetime | None = None
    ) -> TaxRateRef | None:
        """The VAT a provider adds to the customer's invoices of a plan in ``category``; ``None``
        when tax is off."""
        decision = await self.decide(customer_id, on=on, category=category)
        if decision is None:
            return None
        return TaxRateRef(
            rate=decision.rate,
            inclusive=self.svc.settings.tax.prices_include_tax,
            country=decision.country,
            treatment=decision.treatment.value,
        )

    async def profile(self, customer_id: uuid.UUID) -> BillingProfile | None:
        """The customer's billing profile, if saved."""
        return await BillingProfileRepository(session=self.session).for_customer(customer_id)

    async def decide(
        self, customer_id: uuid.UUID, *, on: datetime | None = None, category: str | None = None
    ) -> TaxDecision | None:
        """The rules applied to the customer's profile on a day; ``None`` when tax is off."""
        seller = self.svc.settings.tax.seller
        if seller is None:
            return None
        profile = await self.profile(customer_id)
        return decide_tax(
            seller.country,
            buyer_of(profile),
            (on or now()).date(),
            category=category,
            rates=self.rate_table(),
        )

    async def quote(
        self, customer_id: uuid.UUID, amount: int, *, category: str | None = None
    ) -> TaxQuote | None:
        """Net, tax and gross of a price (net or gross per ``tax.prices_include_tax``) today."""
        decision = await self.decide(customer_id, category=category)
        if decision is None:
            return None
        return self._split(amount, decision)

    def _split(self, amount: int, decision: TaxDecision) -> TaxQuote:
        line = split_tax(amount, decision.rate, prices_include_tax=self.svc.settings.tax.prices_include_tax)
        return TaxQuote(line.net, line.tax, line.gross, decision)

    def quote_for_consumer(self, amount: int, country: str | None) -> TaxQuote | None:
        """Net, tax and gross of a price for a consumer in ``country`` (a public price list)."""
        seller = self.svc.settings.tax.seller
        if seller is None:
            return None
        decision = decide_tax(
            seller.country, TaxBuyer(country=country), now().date(), rates=self.rate_table()
        )
        return self._split(amount, decision)

    async def apply_to_invoice(
        self, invoice: Invoice, *, on: datetime, provider_tax: int | None = None
    ) -> None:
        """Set the invoice's subtotal (net), tax, total (gross) and ``tax_details`` from its lines.

        Args:
            invoice: A new invoice with its lines (their amounts are prices as configured: net,
                or gross with ``tax.prices_include_tax``).
            on: The day of supply, which picks the rate.
            provider_tax: The tax a provider computing tax itself reported; then the lines are
                the net amounts and nothing is computed here.
        """
        amounts = [line.amount for line in invoice.lines]
        if provider_tax is not None:
            net = sum(amounts)
            invoice.subtotal, invoice.tax, invoice.total = net, provider_tax, net + provider_tax
            profile = await self.profile(invoice.customer_id)
            invoice.tax_details = {
                "source": "provider",
                "mentions": [],
                "lines": [],
                "seller": self.seller_details(),
                "buyer": buyer_details(profile),
            }
            return
        if self.svc.settings.tax.seller is None:
            return
        categories = await self._line_categories(invoice)
        decisions: dict[str | None, TaxDecision] = {}
        for category in dict.fromkeys(categories):
            found = await self.decide(invoice.customer_id, on=on, category=category)
            assert found is not None  # tax is on
            decisions[category] = found
        # The treatment and mention do not depend on the category, only the rate does.
        decision = decisions[categories[0]] if categories else await self._default_decision(invoice, on)
        inclusive = self.svc.settings.tax.prices_include_tax
        breakdown = compute_tax(
            [
                (amount, decisions[category].rate)
                for amount, category in zip(amounts, categories, strict=True)
            ],
            prices_include_tax=inclusive,
        )
        invoice.subtotal, invoice.tax, invoice.total = breakdown.net, breakdown.tax, breakdown.gross
        invoice.tax_details = await self._details(
            invoice, decision.treatment.value, decision.country, decision.mention, breakdown.lines
        )

    async def apply_to_charge(
        self,
        invoice: Invoice,
        *,
        gross: int,
        description: str,
        quote: Mapping[str, Any] | None,
        on: datetime,
    ) -> None:
        """Make ``invoice`` the bill of a one-off charge of ``gross`` minor units, tax included.

        The tax is the one quoted when the checkout fixed the amount (``quote``, as
        :meth:`TaxQuote.as_dict` wrote it on the session), so the invoice's gross is exactly what
        was charged; without a quote, the rules as of ``on``. The net is recovered from the gross
        (``net = round(gross x 100 / (100 + rate))``, half to even): for a tax-exclusive price
        that is the price itself, since its tax was rounded to within half a minor unit.
        """
        if quote is not None and quote.get("rate") is not None:
            rate = Decimal(str(quote["rate"]))
            treatment, country, mention = quote.get("treatment"), quote.get("country"), quote.get("mention")
        else:
            decided = await self._default_decision(invoice, on)
            rate, treatment, country, mention = (
                decided.rate,
                decided.treatment.value,
                decided.country,
                decided.mention,
            )
        split = split_tax(gross, rate, prices_include_tax=True)
        price = gross if self.svc.settings.tax.prices_include_tax else split.net
        invoice.lines = [
            InvoiceLine(
                position=0,
                description=description[:500],
                quantity=1,
                unit_amount=price,
                amount=price,
                currency=invoice.currency,
            )
        ]
        invoice.subtotal, invoice.tax, invoice.total = split.net, split.tax, gross
        invoice.tax_details = await self._details(invoice, str(treatment or ""), country, mention, (split,))

    async def _details(
        self,
        invoice: Invoice,
        treatment: str,
        country: str | None,
        mention: str | None,
        lines: tuple[TaxLine, ...],
    ) -> dict[str, Any]:
        profile = await self.profile(invoice.customer_id)
        return {
            "source": "computed",
            "treatment": treatment,
            "country": country,
            "prices_include_tax": self.svc.settings.tax.prices_include_tax,
            "mentions": [mention] if mention else [],
            "lines": [_tax_line(line) for line in lines],
            "seller": self.seller_details(),
            "buyer": buyer_details(profile),
        }

    async def _default_decision(self, invoice: Invoice, on: datetime) -> TaxDecision:
        decision = await self.decide(invoice.customer_id, on=on)
        assert decision is not None  # tax is on
        return decision

    async def _line_categories(self, invoice: Invoice) -> list[str | None]:
        """The tax category of each line: its plan's product's; a line without a plan (carried
        credit) takes the category of the invoice's subscription's plan."""
        plan_ids = {line.plan_id for line in invoice.lines if line.plan_id is not None}
        fallback_plan = None
        if invoice.subscription_id is not None:
            fallback_plan = await self.session.scalar(
                sa.select(Subscription.plan_id).where(Subscription.id == invoice.subscription_id)
            )
            if fallback_plan is not None:
                plan_ids.add(fallback_plan)
        by_plan: dict[uuid.UUID, str | None] = {}
        if plan_ids:
            rows = await self.session.execute(
                sa.select(Plan.id, Product.tax_category)
                .join(Product, Plan.product_id == Product.id)
                .where(Plan.id.in_(plan_ids))
            )
            by_plan = {row[0]: row[1] for row in rows.all()}
        default = by_plan.get(fallback_plan) if fallback_plan is not None else None
        return [
            by_plan.get(line.plan_id, default) if line.plan_id is not None else default
            for line in invoice.lines
        ]

    async def payment_tax(self, payment: Payment) -> int | None:
        """The tax inside a payment: its invoice's tax (its share of it when the invoice was paid
        in parts, rounded half to even); ``None`` when the payment has no taxed invoice."""
        if payment.invoice_id is None:
            return None
        invoice = await self.session.get(Invoice, payment.invoice_id)
        if invoice is None or invoice.tax_details is None or invoice.total <= 0:
            return None
        if payment.amount == invoice.total:
            return invoice.tax
        share = Decimal(invoice.tax) * Decimal(payment.amount) / Decimal(invoice.total)
        return min(_half_even(share), payment.amount)

    async def refund_tax(self, payment: Payment, amount: int) -> int | None:
        """The tax inside a refund of ``amount`` about to be reserved on ``payment`` (locked).

        See :func:`fastapi_cashier.tax.refund_tax` for the rule; refunds that failed took no tax.
        ``None`` when the payment carried no computed tax, or the refund does not fit what is left
        (the reservation that follows refuses it).
        """
        tax = await self.payment_tax(payment)
        if tax is None or amount <= 0 or payment.refunded_amount + amount > payment.amount:
            return None
        taken = await self.session.scalar(
            sa.select(sa.func.coalesce(sa.func.sum(Refund.tax_amount), 0)).where(
                Refund.payment_id == payment.id, Refund.status != RefundStatus.FAILED
            )
        )
        return refund_tax(
            paid=payment.amount,
            tax=tax,
            refunded_before=payment.refunded_amount,
            amount=amount,
            tax_refunded_before=int(taken or 0),
        )

    async def buyer_terms(self, customer_id: uuid.UUID) -> tuple[str, str | None, Decimal] | None:
        """The customer's treatment, tax country and standard-category rate today (``None``: tax off).

        Equal terms mean equal rates in every category; :meth:`sync_provider_rates` compares
        them before and after a change of the billing profile.
        """
        decision = await self.decide(customer_id)
        return None if decision is None else (decision.treatment.value, decision.country, decision.rate)

    async def sync_provider_rates(self, customer_id: uuid.UUID) -> int:
        """Tell the providers of the customer's running subscriptions the VAT that now applies.

        Called when the rules give the customer other terms (a VAT number confirmed or refused by
        VIES, a new country, an exemption granted or lifted): from the next invoice on, the
        provider charges the new gross. Commits first, then calls the providers outside any
        transaction; a provider that computes tax itself, cannot change a subscription, or a
        paused subscription is left alone, and a provider error is logged, not raised (the
        profile change stands; the invoice then keeps the provider's total beside its own).

        Returns:
            How many subscriptions were told.
        """
        if not self.enabled:
            return 0
        rows = (
            await self.session.execute(
                sa.select(
                    Subscription.id, Subscription.provider, Subscription.provider_subscription_id, Plan.id
                )
                .join(Plan, Plan.id == Subscription.plan_id)
                .where(
                    Subscription.customer_id == customer_id,
                    Subscription.status.in_(_SYNCED_STATUSES),
                    Subscription.provider_subscription_id.is_not(None),
                )
            )
        ).all()
        await self.svc.commit()
        told = 0
        for subscription_id, provider_name, provider_subscription_id, plan_id in rows:
            provider = self.svc.providers.get(provider_name)
            if (
                provider is None
                or provider_subscription_id is None
                or computes_tax(provider)
                or Capability.PLAN_CHANGE not in provider.capabilities
                or ProrationBehavior.NONE not in provider.proration_behaviors
                or not isinstance(provider, SubscriptionProvider)
            ):
                continue
            tax = await self.rate_ref(customer_id, category=await self.plan_category(plan_id))
            await self.svc.commit()
            try:
                await provider.update_subscription(
                    SubscriptionChange(
                        subscription_id=subscription_id,
                        idempotency_key=f"tax-{subscription_id}-{now().isoformat()}",
                        provider_subscription_id=provider_subscription_id,
                        proration=ProrationBehavior.NONE,
                        tax=tax,
                    )
                )
            except CashierError as exc:
                logger.warning(
                    "could not tell %s the new VAT of subscription %s: %s",
                    provider_name,
                    subscription_id,
                    exc,
                )
                continue
            told += 1
        return told

    def seller_details(self) -> dict[str, Any]:
        """The seller as printed on an invoice (kept on the invoice: it never changes after)."""
        seller = self.svc.settings.tax.seller
        if seller is None:
            return {}
        return {
            "legal_name": seller.legal_name,
            "address_lines": list(seller.address_lines),
            "country": seller.country,
            "vat_number": seller.vat_number,
            "email": seller.email,
        }


def buyer_of(profile: BillingProfile | None) -> TaxBuyer:
    """What the rules need of a billing profile (none saved: an anonymous consumer)."""
    if profile is None:
        return TaxBuyer()
    return TaxBuyer(
        country=profile.country,
        tax_id=profile.tax_id,
        tax_id_status=profile.tax_id_status,
        tax_exempt=profile.tax_exempt,
        exemption_reason=profile.tax_exempt_reason,
    )


def buyer_details(profile: BillingProfile | None) -> dict[str, Any]:
    """The buyer as printed on an invoice, with the VIES proof of a confirmed VAT number."""
    if profile is None:
        return {}
    address = [profile.address_line1, profile.address_line2, _city_line(profile), profile.state]
    return {
        "legal_name": profile.legal_name,
        "address_lines": [line for line in address if line],
        "country": profile.country,
        "tax_id": profile.tax_id,
        "tax_id_status": profile.tax_id_status.value,
        "tax_id_checked_at": profile.tax_id_checked_at.isoformat() if profile.tax_id_checked_at else None,
        "tax_id_consultation_number": profile.tax_id_consultation_number,
    }


def _city_line(profile: BillingProfile) -> str | None:
    parts = [part for part in (profile.postal_code, profile.city) if part]
    return " ".join(parts) or None


def _tax_line(line: TaxLine) -> dict[str, Any]:
    return {"rate": str(line.rate), "net": line.net, "tax": line.tax, "gross": line.gross}


def _half_even(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))
