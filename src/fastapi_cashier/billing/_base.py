"""The base of the domain services: each one works through its ``PaymentsService``."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from ..clock import utcnow
from ..errors import AwaitingObjectError

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from ..providers.base import ProviderEvent
    from .service import PaymentsService


class DomainService:
    """Holds the unit of work; subclasses add the operations of one aggregate."""

    def __init__(self, svc: PaymentsService) -> None:
        self.svc = svc

    @property
    def session(self) -> AsyncSession:
        return self.svc.session

    def await_creation(self, event: ProviderEvent, what: str) -> None:
        """Raise :class:`AwaitingObjectError` while ``event`` is young enough to wait for ``what``.

        Only an event about an object of this app waits: one carrying the local ids the adapter
        wrote into the provider object's metadata. Another system's object sharing the provider
        account never gets recorded here, so waiting for it would only delay its ``ignored``.
        Past ``webhooks.orphan_retry_seconds`` this returns, and the caller records what it can
        without ``what`` (or ignores the event with its reason).
        """
        window = timedelta(seconds=self.svc.settings.webhooks.orphan_retry_seconds)
        if event.local_ids and now() - event.occurred_at < window:
            raise AwaitingObjectError(
                f"{event.type} event {event.id} names {what}, which is not recorded here yet; "
                "retried until the event that records it has been applied"
            )


def now() -> datetime:
    """The current UTC time, from :func:`fastapi_cashier.clock.utcnow`."""
    return utcnow()
