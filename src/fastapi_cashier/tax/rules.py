"""The VAT rules: which rate and which legal mention apply to one sale. A pure function.

======================================================  ===========================  ================
Buyer                                                   Rate                         Mention
======================================================  ===========================  ================
Exempted by an admin (with a reason)                    0 %                          the reason
In the seller's own country                             the seller country's rate    none
Another member state, VAT number verified by VIES       0 %                          reverse charge
Another member state, no verified number (consumer)     the buyer country's rate     none (OSS)
Outside the EU                                          0 %                          export
======================================================  ===========================  ================

An unverified, invalid or unchecked VAT number counts as none: the buyer is taxed as a consumer
until VIES confirms the number.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum

from ..statuses import TaxIdStatus
from .rates import EU_MEMBER_STATES, TaxRateTable

__all__ = [
    "EXPORT_MENTION",
    "REVERSE_CHARGE_MENTION",
    "TaxBuyer",
    "TaxDecision",
    "TaxTreatment",
    "decide_tax",
]

REVERSE_CHARGE_MENTION = (
    "Reverse charge: VAT to be accounted for by the recipient (Article 196, Directive 2006/112/EC)"
)
EXPORT_MENTION = "Export of services outside the EU: VAT not applicable"


class TaxTreatment(StrEnum):
    """Why a sale is taxed the way it is."""

    DOMESTIC = "domestic"
    EU_CONSUMER = "eu_consumer"
    REVERSE_CHARGE = "reverse_charge"
    EXPORT = "export"
    EXEMPT = "exempt"
    NOT_COLLECTED = "not_collected"


@dataclass(frozen=True, slots=True)
class TaxBuyer:
    """What the rules need to know of the buyer (from the billing profile).

    Attributes:
        country: ISO 3166-1 code; ``None`` (not given yet) is taxed as the seller's country.
        tax_id: The VAT number as saved.
        tax_id_status: Only ``valid`` (confirmed by VIES) makes the buyer a business.
        tax_exempt: An admin exempted the buyer; ``exemption_reason`` is printed on invoices.
    """

    country: str | None = None
    tax_id: str | None = None
    tax_id_status: TaxIdStatus = TaxIdStatus.UNVERIFIED
    tax_exempt: bool = False
    exemption_reason: str | None = None


@dataclass(frozen=True, slots=True)
class TaxDecision:
    """The outcome: a rate in percent, the country it belongs to and the legal mention."""

    treatment: TaxTreatment
    rate: Decimal
    country: str | None
    mention: str | None = None


def decide_tax(
    seller_country: str,
    buyer: TaxBuyer,
    day: date,
    *,
    category: str | None = None,
    rates: TaxRateTable | None = None,
) -> TaxDecision:
    """Apply the EU VAT rules to one sale by a seller established in ``seller_country``.

    Args:
        seller_country: The seller's member state.
        buyer: The buyer as its billing profile describes it.
        day: The day of supply; the rate valid on that day applies.
        category: The product's tax category (reduced rates), ``None`` for the standard rate.
        rates: The rate table; the built-in standard rates when omitted.
    """
    table = rates or TaxRateTable()
    zero = Decimal(0)
    if buyer.tax_exempt:
        reason = buyer.exemption_reason or "Exempt from VAT"
        return TaxDecision(TaxTreatment.EXEMPT, zero, buyer.country, reason)
    country = buyer.country or seller_country
    if country == seller_country:
        return TaxDecision(TaxTreatment.DOMESTIC, table.rate(seller_country, day, category), seller_country)
    if country not in EU_MEMBER_STATES:
        return TaxDecision(TaxTreatment.EXPORT, zero, country, EXPORT_MENTION)
    if buyer.tax_id and buyer.tax_id_status is TaxIdStatus.VALID:
        return TaxDecision(TaxTreatment.REVERSE_CHARGE, zero, country, REVERSE_CHARGE_MENTION)
    return TaxDecision(TaxTreatment.EU_CONSUMER, table.rate(country, day, category), country)
