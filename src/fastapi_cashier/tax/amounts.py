"""Net, tax and gross in integer minor units, rounded half to even once per rate of an invoice.

The rounding is per invoice: the lines of one rate are added up first and the tax of that sum
is rounded once (half to even), so an invoice of many small lines carries no accumulated
rounding error. Tax-exclusive prices: ``tax = round(net x rate / 100)``, ``gross = net + tax``.
Tax-inclusive prices: ``net = round(gross x 100 / (100 + rate))``, ``tax = gross - net``.

Refunds (:func:`refund_tax`) take a share of the payment's tax by a cumulative rule, so that
the refunds of a payment never give back more tax than it carried and a full refund gives back
exactly its tax, whatever the number and order of partial refunds.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal

__all__ = ["TaxBreakdown", "TaxLine", "compute_tax", "refund_tax", "split_tax"]

_HUNDRED = Decimal(100)


@dataclass(frozen=True, slots=True)
class TaxLine:
    """The lines of one rate on an invoice: their net sum, its tax and the gross."""

    rate: Decimal
    net: int
    tax: int
    gross: int


@dataclass(frozen=True, slots=True)
class TaxBreakdown:
    """A whole invoice's net, tax and gross, with one :class:`TaxLine` per rate."""

    net: int
    tax: int
    gross: int
    lines: tuple[TaxLine, ...]


def _round(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def split_tax(amount: int, rate: Decimal, *, prices_include_tax: bool) -> TaxLine:
    """Net, tax and gross of ``amount`` minor units at ``rate`` percent.

    Raises:
        TypeError: ``amount`` is not an integer (a float is never rounded silently).
        ValueError: a negative rate.
    """
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise TypeError(f"amount must be an integer number of minor units, got {type(amount).__name__}")
    if rate < 0:
        raise ValueError(f"a tax rate cannot be negative: {rate}")
    if prices_include_tax:
        net = _round(Decimal(amount) * _HUNDRED / (_HUNDRED + rate))
        return TaxLine(rate, net, amount - net, amount)
    tax = _round(Decimal(amount) * rate / _HUNDRED)
    return TaxLine(rate, amount, tax, amount + tax)


def compute_tax(lines: Iterable[tuple[int, Decimal]], *, prices_include_tax: bool) -> TaxBreakdown:
    """Tax of an invoice's ``(amount, rate)`` lines, rounded once per rate (see the module doc)."""
    sums: dict[Decimal, int] = {}
    for amount, rate in lines:
        if isinstance(amount, bool) or not isinstance(amount, int):
            raise TypeError(f"amount must be an integer number of minor units, got {type(amount).__name__}")
        sums[rate] = sums.get(rate, 0) + amount
    per_rate = tuple(
        split_tax(total, rate, prices_include_tax=prices_include_tax)
        for rate, total in sorted(sums.items(), reverse=True)
    )
    return TaxBreakdown(
        net=sum(line.net for line in per_rate),
        tax=sum(line.tax for line in per_rate),
        gross=sum(line.gross for line in per_rate),
        lines=per_rate,
    )


def refund_tax(*, paid: int, tax: int, refunded_before: int, amount: int, tax_refunded_before: int) -> int:
    """The tax inside a refund of ``amount`` from a payment of ``paid`` that carried ``tax``.

    The rule: the tax share of everything refunded once this refund is made,
    ``round_half_even(tax x (refunded_before + amount) / paid)``, less the tax the earlier
    refunds took (``tax_refunded_before``), kept within ``0`` and both the refund's amount and
    the tax left. So the refunds' tax adds up to the share of the total refunded (never more than
    ``tax``), and the refund that brings the total to ``paid`` returns exactly the rest of the tax.

    Raises:
        ValueError: amounts out of range (a refund beyond the payment, a tax beyond it).
    """
    for name, value in (
        ("paid", paid),
        ("tax", tax),
        ("refunded_before", refunded_before),
        ("amount", amount),
        ("tax_refunded_before", tax_refunded_before),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be a non-negative integer number of minor units, got {value!r}")
    if paid <= 0 or tax > paid or amount <= 0 or refunded_before + amount > paid:
        raise ValueError(f"a refund of {amount} after {refunded_before} does not fit a payment of {paid}")
    share = _round(Decimal(tax) * Decimal(refunded_before + amount) / Decimal(paid))
    return max(0, min(share - tax_refunded_before, amount, tax - tax_refunded_before))
