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
  carry no custom data, so a report whose answer was lost is settled by the sum of the item's
  usage records (``GET /v1/usage-records?filter[subscription_item_id]=``) against the usage the
  library has confirmed for the subscription (the report's ledger, read from its database).
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
)
from ._base import (
    LemonSqueezyBase,
    SentCalls,
    UnsettledError,
    document,
    path_id,
    refused,
    relationship,
    settled,
    unlinked_plan,
)
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

    _usage_sent: SentCalls

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
        """Add ``quantity`` to the subscription item's usage, once per ``idempotency_key``.

        A retry of a report whose answer was lost (one this instance sent, or one the caller
        marks ``resent``) is settled from the item's usage records at Lemon Squeezy and the
        library's ledger in the report (:func:`~._base.settled`), and sent again only when it
        never arrived.

        Raises:
            InvalidProviderRequestError: No subscription item; a retry without the ledger.
            UnsettledError: Other reports of the subscription are unconfirmed too, so the
                records cannot tell yet (retriable: nothing was sent).
        """
        self._require(Capability.METERED_USAGE)
        key = report.idempotency_key
        operation = "report usage"
        item_id = await self._item_id(path_id(report.provider_subscription_id), operation)
        if report.resent or key in self._usage_sent:
            if report.reported_before is None:
                raise refused(
                    f"usage report {key} may have reached Lemon Squeezy already; settling it needs the "
                    "library's record of the subscription's usage (reported_before)",
                    idempotency_key=key,
                )
            total = await self.usage_total(item_id)
            verdict = settled(total, report.reported_before, report.unreported_before, report.quantity)
            if verdict is True:
                self._usage_sent.discard(key)
                return
            if verdict is None:
                raise UnsettledError(
                    f"Lemon Squeezy counts {total} for subscription item {item_id}; with other usage "
                    f"reports unconfirmed, whether report {key} of {report.quantity} is among them "
                    "cannot be told yet",
                    provider=self.name,
                    details={"idempotency_key": key, "usage_total": total},
                )
        self._usage_sent.add(key)
        try:
            await self._client.post(
                "usage-records",
                document(
                    "usage-records",
                    {"quantity": report.quantity, "action": "increment"},
                    relationships={"subscription-item": relationship("subscription-items", item_id)},
                ),
                operation=operation,
            )
        except ProviderError as exc:
            if not exc.retriable:
                self._usage_sent.discard(key)
            raise
        self._usage_sent.discard(key)

    async def usage_total(self, item_id: str) -> int:
        """The quantity of every usage record of a subscription item (``GET /v1/usage-records``)."""
        total = 0
        async for record in self._client.iterate(
            "usage-records",
            operation=f"read the usage records of subscription item {item_id}",
            filters={"subscription_item_id": path_id(item_id)},
        ):
            attrs = attributes(record)
            if attrs.get("action", "increment") == "increment":
                total += integer(attrs, "quantity", default=0)
        return total

    async def _result(self, subscription_id: str, operation: str) -> SubscriptionResult:
        return SubscriptionResult(subscription_snapshot(await self._subscription(subscription_id, operation)))
