"""Refunds: reserved under a conditional update, sent to the provider outside any lock."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta

import sqlalchemy as sa

from ..db.model_repositories import PaymentRepository, RefundRepository
from ..db.models import Payment, Refund
from ..errors import ConflictError, ProviderError, RefundExceedsPaymentError, ValidationError
from ..money import Money
from ..providers.base import Capability, RefundRequest, RefundResult, require_capability
from ..statuses import PAYMENT_MACHINE, REFUND_MACHINE, ChangeCause, PaymentStatus, RefundStatus
from ._base import DomainService, now
from .transitions import record_creation, transition

__all__ = ["RefundService"]

logger = logging.getLogger("fastapi_cashier")

REFUNDABLE = frozenset({PaymentStatus.SUCCEEDED, PaymentStatus.PARTIALLY_REFUNDED})


class RefundService(DomainService):
    """Create refunds and apply their outcome."""

    @property
    def _refunds(self) -> RefundRepository:
        return RefundRepository(session=self.session)

    @property
    def _payments(self) -> PaymentRepository:
        return PaymentRepository(session=self.session)

    async def create(
        self,
        payment_id: uuid.UUID,
        *,
        amount: int | None = None,
        reason: str | None = None,
        actor: str | None = None,
        cause: ChangeCause = ChangeCause.ADMIN,
    ) -> Refund:
        """Refund ``amount`` minor units of a payment (``None``: all that is left).

        Three steps, each in a transaction of its own (:meth:`PaymentsService.unit_of_work`),
        none in the caller's: this unit of work is neither committed nor rolled back nor
        flushed, and what it holds pending stays the caller's to commit or drop.

        1. Everything is checked, then the amount is reserved on the payment with a conditional
           ``UPDATE ... WHERE refunded_amount + amount <= amount`` (and the check constraint
           behind it), a pending refund row is written, and that is committed: concurrent
           refunds can never overdraw a payment, on any database.
        2. The provider is called outside any transaction, keyed by the refund row's id.
        3. The outcome is committed; a refusal releases the reservation. A retriable fault
           (timeout, connection reset) keeps the refund pending with ``provider_fault`` set:
           the provider may have done it, and :meth:`resume_pending` asks again with the key.

        The refund returned belongs to no session (its attributes stay readable). On SQLite,
        which has one writer at a time, call this from a unit of work with no database
        transaction open (nothing read or flushed yet, or all committed; objects merely added
        are fine); PostgreSQL and MariaDB have no such limit, as long as the caller holds no
        lock on the payment.

        Raises:
            NotFoundError, ValidationError, RefundExceedsPaymentError, ConflictError,
            UnsupportedCapabilityError, ProviderError.
            RuntimeError: on SQLite, this unit of work has a transaction open.
        """
        self._require_no_open_sqlite_transaction("svc.refunds.create()")
        async with self.svc.unit_of_work() as unit:
            refund, provider_payment_id = await unit.refunds._reserve(
                payment_id, amount=amount, reason=reason, actor=actor, cause=cause
            )
        return await self._send(refund, provider_payment_id, cause=cause, actor=actor)

    def _require_no_open_sqlite_transaction(self, what: str) -> None:
        """Fail fast where a step's own transaction would wait for the caller's for ever."""
        if self.session.get_bind().dialect.name != "sqlite":
            return
        # A session with pending objects only has begun no database transaction yet; one that
        # has read or written holds a connection (and on SQLite, BEGIN IMMEDIATE's write lock).
        transaction = self.session.sync_session.get_transaction()
        if transaction is not None and getattr(transaction, "_connections", None):
            raise RuntimeError(
                f"{what} commits each step in a transaction of its own, and SQLite has one writer "
                "at a time: this unit of work has a transaction open, which the refund would wait "
                "for. Commit or roll back first, or call it from a unit of work of its own."
            )

    async def _reserve(
        self,
        payment_id: uuid.UUID,
        *,
        amount: int | None,
        reason: str | None,
        actor: str | None,
        cause: ChangeCause,
    ) -> tuple[Refund, str]:
        """Step 1 in this (fresh) unit of work: check everything, then reserve and write the
        pending refund. The caller commits. Returns the refund and the provider payment id."""
        payment = await self._payments.get(payment_id, for_update=True)
        provider = self.svc.provider(payment.provider)
        require_capability(provider, Capability.REFUNDS)
        if payment.status not in REFUNDABLE:
            raise ConflictError(
                f"a {payment.status.value} payment cannot be refunded",
                details={"status": payment.status.value},
            )
        remaining = payment.refundable_amount
        if amount is None:
            amount = remaining
        elif isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
            raise ValidationError("amount must be a positive integer number of minor units", field="amount")
        if amount > remaining or remaining <= 0:
            raise RefundExceedsPaymentError(
                f"refund of {amount} exceeds the {remaining} left to refund on this payment",
                details={"requested": amount, "refundable": remaining},
            )
        if amount < payment.amount:
            require_capability(provider, Capability.PARTIAL_REFUNDS)
        # Checked before the reservation below, so a refusal never strands reserved money.
        provider_payment_id = payment.provider_payment_id
        if provider_payment_id is None:
            raise ConflictError("the payment has no provider payment id to refund")
        # Its share of the payment's tax, decided under the payment's row lock (before the reservation).
        tax_amount = await self.svc.tax.refund_tax(payment, amount)
        if not await self._payments.add_refunded(payment.id, amount):
            raise RefundExceedsPaymentError(
                "another refund took what was left of this payment", details={"requested": amount}
            )
        refund = Refund(
            payment_id=payment.id,
            provider=payment.provider,
            amount=amount,
            tax_amount=tax_amount,
            currency=payment.currency,
            status=RefundStatus.PENDING,
            reason=reason,
            actor=actor,
        )
        await self._refunds.add(refund)
        await record_creation(self.svc, "refund", refund, cause=cause, actor=actor, reason=reason)
        return refund, provider_payment_id

    async def _send(
        self,
        refund: Refund,
        provider_payment_id: str,
        *,
        cause: ChangeCause,
        actor: str | None,
        note: str | None = None,
    ) -> Refund:
        """Steps 2 and 3: ask the provider for a committed pending refund, keyed by its id, with
        no transaction open; commit the answer in a unit of work of its own.

        Retriable faults are retried with the same key (see ``provider_calls``). When they
        persist, the refund stays pending with ``provider_fault`` set and the reason, for
        :meth:`resume_pending`; the faults met before a success are written into the refund's
        status change.
        """
        provider = self.svc.provider(refund.provider)
        # Read in a unit of work of its own, ended before the provider is asked: no lock is held
        # across the network, and the caller's session is left alone.
        async with self.svc.unit_of_work() as unit:
            refunded_before, pending_before = await unit.refunds._ledger(refund)
        request = RefundRequest(
            refund_id=refund.id,
            idempotency_key=f"refund-{refund.id}",
            provider_payment_id=provider_payment_id,
            amount=Money(refund.amount, refund.currency),
            reason=refund.reason,
            refunded_before=refunded_before,
            pending_before=pending_before,
            resent=refund.provider_fault,
        )
        try:
            result = await provider.refund(request)
        except ProviderError as exc:
            if exc.retriable:
                logger.warning("refund %s left pending after a retriable provider fault: %s", refund.id, exc)
            async with self.svc.unit_of_work() as unit:
                if exc.retriable:
                    pending = await unit.refunds._refunds.get(refund.id, for_update=True)
                    pending.provider_fault = True
                    pending.failure_message = exc.message[:500]
                else:
                    await unit.refunds.apply_result(
                        refund.id,
                        RefundResult(
                            provider_refund_id=None, status=RefundStatus.FAILED, failure_message=exc.message
                        ),
                        cause=cause,
                        actor=actor,
                    )
            raise
        faults = getattr(provider, "faults", [])
        if faults:
            retried = f"after {len(faults)} retried provider fault(s): {'; '.join(faults)}"
            note = f"{note}; {retried}" if note else retried
        # Committed on leaving the block, before the refund is returned.
        async with self.svc.unit_of_work() as unit:
            return await unit.refunds.apply_result(
                refund.id, result, cause=cause, actor=actor, note=note[:500] if note else None
            )

    async def _ledger(self, refund: Refund) -> tuple[int, int]:
        """The payment's other refunds, succeeded and pending: what a provider without refund ids
        compares its refunded total with to tell whether a lost answer's refund was made."""
        rows = await self.session.execute(
            sa.select(Refund.status, sa.func.coalesce(sa.func.sum(Refund.amount), 0))
            .where(
                Refund.payment_id == refund.payment_id,
                Refund.id != refund.id,
                Refund.status.in_((RefundStatus.SUCCEEDED, RefundStatus.PENDING)),
            )
            .group_by(Refund.status)
        )
        totals = {RefundStatus(status): int(total) for status, total in rows.all()}
        return totals.get(RefundStatus.SUCCEEDED, 0), totals.get(RefundStatus.PENDING, 0)

    async def resume_pending(self, *, older_than: timedelta = timedelta(minutes=1), limit: int = 50) -> int:
        """Ask the provider again, with the same keys, about refunds a fault left pending.

        A refund whose request met only timeouts or 5xx answers may or may not have been made:
        repeating it with its idempotency key either makes it or returns the one made, never a
        second one. Run by the router's background loop; each refund is claimed under a row
        lock first, so processes running side by side never send one twice at once. Like
        :meth:`create`, every step runs in a unit of work of its own.

        Returns:
            How many refunds got an answer (succeeded, failed or still pending at the provider).

        Raises:
            RuntimeError: on SQLite, this unit of work has a transaction open.
        """
        self._require_no_open_sqlite_transaction("svc.refunds.resume_pending()")
        cutoff = now() - older_than
        stmt = (
            sa.select(Refund.id)
            .where(
                Refund.status == RefundStatus.PENDING,
                Refund.provider_refund_id.is_(None),
                Refund.provider_fault.is_(True),
                Refund.updated_at <= cutoff,
            )
            .order_by(Refund.updated_at)
            .limit(limit)
        )
        async with self.svc.unit_of_work() as unit:
            due = (await unit.session.scalars(stmt)).all()
        answered = 0
        for refund_id in due:
            async with self.svc.unit_of_work() as unit:
                claimed = await unit.refunds._claim(refund_id, cutoff)
            if claimed is None:
                continue  # another process has it, or it was answered meanwhile
            refund, provider_payment_id, earlier = claimed
            if provider_payment_id is None:
                continue
            note = f"answered when asked again with the same idempotency key, after: {earlier}"
            try:
                await self._send(refund, provider_payment_id, cause=ChangeCause.SYSTEM, actor=None, note=note)
            except ProviderError as exc:
                logger.warning("refund %s is still unanswered: %s", refund.id, exc.message)
                continue
            answered += 1
        return answered

    async def _claim(self, refund_id: uuid.UUID, cutoff: datetime) -> tuple[Refund, str | None, str] | None:
        """Lock a refund left pending, unless another process holds it or it was answered, and
        move its ``updated_at`` on: a later pass (of any process) asks again only after the
        interval. The caller commits. Returns the refund, its payment's provider id and the
        fault met before."""
        refund = await self._refunds.first(
            Refund.id == refund_id,
            Refund.status == RefundStatus.PENDING,
            Refund.updated_at <= cutoff,
            for_update=True,
            skip_locked=True,
        )
        if refund is None:
            return None
        payment = await self._payments.get(refund.payment_id)
        earlier = refund.failure_message or "a provider fault"
        refund.updated_at = now()
        return refund, payment.provider_payment_id, earlier

    async def apply_result(
        self,
        refund_id: uuid.UUID,
        result: RefundResult,
        *,
        cause: ChangeCause,
        actor: str | None = None,
        provider_event_id: str | None = None,
        note: str | None = None,
    ) -> Refund:
        """Apply what the provider said about a refund; idempotent, safe against a racing webhook.

        ``note`` goes into the status change's reason when the provider gave none.
        """
        refund = await self._refunds.get(refund_id, for_update=True)
        if result.provider_refund_id and refund.provider_refund_id is None:
            refund.provider_refund_id = result.provider_refund_id
        if result.status is not RefundStatus.PENDING:
            refund.provider_fault = False
        if refund.status is not RefundStatus.PENDING or result.status is RefundStatus.PENDING:
            await self._refunds.flush()
            return refund
        refund.failure_message = result.failure_message
        await transition(
            self.svc,
            "refund",
            refund,
            REFUND_MACHINE,
            result.status,
            cause=cause,
            actor=actor,
            reason=result.failure_message or note,
            provider_event_id=provider_event_id,
        )
        payment = await self._payments.get(refund.payment_id, for_update=True)
        if result.status is RefundStatus.SUCCEEDED:
            await self.settle_payment_status(
                payment, cause=cause, actor=actor, provider_event_id=provider_event_id
            )
        else:
            # Release the reservation made when the refund was requested.
            payment.refunded_amount -= refund.amount
        await self._refunds.flush()
        return refund

    async def settle_payment_status(
        self,
        payment: Payment,
        *,
        cause: ChangeCause,
        actor: str | None = None,
        provider_event_id: str | None = None,
    ) -> None:
        """Move the payment to refunded / partially_refunded from its succeeded refunds."""
        refunded = await self.session.scalar(
            sa.select(sa.func.coalesce(sa.func.sum(Refund.amount), 0)).where(
                Refund.payment_id == payment.id, Refund.status == RefundStatus.SUCCEEDED
            )
        )
        target = (
            PaymentStatus.REFUNDED
            if int(refunded or 0) >= payment.amount
            else PaymentStatus.PARTIALLY_REFUNDED
        )
        await transition(
            self.svc,
            "payment",
            payment,
            PAYMENT_MACHINE,
            target,
            cause=cause,
            actor=actor,
            provider_event_id=provider_event_id,
            strict=False,
        )
