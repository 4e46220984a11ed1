"""The base of the domain services: each one works through its ``PaymentsService``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from .service import PaymentsService


class DomainService:
    """Holds the unit of work; subclasses add the operations of one aggregate."""

    def __init__(self, svc: PaymentsService) -> None:
        self.svc = svc

    @property
    def session(self) -> AsyncSession:
        return self.svc.session


def now() -> datetime:
    """The current UTC time (one place to read the clock)."""
    return datetime.now(UTC)
