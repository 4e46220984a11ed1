"""Proration: an exact, time-based split of a price change within a billing period.

Pure and database-free, like the rest of :mod:`fastapi_cashier.pricing`; amounts stay in integer
minor units and the parts always add up to the prices they came from.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from ..errors import CurrencyMismatchError, ValidationError
from ..money import Money

__all__ = ["Proration", "prorate"]

_ONE_SECOND: Final = timedelta(seconds=1)


@dataclass(frozen=True, slots=True)
class Proration:
    """An exact time-based split of a price change within a billing period.

    Attributes:
        credit: The unused part of the old price, as a credit (zero or negative).
        charge: The remaining part of the new price (zero or positive).
        net: ``credit + charge``: what the change costs now (negative: owed to the customer).
        remaining_seconds: Whole seconds from the change to the end of the period.
        period_seconds: Whole seconds in the period.
    """

    credit: Money
    charge: Money
    net: Money
    remaining_seconds: int
    period_seconds: int

    @property
    def used_seconds(self) -> int:
        """Seconds of the period before the change: ``period_seconds - remaining_seconds``."""
        return self.period_seconds - self.remaining_seconds


def prorate(
    *, old: Money, new: Money, period_start: datetime, period_end: datetime, at: datetime
) -> Proration:
    """Split an old and a new price by the time left in the period when the change happens.

    Each price is divided with :meth:`Money.allocate` in the ratio ``used : remaining`` seconds,
    so the used and unused parts always add up to the price exactly. The credit is the unused
    part of ``old``, the charge the remaining part of ``new``. ``at`` is clamped into the period:
    a change at (or before) the start credits all of ``old`` and charges all of ``new``; a change
    at (or after) the end credits and charges nothing.

    Args:
        old: The price paid for the whole period before the change (not negative).
        new: The price of the whole period after the change (not negative), in the same currency.
        period_start: The start of the current period; timezone-aware.
        period_end: The end of the current period, at least one second after the start; aware.
        at: When the change takes effect; timezone-aware.

    Returns:
        The credit, the charge, their sum, and the seconds used for the split.

    Raises:
        TypeError: an argument is not a :class:`Money` or a :class:`~datetime.datetime`.
        ValueError: a naive datetime, or a period shorter than one second.
        CurrencyMismatchError: ``old`` and ``new`` are in different currencies.
        ValidationError: ``old`` or ``new`` is negative (``field`` names it).
    """
    for name, amount in (("old", old), ("new", new)):
        if not isinstance(amount, Money):
            raise TypeError(f"{name} must be Money, got {type(amount).__name__}")
        if amount.is_negative:
            raise ValidationError(f"{name} must not be negative, got {amount}", field=name)
    if old.currency != new.currency:
        raise CurrencyMismatchError(
            f"Cannot prorate from {old.currency} to {new.currency}: a plan change keeps its currency",
            details={"currencies": [old.currency, new.currency]},
        )
    for name, moment in (("period_start", period_start), ("period_end", period_end), ("at", at)):
        if not isinstance(moment, datetime):
            raise TypeError(f"{name} must be a datetime, got {type(moment).__name__}")
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise ValueError(f"{name} must be timezone-aware, got naive {moment.isoformat()}")
    period_seconds = (period_end - period_start) // _ONE_SECOND
    if period_seconds < 1:
        raise ValueError(
            f"period_end ({period_end.isoformat()}) must be at least one second after "
            f"period_start ({period_start.isoformat()})"
        )
    remaining_seconds = min(max((period_end - at) // _ONE_SECOND, 0), period_seconds)
    used_seconds = period_seconds - remaining_seconds
    unused_old = old.allocate([used_seconds, remaining_seconds])[1]
    remaining_new = new.allocate([used_seconds, remaining_seconds])[1]
    credit = -unused_old
    return Proration(
        credit=credit,
        charge=remaining_new,
        net=credit + remaining_new,
        remaining_seconds=remaining_seconds,
        period_seconds=period_seconds,
    )
