"""Pricing and period arithmetic: pure, exact, in integer minor units.

A leaf package: it imports only the money, currency, error and status modules, and both
:mod:`fastapi_cashier.billing` and :mod:`fastapi_cashier.providers` build on it.

- :mod:`.prices`: :class:`PriceSpec` and :func:`price` for every pricing model, and the limits of
  what the database can store;
- :mod:`.proration`: :func:`prorate`, a price change split by the second;
- :mod:`.periods`: :func:`add_interval`, a date stepped by calendar months, years, weeks or days.

Example::

    >>> from fastapi_cashier.pricing import PriceSpec, Tier, price
    >>> from fastapi_cashier.statuses import PricingModel
    >>> spec = PriceSpec(PricingModel.PER_UNIT, "EUR", unit_amount=1200)
    >>> str(price(spec, quantity=3).total)
    '36.00 EUR'
"""

from .periods import add_interval
from .prices import (
    MAX_QUANTITY,
    MAX_STORABLE_AMOUNT,
    PricedPlan,
    PriceLine,
    PricePreview,
    PriceSpec,
    Tier,
    price,
    storable_period_total,
    validate_spec,
)
from .proration import Proration, prorate

__all__ = [
    "MAX_QUANTITY",
    "MAX_STORABLE_AMOUNT",
    "PriceLine",
    "PricePreview",
    "PriceSpec",
    "PricedPlan",
    "Proration",
    "Tier",
    "add_interval",
    "price",
    "prorate",
    "storable_period_total",
    "validate_spec",
]
