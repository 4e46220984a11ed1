"""The VAT of a customer's purchases: quotes for checkouts and previews, the tax of invoices.

Tax is on when ``settings.tax.seller`` is set. The rules are :func:`fastapi_cashier.tax.decide_tax`
applied to the customer's billing profile on the day of supply; amounts are split with
:func:`fastapi_cashier.tax.compute_tax` (rounded half to even once per rate of an invoice).
A provider that computes tax itself (:func:`~fastapi_cashier.providers.base.computes_tax`) is
believed instead.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from ..db.model_repositories import BillingProfileRepository
from ..db.models import BillingProfile, Invoice
from ..tax import DatedRate, TaxBuyer, TaxDecision, TaxLine, TaxRateTable, compute_tax, decide_tax, split_tax
from ._base import DomainService, now

__all__ = ["TaxQuote", "TaxService"]


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
        """The built-in standard rates plus the reduced rates of ``tax.reduced_rates``."""
        reduced = {
            category: {country: (DatedRate(date.min, rate),) for country, rate in rates.items()}
            for category, rates in self.svc.settings.tax.reduced_rates.items()
        }
        return TaxRateTable(reduced=reduced)

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
        decision = await self.decide(invoice.customer_id, on=on)
        if decision is None:
            return
        inclusive = self.svc.settings.tax.prices_include_tax
        breakdown = compute_tax([(amount, decision.rate) for amount in amounts], prices_include_tax=inclusive)
        invoice.subtotal, invoice.tax, invoice.total = breakdown.net, breakdown.tax, breakdown.gross
        profile = await self.profile(invoice.customer_id)
        invoice.tax_details = {
            "source": "computed",
            "treatment": decision.treatment.value,
            "country": decision.country,
            "prices_include_tax": inclusive,
            "mentions": [decision.mention] if decision.mention else [],
            "lines": [_tax_line(line) for line in breakdown.lines],
            "seller": self.seller_details(),
            "buyer": buyer_details(profile),
        }

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
