"""Cancels at period end that the library carries out itself, for providers without one (PayPal).

A provider that declares :attr:`~fastapi_cashier.providers.base.Capability.CANCELS_AT_PERIOD_END_LOCALLY`
(and not ``cancel_at_period_end``) has no call to cancel at the end of the paid period. The
subscription service then only records ``cancel_at_period_end`` on the row, and
:meth:`PeriodEndService.cancel_due`, run by the router's background loop (and by
``fastapi-cashier subscriptions cancel-due``), cancels each such subscription at the provider
once its period has ended, exactly once:

* a conditional ``UPDATE ... SET cancel_started_at = now WHERE cancel_started_at IS NULL ...``
  claims the subscription in its own transaction, so of several workers (processes, or the loop
  and the CLI) exactly one calls the provider; the call runs outside any transaction;
* the provider's answer is mirrored through the status machine with a ``system`` audit row;
* a claim whose worker died before the answer was mirrored is taken again after
  :data:`CLAIM_LEASE` (cancelling an already cancelled subscription is harmless at the provider:
  the adapter reads it back instead of failing);
* a provider fault leaves the claim in place, so the cancel is retried after the lease, not on
  every pass of the loop.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta
from typing import Final

import sqlalchemy as sa

from ..db.model_repositories import SubscriptionRepository
from ..db.models import Subscription
from ..errors import ProviderError
from ..providers.base import cancels_at_period_end_locally
from ..statuses import ChangeCause
from ._base import DomainService, now
from .subscriptions import ENDED

__all__ = ["CLAIM_LEASE", "PeriodEndService"]

logger = logging.getLogger("fastapi_cashier")

#: How long a claimed period-end cancel may take before another worker takes it again.
CLAIM_LEASE: Final = timedelta(minutes=10)

_REASON: Final = "cancel at period end: the period ended and the library cancelled it at the provider"


class PeriodEndService(DomainService):
    """Carry out the cancels at period end the library keeps for providers without one."""

    def _local_providers(self) -> list[str]:
        return sorted(
            name
            for name, provider in self.svc.providers.items()
            if cancels_at_period_end_locally(provider.capabilities)
        )

    def _due(
        self, providers: list[str], moment: datetime, claimable_before: datetime
    ) -> sa.ColumnElement[bool]:
        return sa.and_(
            Subscription.provider.in_(providers),
            Subscription.cancel_at_period_end.is_(True),
            Subscription.status.not_in(list(ENDED)),
            Subscription.current_period_end <= moment,
            Subscription.provider_subscription_id.is_not(None),
            sa.or_(
                Subscription.cancel_started_at.is_(None),
                Subscription.cancel_started_at < claimable_before,
            ),
        )

    async def cancel_due(self, *, at: datetime | None = None, limit: int = 100) -> list[uuid.UUID]:
        """Cancel at the provider each subscription whose period has ended with
        ``cancel_at_period_end`` set by the library; the ids of those cancelled by this call.

        Call it outside a transaction (it commits as it goes). Safe to run in many processes at
        once: each subscription is claimed by one of them.

        Args:
            at: The time to compare period ends with; default: now.
            limit: At most this many subscriptions per call.
        """
        providers = self._local_providers()
        if not providers:
            return []
        moment = at or now()
        claimable_before = now() - CLAIM_LEASE
        due = await self.session.scalars(
            sa.select(Subscription.id)
            .where(self._due(providers, moment, claimable_before))
            .order_by(Subscription.current_period_end, Subscription.id)
            .limit(limit)
        )
        candidates = list(due)
        await self.svc.commit()
        cancelled: list[uuid.UUID] = []
        for subscription_id in candidates:
            if await self._cancel_one(subscription_id, providers, moment, claimable_before):
                cancelled.append(subscription_id)
        return cancelled

    async def _cancel_one(
        self, subscription_id: uuid.UUID, providers: list[str], moment: datetime, claimable_before: datetime
    ) -> bool:
        claimed = await self.session.execute(
            sa.update(Subscription)
            .where(Subscription.id == subscription_id, self._due(providers, moment, claimable_before))
            .values(cancel_started_at=now())
            .execution_options(synchronize_session=False)
        )
        await self.svc.commit()
        if getattr(claimed, "rowcount", 0) != 1:
            logger.info("subscription %s is cancelled, or being cancelled, elsewhere", subscription_id)
            return False
        subscription = await self.session.get(Subscription, subscription_id, populate_existing=True)
        assert subscription is not None
        assert subscription.provider_subscription_id is not None
        provider = self.svc.provider(subscription.provider)
        provider_id = subscription.provider_subscription_id
        period_end = subscription.current_period_end
        await self.svc.commit()
        try:
            result = await provider.cancel_subscription(
                provider_id,
                at_period_end=False,
                idempotency_key=f"subscription-cancel-{subscription_id}-period-end",
            )
        except ProviderError as exc:
            logger.warning(
                "cancelling subscription %s at its period end (%s) failed at %s: %s; tried again in %s",
                subscription_id,
                period_end,
                provider.name,
                exc.message,
                CLAIM_LEASE,
            )
            await self.svc.rollback()
            return False
        subscriptions = SubscriptionRepository(session=self.session)
        subscription = await subscriptions.get(subscription_id, for_update=True)
        refused = await self.svc.subscriptions.apply_snapshot(
            subscription, result.snapshot, cause=ChangeCause.SYSTEM, reason=_REASON
        )
        if refused is not None:
            logger.warning("subscription %s cancelled at %s, but %s", subscription_id, provider.name, refused)
        await self.svc.commit()
        logger.info("subscription %s cancelled at its period end (%s)", subscription_id, period_end)
        return True
