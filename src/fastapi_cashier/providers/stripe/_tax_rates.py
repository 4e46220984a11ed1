"""Stripe Tax Rates for the VAT the library decided: created once per rate, country and kind, reused.

Without Stripe Tax (``StripeSettings.automatic_tax``) Stripe adds no tax of its own; the adapter
puts the library's rate (:class:`~fastapi_cashier.providers.base.TaxRateRef`) on the
subscription's line item as a Tax Rate, exclusive or inclusive as the prices are, so each Stripe
invoice charges the net plus that VAT. One Tax Rate per (country, rate, inclusive, treatment) is
enough for every customer: it carries a ``cashier_key`` in its metadata, is looked up by it
among the active Tax Rates when this process has not seen it yet, and is created (with an
idempotency key derived from it) only when none exists.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..base import TaxRateRef
from ._base import StripeBase

if TYPE_CHECKING:
    from stripe.params import TaxRateCreateParams

__all__ = ["TaxRatesMixin", "tax_rate_key"]

_KEY = "cashier_key"


def tax_rate_key(tax: TaxRateRef) -> str:
    """``vat-DE-19-exclusive-domestic``: what makes two Tax Rates the same."""
    kind = "inclusive" if tax.inclusive else "exclusive"
    return f"vat-{tax.country or 'none'}-{tax.rate.normalize():f}-{kind}-{tax.treatment}"


class TaxRatesMixin(StripeBase):
    """``_tax_rate_id``: the Stripe Tax Rate of a :class:`TaxRateRef`."""

    _tax_rate_ids: dict[str, str]

    async def _tax_rate_id(self, tax: TaxRateRef) -> str:
        """The id of the active Tax Rate for ``tax``, created on first use."""
        key = tax_rate_key(tax)
        known = self._tax_rate_ids.get(key)
        if known is not None:
            return known
        with self._calling("list tax rates"):
            # Filtered here rather than with ``active=true``, which not every Stripe double knows.
            listing = await self._client.v1.tax_rates.list_async({"limit": 100})
            async for rate in listing.auto_paging_iter():
                found = self._json(rate)
                if found.get("active") and (found.get("metadata") or {}).get(_KEY) == key:
                    self._tax_rate_ids[key] = rate.id
                    return rate.id
        params: TaxRateCreateParams = {
            "display_name": "VAT",
            # A percentage, not money: Stripe's API takes it as a decimal number ("5.5").
            "percentage": float(tax.rate),
            "inclusive": tax.inclusive,
            "description": f"VAT {tax.country or ''} {tax.rate.normalize():f} % ({tax.treatment})".replace(
                "  ", " "
            ),
            "metadata": {_KEY: key},
        }
        if tax.country:
            params["jurisdiction"] = tax.country
        with self._calling("create a tax rate"):
            created = await self._client.v1.tax_rates.create_async(
                params, {"idempotency_key": f"tax-rate-{key}"}
            )
        self._tax_rate_ids[key] = created.id
        return created.id
