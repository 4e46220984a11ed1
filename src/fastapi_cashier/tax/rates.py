"""Standard VAT rates of the EU member states, dated: a change of rate is a change of this data.

Each entry says from which day a rate applies; the rate of a day is the latest entry on or
before it. Rates are percentages as :class:`~decimal.Decimal` strings ("25.5"), never floats.

Reduced rates belong to a product's tax category (:data:`TAX_CATEGORIES`). The package ships
:data:`REDUCED_RATES` for ``ebooks``; hosts add categories or countries, or override a rate, in
:attr:`~fastapi_cashier.settings.TaxSettings.reduced_rates` (see :class:`TaxRateTable`). A
country without a reduced rate for a category charges its standard rate.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

__all__ = [
    "EBOOKS",
    "EU_MEMBER_STATES",
    "REDUCED_RATES",
    "STANDARD_RATES",
    "TAX_CATEGORIES",
    "DatedRate",
    "TaxRateTable",
    "UnknownTaxRateError",
]


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

#: Electronically supplied books and similar digital publications (Annex III point 6 of Directive
#: 2006/112/EC as amended by Directive (EU) 2018/1713, which let member states tax them like
#: printed books). Sold as a product with ``tax_category="ebooks"``.
EBOOKS = "ebooks"

#: Reduced rates per category and member state, dated like :data:`STANDARD_RATES`.
#:
#: Compiled from the member states' published e-publication rates (the dates they took effect
#: since the 2018 directive; Germany's second half of 2020 at 5 %). States not listed had no
#: reduced rate for e-books recorded here and charge their standard rate; a host that needs one
#: adds it in ``tax.reduced_rates`` (which also overrides an entry here). Check the data against
#: the European Commission's "Taxes in Europe" database before relying on it, as for any rate.
REDUCED_RATES: Mapping[str, Mapping[str, tuple[DatedRate, ...]]] = {
    EBOOKS: {
        "AT": _rates(("2020-01-01", "10")),
        "BE": _rates(("2020-01-01", "6")),
        "CZ": _rates(("2020-01-01", "21"), ("2020-05-01", "10")),
        "DE": _rates(("2020-01-01", "7"), ("2020-07-01", "5"), ("2021-01-01", "7")),
        "ES": _rates(("2020-01-01", "21"), ("2020-04-23", "4")),
        "FI": _rates(("2020-01-01", "10"), ("2025-01-01", "14")),
        "FR": _rates(("2020-01-01", "5.5")),
        "HR": _rates(("2020-01-01", "5")),
        "IE": _rates(("2020-01-01", "9")),
        "IT": _rates(("2020-01-01", "4")),
        "LU": _rates(("2020-01-01", "3")),
        "MT": _rates(("2020-01-01", "5")),
        "NL": _rates(("2020-01-01", "9")),
        "PL": _rates(("2020-01-01", "5")),
        "PT": _rates(("2020-01-01", "6")),
        "SE": _rates(("2020-01-01", "6")),
        "SI": _rates(("2020-01-01", "5")),
    },
}

#: The product tax categories the package knows; a product without one pays the standard rate.
TAX_CATEGORIES = frozenset(REDUCED_RATES)


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
        reduced: ``{category: {country: (DatedRate, ...)}}`` (:data:`REDUCED_RATES` by
            default); a category without an entry for a country falls back to the country's
            standard rate.
    """

    standard: Mapping[str, Sequence[DatedRate]] = field(default_factory=lambda: STANDARD_RATES)
    reduced: Mapping[str, Mapping[str, Sequence[DatedRate]]] = field(default_factory=lambda: REDUCED_RATES)

    def with_overrides(self, overrides: Mapping[str, Mapping[str, Sequence[DatedRate]]]) -> TaxRateTable:
        """This table with ``overrides`` replacing (or adding) the history of a category's country."""
        merged: dict[str, dict[str, Sequence[DatedRate]]] = {
            category: dict(countries) for category, countries in self.reduced.items()
        }
        for category, countries in overrides.items():
            merged.setdefault(category, {}).update(countries)
        return TaxRateTable(standard=self.standard, reduced=merged)

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
