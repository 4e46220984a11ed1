"""Receive a provider's webhook delivery: verify on the raw bytes, store it once, apply it.

1. The adapter verifies the signature on the raw body; a failure stores and applies nothing.
2. The event is inserted into ``webhook_events`` and committed under its unique
   ``(provider, event_id)``: a duplicate delivery finds the row and applies nothing, unless the
   stored event is still pending or failed, when the redelivery applies it.
3. The event row is locked and the event applied in one transaction, then marked
   ``processed`` or ``ignored`` (with the reason). Hooks run after that commit.
4. A failure while applying rolls back the apply and leaves the stored event ``failed`` with
   the error, the attempt count and when to try next: it is never lost.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ..billing._base import now
from ..billing.service import PaymentsService
from ..db.models import WebhookEvent
from ..db.repositories import WebhookEventRepository
from ..errors import ConflictError, NotFoundError
from ..providers.base import PaymentProvider, ProviderEvent
from ..settings import WebhookSettings
from ..statuses import WebhookEventStatus

__all__ = ["DeliveryResult", "WebhookInbox"]

logger = logging.getLogger("fastapi_cashier")


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """What happened to one delivery."""

    event_id: str
    status: Literal["processed", "ignored", "failed", "duplicate"]
    detail: str | None = None


class WebhookInbox:
    """The durable inbox shared by the HTTP endpoint and the fake provider's delivery."""

    def __init__(
        self,
        *,
        session_factory: Callable[[], async_sessionmaker[AsyncSession]],
        providers: Mapping[str, PaymentProvider],
        service_factory: Callable[[AsyncSession], PaymentsService],
        settings: WebhookSettings,
    ) -> None:
        self._session_factory = session_factory
        self._providers = providers
        self._service_factory = service_factory
        self._settings = settings

    def provider(self, name: str) -> PaymentProvider:
        """The enabled provider ``name`` (``NotFoundError`` for unknown or disabled ones)."""
        provider = self._providers.get(name)
        if provider is None:
            raise NotFoundError(f"no enabled provider is called {name!r}", details={"provider": name})
        return provider

    async def receive(self, provider_name: str, headers: Mapping[str, str], body: bytes) -> DeliveryResult:
        """Verify, store and apply one delivery.

        Raises:
            NotFoundError: unknown or disabled provider.
            SignatureVerificationError: the signature does not verify (nothing is stored).
        """
        provider = self.provider(provider_name)
        event = provider.verify_webhook(headers, body)
        stored = await self._store(event, body)
        if stored is None:
            # Stored before: applied already (a duplicate changes nothing), or still pending or
            # failed, in which case the provider's redelivery is a retry and is applied now.
            stored = await self._stored(event)
            if stored is None or stored.status in (WebhookEventStatus.PROCESSED, WebhookEventStatus.IGNORED):
                return DeliveryResult(event.id, "duplicate")
        return await self.apply(stored, event)

    async def _store(self, event: ProviderEvent, body: bytes) -> WebhookEvent | None:
        async with self._session_factory()() as session:
            row = WebhookEvent(
                provider=event.provider,
                event_id=event.id,
                type=event.type,
                object_kind=event.object_kind,
                object_provider_id=event.object_id,
                occurred_at=event.occurred_at,
                raw_body=body,
                status=WebhookEventStatus.PENDING,
            )
            try:
                await WebhookEventRepository(session=session).add(row)
            except ConflictError:
                return None
            await session.commit()
            return row

    async def _stored(self, event: ProviderEvent) -> WebhookEvent | None:
        async with self._session_factory()() as session:
            return await WebhookEventRepository(session=session).by_event_id(event.provider, event.id)

    async def apply(self, stored: WebhookEvent, event: ProviderEvent) -> DeliveryResult:
        """Apply a stored event once: lock its row, apply, record the outcome, commit."""
        async with self._session_factory()() as session:
            svc = self._service_factory(session)
            try:
                row = await WebhookEventRepository(session=session).get(stored.id, for_update=True)
                if row.status in (WebhookEventStatus.PROCESSED, WebhookEventStatus.IGNORED):
                    await svc.rollback()
                    return DeliveryResult(event.id, "duplicate")
                outcome = await svc.events.apply(event)
                row.status = WebhookEventStatus(outcome.status)
                row.last_error = outcome.reason
                row.attempts += 1
                row.processed_at = now()
                row.next_attempt_at = None
                await svc.commit()
                return DeliveryResult(event.id, outcome.status, outcome.reason)
            except Exception as exc:
                await svc.rollback()
                logger.exception("applying %s event %s failed", event.provider, event.id)
                await self._record_failure(session, stored.id, exc)
                return DeliveryResult(event.id, "failed", str(exc))

    async def _record_failure(self, session: AsyncSession, stored_id: object, exc: Exception) -> None:
        row = await WebhookEventRepository(session=session).get(stored_id, for_update=True)  # type: ignore[arg-type]
        row.attempts += 1
        row.status = WebhookEventStatus.FAILED
        row.last_error = "".join(traceback.format_exception_only(exc)).strip()[:4000]
        if row.attempts < self._settings.max_attempts:
            delay = self._settings.retry_interval_seconds * 2 ** (row.attempts - 1)
            row.next_attempt_at = now() + timedelta(seconds=delay)
        else:
            row.next_attempt_at = None
        await session.commit()
