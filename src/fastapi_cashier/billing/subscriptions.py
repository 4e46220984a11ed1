"""Subscriptions: plan and quantity changes, cancel, resume, pause, metered usage.

The provider is the authority: each operation asks the provider first (outside any transaction)
and then mirrors what it answered, through the subscription status machine with an audit row.
The provider's own events (delivered to the inbox) mirror the same state, so whichever arrives
first wins and the second changes nothing.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import uuid
from datetime import datetime, timedelta

import sqlalchemy as sa

from ..db.base_repository import Page
from ..db.model_repositories import (
    PlanRepository,
    ProductRepository,
    SubscriptionRepository,
    UsageRecordRepository,
)
from ..db.models import Plan, Subscription, UsageRecord
from ..errors import CashierError, ConflictError, ProviderError, ValidationError
from ..pricing import PriceSpec, add_interval, storable_period_total
from ..providers.base import (
    Capability,
    SubscriptionChange,
    SubscriptionSnapshot,
    UsageReport,
    cancels_at_period_end_locally,
    require_capability,
    require_proration,
    unsupported,
)
from ..statuses import (
    SUBSCRIPTION_MACHINE,
    BillingInterval,
    ChangeCause,
    PricingModel,
    ProrationBehavior,
    SubscriptionStatus,
)
from ._base import DomainService, now
from .previews import spec_for_plan
from .provider_calls import RetryingProvider
from .transitions import transition

__all__ = ["CHANGEABLE", "ENDED", "SubscriptionService"]

logger = logging.getLogger("fastapi_cashier")

#: Statuses in which a subscription's plan or quantity may change.
CHANGEABLE = frozenset({SubscriptionStatus.TRIALING, SubscriptionStatus.ACTIVE, SubscriptionStatus.PAST_DUE})
ENDED = frozenset({SubscriptionStatus.CANCELED, SubscriptionStatus.EXPIRED})


class SubscriptionService(DomainService):
    """The subscription lifecycle as customers and host code drive it."""

    @property
    def _subscriptions(self) -> SubscriptionRepository:
        return SubscriptionRepository(session=self.session)

    async def get_for_customer(self, customer_id: uuid.UUID, subscription_id: uuid.UUID) -> Subscription:
        """The customer's own subscription; another customer's answers ``NotFoundError``."""
        return await self._subscriptions.get_for_customer(subscription_id, customer_id)

    async def list_for_customer(
        self, customer_id: uuid.UUID, *, limit: int = 20, cursor: str | None = None
    ) -> Page[Subscription]:
        """The customer's subscriptions, newest first."""
        return await self._subscriptions.paginate(
            Subscription.customer_id == customer_id, limit=limit, cursor=cursor
        )

    async def _provider_for(self, subscription: Subscription, capability: Capability) -> RetryingProvider:
        provider = self.svc.provider(subscription.provider)
        require_capability(provider, capability)
        if subscription.provider_subscription_id is None:
            raise ConflictError("the provider has not confirmed this subscription yet; try again shortly")
        return provider

    async def change(
        self,
        subscription: Subscription,
        *,
        plan_id: uuid.UUID | None = None,
        quantity: int | None = None,
        proration: ProrationBehavior = ProrationBehavior.CREATE_PRORATIONS,
        actor: str | None = None,
    ) -> Subscription:
        """Move to another plan and/or quantity; the provider prorates per ``proration``.

        Raises:
            ValidationError: nothing to change, a bad quantity, or a plan in another currency.
            ConflictError: the subscription has ended or is paused.
            UnsupportedCapabilityError: the provider cannot change plans.
        """
        if plan_id is None and quantity is None:
            raise ValidationError("give plan_id and/or quantity to change", field="plan_id")
        if quantity is not None and (
            isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1
        ):
            raise ValidationError("quantity must be a positive integer", field="quantity")
        if subscription.status not in CHANGEABLE:
            raise ConflictError(
                f"a {subscription.status.value} subscription cannot be changed",
                details={"status": subscription.status.value},
            )
        provider = await self._provider_for(subscription, Capability.PLAN_CHANGE)
        require_proration(provider, proration)
        current_plan = await PlanRepository(session=self.session).get(subscription.plan_id)
        new_plan: Plan | None = None
        if plan_id is not None and plan_id != subscription.plan_id:
            new_plan = await self.active_plan(plan_id)
            if new_plan.currency != current_plan.currency:
                raise ValidationError(
                    f"plan {plan_id} is priced in {new_plan.currency}, "
                    f"the subscription in {current_plan.currency}",
                    field="plan_id",
                )
        if new_plan is None and (quantity is None or quantity == subscription.quantity):
            return subscription
        target_plan = new_plan or current_plan
        key = _change_key(subscription, target_plan.id, quantity or subscription.quantity, proration)
        plan_ref = await self.svc.catalog.plan_ref(target_plan, provider)
        # A change whose period total the database cannot store would fail every renewal after it.
        storable_period_total(
            PriceSpec.from_plan_ref(plan_ref),
            quantity=quantity or subscription.quantity,
            field="quantity" if new_plan is None else "plan_id",
        )
        provider_id = subscription.provider_subscription_id
        assert provider_id is not None
        # A new plan may be of another tax category (a reduced rate): the provider taxes it anew.
        tax = (
            await self.svc.tax.rate_ref(
                subscription.customer_id, category=await self.svc.tax.plan_category(new_plan.id)
            )
            if new_plan is not None
            else None
        )
        await self.svc.commit()
        result = await provider.update_subscription(
            SubscriptionChange(
                subscription_id=subscription.id,
                idempotency_key=key,
                provider_subscription_id=provider_id,
                plan=plan_ref if new_plan is not None else None,
                quantity=quantity,
                proration=proration,
                tax=tax,
            )
        )
        if result.approval_url is not None:
            return await self._hold_for_approval(
                subscription.id,
                plan_id=new_plan.id if new_plan is not None else None,
                provider_price_id=plan_ref.provider_price_id if new_plan is not None else None,
                quantity=quantity,
                approval_url=result.approval_url,
            )
        return await self._mirror(subscription.id, result.snapshot, plan_id=target_plan.id, actor=actor)

    async def _hold_for_approval(
        self,
        subscription_id: uuid.UUID,
        *,
        plan_id: uuid.UUID | None,
        provider_price_id: str | None,
        quantity: int | None,
        approval_url: str,
    ) -> Subscription:
        """Keep a change the subscriber must approve at the provider as pending; the provider's
        event that shows it applied completes it (:meth:`apply_snapshot`)."""
        subscription = await self._subscriptions.get(subscription_id, for_update=True)
        subscription.pending_change = {
            "plan_id": str(plan_id) if plan_id is not None else None,
            "provider_price_id": provider_price_id,
            "quantity": quantity,
            "approval_url": approval_url,
        }
        await self._subscriptions.flush()
        await self.svc.commit()
        return subscription

    async def cancel(
        self, subscription: Subscription, *, at_period_end: bool = True, actor: str | None = None
    ) -> Subscription:
        """Cancel now, or at the end of the paid period (the default).

        A provider without a cancel at period end of its own that declares
        :attr:`~Capability.CANCELS_AT_PERIOD_END_LOCALLY` (PayPal) is not called: the flag is
        recorded here, and the background loop cancels at the provider once the period has ended
        (:meth:`~fastapi_cashier.billing.period_end.PeriodEndService.cancel_due`).
        """
        if subscription.status in ENDED:
            raise ConflictError(f"the subscription is already {subscription.status.value}")
        provider = self.svc.provider(subscription.provider)
        if at_period_end and cancels_at_period_end_locally(provider.capabilities):
            await self._provider_for(subscription, Capability.CANCELS_AT_PERIOD_END_LOCALLY)
            return await self._flag_local_cancel(subscription.id, True)
        mode = Capability.CANCEL_AT_PERIOD_END if at_period_end else Capability.CANCEL_NOW
        provider = await self._provider_for(subscription, mode)
        provider_id = subscription.provider_subscription_id
        assert provider_id is not None
        when = "end" if at_period_end else "now"
        key = f"subscription-cancel-{subscription.id}-{when}-{_version(subscription)}"
        await self.svc.commit()
        result = await provider.cancel_subscription(
            provider_id, at_period_end=at_period_end, idempotency_key=key
        )
        return await self._mirror(subscription.id, result.snapshot, actor=actor)

    async def _flag_local_cancel(self, subscription_id: uuid.UUID, cancel: bool) -> Subscription:
        """Record (or clear) a cancel at period end the library itself carries out."""
        subscription = await self._subscriptions.get(subscription_id, for_update=True)
        if subscription.status in ENDED:
            raise ConflictError(f"the subscription is already {subscription.status.value}")
        if cancel and subscription.current_period_end is None:
            raise ConflictError(
                "the subscription has no current period yet, so it has no period end to cancel at"
            )
        subscription.cancel_at_period_end = cancel
        subscription.cancel_started_at = None
        await self._subscriptions.flush()
        await self.svc.commit()
        logger.info(
            "subscription %s %s to cancel at its period end (%s)",
            subscription.id,
            "set" if cancel else "no longer set",
            subscription.current_period_end,
        )
        return subscription

    async def resume(self, subscription: Subscription, *, actor: str | None = None) -> Subscription:
        """Undo a cancel-at-period-end, or resume a paused subscription.

        A cancel at period end the library keeps itself is undone here without calling the
        provider (nothing was cancelled there yet).
        """
        if subscription.status in ENDED:
            raise ConflictError(f"the subscription is already {subscription.status.value}")
        if not (subscription.cancel_at_period_end or subscription.status is SubscriptionStatus.PAUSED):
            raise ConflictError("the subscription is neither paused nor set to cancel at the period end")
        provider = await self._provider_for(subscription, Capability.SUBSCRIPTIONS)
        if subscription.cancel_at_period_end and cancels_at_period_end_locally(provider.capabilities):
            subscription = await self._flag_local_cancel(subscription.id, False)
            if subscription.status is not SubscriptionStatus.PAUSED:
                return subscription
        provider_id = subscription.provider_subscription_id
        assert provider_id is not None
        key = f"subscription-resume-{subscription.id}-{_version(subscription)}"
        await self.svc.commit()
        result = await provider.resume_subscription(provider_id, idempotency_key=key)
        return await self._mirror(subscription.id, result.snapshot, actor=actor)

    async def pause(self, subscription: Subscription, *, actor: str | None = None) -> Subscription:
        """Pause collection: no invoices until resumed."""
        if subscription.status not in (SubscriptionStatus.ACTIVE, SubscriptionStatus.TRIALING):
            raise ConflictError(f"a {subscription.status.value} subscription cannot be paused")
        provider = await self._provider_for(subscription, Capability.PAUSE)
        provider_id = subscription.provider_subscription_id
        assert provider_id is not None
        key = f"subscription-pause-{subscription.id}-{_version(subscription)}"
        await self.svc.commit()
        result = await provider.pause_subscription(provider_id, idempotency_key=key)
        return await self._mirror(subscription.id, result.snapshot, actor=actor)

    async def update_payment_method_url(self, subscription: Subscription) -> str:
        """A link where the subscriber updates the subscription's payment method at the provider.

        For providers that give one per subscription (Lemon Squeezy's signed, expiring
        ``urls.update_payment_method``): an adapter offers it as an
        ``update_payment_method_url(provider_subscription_id)`` method.

        Raises:
            ConflictError: the subscription has ended.
            UnsupportedCapabilityError: the provider gives no such link (a 422 problem).
        """
        if subscription.status in ENDED:
            raise ConflictError(
                f"the payment method of a {subscription.status.value} subscription cannot be updated"
            )
        provider = self.svc.provider(subscription.provider)
        link = getattr(provider, "update_payment_method_url", None)
        provider_id = subscription.provider_subscription_id
        if link is None or not callable(link) or provider_id is None:
            unsupported(provider, "update_payment_method")
        # No transaction is held while the provider is asked.
        await self.svc.commit()
        url = await link(provider_id)
        return str(url)

    async def report_usage(
        self,
        subscription: Subscription,
        *,
        quantity: int,
        idempotency_key: str,
        recorded_at: datetime | None = None,
    ) -> tuple[UsageRecord, bool]:
        """Record metered usage once per ``idempotency_key``; ``(record, created)``.

        The record is committed before the provider hears of it, keyed by the record's id, so a
        retry after a crash reports it once.

        Raises:
            ValidationError: not a metered plan, a bad quantity or key.
            ConflictError: the subscription has ended.
        """
        if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 0:
            raise ValidationError("quantity must be a non-negative integer", field="quantity")
        if not idempotency_key or len(idempotency_key) > 255:
            raise ValidationError("idempotency_key must be 1 to 255 characters", field="idempotency_key")
        if subscription.status in ENDED:
            raise ConflictError(f"usage cannot be reported on a {subscription.status.value} subscription")
        plan = await PlanRepository(session=self.session).get(subscription.plan_id)
        if plan.pricing_model is not PricingModel.METERED:
            raise ValidationError("usage can only be reported for a metered plan", field="quantity")
        provider = await self._provider_for(subscription, Capability.METERED_USAGE)
        usage = UsageRecordRepository(session=self.session)
        existing = await usage.first(
            UsageRecord.subscription_id == subscription.id, UsageRecord.idempotency_key == idempotency_key
        )
        if existing is not None:
            if existing.reported_at is None and existing.provider_fault:
                await self._resend_usage(subscription, existing, provider)
            return existing, False
        await self._check_storable_usage(subscription, plan, quantity)
        record = UsageRecord(
            subscription_id=subscription.id,
            quantity=quantity,
            idempotency_key=idempotency_key,
            recorded_at=recorded_at or now(),
        )
        try:
            await usage.add(record)
        except ConflictError:
            winner = await usage.first(
                UsageRecord.subscription_id == subscription.id, UsageRecord.idempotency_key == idempotency_key
            )
            if winner is None:
                raise
            return winner, False
        await self.svc.commit()
        await self._send_usage(subscription, record, provider, resent=False)
        return record, True

    async def resume_unreported_usage(
        self, *, older_than: timedelta = timedelta(minutes=1), limit: int = 50
    ) -> int:
        """Send again the usage reports a retriable provider fault left unconfirmed, when nobody
        repeats their key: the provider settles a lost answer, so nothing is counted twice.

        Run by the router's background loop (like refunds left pending); each report is claimed
        by a conditional update first, so processes running side by side never send one twice.

        Returns:
            How many reports the provider confirmed.
        """
        cutoff = now() - older_than
        due = (
            await self.session.scalars(
                sa.select(UsageRecord)
                .where(
                    UsageRecord.reported_at.is_(None),
                    UsageRecord.provider_fault.is_(True),
                    UsageRecord.updated_at <= cutoff,
                )
                .order_by(UsageRecord.updated_at)
                .limit(limit)
            )
        ).all()
        await self.svc.commit()
        confirmed = 0
        for record in due:
            subscription = await self._subscriptions.get(record.subscription_id)
            try:
                provider = await self._provider_for(subscription, Capability.METERED_USAGE)
                await self._resend_usage(subscription, record, provider)
            except CashierError as exc:
                await self.svc.rollback()
                logger.warning("usage report %s is still unconfirmed: %s", record.id, exc.message)
                continue
            confirmed += record.reported_at is not None
        return confirmed

    async def _resend_usage(
        self, subscription: Subscription, record: UsageRecord, provider: RetryingProvider
    ) -> None:
        """Send again a report a retriable fault left unconfirmed, claimed first so that two
        repeats of it never send it twice at once (the provider settles a lost answer)."""
        claimed = await self.session.execute(
            sa.update(UsageRecord)
            .where(
                UsageRecord.id == record.id,
                UsageRecord.reported_at.is_(None),
                UsageRecord.provider_fault.is_(True),
            )
            .values(provider_fault=False)
            .execution_options(synchronize_session=False)
        )
        await self.svc.commit()
        if claimed.rowcount == 1:  # type: ignore[attr-defined]
            await self._send_usage(subscription, record, provider, resent=True)

    async def _send_usage(
        self, subscription: Subscription, record: UsageRecord, provider: RetryingProvider, *, resent: bool
    ) -> None:
        """Report a committed usage record, with the subscription's usage ledger; mark it confirmed.

        A retriable fault leaves it unconfirmed with ``provider_fault`` set (a repeat with the same
        key resends it); a refusal of a first attempt removes it, since the provider counted nothing.
        """
        provider_id = subscription.provider_subscription_id
        assert provider_id is not None
        totals = await self.session.execute(
            sa.select(
                UsageRecord.reported_at.is_(None), sa.func.coalesce(sa.func.sum(UsageRecord.quantity), 0)
            )
            .where(UsageRecord.subscription_id == subscription.id, UsageRecord.id != record.id)
            .group_by(UsageRecord.reported_at.is_(None))
        )
        ledger = {bool(unreported): int(total) for unreported, total in totals.all()}
        report = UsageReport(
            subscription_id=subscription.id,
            provider_subscription_id=provider_id,
            quantity=record.quantity,
            idempotency_key=f"usage-{record.id}",
            recorded_at=record.recorded_at,
            reported_before=ledger.get(False, 0),
            unreported_before=ledger.get(True, 0),
            resent=resent,
        )
        # End the read's transaction: no lock is held while the provider is asked.
        await self.svc.commit()
        try:
            await provider.report_usage(report)
        except ProviderError as exc:
            await self.svc.rollback()
            change = sa.update(UsageRecord).where(UsageRecord.id == record.id)
            if exc.retriable:
                await self.session.execute(change.values(provider_fault=True))
            elif not resent:
                # Refused at the first attempt: the provider counted nothing; the key may be used again.
                await self.session.execute(sa.delete(UsageRecord).where(UsageRecord.id == record.id))
            await self.svc.commit()
            raise
        record.reported_at = now()
        record.provider_fault = False
        await self.session.execute(
            sa.update(UsageRecord)
            .where(UsageRecord.id == record.id)
            .values(reported_at=record.reported_at, provider_fault=False)
            .execution_options(synchronize_session=False)
        )
        await self.svc.commit()

    async def _check_storable_usage(self, subscription: Subscription, plan: Plan, quantity: int) -> None:
        """Refuse usage that would make the period's metered total too large to store.

        The provider bills the period's usage at renewal; an invoice the database cannot store
        would fail that renewal's events for ever. The subscription row is locked first, so
        concurrent reports are counted one after another. Counted in the period: records
        recorded or reported since it began (both, so a record back-dated into an earlier
        period still counts where the provider bills it).

        Raises:
            ValidationError: naming ``quantity``.
        """
        await self._subscriptions.get(subscription.id, for_update=True)
        in_period = UsageRecord.subscription_id == subscription.id
        if subscription.current_period_start is not None:
            start = subscription.current_period_start
            in_period = sa.and_(
                in_period, sa.or_(UsageRecord.recorded_at >= start, UsageRecord.created_at >= start)
            )
        counted = await self.session.scalar(
            sa.select(sa.func.coalesce(sa.func.sum(UsageRecord.quantity), 0)).where(in_period)
        )
        total = int(counted or 0) + quantity
        try:
            storable_period_total(
                spec_for_plan(plan), quantity=subscription.quantity, usage=total, field="quantity"
            )
        except ValidationError as exc:
            raise ValidationError(
                f"{quantity} more units would bring the period's usage to {total}: {exc.message}",
                field="quantity",
                details={**exc.details, "period_usage": str(total)},
            ) from None

    async def active_plan(self, plan_id: uuid.UUID) -> Plan:
        """An active plan of an active product, or ``ValidationError`` naming ``plan_id``."""
        plan = await PlanRepository(session=self.session).get_or_none(plan_id)
        product = await ProductRepository(session=self.session).get_or_none(plan.product_id) if plan else None
        if plan is None or not plan.active or product is None or not product.active:
            raise ValidationError(f"plan {plan_id} is not an active plan", field="plan_id")
        return plan

    async def _mirror(
        self,
        subscription_id: uuid.UUID,
        snapshot: SubscriptionSnapshot,
        *,
        plan_id: uuid.UUID | None = None,
        actor: str | None = None,
    ) -> Subscription:
        """Apply the provider's answer to an API call (its webhook may already have)."""
        subscription = await self._subscriptions.get(subscription_id, for_update=True)
        await self.apply_snapshot(subscription, snapshot, plan_id=plan_id, cause=ChangeCause.API, actor=actor)
        await self.svc.commit()
        return subscription

    async def apply_snapshot(
        self,
        subscription: Subscription,
        snapshot: SubscriptionSnapshot,
        *,
        cause: ChangeCause,
        plan_id: uuid.UUID | None = None,
        actor: str | None = None,
        provider_event_id: str | None = None,
        reason: str | None = None,
    ) -> str | None:
        """Mirror a provider snapshot onto the row; the reason when its status move is refused.

        A status move the machine refuses leaves the row untouched. ``reason`` goes into the
        audit row of a status move.
        """
        snapshot = self.with_local_cancel(subscription, snapshot)
        if snapshot.status is not subscription.status and not SUBSCRIPTION_MACHINE.can(
            subscription.status, snapshot.status
        ):
            return f"a subscription cannot move from {subscription.status.value} to {snapshot.status.value}"
        previous_start = subscription.current_period_start
        plan_id = self._confirmed_change(subscription, snapshot) or plan_id
        if plan_id is not None:
            subscription.plan_id = plan_id
        subscription.quantity = snapshot.quantity
        subscription.current_period_start = snapshot.current_period_start or await self._start_before(
            subscription.plan_id, snapshot.current_period_end
        )
        subscription.current_period_end = snapshot.current_period_end
        subscription.trial_start = snapshot.trial_start
        subscription.trial_end = snapshot.trial_end
        subscription.cancel_at_period_end = snapshot.cancel_at_period_end
        subscription.canceled_at = snapshot.canceled_at
        subscription.ended_at = snapshot.ended_at
        subscription.paused = snapshot.paused
        await transition(
            self.svc,
            "subscription",
            subscription,
            SUBSCRIPTION_MACHINE,
            snapshot.status,
            cause=cause,
            actor=actor,
            provider_event_id=provider_event_id,
            reason=reason,
            strict=False,
        )
        await self._subscriptions.flush()
        if subscription.current_period_start != previous_start:
            await self._period_started(subscription)
        return None

    async def _start_before(self, plan_id: uuid.UUID, period_end: datetime | None) -> datetime | None:
        """The start of a period the provider reports only the end of (Lemon Squeezy): one of the
        plan's intervals before it. The same end always gives the same start, so a period's
        credits are granted once however often it is reported."""
        if period_end is None:
            return None
        plan = await PlanRepository(session=self.session).get(plan_id)
        if plan.interval is BillingInterval.ONE_TIME:
            return None
        return add_interval(period_end, plan.interval, -plan.interval_count)

    def with_local_cancel(
        self, subscription: Subscription, snapshot: SubscriptionSnapshot
    ) -> SubscriptionSnapshot:
        """``snapshot`` with the row's own ``cancel_at_period_end`` where the library keeps that
        flag for the provider (:func:`cancels_at_period_end_locally`), until the subscription ends."""
        provider = self.svc.providers.get(subscription.provider)
        if provider is None or not cancels_at_period_end_locally(provider.capabilities):
            return snapshot
        keep = subscription.cancel_at_period_end and snapshot.status not in ENDED
        if snapshot.cancel_at_period_end is keep:
            return snapshot
        return dataclasses.replace(snapshot, cancel_at_period_end=keep)

    @staticmethod
    def _confirmed_change(subscription: Subscription, snapshot: SubscriptionSnapshot) -> uuid.UUID | None:
        """Clear a pending change the snapshot shows applied; its plan, if it changed the plan."""
        pending = subscription.pending_change
        if not pending:
            return None
        quantity, price = pending.get("quantity"), pending.get("provider_price_id")
        if (quantity is not None and snapshot.quantity != quantity) or (
            price is not None and snapshot.provider_price_id != price
        ):
            return None
        subscription.pending_change = None
        plan_id = pending.get("plan_id")
        return uuid.UUID(plan_id) if plan_id else None

    async def _period_started(self, subscription: Subscription) -> None:
        """Grant the plan's per-period credits when a new entitled period starts."""
        if subscription.status not in (SubscriptionStatus.TRIALING, SubscriptionStatus.ACTIVE):
            return
        if subscription.current_period_start is None or subscription.current_period_end is None:
            return
        plan = await PlanRepository(session=self.session).get(subscription.plan_id)
        await self.svc.credits.grant_for_period(
            subscription, plan.features, subscription.current_period_start, subscription.current_period_end
        )


def _version(subscription: Subscription) -> str:
    stamp = subscription.updated_at.isoformat() if subscription.updated_at else ""
    return hashlib.sha256(stamp.encode()).hexdigest()[:16]


def _change_key(
    subscription: Subscription, plan_id: uuid.UUID, quantity: int, proration: ProrationBehavior
) -> str:
    """The same requested change of the same subscription state gets the same provider key."""
    version = _version(subscription)
    return f"subscription-change-{subscription.id}-{plan_id.hex[:12]}-{quantity}-{proration.value}-{version}"
