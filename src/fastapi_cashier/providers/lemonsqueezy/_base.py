"""What the parts of the Lemon Squeezy adapter share: the client, the store, refusals, JSON:API bodies."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal, cast

from ...errors import ErrorCode, InvalidProviderRequestError, ProviderError
from ...statuses import ProrationBehavior
from ..base import Capability, PaymentProvider, PlanRef, unsupported
from ._client import LemonSqueezyClient, Resource
from ._errors import PROVIDER_NAME
from ._objects import attributes

__all__ = [
    "LemonSqueezyBase",
    "PauseMode",
    "SentCalls",
    "UnsettledError",
    "document",
    "iso_time",
    "path_id",
    "refused",
    "relationship",
    "settled",
    "unlinked_plan",
]

PauseMode = Literal["void", "free"]


class SentCalls:
    """The local ids of the last ``size`` counting calls (refunds, usage reports) this adapter
    instance sent: a retry of one of them settles first (:func:`settled`). Only *whether* to
    settle is remembered here; *how* is decided from what Lemon Squeezy reports, so a fresh
    instance (another process, a restart) settles as well when the caller says ``resent``."""

    def __init__(self, size: int = 4096) -> None:
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._size = size

    def add(self, local_id: str) -> None:
        self._ids[local_id] = None
        self._ids.move_to_end(local_id)
        while len(self._ids) > self._size:
            self._ids.popitem(last=False)

    def discard(self, local_id: str) -> None:
        self._ids.pop(local_id, None)

    def __contains__(self, local_id: object) -> bool:
        return local_id in self._ids


class UnsettledError(ProviderError):
    """Lemon Squeezy's totals cannot tell yet whether an earlier attempt of a counting call
    reached it (other calls of the same object are unconfirmed too): nothing is sent, and the
    call is retried later, when those are settled."""

    code = ErrorCode.PROVIDER_UNAVAILABLE
    retriable = True


def settled(provider_total: int, recorded_before: int, unconfirmed_before: int, amount: int) -> bool | None:
    """Whether a counting call of ``amount`` whose answer was lost reached Lemon Squeezy.

    ``provider_total`` is what Lemon Squeezy counts for the object now (an order's
    ``refunded_amount``, the sum of a subscription item's usage records);
    ``recorded_before`` what the library has recorded as done there, not counting this call;
    ``unconfirmed_before`` its other calls on the object that have no answer yet. Every call the
    library confirmed is in ``provider_total``, so the excess is this call (when it arrived), the
    unconfirmed ones that arrived, and changes made outside the library.

    Returns:
        ``False`` when the excess is smaller than ``amount`` (the call never arrived: sending it
        is safe), ``True`` when it covers ``amount`` even if every other unconfirmed call arrived
        too, ``None`` when it cannot tell.
    """
    excess = provider_total - recorded_before
    if excess < amount:
        return False
    if excess - unconfirmed_before >= amount:
        return True
    return None


def refused(message: str, **details: Any) -> InvalidProviderRequestError:
    """A request the adapter refuses before calling Lemon Squeezy."""
    return InvalidProviderRequestError(message, provider=PROVIDER_NAME, details=details)


def unlinked_plan(plan: PlanRef | None) -> InvalidProviderRequestError:
    """A plan that catalog sync has not linked to a Lemon Squeezy variant."""
    return refused(
        f"plan {plan.name if plan else '?'!r} is not linked to a Lemon Squeezy variant: run "
        "`fastapi-cashier catalog sync --provider lemonsqueezy`",
        plan_id=str(plan.id) if plan else None,
    )


def iso_time(moment: datetime) -> str:
    """An aware datetime in the ISO 8601 form Lemon Squeezy takes (a naive one is taken as UTC)."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def relationship(type_: str, id_: str) -> dict[str, Any]:
    """A to-one JSON:API relationship."""
    return {"data": {"type": type_, "id": id_}}


def document(
    type_: str,
    attrs: Mapping[str, Any],
    *,
    id_: str | None = None,
    relationships: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A JSON:API request document of one resource."""
    data: dict[str, Any] = {"type": type_, "attributes": dict(attrs)}
    if id_ is not None:
        data["id"] = id_
    if relationships:
        data["relationships"] = dict(relationships)
    return {"data": data}


class LemonSqueezyBase:
    """State and helpers of :class:`~fastapi_cashier.providers.lemonsqueezy.LemonSqueezyProvider`'s parts."""

    name: str = PROVIDER_NAME
    capabilities: frozenset[Capability]
    #: Lemon Squeezy takes no idempotency keys: retries settle by :meth:`lookup` first.
    idempotency_keys: bool = False
    proration_behaviors: frozenset[ProrationBehavior] = frozenset(ProrationBehavior)
    store_id: str
    pause_mode: PauseMode
    _client: LemonSqueezyClient

    @property
    def client(self) -> LemonSqueezyClient:
        """The JSON:API client, for Lemon Squeezy calls the protocol has no method for."""
        return self._client

    def _require(self, capability: Capability) -> None:
        if capability not in self.capabilities:
            unsupported(cast("PaymentProvider", self), capability)

    async def _subscription(self, provider_subscription_id: str, operation: str) -> Resource:
        return await self._client.get(
            f"subscriptions/{path_id(provider_subscription_id)}", operation=operation
        )

    async def _item_id(self, provider_subscription_id: str, operation: str) -> str:
        """The subscription's item (Lemon Squeezy subscriptions have exactly one)."""
        subscription = await self._subscription(provider_subscription_id, operation)
        item = attributes(subscription).get("first_subscription_item")
        if not isinstance(item, dict) or item.get("id") is None:
            raise refused(
                f"subscription {provider_subscription_id} has no subscription item (is it on a free trial?)",
                provider_subscription_id=provider_subscription_id,
            )
        return str(item["id"])


def path_id(value: str) -> str:
    """An id that is safe in a URL path: Lemon Squeezy ids are decimal integers."""
    if not value.isdigit():
        raise refused(f"{value!r} is not a Lemon Squeezy id", id=value)
    return value
