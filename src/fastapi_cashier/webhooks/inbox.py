"""Receive a provider's webhook delivery: verify on the raw bytes, store it once, apply it.

1. The adapter verifies the signature on the raw body; a failure stores and applies nothing.
2. The event is inserted into ``webhook_events`` under its unique ``(provider, event_id)``: a
   duplicate delivery finds the stored row and applies nothing, unless the stored event is
   still pending or failed, when the redelivery applies it.
3. A new event is stored and applied in one transaction with one commit: the INSERT (which
   holds the new row, written as ``processed`` since no one sees it before the commit), the
   target rows found and locked, the apply's writes (the ordering guard, the status machines,
   ``status_changes``), then, when the outcome is ``ignored``, that outcome (with the reason in
   ``ignored_reason``: an unknown type, a body the adapter could not read, an event older than
   the state applied, ...). Until that commit, concurrent
   deliveries of the same event wait on its unique key and then find it applied. Hooks run after
   the commit.
4. A failure while locating or applying rolls that transaction back whole, so nothing of the
   apply is left; the event is then stored and committed on its own and attempted again in a
   transaction of its own, whose failure is committed with the event as ``failed`` with the
   error, the attempt count and when to try next (exponential backoff): the event is never lost,
   and the answer is 200. (A failure is the rare case, so the common one takes no savepoint.)
   After ``max_attempts`` it stays ``failed`` with no next attempt, for an admin to look at.
   A process that dies before a commit leaves nothing of that transaction behind and answers
   nothing, so the provider delivers the event again.

Events whose apply needs the provider first (a re-read of the object, the completion step of
an approved checkout) are stored and committed before that network call, with a lease
(``next_attempt_at``), and applied in a transaction of their own, so no row lock is held across
the network: if the process dies in between, the retry loop of any process picks the event up
when the lease runs out. A deadlock or serialization failure on the one-transaction path (InnoDB
rolls the whole transaction back) takes that two-step path too, which re-runs it.

Claiming due events (:meth:`WebhookInbox.process_due`) selects them ``FOR UPDATE SKIP LOCKED``
on PostgreSQL and MariaDB and moves their lease forward before applying, so processes running
side by side never pick the same event; the apply itself re-checks the status under the row
lock, so even an expired lease can never apply an event twice.
"""

from __future__ import annotations

import contextlib
import logging
import traceback
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Literal, cast

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ..billing.events import ApplyOutcome
from ..billing.service import PaymentsService
from ..clock import utcnow as now
from ..db.base_repository import is_transient
from ..db.model_repositories import CheckoutSessionRepository, StoredDelivery, WebhookEventRepository
from ..db.models import WebhookEvent
from ..errors import AwaitingObjectError, ConflictError, NotFoundError, PaymentDeclinedError, ValidationError
from ..providers.base import Capability, EventType, PaymentProvider, ProviderEvent, WebhookReceiver
from ..settings import WebhookSettings
from ..statuses import ChangeCause, WebhookEventStatus

__all__ = ["DeliveryResult", "WebhookInbox"]

logger = logging.getLogger("fastapi_cashier")

_FINAL = (WebhookEventStatus.PROCESSED, WebhookEventStatus.IGNORED)
_OPEN = (WebhookEventStatus.PENDING, WebhookEventStatus.FAILED)
#: Immediate re-runs of an apply that lost a deadlock or a serialization race.
_TRANSIENT_RERUNS = 3

Progress = Callable[[int], None]

_EVENTS: sa.Table = WebhookEvent.__table__  # type: ignore[assignment]
#: A new event's first attempt succeeded: its outcome, one attempt, nothing more to do.
_MARK_APPLIED = (
    sa.update(_EVENTS)
    .where(_EVENTS.c.id == sa.bindparam("stored_id"))
    .values(
        status=sa.bindparam("outcome", type_=_EVENTS.c.status.type),
        last_error=None,
        ignored_reason=sa.bindparam("reason", type_=_EVENTS.c.ignored_reason.type),
        attempts=1,
        processed_at=sa.bindparam("applied_at", type_=_EVENTS.c.processed_at.type),
        next_attempt_at=None,
    )
)


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """What happened to one delivery or one attempt at a stored event.

    Attributes:
        event_id: The provider's event id.
        status: ``processed``, ``ignored`` (``detail`` says why), ``failed`` (``detail`` is the
            error; the event is kept for a retry) or ``duplicate`` (already applied: nothing done).
        detail: The reason or the error.
        id: The stored row's id, when the event was stored.
    """

    event_id: str
    status: Literal["processed", "ignored", "failed", "duplicate"]
    detail: str | None = None
    id: uuid.UUID | None = None


class WebhookInbox:
    """The durable inbox shared by the HTTP endpoint, the retry loop, the admin API and the CLI."""

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
        # The providers found to receive webhooks, by name: the protocol check walks every
        # member of ``WebhookReceiver``, and every delivery asks twice.
        self._receivers: dict[str, PaymentProvider] = {}

    def provider(self, name: str) -> WebhookReceiver:
        """The enabled provider ``name`` that receives webhooks (``NotFoundError`` for unknown or
        disabled ones, and for those without :attr:`Capability.WEBHOOKS`, such as the manual one)."""
        provider = self._providers.get(name)
        if provider is None:
            raise NotFoundError(f"no enabled provider is called {name!r}", details={"provider": name})
        if self._receivers.get(name) is not provider:
            if Capability.WEBHOOKS not in provider.capabilities or not isinstance(provider, WebhookReceiver):
                raise NotFoundError(f"provider {name!r} receives no webhooks", details={"provider": name})
            self._receivers[name] = provider
        return cast(WebhookReceiver, provider)

    # ------------------------------------------------------------------ deliveries

    async def receive(self, provider_name: str, headers: Mapping[str, str], body: bytes) -> DeliveryResult:
        """Verify, store and apply one delivery.

        Raises:
            NotFoundError: unknown or disabled provider.
            SignatureVerificationError: the signature does not verify (nothing is stored).
        """
        provider = self.provider(provider_name)
        event = await provider.verify_webhook(headers, body)
        values = self._new_row(event, body)
        found: DeliveryResult | StoredDelivery | None = None
        if not event.refetch and event.type != EventType.CHECKOUT_APPROVED:
            try:
                found = await self._store_and_apply(event, values)
            except Exception as exc:
                if not is_transient(exc):
                    raise
                # Rolled back whole: nothing is stored. The two-step path re-runs it.
                logger.info(
                    "storing and applying %s event %s met %s; in two steps", event.provider, event.id, exc
                )
        if found is None:
            found = await self._store(event, values)
        if isinstance(found, DeliveryResult):
            return found
        # Stored before: applied already (a duplicate changes nothing), or still pending or
        # failed, in which case the provider's redelivery is a retry and is applied now.
        if found is None or found.status in _FINAL:
            return DeliveryResult(event.id, "duplicate", id=found.id if found else None)
        return await self._attempt(found.id, provider, event)

    def _new_row(self, event: ProviderEvent, body: bytes) -> dict[str, Any]:
        """The columns of the stored delivery, leased to the attempt that stores it."""
        return {
            "id": uuid.uuid4(),
            "provider": event.provider,
            "event_id": event.id,
            "type": event.type,
            "object_kind": event.object_kind,
            "object_provider_id": event.object_id,
            "occurred_at": event.occurred_at,
            "raw_body": body,
            "received_at": now(),
            "status": WebhookEventStatus.PENDING,
            "attempts": 0,
            "next_attempt_at": self._lease_end(),
        }

    async def _store_and_apply(
        self, event: ProviderEvent, values: dict[str, Any]
    ) -> DeliveryResult | StoredDelivery | None:
        """Store a new event and apply it in one transaction, with one commit and no savepoint.

        The event is inserted as ``processed`` (attempt 1, at the time it was received): no other
        transaction sees the row before the commit, and a rollback takes it away, so it only
        needs an UPDATE when the outcome is ``ignored``. The rows the event names are located
        (and locked) first; an event that names nothing here is marked ``ignored`` without
        writing anything else.

        Returns:
            What happened to a new event; for a delivery stored before, the stored row (a
            ``duplicate`` result when the row was deleted meanwhile); ``None`` when locating or
            applying failed, after a rollback that kept nothing, the stored event included (the
            caller stores the event and attempts it in two steps, which records the failure).

        Raises:
            DBAPIError: a transient failure (deadlock, serialization); the transaction is
                rolled back whole and nothing is stored.
        """
        applied = {
            **values,
            "status": WebhookEventStatus.PROCESSED,
            "attempts": 1,
            "processed_at": values["received_at"],
            "next_attempt_at": None,
        }
        async with self._session_factory()() as session:
            stored = await WebhookEventRepository(session=session).insert_once(applied)
            if stored is None or not stored.inserted:
                await session.rollback()
                return stored or DeliveryResult(event.id, "duplicate")
            svc = self._service_factory(session)  # only for an event that is new
            try:
                located = await svc.events.locate(event)
                if isinstance(located, ApplyOutcome):
                    outcome = located  # decided by the lookup, nothing written
                else:
                    outcome = await svc.events.apply(event, located)
                    await session.flush()
            except Exception as exc:
                if is_transient(exc):
                    raise
                # A failure may leave the transaction unusable (PostgreSQL). Nothing of it is kept,
                # the stored event neither (the apply's hook events die with ``svc``): the two-step
                # path stores the event, attempts it again and records the failure. Failing is the
                # rare case; the common one takes no savepoint.
                logger.info("applying %s event %s failed: %s; in two steps", event.provider, event.id, exc)
                await session.rollback()
                return None
            return await self._mark_applied(svc, event, stored.id, outcome)

    @staticmethod
    async def _mark_applied(
        svc: PaymentsService, event: ProviderEvent, stored_id: uuid.UUID, outcome: ApplyOutcome
    ) -> DeliveryResult:
        """Record the outcome of a new event's first attempt and commit (hooks run after).

        The event was inserted as ``processed``: only another outcome is written."""
        if outcome.status != "processed":
            # A Core statement built once, on the session's connection (no ORM update path).
            await (await svc.session.connection()).execute(
                _MARK_APPLIED,
                {
                    "stored_id": stored_id,
                    "outcome": WebhookEventStatus(outcome.status),
                    "reason": outcome.reason if outcome.status == "ignored" else None,
                    "applied_at": now(),
                },
            )
        await svc.commit()
        return DeliveryResult(event.id, outcome.status, outcome.reason, id=stored_id)

    async def _store(self, event: ProviderEvent, values: dict[str, Any]) -> StoredDelivery | None:
        """Store the delivery and commit, or find the stored one (see ``insert_once``)."""
        for rerun in range(_TRANSIENT_RERUNS + 1):
            try:
                async with self._session_factory()() as session:
                    stored = await WebhookEventRepository(session=session).insert_once(values)
                    if stored is not None and stored.inserted:
                        await session.commit()
                    return stored
            except Exception as exc:
                # Concurrent first deliveries of one event can deadlock on its unique key (MariaDB).
                if not is_transient(exc) or rerun == _TRANSIENT_RERUNS:
                    raise
                logger.info("storing %s event %s met %s; again", event.provider, event.id, exc)
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    def _lease_end(self) -> datetime:
        """How long an attempt may take before another process may pick the event up."""
        return now() + timedelta(seconds=self._settings.retry_interval_seconds)

    # ------------------------------------------------------------------ applying

    async def _attempt(
        self, stored_id: uuid.UUID, provider: WebhookReceiver, event: ProviderEvent, *, replay: bool = False
    ) -> DeliveryResult:
        """Apply a stored event once, re-running transient database failures; record a failure."""
        try:
            event = await self._refreshed(provider, event)
        except Exception as exc:
            logger.warning("re-reading the object of %s event %s failed: %s", event.provider, event.id, exc)
            return await self._record_failure(stored_id, event, exc, replay=replay)
        if event.type == EventType.CHECKOUT_APPROVED:
            try:
                await self._complete_approved(event)
            except Exception as exc:
                logger.warning(
                    "completing the checkout of %s event %s failed: %s", event.provider, event.id, exc
                )
                return await self._record_failure(stored_id, event, exc, replay=replay)
        for rerun in range(_TRANSIENT_RERUNS + 1):
            try:
                return await self._apply(stored_id, event, replay=replay)
            except Exception as exc:
                if is_transient(exc) and rerun < _TRANSIENT_RERUNS:
                    logger.info("applying %s event %s met %s; again", event.provider, event.id, exc)
                    continue
                self._log_failure(event, exc)
                return await self._record_failure(stored_id, event, exc, replay=replay)
        raise AssertionError("unreachable")  # pragma: no cover - the loop always returns

    @staticmethod
    def _log_failure(event: ProviderEvent, exc: Exception) -> None:
        if isinstance(exc, AwaitingObjectError):
            logger.info("%s; retried later", exc)
        else:
            logger.exception("applying %s event %s failed", event.provider, event.id, exc_info=exc)

    async def _complete_approved(self, event: ProviderEvent) -> None:
        """Run the completion step of an approved checkout, outside any transaction and once per
        checkout (the payer's return may have run it already); a failure fails the attempt, and
        the retry completes it."""
        async with self._session_factory()() as session:
            svc = self._service_factory(session)
            sessions = CheckoutSessionRepository(session=session)
            local_id = event.local_ids.get("checkout_session_id")
            row = None
            if local_id:
                with contextlib.suppress(ValueError):
                    row = await sessions.get_or_none(uuid.UUID(local_id))
            if row is None or row.provider != event.provider:
                row = await sessions.by_provider_id(event.provider, event.object_id)
            if row is None:
                raise NotFoundError(f"no local checkout session matches approved checkout {event.object_id}")
            await svc.commit()
            try:
                await svc.checkout.complete(row.id, cause=ChangeCause.WEBHOOK)
            except PaymentDeclinedError as exc:
                # Recorded on the session's payment; retrying the same approval would be declined
                # again. The payer may approve anew, which the provider reports as a new approval.
                logger.info("the completion of checkout session %s was declined: %s", row.id, exc.message)

    @staticmethod
    async def _refreshed(provider: WebhookReceiver, event: ProviderEvent) -> ProviderEvent:
        """The event with the object's current state, for adapters that ask for a re-read."""
        if not event.refetch:
            return event
        snapshot = await provider.fetch(event.object_kind, event.object_id)
        return replace(event, snapshot=snapshot)

    async def _apply(self, stored_id: uuid.UUID, event: ProviderEvent, *, replay: bool) -> DeliveryResult:
        async with self._session_factory()() as session:
            svc = self._service_factory(session)
            try:
                row = await WebhookEventRepository(session=session).get(stored_id, for_update=True)
                was_final = row.status in _FINAL
                if was_final and not replay:
                    await svc.rollback()
                    return DeliveryResult(event.id, "duplicate", id=stored_id)
                outcome = await svc.events.apply(event)
                if was_final and outcome.status == "ignored":
                    # A replay whose effect is already there: the row keeps its first outcome.
                    await svc.commit()
                    return DeliveryResult(event.id, "ignored", outcome.reason, id=stored_id)
                row.status = WebhookEventStatus(outcome.status)
                row.last_error = None
                row.ignored_reason = outcome.reason if outcome.status == "ignored" else None
                row.attempts += 1
                row.processed_at = now()
                row.next_attempt_at = None
                await svc.commit()
                return DeliveryResult(event.id, outcome.status, outcome.reason, id=stored_id)
            except BaseException:
                await svc.rollback()
                raise

    async def _record_failure(
        self, stored_id: uuid.UUID, event: ProviderEvent, exc: Exception, *, replay: bool
    ) -> DeliveryResult:
        error = _error_text(exc)
        async with self._session_factory()() as session:
            row = await WebhookEventRepository(session=session).get(stored_id, for_update=True)
            if row.status in _FINAL:
                # A replay of an applied event failed: its first outcome stands.
                await session.rollback()
                return DeliveryResult(event.id, "failed", error, id=stored_id)
            row.attempts += 1
            row.status = WebhookEventStatus.FAILED
            row.last_error = error
            row.next_attempt_at = self._next_attempt(row.attempts, event)["next_attempt_at"]
            await session.commit()
            return DeliveryResult(event.id, "failed", error, id=stored_id)

    def _next_attempt(self, attempts: int, event: ProviderEvent) -> dict[str, Any]:
        """The attempt count and the next attempt (exponential backoff) after ``attempts`` failed."""
        if attempts < self._settings.max_attempts:
            delay = self._settings.retry_interval_seconds * 2 ** (attempts - 1)
            return {"attempts": attempts, "next_attempt_at": now() + timedelta(seconds=delay)}
        logger.error(
            "%s event %s failed %d times and will not be retried automatically",
            event.provider,
            event.id,
            attempts,
        )
        return {"attempts": attempts, "next_attempt_at": None}

    async def _attempt_stored(self, row: WebhookEvent, *, replay: bool = False) -> DeliveryResult:
        """Re-parse a stored body and attempt it; an unparseable body is recorded as a failure."""
        try:
            provider = self.provider(row.provider)
            event = await provider.parse_webhook(row.raw_body)
        except Exception as exc:
            placeholder = ProviderEvent(
                provider=row.provider,
                id=row.event_id,
                type=row.type,
                occurred_at=row.occurred_at or row.received_at,
                object_kind=row.object_kind or "unknown",  # type: ignore[arg-type]
                object_id=row.object_provider_id or "",
                snapshot=None,
            )
            return await self._record_failure(row.id, placeholder, exc, replay=replay)
        return await self._attempt(row.id, provider, event, replay=replay)

    # ------------------------------------------------------------------ retries

    async def process_due(self, *, limit: int = 100) -> list[DeliveryResult]:
        """Claim and apply up to ``limit`` stored events whose next attempt is due.

        Pending events whose first attempt never finished (the process died) and failed events
        whose backoff has passed are both due. Safe to run in many processes at once.
        """
        results: list[DeliveryResult] = []
        while len(results) < limit:
            claimed = await self._claim()
            if claimed is None:
                break
            results.append(await self._attempt_stored(claimed))
        return results

    async def _claim(self) -> WebhookEvent | None:
        """Take the oldest due event: lock it (skipping rows others hold), extend its lease."""
        async with self._session_factory()() as session:
            stmt = (
                sa.select(WebhookEvent)
                .where(
                    WebhookEvent.status.in_(_OPEN),
                    WebhookEvent.next_attempt_at.is_not(None),
                    WebhookEvent.next_attempt_at <= now(),
                )
                .order_by(WebhookEvent.next_attempt_at, WebhookEvent.received_at)
                .limit(1)
                .with_for_update(skip_locked=True)
            )
            row = await session.scalar(stmt)
            if row is None:
                await session.rollback()
                return None
            row.next_attempt_at = self._lease_end()
            await session.commit()
            return row

    async def retry(self, stored_id: uuid.UUID) -> DeliveryResult:
        """Apply a pending or failed stored event now, whatever its attempts (admins, CLI).

        Raises:
            NotFoundError: no stored event has this id.
            ConflictError: the event was processed or ignored already (use :meth:`replay`).
        """
        async with self._session_factory()() as session:
            row = await WebhookEventRepository(session=session).get(stored_id)
        if row.status in _FINAL:
            raise ConflictError(
                f"webhook event {row.event_id} is {row.status.value} already; replay it to apply it again",
                details={"status": row.status.value},
            )
        return await self._attempt_stored(row)

    async def replay(
        self,
        *,
        since: datetime,
        provider: str | None = None,
        on_progress: Progress | None = None,
    ) -> list[DeliveryResult]:
        """Apply again every stored event received at or after ``since``, oldest first.

        Safe to run on events that were applied: the ordering guard and the status machines
        skip what is already there, and an applied event keeps its first outcome. Useful after
        restoring a backup, or after fixing a failure that affected many events.

        Args:
            since: A timezone-aware time; events received before it are left alone.
            provider: Only this provider's events.
            on_progress: Called with the number of events done after each one (progress bars).

        Raises:
            ValidationError: ``since`` is naive.
        """
        if since.tzinfo is None or since.utcoffset() is None:
            raise ValidationError("since must be a timezone-aware datetime", field="since")
        ids = await self._ids_since(since, provider)
        results: list[DeliveryResult] = []
        for stored_id in ids:
            async with self._session_factory()() as session:
                row = await WebhookEventRepository(session=session).get(stored_id)
            results.append(await self._attempt_stored(row, replay=True))
            if on_progress is not None:
                on_progress(len(results))
        return results

    async def count_since(self, since: datetime, provider: str | None = None) -> int:
        """How many stored events :meth:`replay` would go through."""
        return len(await self._ids_since(since, provider))

    async def _ids_since(self, since: datetime, provider: str | None) -> Sequence[uuid.UUID]:
        stmt = sa.select(WebhookEvent.id).where(WebhookEvent.received_at >= since)
        if provider is not None:
            stmt = stmt.where(WebhookEvent.provider == provider)
        stmt = stmt.order_by(WebhookEvent.received_at, WebhookEvent.id)
        async with self._session_factory()() as session:
            return list((await session.scalars(stmt)).all())


def _error_text(exc: BaseException) -> str:
    """What a failed attempt stores as ``last_error``."""
    return "".join(traceback.format_exception_only(exc)).strip()[:4000]
