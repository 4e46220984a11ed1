"""What the parts of the Lemon Squeezy adapter share: the client, the store, refusals, JSON:API bodies."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, Literal, TypeVar, cast

from ...errors import InvalidProviderRequestError
from ...statuses import ProrationBehavior
from ..base import Capability, PaymentProvider, PlanRef, unsupported
from ._client import LemonSqueezyClient, Resource
from ._errors import PROVIDER_NAME
from ._objects import attributes

__all__ = [
    "LemonSqueezyBase",
    "PauseMode",
    "document",
    "iso_time",
    "path_id",
    "refused",
    "relationship",
    "unlinked_plan",
]

PauseMode = Literal["void", "free"]
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Attempt:
    """A counting call (a refund, a usage report) sent once: ``path`` is the object whose total it
    adds ``amount`` to, ``baseline`` that total before. Lemon Squeezy keeps no id of the call, so
    its answer, when lost, is recovered from the total: ``baseline + amount`` reached means done."""

    path: str
    baseline: int
    amount: int


class Settled(Generic[T]):
    """The last ``size`` counting calls known to have reached Lemon Squeezy, by local id: what
    :meth:`~fastapi_cashier.providers.lemonsqueezy.LemonSqueezyProvider.lookup` answers for them."""

    def __init__(self, size: int = 4096) -> None:
        self._items: OrderedDict[str, T] = OrderedDict()
        self._size = size

    def add(self, local_id: str, item: T) -> None:
        self._items[local_id] = item
        self._items.move_to_end(local_id)
        while len(self._items) > self._size:
            self._items.popitem(last=False)

    def get(self, local_id: str) -> T | None:
        return self._items.get(local_id)


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
