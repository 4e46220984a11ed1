"""The catalog direction reversed: local plans linked to the variants that already exist at Lemon Squeezy.

Lemon Squeezy's API cannot create products or variants, so catalog sync changes nothing there. It
links each plan to a variant of the store:

1. by the explicit mapping ``plan_variants`` (plan id or plan name -> variant id), else
2. by matching: a published variant with the plan's billing interval and interval count (or no
   interval, for a one-time plan) whose name, or its product's name, or ``"<product> - <variant>"``,
   is the plan's name; failing that, the only such variant with the plan's price.

Every plan it cannot link is reported, and so is every linked plan whose price differs from its
variant's (the plan's price is what the library shows; the variant's is what Lemon Squeezy charges).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ...statuses import BillingInterval
from ..base import Capability, PlanRef
from ._base import LemonSqueezyBase, refused
from ._client import Resource
from ._objects import attributes

__all__ = ["CatalogLinks", "CatalogMixin", "PriceDifference"]


@dataclass(frozen=True, slots=True)
class PriceDifference:
    """A linked plan whose price is not its variant's (minor units of the plan's currency)."""

    plan_id: uuid.UUID
    plan_name: str
    variant_id: str
    plan_amount: int
    variant_amount: int


@dataclass(frozen=True, slots=True)
class CatalogLinks:
    """What linking plans to variants found: the links, the plans left unlinked, the prices that differ."""

    links: Mapping[uuid.UUID, str] = field(default_factory=dict)
    unmatched: tuple[PlanRef, ...] = ()
    price_differences: tuple[PriceDifference, ...] = ()


class CatalogMixin(LemonSqueezyBase):
    """Linking plans to variants."""

    plan_variants: Mapping[str, str]

    async def link_catalog(self, plans: list[PlanRef]) -> CatalogLinks:
        """Link ``plans`` to the store's variants; nothing is changed at Lemon Squeezy."""
        self._require(Capability.CATALOG_SYNC)
        operation = "list the store's products and variants"
        products = {
            str(product["id"]): str(attributes(product).get("name") or "")
            async for product in self._client.iterate(
                "products", operation=operation, filters={"store_id": self.store_id}
            )
        }
        variants = [
            variant
            async for variant in self._client.iterate("variants", operation=operation)
            if str(attributes(variant).get("product_id")) in products
        ]
        by_id = {str(variant["id"]): variant for variant in variants}
        links: dict[uuid.UUID, str] = {}
        unmatched: list[PlanRef] = []
        differences: list[PriceDifference] = []
        for plan in plans:
            variant = self._explicit(plan, by_id) or _match(plan, variants, products)
            if variant is None:
                unmatched.append(plan)
                continue
            variant_id = str(variant["id"])
            links[plan.id] = variant_id
            price = attributes(variant).get("price")
            if isinstance(price, int) and not isinstance(price, bool) and price != plan.unit_amount.amount:
                differences.append(
                    PriceDifference(plan.id, plan.name, variant_id, plan.unit_amount.amount, price)
                )
        return CatalogLinks(links, tuple(unmatched), tuple(differences))

    async def sync_catalog(self, plans: list[PlanRef]) -> Mapping[uuid.UUID, str]:
        """Plan id -> variant id for every plan (see :meth:`link_catalog`).

        Raises:
            InvalidProviderRequestError: Some plans match no variant; ``details`` names them.
        """
        found = await self.link_catalog(plans)
        if found.unmatched:
            names = ", ".join(repr(plan.name) for plan in found.unmatched)
            raise refused(
                f"no Lemon Squeezy variant matches the plan(s) {names}: create the variants in the Lemon "
                "Squeezy dashboard (the API cannot), or map them in PAYMENTS_LEMONSQUEEZY__PLAN_VARIANTS",
                plan_ids=[str(plan.id) for plan in found.unmatched],
            )
        return found.links

    def _explicit(self, plan: PlanRef, variants: Mapping[str, Resource]) -> Resource | None:
        wanted = self.plan_variants.get(str(plan.id)) or self.plan_variants.get(plan.name)
        if wanted is None:
            return None
        variant = variants.get(wanted)
        if variant is None:
            raise refused(
                f"plan {plan.name!r} is mapped to variant {wanted}, which is not in store {self.store_id}",
                plan_id=str(plan.id),
                variant_id=wanted,
            )
        return variant


def _same_interval(plan: PlanRef, attrs: Mapping[str, Any]) -> bool:
    if plan.interval is BillingInterval.ONE_TIME:
        return not attrs.get("is_subscription")
    return (
        bool(attrs.get("is_subscription"))
        and attrs.get("interval") == plan.interval.value
        and (attrs.get("interval_count") or 1) == plan.interval_count
    )


def _names(attrs: Mapping[str, Any], products: Mapping[str, str]) -> set[str]:
    variant = str(attrs.get("name") or "").strip().casefold()
    product = products.get(str(attrs.get("product_id")), "").strip().casefold()
    return {name for name in (variant, product, f"{product} - {variant}") if name and name != "default"}


def _match(plan: PlanRef, variants: list[Resource], products: Mapping[str, str]) -> Resource | None:
    candidates = [
        variant
        for variant in variants
        if attributes(variant).get("status") == "published" and _same_interval(plan, attributes(variant))
    ]
    wanted = plan.name.strip().casefold()
    named = [variant for variant in candidates if wanted in _names(attributes(variant), products)]
    if len(named) == 1:
        return named[0]
    priced = [
        variant
        for variant in (named or candidates)
        if attributes(variant).get("price") == plan.unit_amount.amount
    ]
    return priced[0] if len(priced) == 1 else None
