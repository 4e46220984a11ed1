"""The fake provider's subscription engine: subscriptions, periods, invoices, prorations, usage, prices.

:class:`SubscriptionBillingMixin` is the part of :class:`~fastapi_cashier.providers.fake.FakeProvider`
that bills like Stripe does: a paid subscription checkout starts a subscription (with a trial, or
with its first invoice paid), plan and quantity changes are prorated, and each period end that
:meth:`~fastapi_cashier.providers.fake.provider.FakeProvider.advance` reaches renews, expires or (while
paused) just rolls the period forward. The fake simulates a provider that computes prices, so it
uses the library's own pricing math (:mod:`fastapi_cashier.pricing`) for invoice lines and
prorations, exactly as a real provider would use its own.

Events emitted, in this order:

==============================  ================================================================
Subscription checkout paid      ``subscription.created``, ``invoice.paid`` (a zero "Trial period"
                                invoice, or the first period's and ``payment.succeeded``),
                                ``checkout.completed``
Renewal or trial end            ``invoice.paid``, ``payment.succeeded`` (none for a zero total),
                                ``subscription.updated`` (new period, ``active``); declined:
                                ``invoice.payment_failed``, ``payment.failed``,
                                ``subscription.updated`` (new period, ``past_due``)
Period end: paused | canceling  ``subscription.updated`` (nothing billed) | ``subscription.expired``
Plan or quantity change         ``subscription.updated``, after the invoice's events with
                                ``always_invoice``
Cancel now                      ``subscription.canceled``
Cancel at period end, (un)pause ``subscription.updated``
==============================  ================================================================

An invoice total is never negative: credit beyond what an invoice charges is carried to the next
invoice as a negative line ("Credit carried from invoice ...").
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final, TypeVar

from ...pricing import add_interval
from ...statuses import (
    BillingInterval,
    InvoiceStatus,
    PaymentStatus,
    PricingModel,
    ProrationBehavior,
    SubscriptionStatus,
)
from ..base import (
    Capability,
    EventType,
    SubscriptionChange,
    SubscriptionResult,
    SubscriptionSnapshot,
    UsageReport,
)
from .state import (
    CARD_DECLINED,
    CARD_OK,
    Emitted,
    FakeCheckoutSession,
    FakeInvoice,
    FakePayment,
    FakeSubscription,
    FakeUsage,
    InvoiceLine,
    check_plan,
    new_id,
    refused,
)
from .wire import parse_snapshot

__all__ = ["ENDED", "SubscriptionBillingMixin"]

ENDED: Final = frozenset({SubscriptionStatus.CANCELED, SubscriptionStatus.EXPIRED})
"""Statuses of a subscription that has ended for good."""

_S = SubscriptionStatus
_T = TypeVar("_T")


class SubscriptionBillingMixin:
    """Subscriptions and their invoices (a part of ``FakeProvider``).

    Charges go to the card on file and succeed, unless ``decline_payments_for`` marked the customer.
    """

    payments: dict[str, FakePayment]
    subscriptions: dict[str, FakeSubscription]
    invoices: dict[str, FakeInvoice]
    calls: list[tuple[str, str]]
    idempotency_keys: bool
    _declining: set[str]

    if TYPE_CHECKING:  # provided by FakeProvider

        def now(self) -> datetime: ...
        def _require(self, capability: Capability) -> None: ...
        def _get(self, store: Mapping[str, _T], kind: str, provider_id: str) -> _T: ...
        def _replay(self, method: str, key: str, params: object, result_type: type[_T]) -> _T | None: ...
        def _remember(self, method: str, key: str, params: object, result: object) -> None: ...
        async def _emit(self, events: Sequence[tuple[EventType, dict[str, Any]]]) -> None: ...

    # ----------------------------------------------------------------------- protocol

    async def update_subscription(self, change: SubscriptionChange) -> SubscriptionResult:
        """Move a subscription to another plan and/or quantity, prorated per ``change.proration``.

        ``create_prorations`` adds a credit for the unused part of the old price and a charge for
        the rest of the period at the new price to the next renewal invoice; ``always_invoice``
        invoices and charges them now; ``none`` adds nothing. A trial is never prorated. The
        current period is kept; a new interval applies from the next renewal. Emits
        ``subscription.updated`` (after the proration invoice's events, if any). ``change.tax``
        is the VAT of the invoices from then on (with no other change too, when the buyer's
        terms changed).

        Raises:
            InvalidProviderRequestError: Unknown, ended or paused subscription, a quantity below
                1, a plan that is not recurring, has no valid price or is in another currency, or
                a reused key.
        """
        replayed = self._replay("update_subscription", change.idempotency_key, change, SubscriptionResult)
        if replayed is not None:
            return replayed
        self._require(Capability.PLAN_CHANGE)
        sub = self._live_subscription(change.provider_subscription_id, "update_subscription")
        if sub.paused:
            raise refused(f"subscription {sub.id} is paused; resume it first", code="subscription_paused")
        plan = change.plan or sub.plan
        quantity = sub.quantity if change.quantity is None else change.quantity
        check_plan(plan, quantity)
        if plan.unit_amount.currency != sub.plan.unit_amount.currency:
            raise refused(
                f"plan {plan.id} is priced in {plan.unit_amount.currency}, "
                f"subscription {sub.id} in {sub.plan.unit_amount.currency}",
                field="plan",
            )
        self._learn_local_id(sub, change.subscription_id)
        events: Emitted = []
        if (plan, quantity) != (sub.plan, sub.quantity):
            prorating = sub.status is not _S.TRIALING and change.proration is not ProrationBehavior.NONE
            tax = change.tax if change.tax is not None else sub.tax
            lines = sub.prorations(plan, quantity, self.now(), tax=tax) if prorating else []
            if (plan.interval, plan.interval_count) != (sub.plan.interval, sub.plan.interval_count):
                sub.anchor, sub.cycles = sub.current_period_end, 0
            sub.plan, sub.quantity, sub.tax = plan, quantity, tax
            sub.metadata["plan_id"] = str(plan.id)
            if change.proration is ProrationBehavior.ALWAYS_INVOICE and lines:
                events = self._bill(sub, lines, self.now(), sub.current_period_end, renewal=False)
            else:
                sub.pending_lines.extend(lines)
            events.append(self._updated(sub))
        elif change.tax is not None and change.tax != sub.tax:
            # Only the VAT changed (the buyer's terms did): from the next invoice on.
            sub.tax = change.tax
            events.append(self._updated(sub))
        result = SubscriptionResult(self._snapshot(sub))
        self._remember("update_subscription", change.idempotency_key, change, result)
        await self._emit(events)
        return result

    async def cancel_subscription(
        self, provider_subscription_id: str, *, at_period_end: bool, idempotency_key: str
    ) -> SubscriptionResult:
        """Cancel now (``subscription.canceled``) or at the end of the period (``subscription.updated``).

        Canceling at the period end sets ``cancel_at_period_end`` and ``canceled_at`` (when it was
        asked, as Stripe does); the subscription expires when :meth:`advance` reaches the period end.

        Raises:
            InvalidProviderRequestError: Unknown or already ended subscription, or a reused key.
            UnsupportedCapabilityError: the cancel mode is switched off.
        """
        self._require(Capability.CANCEL_AT_PERIOD_END if at_period_end else Capability.CANCEL_NOW)

        def cancel(sub: FakeSubscription) -> tuple[EventType, dict[str, Any]]:
            now = self.now()
            if at_period_end:
                sub.cancel_at_period_end, sub.canceled_at = True, sub.canceled_at or now
                return self._updated(sub)
            sub.status, sub.canceled_at, sub.ended_at, sub.updated = _S.CANCELED, now, now, now
            sub.paused = False
            sub.pending_lines.clear()
            return (EventType.SUBSCRIPTION_CANCELED, sub.to_object())

        params = (provider_subscription_id, at_period_end)
        return await self._lifecycle(
            "cancel_subscription", idempotency_key, params, Capability.SUBSCRIPTIONS, cancel
        )

    async def resume_subscription(
        self, provider_subscription_id: str, *, idempotency_key: str
    ) -> SubscriptionResult:
        """Undo a cancel at the period end and/or un-pause; emits ``subscription.updated``.

        An un-paused subscription is ``active`` again (``trialing`` while its trial lasts) and is
        invoiced at its next period end.

        Raises:
            InvalidProviderRequestError: Unknown or ended subscription, nothing to resume, or a
                reused key.
        """

        def resume(sub: FakeSubscription) -> tuple[EventType, dict[str, Any]]:
            if not (sub.cancel_at_period_end or sub.paused):
                raise refused(
                    f"subscription {sub.id} is neither paused nor set to cancel: nothing to resume",
                    code="nothing_to_resume",
                )
            if sub.cancel_at_period_end:
                sub.cancel_at_period_end, sub.canceled_at = False, None
            if sub.paused:
                in_trial = sub.trial_end is not None and self.now() < sub.trial_end
                sub.paused, sub.status = False, _S.TRIALING if in_trial else _S.ACTIVE
            return self._updated(sub)

        return await self._lifecycle(
            "resume_subscription", idempotency_key, provider_subscription_id, Capability.SUBSCRIPTIONS, resume
        )

    async def pause_subscription(
        self, provider_subscription_id: str, *, idempotency_key: str
    ) -> SubscriptionResult:
        """Pause collection: status ``paused``; period ends roll on without invoices or payments.

        Emits ``subscription.updated``.

        Raises:
            InvalidProviderRequestError: Unknown, ended or already paused subscription, or a reused key.
        """

        def pause(sub: FakeSubscription) -> tuple[EventType, dict[str, Any]]:
            if sub.paused:
                raise refused(f"subscription {sub.id} is already paused", code="subscription_paused")
            sub.paused, sub.status = True, _S.PAUSED
            return self._updated(sub)

        return await self._lifecycle(
            "pause_subscription", idempotency_key, provider_subscription_id, Capability.PAUSE, pause
        )

    async def report_usage(self, report: UsageReport) -> None:
        """Record usage in the current period, once per ``idempotency_key`` of the subscription.

        Any subscription takes usage; only a metered plan bills it, at the period's end with
        ``price(spec, usage=<the period's total>)``. No event is emitted.

        Raises:
            InvalidProviderRequestError: Unknown or ended subscription, a negative quantity, no
                key, or a key already used with another quantity.
        """
        self._require(Capability.METERED_USAGE)
        sub = self._live_subscription(report.provider_subscription_id, "report_usage")
        if isinstance(report.quantity, bool) or not isinstance(report.quantity, int) or report.quantity < 0:
            raise refused("usage quantity must be an integer of at least 0", field="quantity")
        if not report.idempotency_key:
            raise refused("report_usage needs an idempotency key", field="idempotency_key")
        known = sub.usage.get(report.idempotency_key)
        key = report.idempotency_key
        if known is not None and not self.idempotency_keys:
            # A provider that ignores keys records the same report again.
            key = f"{key}#{len(sub.usage)}"
        elif known is not None:
            if known.quantity != report.quantity:
                raise refused(
                    f"idempotency key {report.idempotency_key!r} was already used for {known.quantity} units",
                    code="idempotency_key_in_use",
                )
            return
        self._learn_local_id(sub, report.subscription_id)
        sub.usage[key] = FakeUsage(
            quantity=report.quantity, recorded_at=report.recorded_at, period_start=sub.current_period_start
        )
        self.calls.append(("report_usage", report.idempotency_key))

    # ----------------------------------------------------------------------- the engine

    def _start_subscription(
        self, session: FakeCheckoutSession, payment: FakePayment | None, card: str
    ) -> Emitted:
        """Create the subscription of a paid checkout and its first, paid invoice."""
        plan = session.plan
        assert plan is not None  # a subscription session always has its plan
        now = self.now()
        trial_end = add_interval(now, BillingInterval.DAY, plan.trial_days) if plan.trial_days > 0 else None
        local_ids = {k: v for k, v in session.metadata.items() if k in ("checkout_session_id", "customer_id")}
        sub = FakeSubscription(
            id=new_id("sub"),
            status=_S.TRIALING if trial_end else _S.ACTIVE,
            customer=session.customer,
            plan=plan,
            quantity=session.quantity,
            current_period_start=now,
            current_period_end=trial_end or add_interval(now, plan.interval, plan.interval_count),
            anchor=trial_end or now,
            cycles=0 if trial_end else 1,
            metadata={**local_ids, "plan_id": str(plan.id)},
            created=now,
            updated=now,
            trial_start=now if trial_end else None,
            trial_end=trial_end,
            tax=session.tax,
        )
        self.subscriptions[sub.id] = sub
        session.subscription = sub.id
        if trial_end is not None:
            lines = [
                InvoiceLine("Trial period", sub.quantity, 0, 0, now, trial_end, plan.id, tax_rate=_rate(sub))
            ]
        else:
            lines = InvoiceLine.priced(plan, sub.quantity, now, sub.current_period_end, tax=sub.tax)
        invoice = self._new_invoice(new_id("in"), sub, lines, now, sub.current_period_end)
        invoice.status = InvoiceStatus.PAID
        events: Emitted = [(EventType.SUBSCRIPTION_CREATED, sub.to_object())]
        if payment is not None:
            payment.status, payment.payment_method_summary = PaymentStatus.SUCCEEDED, card
            payment.failure_code = payment.failure_message = None
            payment.invoice, payment.subscription, payment.updated = invoice.id, sub.id, now
            invoice.payment, invoice.amount_paid = payment.id, payment.amount.amount
        events.append((EventType.INVOICE_PAID, invoice.to_object()))
        if payment is not None:
            events.append((EventType.PAYMENT_SUCCEEDED, payment.to_object()))
        return events

    def _next_due_subscription(self, until: datetime) -> FakeSubscription | None:
        """The running subscription whose period ends first, if that is at or before ``until``."""
        running = (sub for sub in self.subscriptions.values() if sub.status not in ENDED)
        first = min(running, key=lambda sub: sub.current_period_end, default=None)
        return first if first is not None and first.current_period_end <= until else None

    def _end_period(self, sub: FakeSubscription) -> Emitted:
        """What happens when the clock reaches the end of ``sub``'s current period."""
        if sub.cancel_at_period_end:
            sub.status, sub.ended_at = _S.EXPIRED, sub.current_period_end
            sub.pending_lines.clear()
            sub.updated = self.now()
            return [(EventType.SUBSCRIPTION_EXPIRED, sub.to_object())]
        if sub.paused:
            sub.roll()
            return [self._updated(sub)]
        ended_start, ended_end = sub.current_period_start, sub.current_period_end
        trial_over = sub.status is _S.TRIALING
        sub.roll()
        if sub.plan.pricing_model is PricingModel.METERED:
            # Usage is billed in arrears for the period that ended; a trial's usage is free.
            used = 0 if trial_over else sub.used_in(ended_start)
            lines = InvoiceLine.priced(
                sub.plan, sub.quantity, ended_start, ended_end, usage=used, tax=sub.tax
            )
            period = (ended_start, ended_end)
        else:
            lines = InvoiceLine.priced(
                sub.plan, sub.quantity, sub.current_period_start, sub.current_period_end, tax=sub.tax
            )
            period = (sub.current_period_start, sub.current_period_end)
        lines += sub.pending_lines
        sub.pending_lines = []
        events = self._bill(sub, lines, *period, renewal=True)
        events.append(self._updated(sub))
        return events

    def _bill(
        self,
        sub: FakeSubscription,
        lines: list[InvoiceLine],
        start: datetime,
        end: datetime,
        *,
        renewal: bool,
    ) -> Emitted:
        """Invoice ``lines`` and charge the total to the customer's card; sets the subscription's status.

        Charged: ``active``. Declined: the invoice stays ``open`` and the subscription is
        ``past_due``. Nothing to charge: paid at once; a renewal is then ``active``, a proration
        invoice leaves the status as it is.
        """
        now = self.now()
        invoice_id = new_id("in")
        total = sum(line.amount for line in lines)
        if total < 0:
            rate = _rate(sub)
            lines = [
                *lines,
                InvoiceLine(
                    "Credit carried to the next invoice", 1, -total, -total, None, None, tax_rate=rate
                ),
            ]
            carried = InvoiceLine(
                f"Credit carried from invoice {invoice_id}", 1, total, total, None, None, tax_rate=rate
            )
            sub.pending_lines.append(carried)
        invoice = self._new_invoice(invoice_id, sub, lines, start, end)
        if invoice.total.is_zero:
            invoice.status = InvoiceStatus.PAID
            if renewal:
                sub.status = _S.ACTIVE
            return [(EventType.INVOICE_PAID, invoice.to_object())]
        payment = FakePayment(
            id=new_id("pay"),
            status=PaymentStatus.SUCCEEDED,
            amount=invoice.total,
            checkout_session=None,
            customer=sub.customer,
            description=f"{sub.plan.name} subscription",
            metadata={key: value for key, value in sub.metadata.items() if key == "customer_id"},
            created=now,
            updated=now,
            payment_method_summary=CARD_OK,
            invoice=invoice.id,
            subscription=sub.id,
        )
        self.payments[payment.id] = payment
        invoice.payment = payment.id
        if sub.customer in self._declining:
            payment.status, payment.payment_method_summary = PaymentStatus.FAILED, CARD_DECLINED
            payment.failure_code, payment.failure_message = "card_declined", "Your card was declined."
            invoice.status, sub.status = InvoiceStatus.OPEN, _S.PAST_DUE
            return [
                (EventType.INVOICE_PAYMENT_FAILED, invoice.to_object()),
                (EventType.PAYMENT_FAILED, payment.to_object()),
            ]
        invoice.status, invoice.amount_paid, sub.status = InvoiceStatus.PAID, payment.amount.amount, _S.ACTIVE
        return [
            (EventType.INVOICE_PAID, invoice.to_object()),
            (EventType.PAYMENT_SUCCEEDED, payment.to_object()),
        ]

    def _new_invoice(
        self, invoice_id: str, sub: FakeSubscription, lines: list[InvoiceLine], start: datetime, end: datetime
    ) -> FakeInvoice:
        now = self.now()
        metadata = {key: value for key, value in sub.metadata.items() if key == "customer_id"}
        if sub.local_id is not None:
            metadata["subscription_id"] = str(sub.local_id)
        invoice = FakeInvoice(
            id=invoice_id,
            status=InvoiceStatus.DRAFT,
            currency=sub.plan.unit_amount.currency,
            customer=sub.customer,
            subscription=sub.id,
            lines=list(lines),
            period_start=start,
            period_end=end,
            metadata=metadata,
            created=now,
            updated=now,
            prices_include_tax=sub.tax is not None and sub.tax.inclusive,
        )
        self.invoices[invoice.id] = invoice
        return invoice

    async def _lifecycle(
        self,
        method: str,
        key: str,
        params: str | tuple[str, bool],
        capability: Capability,
        apply: Callable[[FakeSubscription], tuple[EventType, dict[str, Any]]],
    ) -> SubscriptionResult:
        """Cancel, pause or resume: replay a repeated key, else ``apply`` the change and emit its event."""
        replayed = self._replay(method, key, params, SubscriptionResult)
        if replayed is not None:
            return replayed
        self._require(capability)
        provider_subscription_id = params if isinstance(params, str) else params[0]
        sub = self._live_subscription(provider_subscription_id, method)
        event = apply(sub)
        result = SubscriptionResult(self._snapshot(sub))
        self._remember(method, key, params, result)
        await self._emit([event])
        return result

    def _live_subscription(self, provider_subscription_id: str, method: str) -> FakeSubscription:
        sub = self._get(self.subscriptions, "subscription", provider_subscription_id)
        if sub.status in ENDED:
            raise refused(
                f"subscription {sub.id} is {sub.status.value}: {method} is refused", code="subscription_ended"
            )
        return sub

    def _learn_local_id(self, sub: FakeSubscription, local_id: uuid.UUID) -> None:
        """Remember the library's id of ``sub`` (invoice metadata carries it from then on)."""
        if sub.local_id is None and local_id.int != 0:
            sub.local_id = local_id

    def _updated(self, sub: FakeSubscription) -> tuple[EventType, dict[str, Any]]:
        sub.updated = self.now()
        return (EventType.SUBSCRIPTION_UPDATED, sub.to_object())

    def _snapshot(self, sub: FakeSubscription) -> SubscriptionSnapshot:
        snapshot = parse_snapshot("subscription", sub.to_object())
        assert isinstance(snapshot, SubscriptionSnapshot)
        return snapshot


def _rate(sub: FakeSubscription) -> Decimal | None:
    """The rate lines without a plan of their own (trial, carried credit) are taxed at."""
    return sub.tax.rate if sub.tax is not None else None
