"""``svc.pricing``: what a plan costs for a quantity and usage, before anything is bought."""

from __future__ import annotations

import uuid

from ..db.model_repositories import PlanRepository
from ..db.models import Plan
from ..pricing import PricePreview, PriceSpec, Tier, price
from ._base import DomainService

__all__ = ["PricingService", "spec_for_plan"]


def spec_for_plan(plan: Plan) -> PriceSpec:
    """The pricing of a stored plan, for :func:`~fastapi_cashier.pricing.price`."""
    return PriceSpec(
        pricing_model=plan.pricing_model,
        currency=plan.currency,
        unit_amount=plan.unit_amount,
        tiers=tuple(Tier(tier.up_to, tier.unit_amount, tier.flat_amount) for tier in plan.tiers),
    )


class PricingService(DomainService):
    """Price previews in exact minor units."""

    async def preview(self, plan: Plan | uuid.UUID, *, quantity: int = 1, usage: int = 0) -> PricePreview:
        """The price of one period of ``plan`` for ``quantity`` seats and ``usage`` metered units.

        Raises:
            NotFoundError: no such plan.
            ValidationError: a negative quantity or usage.
        """
        if not isinstance(plan, Plan):
            plan = await PlanRepository(session=self.session).get(plan)
        return price(spec_for_plan(plan), quantity=quantity, usage=usage)
