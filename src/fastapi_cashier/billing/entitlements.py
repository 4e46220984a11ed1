"""Entitlements: which plans, features and limits a customer's subscriptions give them.

A subscription entitles its customer while it is ``trialing``, ``active`` or ``past_due`` (the
grace period while the provider retries a failed renewal). Paused, incomplete, canceled and
expired subscriptions entitle to nothing.

The features of every entitling plan are merged:

* numeric limits (``requests_per_minute``, ``credits_per_period`` ...): the largest wins;
* flags (``api_access``): ``True`` wins over ``False``;
* text values: the value of the most recently created subscription wins;
* a key that is a limit on one plan and a flag or text on another: the limit wins; a true flag
  beats a text, a text beats a false flag.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field

import sqlalchemy as sa

from ..db.models import Plan, PlanFeature, Subscription
from ..errors import NotEntitledError, SubscriptionRequiredError
from ..statuses import SubscriptionStatus
from ._base import DomainService

__all__ = [
    "ENTITLED_STATUSES",
    "EntitledSubscription",
    "EntitlementService",
    "Entitlements",
    "FeatureValue",
    "merge_features",
]

#: Subscription statuses that entitle the customer to their plan's features.
ENTITLED_STATUSES = frozenset(
    {SubscriptionStatus.TRIALING, SubscriptionStatus.ACTIVE, SubscriptionStatus.PAST_DUE}
)

#: A feature as entitlements show it: a flag, a numeric limit or a text value.
FeatureValue = bool | int | str

PlanRef = uuid.UUID | str


@dataclass(frozen=True, slots=True)
class EntitledSubscription:
    """One subscription that entitles the customer."""

    id: uuid.UUID
    plan_id: uuid.UUID
    plan_name: str
    status: SubscriptionStatus


@dataclass(frozen=True, slots=True)
class Entitlements:
    """What a customer may use right now.

    Attributes:
        customer_id: Whose entitlements these are.
        subscriptions: The entitling subscriptions, newest first.
        plan_ids: The plans of those subscriptions.
        features: The merged features of those plans (see the module docstring).
    """

    customer_id: uuid.UUID
    subscriptions: list[EntitledSubscription] = field(default_factory=list)
    plan_ids: set[uuid.UUID] = field(default_factory=set)
    features: dict[str, FeatureValue] = field(default_factory=dict)

    @property
    def subscribed(self) -> bool:
        """Whether any subscription entitles the customer."""
        return bool(self.subscriptions)

    def has_feature(self, key: str) -> bool:
        """Whether ``key`` is granted: a true flag, a limit above zero, or a non-empty text."""
        value = self.features.get(key)
        if isinstance(value, bool):
            return value
        if isinstance(value, int):
            return value > 0
        return bool(value)

    def limit(self, key: str) -> int | None:
        """The numeric limit ``key``, or ``None`` when no entitling plan sets it as a number."""
        value = self.features.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        return None

    def includes_plan(self, plans: Iterable[PlanRef]) -> bool:
        """Whether an entitling subscription is to one of ``plans`` (ids, or plan names)."""
        ids, names = _split_plan_refs(plans)
        return any(sub.plan_id in ids or sub.plan_name in names for sub in self.subscriptions)


class EntitlementService(DomainService):
    """Entitlements derived from the customer's subscriptions and their plans' features."""

    async def for_customer(self, customer_id: uuid.UUID) -> Entitlements:
        """The customer's entitling subscriptions, their plans and the merged features."""
        stmt = (
            sa.select(Subscription, Plan)
            .join(Plan, Plan.id == Subscription.plan_id)
            .where(
                Subscription.customer_id == customer_id,
                Subscription.status.in_(sorted(ENTITLED_STATUSES)),
            )
            .order_by(Subscription.created_at.desc(), Subscription.id)
        )
        rows = (await self.session.execute(stmt)).all()
        subscriptions = [
            EntitledSubscription(id=sub.id, plan_id=plan.id, plan_name=plan.name, status=sub.status)
            for sub, plan in rows
        ]
        return Entitlements(
            customer_id=customer_id,
            subscriptions=subscriptions,
            plan_ids={sub.plan_id for sub in subscriptions},
            features=merge_features(plan.features for _sub, plan in rows),
        )

    async def has_feature(self, customer_id: uuid.UUID, key: str) -> bool:
        """Whether the customer's plans grant ``key`` (see :meth:`Entitlements.has_feature`)."""
        return (await self.for_customer(customer_id)).has_feature(key)

    async def limit(self, customer_id: uuid.UUID, key: str) -> int | None:
        """The customer's numeric limit ``key``; ``None`` when no plan sets it (no limit)."""
        return (await self.for_customer(customer_id)).limit(key)

    async def require_subscription(
        self, customer_id: uuid.UUID, plans: Collection[PlanRef] | None = None
    ) -> Entitlements:
        """The customer's entitlements, if a subscription entitles them (to one of ``plans``).

        Args:
            customer_id: The customer.
            plans: Plan ids or plan names, any of which will do; ``None`` or empty: any plan.

        Raises:
            SubscriptionRequiredError: no subscription entitles the customer (402).
            NotEntitledError: subscribed, but to none of ``plans`` (403). ``details`` of both:
                ``{"required": "subscription", "plans": [...], "subscribed": bool}``.
        """
        entitlements = await self.for_customer(customer_id)
        wanted = _plan_refs(plans)
        if entitlements.subscribed and (wanted is None or entitlements.includes_plan(wanted)):
            return entitlements
        names = [str(plan) for plan in wanted or ()]
        message = (
            f"a subscription to one of the plans {', '.join(names)} is required"
            if names
            else "an active subscription is required"
        )
        error = NotEntitledError if entitlements.subscribed else SubscriptionRequiredError
        raise error(
            message,
            details={"required": "subscription", "plans": names, "subscribed": entitlements.subscribed},
        )

    async def require_feature(self, customer_id: uuid.UUID, key: str) -> Entitlements:
        """The customer's entitlements, if their plans grant ``key``.

        Raises:
            SubscriptionRequiredError: no subscription entitles the customer (402).
            NotEntitledError: the plan lacks ``key`` (403). ``details`` of both:
                ``{"required_feature": key, "subscribed": bool}``.
        """
        entitlements = await self.for_customer(customer_id)
        if entitlements.has_feature(key):
            return entitlements
        error = NotEntitledError if entitlements.subscribed else SubscriptionRequiredError
        raise error(
            f"the feature {key!r} is not included in the customer's plan",
            details={"required_feature": key, "subscribed": entitlements.subscribed},
        )


def merge_features(plans_features: Iterable[Iterable[PlanFeature]]) -> dict[str, FeatureValue]:
    """Merge the features of several plans, the first plan given being the newest.

    Limits merge by maximum, flags by "true wins", text by the first (newest) value; a limit
    beats a flag or text for the same key.
    """
    merged: dict[str, FeatureValue] = {}
    for features in plans_features:
        for feature in features:
            merged[feature.key] = _merge(merged.get(feature.key), _value(feature))
    return dict(sorted(merged.items()))


def _value(feature: PlanFeature) -> FeatureValue:
    if feature.limit is not None:
        return int(feature.limit)
    if feature.value in ("true", "false"):
        return feature.value == "true"
    return feature.value or ""


def _merge(current: FeatureValue | None, new: FeatureValue) -> FeatureValue:
    if current is None:
        return new
    current_is_limit = isinstance(current, int) and not isinstance(current, bool)
    new_is_limit = isinstance(new, int) and not isinstance(new, bool)
    if current_is_limit or new_is_limit:
        if current_is_limit and new_is_limit:
            return max(int(current), int(new))
        return current if current_is_limit else new
    if isinstance(current, bool) or isinstance(new, bool):
        if isinstance(current, bool) and isinstance(new, bool):
            return current or new
        # A flag and a text: the flag, unless it is false.
        flag, text = (current, new) if isinstance(current, bool) else (new, current)
        return flag if flag else text
    return current  # text: the newest subscription's value was seen first


def _plan_refs(plans: Collection[PlanRef] | PlanRef | None) -> list[PlanRef] | None:
    if plans is None:
        return None
    if isinstance(plans, str | uuid.UUID):
        return [plans]  # one plan given bare; a str is not a collection of plan names
    return list(plans) or None


def _split_plan_refs(plans: Iterable[PlanRef]) -> tuple[set[uuid.UUID], set[str]]:
    ids: set[uuid.UUID] = set()
    names: set[str] = set()
    for plan in plans:
        if isinstance(plan, uuid.UUID):
            ids.add(plan)
            continue
        try:
            ids.add(uuid.UUID(plan))
        except ValueError:
            names.add(plan)
    return ids, names
