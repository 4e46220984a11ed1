"""EU VAT: dated rates, the rules deciding rate and mention, exact amounts, VIES checks."""

from .amounts import TaxBreakdown, TaxLine, compute_tax, refund_tax, split_tax
from .rates import (
    EBOOKS,
    EU_MEMBER_STATES,
    REDUCED_RATES,
    STANDARD_RATES,
    TAX_CATEGORIES,
    DatedRate,
    TaxRateTable,
    UnknownTaxRateError,
)
from .rules import EXPORT_MENTION, REVERSE_CHARGE_MENTION, TaxBuyer, TaxDecision, TaxTreatment, decide_tax
from .vies import VIESClient, VIESOutcome, VIESResult, split_vat_number, vat_country

__all__ = [
    "EBOOKS",
    "EU_MEMBER_STATES",
    "EXPORT_MENTION",
    "REDUCED_RATES",
    "REVERSE_CHARGE_MENTION",
    "STANDARD_RATES",
    "TAX_CATEGORIES",
    "DatedRate",
    "TaxBreakdown",
    "TaxBuyer",
    "TaxDecision",
    "TaxLine",
    "TaxRateTable",
    "TaxTreatment",
    "UnknownTaxRateError",
    "VIESClient",
    "VIESOutcome",
    "VIESResult",
    "compute_tax",
    "decide_tax",
    "refund_tax",
    "split_tax",
    "split_vat_number",
    "vat_country",
]
