"""Subscription changes at Stripe: plan and quantity, cancel, resume, pause, metered usage."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ...errors import InvalidProviderRequestError
from ...statuses import PricingModel, SubscriptionStatus
from ..base import Capability, SubscriptionChange, SubscriptionResult, UsageReport
from ._base import refused, unix_time
from ._catalog import METER_EVENT_KEY
from ._objects import item_price, object_id, subscription_item, subscription_snapshot
from ._tax_rates import TaxRatesMixin

if TYPE_CHECKING:
    from stripe.params import SubscriptionUpdateParams, SubscriptionUpdateParamsItem

__all__ = ["SubscriptionsMixin"]

_ENDED = frozenset({SubscriptionStatus.CANCELED, SubscriptionStatus.EXPIRED})


def _is_metered(price: dict[str, Any]) -> bool:
    recurring = price.get("recurring")
    return isinstance(recurring, dict) and recurring.get("usage_type") == "metered"


class SubscriptionsMixin(TaxRatesMixin):
    """``update_subscription``, ``cancel_subscription``, ``resume_subscription``,
    ``pause_subscription`` and ``report_usage``."""

    async def _subscription(self, provider_subscription_id: str) -> dict[str, Any]:
        with self._calling("read a subscription"):
            return self._json(await self._client.v1.subscriptions.retrieve_async(provider_subscription_id))

    async def _update(
        self, provider_subscription_id: str, params: SubscriptionUpdateParams, *, key: str, operation: str
    ) -> SubscriptionResult:
        with self._calling(operation):
            updated = await self._client.v1.subscriptions.update_async(
                provider_subscription_id, params, {"idempotency_key": key}
            )
            return SubscriptionResult(subscription_snapshot(self._json(updated)))

    async def update_subscription(self, change: SubscriptionChange) -> SubscriptionResult:
        """Move the subscription's item to another Price and/or quantity.

        Stripe prorates per ``change.proration`` (``create_prorations``, ``none`` or
        ``always_invoice``, Stripe's own ``proration_behavior`` values). A metered item takes
        no quantity.

        Raises:
            UnsupportedCapabilityError: Plan changes are switched off.
            InvalidProviderRequestError: Nothing to change, a quantity below 1, a plan without a
                synced price, or Stripe refused.
        """
        self._require(Capability.PLAN_CHANGE)
        if change.plan is None and change.quantity is None and change.tax is None:
            raise refused("give a plan and/or a quantity to change", field="plan")
        if change.quantity is not None and change.quantity < 1:
            raise refused("quantity must be at least 1", field="quantity")
        current = await self._subscription(change.provider_subscription_id)
        item = subscription_item(current)
        item_id = object_id(item)
        if item_id is None:
            raise refused(f"subscription {change.provider_subscription_id} has no item to change")
        entry: SubscriptionUpdateParamsItem = {"id": item_id}
        metered = _is_metered(dict(item_price(item)))
        if change.plan is not None:
            if change.plan.provider_price_id is None:
                raise refused(
                    f"plan {change.plan.id} has no Stripe price yet: sync the catalog", field="plan"
                )
            entry["price"] = change.plan.provider_price_id
            metered = change.plan.pricing_model is PricingModel.METERED
        if change.quantity is not None and not metered:
            entry["quantity"] = change.quantity
        if change.tax is not None and not getattr(self, "automatic_tax", False):
            entry["tax_rates"] = [await self._tax_rate_id(change.tax)]
        params: SubscriptionUpdateParams = {
            "items": [entry],
            "proration_behavior": change.proration.value,
            "metadata": {"subscription_id": str(change.subscription_id)},
        }
        return await self._update(
            change.provider_subscription_id,
            params,
            key=change.idempotency_key,
            operation="change a subscription",
        )

    async def cancel_subscription(
        self, provider_subscription_id: str, *, at_period_end: bool, idempotency_key: str
    ) -> SubscriptionResult:
        """Cancel at the period end (``cancel_at_period_end``), or now (no proration).

        Canceling now a subscription Stripe has already ended answers its ended state, so a
        retry after a lost response succeeds.
        """
        self._require(Capability.SUBSCRIPTIONS)
        self._require(Capability.CANCEL_AT_PERIOD_END if at_period_end else Capability.CANCEL_NOW)
        if at_period_end:
            return await self._update(
                provider_subscription_id,
                {"cancel_at_period_end": True},
                key=idempotency_key,
                operation="schedule a subscription's cancellation",
            )
        try:
            with self._calling("cancel a subscription"):
                canceled = await self._client.v1.subscriptions.cancel_async(
                    provider_subscription_id, options={"idempotency_key": idempotency_key}
                )
                return SubscriptionResult(subscription_snapshot(self._json(canceled)))
        except InvalidProviderRequestError:
            with self._calling("read a subscription"):
                snapshot = subscription_snapshot(await self._subscription(provider_subscription_id))
            if snapshot.status in _ENDED:
                return SubscriptionResult(snapshot)
            raise

    async def resume_subscription(
        self, provider_subscription_id: str, *, idempotency_key: str
    ) -> SubscriptionResult:
        """Undo a scheduled cancellation and/or paused collection; resume a ``paused`` subscription.

        Raises:
            InvalidProviderRequestError: Neither paused nor set to cancel, or Stripe refused.
        """
        self._require(Capability.SUBSCRIPTIONS)
        current = await self._subscription(provider_subscription_id)
        if current.get("status") == "paused":
            with self._calling("resume a subscription"):
                resumed = await self._client.v1.subscriptions.resume_async(
                    provider_subscription_id, options={"idempotency_key": idempotency_key}
                )
                return SubscriptionResult(subscription_snapshot(self._json(resumed)))
        params: SubscriptionUpdateParams = {}
        if current.get("pause_collection"):
            params["pause_collection"] = ""
        if current.get("cancel_at_period_end"):
            params["cancel_at_period_end"] = False
        elif current.get("cancel_at") is not None:
            params["cancel_at"] = ""
        if not params:
            raise refused(
                f"subscription {provider_subscription_id} is neither paused nor set to cancel: "
                "nothing to resume"
            )
        return await self._update(
            provider_subscription_id, params, key=idempotency_key, operation="resume a subscription"
        )

    async def pause_subscription(
        self, provider_subscription_id: str, *, idempotency_key: str
    ) -> SubscriptionResult:
        """Pause collection: invoices Stripe would raise meanwhile are voided."""
        self._require(Capability.PAUSE)
        return await self._update(
            provider_subscription_id,
            {"pause_collection": {"behavior": "void"}},
            key=idempotency_key,
            operation="pause a subscription",
        )

    async def report_usage(self, report: UsageReport) -> None:
        """Send a Billing Meter event for the subscription's metered Price.

        The event's ``identifier`` is the report's idempotency key, so Stripe counts a repeated
        report once; the value is summed per customer by the plan's meter.

        Raises:
            UnsupportedCapabilityError: Metered usage is switched off.
            InvalidProviderRequestError: A negative quantity, a subscription without a metered
                price, or Stripe refused.
        """
        self._require(Capability.METERED_USAGE)
        if report.quantity < 0:
            raise refused("usage quantity must be at least 0", field="quantity")
        subscription = await self._subscription(report.provider_subscription_id)
        prices = [dict(item_price(item)) for item in subscription.get("items", {}).get("data", [])]
        metered = next((price for price in prices if _is_metered(price)), None)
        customer = object_id(subscription.get("customer"))
        if metered is None or customer is None:
            raise refused(f"subscription {report.provider_subscription_id} has no metered price")
        event_name = (metered.get("metadata") or {}).get(METER_EVENT_KEY)
        if not event_name:
            meter_id = metered["recurring"].get("meter")
            if not meter_id:
                raise refused(f"price {metered.get('id')} is metered without a Billing Meter")
            with self._calling("read a billing meter"):
                event_name = (await self._client.v1.billing.meters.retrieve_async(meter_id)).event_name
        with self._calling("report usage"):
            await self._client.v1.billing.meter_events.create_async(
                {
                    "event_name": event_name,
                    "payload": {"stripe_customer_id": customer, "value": str(report.quantity)},
                    "identifier": report.idempotency_key,
                    "timestamp": unix_time(report.recorded_at),
                },
                {"idempotency_key": report.idempotency_key},
            )
