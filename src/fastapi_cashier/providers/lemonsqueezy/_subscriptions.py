"""Subscription changes at Lemon Squeezy: plan and quantity, cancel, resume, pause, usage.

* Plan change: ``PATCH /v1/subscriptions/{id}`` with ``variant_id``; quantity change:
  ``PATCH /v1/subscription-items/{id}`` with ``quantity``. The library's proration behaviours map
  onto Lemon Squeezy's options: ``create_prorations`` (prorated at the next renewal, Lemon
  Squeezy's default), ``always_invoice`` (``invoice_immediately``), ``none``
  (``disable_prorations``).
* Cancel: ``DELETE /v1/subscriptions/{id}``, which cancels at the end of the period (Lemon Squeezy
  has no immediate cancellation; asking for one is refused). Resume: ``cancelled: false`` and/or
  ``pause: null``. Pause: ``pause: {"mode": "void" | "free"}``, the mode a setting.
* Usage: ``POST /v1/usage-records`` (``action: increment``) on the subscription item. Usage records
  carry no custom data, so a report whose answer was lost is settled by the item's current usage:
  when it grew by the reported quantity since the first attempt, the record exists.
"""

from __future__ import annotations

from typing import Any

from ...errors import ProviderError
from ...statuses import ProrationBehavior
from ..base import (
    Capability,
    SubscriptionChange,
    SubscriptionResult,
    UsageReport,
    UsageSnapshot,
)
from ._base import Attempt, LemonSqueezyBase, Settled, document, path_id, relationship, unlinked_plan
from ._client import Resource
from ._objects import attributes, integer, subscription_snapshot

__all__ = ["PRORATION_OPTIONS", "SubscriptionsMixin"]

PRORATION_OPTIONS: dict[ProrationBehavior, dict[str, bool]] = {
    ProrationBehavior.CREATE_PRORATIONS: {},
    ProrationBehavior.ALWAYS_INVOICE: {"invoice_immediately": True},
    ProrationBehavior.NONE: {"disable_prorations": True},
}
"""Lemon Squeezy's attributes for each of the library's proration behaviours."""


class SubscriptionsMixin(LemonSqueezyBase):
    """Changes to subscriptions, and metered usage."""

    _usage_attempts: dict[str, Attempt]
    _usage_done: Settled[UsageSnapshot]

    async def update_subscription(self, change: SubscriptionChange) -> SubscriptionResult:
        """Move to another plan's variant and/or change the seat quantity."""
        self._require(Capability.PLAN_CHANGE)
        subscription_id = path_id(change.provider_subscription_id)
        options = PRORATION_OPTIONS[change.proration]
        if change.plan is not None:
            if not change.plan.provider_price_id:
                raise unlinked_plan(change.plan)
            await self._client.patch(
                f"subscriptions/{subscription_id}",
                document(
                    "subscriptions",
                    {"variant_id": int(path_id(change.plan.provider_price_id)), **options},
                    id_=subscription_id,
                ),
                operation="change the subscription's plan",
            )
        if change.quantity is not None:
            item_id = await self._item_id(subscription_id, "change the subscription's quantity")
            await self._client.patch(
                f"subscription-items/{item_id}",
                document("subscription-items", {"quantity": change.quantity, **options}, id_=item_id),
                operation="change the subscription's quantity",
            )
        return await self._result(subscription_id, "read the changed subscription")

    async def cancel_subscription(
        self, provider_subscription_id: str, *, at_period_end: bool, idempotency_key: str
    ) -> SubscriptionResult:
        """Cancel at the end of the period; Lemon Squeezy cannot end a subscription at once.

        Raises:
            UnsupportedCapabilityError: ``at_period_end=False`` (a 422 problem).
        """
        self._require(Capability.CANCEL_AT_PERIOD_END if at_period_end else Capability.CANCEL_NOW)
        subscription_id = path_id(provider_subscription_id)
        answer = await self._client.request(
            "DELETE", f"subscriptions/{subscription_id}", operation="cancel the subscription"
        )
        data = answer.get("data")
        if isinstance(data, dict):
            return SubscriptionResult(subscription_snapshot(data))
        return await self._result(subscription_id, "read the cancelled subscription")

    async def resume_subscription(
        self, provider_subscription_id: str, *, idempotency_key: str
    ) -> SubscriptionResult:
        """Undo a cancellation in its grace period, and/or end a pause."""
        subscription_id = path_id(provider_subscription_id)
        current = attributes(await self._subscription(subscription_id, "resume the subscription"))
        attrs: dict[str, Any] = {}
        if current.get("cancelled"):
            attrs["cancelled"] = False
        if current.get("pause") is not None:
            attrs["pause"] = None
        if not attrs:
            return await self._result(subscription_id, "read the subscription")
        updated = await self._client.patch(
            f"subscriptions/{subscription_id}",
            document("subscriptions", attrs, id_=subscription_id),
            operation="resume the subscription",
        )
        return SubscriptionResult(subscription_snapshot(updated))

    async def pause_subscription(
        self, provider_subscription_id: str, *, idempotency_key: str
    ) -> SubscriptionResult:
        """Pause payment collection, in the configured ``pause_mode``."""
        self._require(Capability.PAUSE)
        subscription_id = path_id(provider_subscription_id)
        updated = await self._client.patch(
            f"subscriptions/{subscription_id}",
            document("subscriptions", {"pause": {"mode": self.pause_mode}}, id_=subscription_id),
            operation="pause the subscription",
        )
        return SubscriptionResult(subscription_snapshot(updated))

    async def report_usage(self, report: UsageReport) -> None:
        """Add ``quantity`` to the subscription item's usage, once per ``idempotency_key``."""
        self._require(Capability.METERED_USAGE)
        key = report.idempotency_key
        if await self._settled_usage(key) is not None:
            return
        operation = "report usage"
        item_id = await self._item_id(path_id(report.provider_subscription_id), operation)
        self._usage_attempts[key] = Attempt(
            item_id, await self._current_usage(item_id, operation), report.quantity
        )

        async def lookup() -> Resource | None:
            settled = await self._settled_usage(key)
            return None if settled is None else {"type": "usage-records", "id": settled.provider_usage_id}

        try:
            await self._client.create(
                "usage-records",
                document(
                    "usage-records",
                    {"quantity": report.quantity, "action": "increment"},
                    relationships={"subscription-item": relationship("subscription-items", item_id)},
                ),
                operation=operation,
                lookup=lookup,
            )
        except ProviderError as exc:
            if not exc.retriable:
                self._usage_attempts.pop(key, None)
            raise
        if key in self._usage_attempts:
            del self._usage_attempts[key]
            self._usage_done.add(key, _recorded(item_id, report.quantity))

    async def _settled_usage(self, idempotency_key: str) -> UsageSnapshot | None:
        """The usage report ``idempotency_key`` when it reached Lemon Squeezy: recorded here, or
        sent here with its answer lost and the item's current usage since grown by its quantity
        (usage records carry no custom data)."""
        done = self._usage_done.get(idempotency_key)
        attempt = self._usage_attempts.get(idempotency_key)
        if done is not None or attempt is None:
            return done
        operation = f"look up usage report {idempotency_key}"
        if await self._current_usage(attempt.path, operation) < attempt.baseline + attempt.amount:
            return None
        del self._usage_attempts[idempotency_key]
        found = _recorded(attempt.path, attempt.amount)
        self._usage_done.add(idempotency_key, found)
        return found

    async def _current_usage(self, item_id: str, operation: str) -> int:
        answer = await self._client.request(
            "GET", f"subscription-items/{item_id}/current-usage", operation=operation
        )
        meta = answer.get("meta")
        return integer(meta if isinstance(meta, dict) else {}, "quantity", default=0)

    async def _result(self, subscription_id: str, operation: str) -> SubscriptionResult:
        return SubscriptionResult(subscription_snapshot(await self._subscription(subscription_id, operation)))


def _recorded(item_id: str, quantity: int) -> UsageSnapshot:
    return UsageSnapshot(provider_usage_id=f"subscription-items/{item_id}", quantity=quantity)
