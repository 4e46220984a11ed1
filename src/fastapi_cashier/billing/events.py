"""Apply verified provider events to local state, through the status machines.

Every handler locks the row it changes, skips events older than the state already applied
(the ordering guard), and finds objects the API is still creating through the intent row's id
that the adapter read from the provider object's metadata, so it updates that row instead of
inserting a second one.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from ..db.model_repositories import (
    CheckoutSessionRepository,
    PaymentRepository,
    PlanRepository,
    ProviderObjectRepository,
    RefundRepository,
    SubscriptionRepository,
)
from ..db.models import CheckoutSession, Payment, Refund, Subscription
from ..errors import AwaitingObjectError, ConflictError
from ..money import Money
from ..providers.base import (
    CheckoutSnapshot,
    EventType,
    InvoiceSnapshot,
    PaymentSnapshot,
    ProviderEvent,
    RefundResult,
    RefundSnapshot,
    SubscriptionSnapshot,
)
from ..statuses import (
    CHECKOUT_SESSION_MACHINE,
    PAYMENT_MACHINE,
    ChangeCause,
    CheckoutSessionStatus,
    InvoiceStatus,
    PaymentStatus,
    RefundStatus,
    SubscriptionStatus,
)
from ._base import DomainService, now
from .catalog_sync import PRICE_OBJECT
from .transitions import record_creation, transition

__all__ = ["ApplyOutcome", "AwaitingObjectError", "EventApplier", "Targets"]


@dataclass(frozen=True, slots=True)
class ApplyOutcome:
    """What applying an event did: ``processed``, or ``ignored`` with the reason."""

    status: Literal["processed", "ignored"]
    reason: str | None = None


PROCESSED = ApplyOutcome("processed")


@dataclass(frozen=True, slots=True)
class Targets:
    """The rows a payment or checkout event names, locked by :meth:`EventApplier.locate`."""

    checkout: CheckoutSession | None = None
    payment: Payment | None = None


#: What :meth:`EventApplier.locate` finds for the kinds whose handlers look their rows up themselves.
_NOTHING_LOCATED = Targets()


def _ignored(reason: str) -> ApplyOutcome:
    return ApplyOutcome("ignored", reason)


def _parse_uuid(value: str | None) -> uuid.UUID | None:
    if not value:
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


class EventApplier(DomainService):
    """Dispatch a :class:`ProviderEvent` to the handler of its snapshot's kind."""

    async def apply(self, event: ProviderEvent, targets: Targets | None = None) -> ApplyOutcome:
        """Apply ``event`` in the current transaction; the caller commits.

        ``targets`` are what :meth:`locate` found for this event in this transaction; without
        them, the event is located first.
        """
        if targets is None:
            located = await self.locate(event)
            if isinstance(located, ApplyOutcome):
                return located
            targets = located
        snapshot = event.snapshot
        if isinstance(snapshot, PaymentSnapshot):
            return await self._payment(event, snapshot, targets)
        if isinstance(snapshot, CheckoutSnapshot):
            return await self._checkout(event, snapshot, targets)
        if isinstance(snapshot, RefundSnapshot):
            return await self._refund(event, snapshot)
        if isinstance(snapshot, SubscriptionSnapshot):
            return await self._subscription(event, snapshot)
        if isinstance(snapshot, InvoiceSnapshot):
            reason = await self.svc.invoices.apply_snapshot(event, snapshot)
            if reason:
                return _ignored(reason)
            await self._paid_invoice_payment(event, snapshot)
            return PROCESSED
        raise AssertionError("locate() ignores every other kind")  # pragma: no cover

    async def locate(self, event: ProviderEvent) -> ApplyOutcome | Targets:
        """The first step of :meth:`apply`, which only reads: lock the rows a payment or checkout
        event names (the checkout session first, then the payment, as checkout completion does).

        Returns:
            The outcome, when it is decided without writing anything (the inbox then needs no
            savepoint): ``ignored`` for an event that names nothing of this app, ``processed`` for
            a checkout event confirming what is recorded. Else the rows found, to pass to
            :meth:`apply` in the same transaction.
        """
        if event.ignored_reason is not None:
            return _ignored(event.ignored_reason)
        snapshot = event.snapshot
        if isinstance(snapshot, PaymentSnapshot):
            payments = PaymentRepository(session=self.session)
            checkout = await self._session_for(event, snapshot.provider_session_id)
            payment = await payments.by_provider_id(
                event.provider, snapshot.provider_payment_id, for_update=True
            )
            if payment is None and checkout is not None and checkout.payment_id is not None:
                payment = await payments.get_or_none(checkout.payment_id, for_update=True)
            if payment is None and checkout is None and not snapshot.provider_subscription_id:
                return _ignored("no local checkout session or payment matches this payment")
            return Targets(checkout, payment)
        if isinstance(snapshot, CheckoutSnapshot):
            checkout = await self._session_for(event, snapshot.provider_session_id)
            if checkout is None:
                return _ignored("no local checkout session matches")
            if (
                checkout.status is snapshot.status
                and checkout.provider_session_id is not None
                and (not snapshot.provider_payment_id or checkout.payment_id is not None)
                and (not snapshot.provider_subscription_id or checkout.subscription_id is not None)
            ):
                # The provider confirms what is recorded, with nothing to link (the checkout's
                # own event after its payment's): what _checkout() answers, without writing.
                return PROCESSED
            return Targets(checkout, None)
        if isinstance(snapshot, RefundSnapshot | SubscriptionSnapshot | InvoiceSnapshot):
            return _NOTHING_LOCATED
        return _ignored(f"no handler for {event.type} events")

    async def _paid_invoice_payment(self, event: ProviderEvent, snapshot: InvoiceSnapshot) -> None:
        """Record the payment a paid subscription invoice names, when its own event has not.

        A payment event carries no local ids when the provider does not copy the subscription's
        metadata onto the invoice's payment (Stripe does not), so one that overtook its
        subscription is ignored; the invoice, which does carry them, waits and records it.
        """
        if (
            snapshot.status is not InvoiceStatus.PAID
            or not snapshot.provider_payment_id
            or not snapshot.provider_subscription_id
            or snapshot.amount_paid <= 0
        ):
            return
        known = await PaymentRepository(session=self.session).by_provider_id(
            event.provider, snapshot.provider_payment_id
        )
        if known is not None:
            return
        paid = PaymentSnapshot(
            provider_payment_id=snapshot.provider_payment_id,
            status=PaymentStatus.SUCCEEDED,
            amount=Money(snapshot.amount_paid, snapshot.total.currency),
            provider_invoice_id=snapshot.provider_invoice_id,
            provider_subscription_id=snapshot.provider_subscription_id,
        )
        payment = await self._create_subscription_payment(event, paid)
        if payment is not None:
            await self._succeeded(
                payment, event, f"recorded from its paid invoice {snapshot.provider_invoice_id}"
            )

    async def _succeeded(self, payment: Payment, event: ProviderEvent, reason: str) -> None:
        """Move ``payment`` to succeeded on the word of ``event``, saying why in the trail."""
        await transition(
            self.svc,
            "payment",
            payment,
            PAYMENT_MACHINE,
            PaymentStatus.SUCCEEDED,
            cause=ChangeCause.WEBHOOK,
            provider_event_id=event.id,
            reason=reason,
        )

    # ------------------------------------------------------------------ payments

    async def _session_for(
        self, event: ProviderEvent, provider_session_id: str | None
    ) -> CheckoutSession | None:
        return await CheckoutSessionRepository(session=self.session).by_local_or_provider_id(
            event.provider,
            _parse_uuid(event.local_ids.get("checkout_session_id")),
            provider_session_id,
            for_update=True,
        )

    async def _payment(
        self, event: ProviderEvent, snapshot: PaymentSnapshot, targets: Targets
    ) -> ApplyOutcome:
        checkout, payment = targets.checkout, targets.payment
        if payment is None:
            if checkout is not None:
                payment = await self._create_payment(event, snapshot, checkout)
            else:
                # locate() ignored the event unless it names a subscription.
                payment = await self._create_subscription_payment(event, snapshot)
            if payment is None:
                return _ignored("no local subscription matches, or a concurrent delivery recorded it")
        if _is_stale(payment.provider_updated_at, event.occurred_at):
            return _ignored("older than the state already applied")
        if payment.provider_payment_id is None:
            payment.provider_payment_id = snapshot.provider_payment_id
        if snapshot.payment_method_summary:
            payment.payment_method_summary = snapshot.payment_method_summary
        if snapshot.status is PaymentStatus.FAILED:
            payment.failure_code = snapshot.failure_code
            payment.failure_message = snapshot.failure_message
        elif snapshot.status is PaymentStatus.SUCCEEDED:
            payment.failure_code = payment.failure_message = None
        if snapshot.status in (PaymentStatus.REFUNDED, PaymentStatus.PARTIALLY_REFUNDED):
            # Refund events carry the refund itself; the payment's status follows from them. But
            # a refunded payment succeeded first: when this is the first word of its success
            # (the success event comes later, or is re-read as refunded), record that, or the
            # ordering guard would leave the payment pending for good.
            if PAYMENT_MACHINE.can(payment.status, PaymentStatus.SUCCEEDED):
                await self._succeeded(
                    payment, event, f"reported {snapshot.status.value} before its success was applied"
                )
            await self._refund_from_payment(event, snapshot, payment)
            payment.provider_updated_at = _latest(payment.provider_updated_at, event.occurred_at)
            return PROCESSED
        moved = await transition(
            self.svc,
            "payment",
            payment,
            PAYMENT_MACHINE,
            snapshot.status,
            cause=ChangeCause.WEBHOOK,
            provider_event_id=event.id,
            strict=False,
        )
        if (
            moved
            and payment.status is PaymentStatus.SUCCEEDED
            and checkout is not None
            and checkout.mode == "payment"
        ):
            # A one-off payment gets its numbered invoice with the tax it was charged.
            await self.svc.invoices.invoice_one_off(
                payment, checkout, paid_at=event.occurred_at, provider_event_id=event.id
            )
        await self._refund_from_payment(event, snapshot, payment)
        payment.provider_updated_at = _latest(payment.provider_updated_at, event.occurred_at)
        if not moved and payment.status is not snapshot.status:
            return _ignored(f"a payment cannot move from {payment.status.value} to {snapshot.status.value}")
        if (
            payment.status is PaymentStatus.SUCCEEDED
            and checkout is not None
            and checkout.status is CheckoutSessionStatus.OPEN
            and (event.type == EventType.CHECKOUT_COMPLETED or (moved and checkout.mode == "payment"))
        ):
            # Paid is complete: the provider's checkout event may carry the payment (Lemon
            # Squeezy's order_created), or there is no checkout event at all (PayPal's captured
            # order), so a one-off payment's success completes its checkout too.
            if checkout.payment_id is None:
                checkout.payment_id = payment.id
            await self._move_checkout(checkout, CheckoutSessionStatus.COMPLETE, event, "paid")
        return PROCESSED

    async def _create_payment(
        self, event: ProviderEvent, snapshot: PaymentSnapshot, checkout: CheckoutSession
    ) -> Payment | None:
        payment = Payment(
            customer_id=checkout.customer_id,
            provider=event.provider,
            provider_payment_id=snapshot.provider_payment_id,
            checkout_session_id=checkout.id,
            status=PaymentStatus.PENDING,
            amount=snapshot.amount.amount,
            currency=snapshot.amount.currency,
            description=checkout.description or snapshot.description,
            reference=checkout.reference,
        )
        try:
            await PaymentRepository(session=self.session).add_new(payment)
        except ConflictError:
            return None
        checkout.payment_id = payment.id
        if snapshot.provider_subscription_id:
            subscription = await SubscriptionRepository(session=self.session).by_provider_id(
                event.provider, snapshot.provider_subscription_id
            )
            payment.subscription_id = subscription.id if subscription is not None else None
        await self.svc.invoices.link_payment(payment, event.provider, snapshot.provider_invoice_id)
        await record_creation(
            self.svc, "payment", payment, cause=ChangeCause.WEBHOOK, provider_event_id=event.id
        )
        return payment

    async def _create_subscription_payment(
        self, event: ProviderEvent, snapshot: PaymentSnapshot
    ) -> Payment | None:
        """A renewal payment: it belongs to the subscription's customer and invoice."""
        assert snapshot.provider_subscription_id is not None
        subscription = await SubscriptionRepository(session=self.session).by_provider_id(
            event.provider, snapshot.provider_subscription_id
        )
        if subscription is None:
            self.await_creation(event, f"subscription {snapshot.provider_subscription_id}")
            return None
        payment = Payment(
            customer_id=subscription.customer_id,
            provider=event.provider,
            provider_payment_id=snapshot.provider_payment_id,
            subscription_id=subscription.id,
            status=PaymentStatus.PENDING,
            amount=snapshot.amount.amount,
            currency=snapshot.amount.currency,
            description=snapshot.description or "Subscription",
        )
        try:
            await PaymentRepository(session=self.session).add_new(payment)
        except ConflictError:
            return None
        await self.svc.invoices.link_payment(payment, event.provider, snapshot.provider_invoice_id)
        await record_creation(
            self.svc, "payment", payment, cause=ChangeCause.WEBHOOK, provider_event_id=event.id
        )
        return payment

    # ------------------------------------------------------------------ subscriptions

    async def _subscription(self, event: ProviderEvent, snapshot: SubscriptionSnapshot) -> ApplyOutcome:
        subscriptions = SubscriptionRepository(session=self.session)
        checkout = await self._session_for(event, None)
        subscription = await subscriptions.by_provider_id(
            event.provider, snapshot.provider_subscription_id, for_update=True
        )
        if subscription is None and checkout is not None and checkout.subscription_id is not None:
            subscription = await subscriptions.get_or_none(checkout.subscription_id, for_update=True)
        plan_id = await self._plan_id(event, checkout, snapshot.provider_price_id)
        if subscription is None:
            if checkout is None or plan_id is None:
                return _ignored("no local checkout session or subscription matches this subscription")
            subscription = Subscription(
                customer_id=checkout.customer_id,
                plan_id=plan_id,
                provider=event.provider,
                provider_subscription_id=snapshot.provider_subscription_id,
                status=SubscriptionStatus.INCOMPLETE,
                quantity=snapshot.quantity,
            )
            try:
                await subscriptions.add(subscription)
            except ConflictError:
                return _ignored("the subscription was recorded by a concurrent delivery")
            checkout.subscription_id = subscription.id
            await record_creation(
                self.svc, "subscription", subscription, cause=ChangeCause.WEBHOOK, provider_event_id=event.id
            )
        if _is_stale(subscription.provider_updated_at, event.occurred_at):
            return _ignored("older than the state already applied")
        if subscription.provider_subscription_id is None:
            subscription.provider_subscription_id = snapshot.provider_subscription_id
        reason = await self.svc.subscriptions.apply_snapshot(
            subscription, snapshot, cause=ChangeCause.WEBHOOK, plan_id=plan_id, provider_event_id=event.id
        )
        if reason is not None:
            return _ignored(reason)
        subscription.provider_updated_at = _latest(subscription.provider_updated_at, event.occurred_at)
        await self._subscription_started(event, subscription, checkout)
        return PROCESSED

    async def _plan_id(
        self, event: ProviderEvent, checkout: CheckoutSession | None, provider_price_id: str | None
    ) -> uuid.UUID | None:
        """The local plan of a subscription event: the plan whose synced price the subscription
        names (metadata set at checkout goes stale after a plan change where the provider cannot
        update it, as at Lemon Squeezy), else the adapter's metadata, else the checkout's plan."""
        if provider_price_id:
            link = await ProviderObjectRepository(session=self.session).by_provider_id(
                event.provider, PRICE_OBJECT, provider_price_id
            )
            if link is not None and await PlanRepository(session=self.session).get_or_none(link.object_id):
                return link.object_id
        local = _parse_uuid(event.local_ids.get("plan_id"))
        if local is not None and await PlanRepository(session=self.session).get_or_none(local) is not None:
            return local
        return checkout.plan_id if checkout is not None else None

    # ------------------------------------------------------------------ checkout sessions

    async def _checkout(
        self, event: ProviderEvent, snapshot: CheckoutSnapshot, targets: Targets
    ) -> ApplyOutcome:
        checkout = targets.checkout
        assert checkout is not None  # locate() ignored the event otherwise
        if checkout.provider_session_id is None:
            checkout.provider_session_id = snapshot.provider_session_id
        if snapshot.provider_payment_id and checkout.payment_id is None:
            linked = await PaymentRepository(session=self.session).by_provider_id(
                event.provider, snapshot.provider_payment_id
            )
            if linked is not None:
                checkout.payment_id = linked.id
        if snapshot.provider_subscription_id and checkout.subscription_id is None:
            subscription = await SubscriptionRepository(session=self.session).by_provider_id(
                event.provider, snapshot.provider_subscription_id
            )
            if subscription is not None:
                checkout.subscription_id = subscription.id
        if checkout.status is snapshot.status:
            # The provider confirms what is already recorded (a subscription checkout completes
            # when its subscription starts, which may be applied first): nothing more to do.
            return PROCESSED
        if checkout.status is not CheckoutSessionStatus.OPEN:
            return _ignored(
                f"checkout session is {checkout.status.value}; it cannot become {snapshot.status.value}"
            )
        await self._move_checkout(checkout, snapshot.status, event, f"reported {snapshot.status.value}")
        return PROCESSED

    async def _move_checkout(
        self, checkout: CheckoutSession, status: CheckoutSessionStatus, event: ProviderEvent, reason: str
    ) -> bool:
        """Move an open checkout session on the word of ``event``, with its audit row and hook."""
        moved = await transition(
            self.svc,
            "checkout_session",
            checkout,
            CHECKOUT_SESSION_MACHINE,
            status,
            cause=ChangeCause.WEBHOOK,
            provider_event_id=event.id,
            reason=reason,
            strict=False,
        )
        if moved and status is CheckoutSessionStatus.COMPLETE:
            checkout.completed_at = event.occurred_at or now()
        return moved

    async def _subscription_started(
        self, event: ProviderEvent, subscription: Subscription, checkout: CheckoutSession | None
    ) -> None:
        """Complete the checkout session that created ``subscription`` once it first entitles
        (trialing or active), whether or not the provider's own checkout event came first or comes
        at all (PayPal has none for a subscription's approval)."""
        if subscription.status not in (SubscriptionStatus.TRIALING, SubscriptionStatus.ACTIVE):
            return
        if checkout is None or checkout.subscription_id not in (None, subscription.id):
            checkout = await CheckoutSessionRepository(session=self.session).first(
                CheckoutSession.subscription_id == subscription.id,
                CheckoutSession.status == CheckoutSessionStatus.OPEN,
                for_update=True,
            )
        if checkout is None or checkout.status is not CheckoutSessionStatus.OPEN:
            return
        if checkout.subscription_id is None:
            checkout.subscription_id = subscription.id
        await self._move_checkout(
            checkout,
            CheckoutSessionStatus.COMPLETE,
            event,
            f"its subscription became {subscription.status.value}",
        )

    # ------------------------------------------------------------------ refunds

    async def _refund(self, event: ProviderEvent, snapshot: RefundSnapshot) -> ApplyOutcome:
        refunds = RefundRepository(session=self.session)
        refund: Refund | None = None
        local_id = _parse_uuid(event.local_ids.get("refund_id"))
        if local_id is not None:
            refund = await refunds.get_or_none(local_id, for_update=True)
        if refund is None:
            refund = await refunds.first(
                Refund.provider == event.provider,
                Refund.provider_refund_id == snapshot.provider_refund_id,
                for_update=True,
            )
        if refund is None:
            return await self._external_refund(event, snapshot)
        if refund.status is not RefundStatus.PENDING:
            return _ignored(f"refund already {refund.status.value}")
        await self.svc.refunds.apply_result(
            refund.id,
            RefundResult(snapshot.provider_refund_id, snapshot.status, snapshot.failure_message),
            cause=ChangeCause.WEBHOOK,
            provider_event_id=event.id,
        )
        return PROCESSED

    async def _refund_from_payment(
        self, event: ProviderEvent, snapshot: PaymentSnapshot, payment: Payment
    ) -> None:
        """Record what a payment event reports refunded beyond the refunds known here.

        ``payment.refunded_amount`` already holds every refund of this library, pending ones
        included, so the excess was refunded at the provider (its dashboard), and a provider whose
        refunds have no object of their own (Lemon Squeezy) reports it only so. It becomes a
        succeeded refund without a provider id, with its audit row; a refund event for the same
        refund arriving later adopts it instead of adding another.
        """
        excess = snapshot.refunded_amount - payment.refunded_amount
        if excess <= 0 or payment.status not in (
            PaymentStatus.SUCCEEDED,
            PaymentStatus.PARTIALLY_REFUNDED,
        ):
            return
        payments = PaymentRepository(session=self.session)
        tax_amount = await self.svc.tax.refund_tax(payment, excess)
        if not await payments.add_refunded(payment.id, excess):
            return
        await self._record_external_refund(
            event,
            payment,
            provider_refund_id=None,
            amount=excess,
            tax_amount=tax_amount,
            reason=None,
            note=f"refunded at {event.provider}, reported as refunded_amount {snapshot.refunded_amount}",
        )

    async def _record_external_refund(
        self,
        event: ProviderEvent,
        payment: Payment,
        *,
        provider_refund_id: str | None,
        amount: int,
        reason: str | None,
        note: str | None = None,
        tax_amount: int | None = None,
    ) -> None:
        """A succeeded refund made at the provider, with its audit row (``note`` its reason) and
        its share of the payment's tax (decided before the refund was reserved)."""
        refund = Refund(
            payment_id=payment.id,
            provider=event.provider,
            provider_refund_id=provider_refund_id,
            amount=amount,
            tax_amount=tax_amount,
            currency=payment.currency,
            status=RefundStatus.SUCCEEDED,
            reason=reason,
        )
        await RefundRepository(session=self.session).add(refund)
        await record_creation(
            self.svc, "refund", refund, cause=ChangeCause.WEBHOOK, provider_event_id=event.id, reason=note
        )
        await self.session.refresh(payment)
        await self.svc.refunds.settle_payment_status(
            payment, cause=ChangeCause.WEBHOOK, provider_event_id=event.id
        )

    async def _external_refund(self, event: ProviderEvent, snapshot: RefundSnapshot) -> ApplyOutcome:
        """A refund made at the provider (its dashboard), not through this library."""
        if snapshot.status is not RefundStatus.SUCCEEDED:
            return _ignored(f"unknown refund reported as {snapshot.status.value}")
        payments = PaymentRepository(session=self.session)
        payment = await payments.by_provider_id(event.provider, snapshot.provider_payment_id, for_update=True)
        if payment is None:
            return _ignored("no local payment matches the refunded payment")
        adopted = await RefundRepository(session=self.session).first(
            Refund.payment_id == payment.id,
            Refund.provider_refund_id.is_(None),
            Refund.status == RefundStatus.SUCCEEDED,
            Refund.actor.is_(None),
            Refund.amount == snapshot.amount.amount,
            for_update=True,
        )
        if adopted is not None and snapshot.provider_refund_id is not None:
            # Recorded from the payment's refunded_amount before this event arrived.
            adopted.provider_refund_id = snapshot.provider_refund_id
            return PROCESSED
        tax_amount = await self.svc.tax.refund_tax(payment, snapshot.amount.amount)
        if not await payments.add_refunded(payment.id, snapshot.amount.amount):
            return _ignored("the refund exceeds what is left of the local payment")
        await self._record_external_refund(
            event,
            payment,
            provider_refund_id=snapshot.provider_refund_id,
            amount=snapshot.amount.amount,
            tax_amount=tax_amount,
            reason=snapshot.reason,
        )
        return PROCESSED


def _is_stale(applied: datetime | None, occurred: datetime) -> bool:
    return applied is not None and occurred < applied


def _latest(applied: datetime | None, occurred: datetime) -> datetime:
    return occurred if applied is None or occurred > applied else applied
