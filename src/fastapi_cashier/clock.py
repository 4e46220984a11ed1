"""The one clock: the current time, timezone-aware UTC.

Every layer reads the time through :func:`utcnow` (row timestamps, the billing services, the
inbox, the adapters' default clocks). Adapters and the fake provider take a ``clock`` argument of
type :data:`Clock` so tests can move time; this is what they use when given none.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

__all__ = ["Clock", "utcnow"]

Clock = Callable[[], datetime]
"""Something that returns the current time as an aware UTC ``datetime``."""


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)
