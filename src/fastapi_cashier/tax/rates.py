"""Standard VAT rates of the EU member states, dated: a change of rate is a change of this data.

Each entry says from which day a rate applies; the rate of a day is the latest entry on or
before it. Rates are percentages as :class:`~decimal.Decimal` strings ("25.5"), never floats.
Reduced rates for product tax categories are an extension point: hosts pass them in
:attr:`~fastapi_cashier.settings.TaxSettings.reduced_rates` (see :class:`TaxRateTable`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

__all__ = ["EU_MEMBER_STATES", "STANDARD_RATES", "DatedRate", "TaxRateTable", "UnknownTaxRateError"]


@dataclass(frozen=True, slots=True)
class DatedRate:
    """A rate in percent and the first day it applies."""

    valid_from: date
    rate: Decimal


def _rates(*entries: tuple[str, str]) -> tuple[DatedRate, ...]:
    return tuple(DatedRate(date.fromisoformat(day), Decimal(rate)) for day, rate in entries)


#: ISO 3166-1 codes of the member states (Greece is ``GR`` here; its VAT numbers start with ``EL``).
#: Each state's history starts with a rate in force well before the library existed (from 2020 on).
STANDARD_RATES: Mapping[str, tuple[DatedRate, ...]] = {
    "AT": _rates(("2020-01-01", "20")),
    "BE": _rates(("2020-01-01", "21")),
    "BG": _rates(("2020-01-01", "20")),
    "CY": _rates(("2020-01-01", "19")),
    "CZ": _rates(("2020-01-01", "21")),
    "DE": _rates(("2020-01-01", "19"), ("2020-07-01", "16"), ("2021-01-01", "19")),
    "DK": _rates(("2020-01-01", "25")),
    "EE": _rates(("2020-01-01", "20"), ("2024-01-01", "22"), ("2025-07-01", "24")),
    "ES": _rates(("2020-01-01", "21")),
    "FI": _rates(("2020-01-01", "24"), ("2024-09-01", "25.5")),
    "FR": _rates(("2020-01-01", "20")),
    "GR": _rates(("2020-01-01", "24")),
    "HR": _rates(("2020-01-01", "25")),
    "HU": _rates(("2020-01-01", "27")),
    "IE": _rates(("2020-01-01", "23"), ("2020-09-01", "21"), ("2021-03-01", "23")),
    "IT": _rates(("2020-01-01", "22")),
    "LT": _rates(("2020-01-01", "21")),
    "LU": _rates(("2020-01-01", "17"), ("2023-01-01", "16"), ("2024-01-01", "17")),
    "LV": _rates(("2020-01-01", "21")),
    "MT": _rates(("2020-01-01", "18")),
    "NL": _rates(("2020-01-01", "21")),
    "PL": _rates(("2020-01-01", "23")),
    "PT": _rates(("2020-01-01", "23")),
    "RO": _rates(("2020-01-01", "19"), ("2025-08-01", "21")),
    "SE": _rates(("2020-01-01", "25")),
    "SI": _rates(("2020-01-01", "22")),
    "SK": _rates(("2020-01-01", "20"), ("2025-01-01", "23")),
}

EU_MEMBER_STATES = frozenset(STANDARD_RATES)


class UnknownTaxRateError(LookupError):
    """No rate is known for this country, category and day."""


def _on(history: Sequence[DatedRate], day: date) -> Decimal | None:
    found: Decimal | None = None
    for entry in sorted(history, key=lambda item: item.valid_from):
        if entry.valid_from <= day:
            found = entry.rate
    return found


@dataclass(frozen=True)
class TaxRateTable:
    """Standard rates plus the host's reduced rates per product tax category.

    Attributes:
        standard: Dated standard rates per member state (:data:`STANDARD_RATES` by default).
        reduced: ``{category: {country: (DatedRate, ...)}}``; a category without an entry for a
            country falls back to the country's standard rate.
    """

    standard: Mapping[str, Sequence[DatedRate]] = field(default_factory=lambda: STANDARD_RATES)
    reduced: Mapping[str, Mapping[str, Sequence[DatedRate]]] = field(default_factory=dict)

    def rate(self, country: str, day: date, category: str | None = None) -> Decimal:
        """The rate in percent for ``country`` on ``day`` (of ``category`` when it has one).

        Raises:
            UnknownTaxRateError: the country is not a member state or had no rate yet.
        """
        if category is not None:
            history = self.reduced.get(category, {}).get(country)
            if history:
                reduced = _on(history, day)
                if reduced is not None:
                    return reduced
        rate = _on(self.standard.get(country, ()), day)
        if rate is None:
            raise UnknownTaxRateError(f"no VAT rate is known for {country} on {day.isoformat()}")
        return rate
