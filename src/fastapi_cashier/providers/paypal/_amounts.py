"""Money to and from PayPal's amounts: ``{"currency_code": "USD", "value": "10.50"}``.

PayPal writes amounts as decimal strings with the currency's ISO 4217 number of places, except
for the currencies it takes without decimals at all (``HUF``, ``JPY``, ``TWD``): an amount of
those that is not a whole number of major units is refused by PayPal, so it is refused here first,
with a clear error, instead of being rounded. Only the currencies PayPal accepts for payments are
allowed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from ...errors import ValidationError
from ...money import Money

__all__ = ["NO_DECIMAL_CURRENCIES", "PAYPAL_CURRENCIES", "from_paypal_amount", "to_paypal_amount"]

PAYPAL_CURRENCIES: Final = frozenset(
    {
        "AUD", "BRL", "CAD", "CHF", "CNY", "CZK", "DKK", "EUR", "GBP", "HKD", "HUF", "ILS",
        "JPY", "MXN", "MYR", "NOK", "NZD", "PHP", "PLN", "SEK", "SGD", "THB", "TWD", "USD",
    }
)  # fmt: skip
"""The currencies PayPal takes for payments and balances."""

NO_DECIMAL_CURRENCIES: Final = frozenset({"HUF", "JPY", "TWD"})
"""Currencies PayPal refuses decimal amounts in (HUF and TWD have two places in ISO 4217)."""


def check_currency(currency: str) -> None:
    """Refuse a currency PayPal does not take.

    Raises:
        ValidationError: ``currency`` is not in :data:`PAYPAL_CURRENCIES` (422, field ``currency``).
    """
    if currency not in PAYPAL_CURRENCIES:
        raise ValidationError(
            f"PayPal does not take payments in {currency}; it takes {', '.join(sorted(PAYPAL_CURRENCIES))}",
            field="currency",
            details={"provider": "paypal", "currency": currency},
        )


def to_paypal_amount(money: Money) -> dict[str, str]:
    """``money`` as PayPal's amount object.

    Raises:
        ValidationError: The currency is not one PayPal takes, the amount is negative, or it has
            decimals in a currency PayPal takes without (``Money(1050, "HUF")`` is 10.50 HUF).
    """
    check_currency(money.currency)
    if money.amount < 0:
        raise ValidationError("PayPal amounts cannot be negative", field="amount")
    value = money.to_decimal()
    if money.currency in NO_DECIMAL_CURRENCIES:
        whole = value.to_integral_value()
        if whole != value:
            raise ValidationError(
                f"PayPal takes {money.currency} amounts without decimals; {money.format()} is not a whole "
                f"number of {money.currency}",
                field="amount",
                details={"provider": "paypal", "currency": money.currency},
            )
        return {"currency_code": money.currency, "value": str(int(whole))}
    return {"currency_code": money.currency, "value": f"{value:f}"}


def from_paypal_amount(amount: Mapping[str, Any]) -> Money:
    """The :class:`Money` of a PayPal amount object (exact: a value with too many places is refused).

    Raises:
        ValidationError: The object lacks ``currency_code`` or ``value``, or ``value`` is not an
            exact decimal amount of that currency.
    """
    currency = amount.get("currency_code")
    value = amount.get("value")
    if not isinstance(currency, str) or not isinstance(value, str):
        raise ValidationError(f"not a PayPal amount: {dict(amount)!r}", field="amount")
    return Money.from_decimal(value, currency)
