"""Billing-period dates: :func:`add_interval` steps a moment by calendar months, years, weeks or days.

Pure and database-free, like :mod:`~fastapi_cashier.pricing.prices` (the package re-exports
:func:`add_interval`).

Example::

    >>> from datetime import datetime
    >>> add_interval(datetime(2024, 1, 31), BillingInterval.MONTH)
    datetime.datetime(2024, 2, 29, 0, 0)
"""

from __future__ import annotations

import calendar
from datetime import MAXYEAR, MINYEAR, datetime, timedelta

from ..statuses import BillingInterval

__all__ = ["add_interval"]


def _whole_number(value: object, what: str) -> int:
    """Return ``value`` as a plain ``int``; ``float``, ``bool`` and anything else is a TypeError."""
    # Shared with pricing.prices, which imports it from here (prices depend on periods).
    if isinstance(value, bool) or not isinstance(value, int):
        hint = ": floats cannot represent money or counts exactly" if isinstance(value, float) else ""
        raise TypeError(f"{what} must be an int, got {type(value).__name__} {value!r}{hint}")
    return int(value)


def add_interval(start: datetime, interval: BillingInterval, count: int = 1) -> datetime:
    """Step a moment forward (or back, for a negative ``count``) by whole billing intervals.

    Months and years are calendar steps that keep the time of day and the time zone, clamping
    the day to the end of a shorter month: Jan 31 + 1 month is Feb 28 (Feb 29 in a leap year),
    Feb 29 + 1 year is Feb 28. The clamped day is not remembered, so Jan 31 + 1 month + 1 month
    is Mar 28 while Jan 31 + 2 months is Mar 31; step from the anchor with ``count`` to keep it.

    Args:
        start: The moment to step from; naive or aware.
        interval: ``day``, ``week``, ``month`` or ``year`` (the enum or its value).
        count: How many intervals; 0 returns ``start``.

    Returns:
        The moment ``count`` intervals after ``start``.

    Raises:
        TypeError: ``count`` is not an ``int``.
        ValueError: ``interval`` is ``one_time`` or unknown.
        OverflowError: the result is outside the years 1 to 9999.
    """
    steps = _whole_number(count, "count")
    every = BillingInterval(interval)
    if every is BillingInterval.DAY:
        return start + timedelta(days=steps)
    if every is BillingInterval.WEEK:
        return start + timedelta(weeks=steps)
    if every is BillingInterval.MONTH:
        return _add_months(start, steps)
    if every is BillingInterval.YEAR:
        return _add_months(start, 12 * steps)
    raise ValueError("a one_time price has no billing interval to add")


def _add_months(start: datetime, months: int) -> datetime:
    year, month_index = divmod(start.year * 12 + start.month - 1 + months, 12)
    if not MINYEAR <= year <= MAXYEAR:
        raise OverflowError(f"date value out of range: year {year}")
    month = month_index + 1
    day = min(start.day, calendar.monthrange(year, month)[1])
    return start.replace(year=year, month=month, day=day)
