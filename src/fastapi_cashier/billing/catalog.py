"""The catalog: products and plans, checked before they are stored, and their prices at providers.

The library is the source of truth for the catalog; providers get copies. A plan's price never
changes under the subscriptions, checkout sessions or invoice lines that refer to it: once
anything refers to a plan, only its name, ``active`` flag, trial and features may change, and it
is deactivated instead of deleted. A changed price is a new price at the provider, the old one
archived (see :meth:`CatalogService.sync`).

The rules for each field are in :mod:`~fastapi_cashier.billing.catalog_rules` (the price itself is
:func:`~fastapi_cashier.pricing.validate_spec`'s); the copies at providers are
:mod:`~fastapi_cashier.billing.catalog_sync`'s. The names this module offered before those were
split off (the ``MAX_*`` limits among them) are re-exported here.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from ..db.models import CheckoutSession, InvoiceLine, Plan, Product, Subscription
from ..errors import ConflictError
from ..pricing import Tier
from ..providers.base import TierRef
from ..statuses import BillingInterval, PricingModel
from .catalog_rules import MAX_AMOUNT as MAX_AMOUNT
from .catalog_rules import MAX_DESCRIPTION as MAX_DESCRIPTION
from .catalog_rules import MAX_FEATURE_TEXT as MAX_FEATURE_TEXT
from .catalog_rules import MAX_FEATURES as MAX_FEATURES
from .catalog_rules import MAX_INTERVAL_COUNT as MAX_INTERVAL_COUNT
from .catalog_rules import MAX_LIMIT as MAX_LIMIT
from .catalog_rules import MAX_NAME as MAX_NAME
from .catalog_rules import MAX_TIERS as MAX_TIERS
from .catalog_rules import MAX_TRIAL_DAYS as MAX_TRIAL_DAYS
from .catalog_rules import (
    FeatureValue,
    PlanPricing,
    check_description,
    check_features,
    check_flag,
    check_metadata,
    check_name,
    check_pricing,
    feature_value,
)
from .catalog_sync import PRICE_OBJECT, CatalogSyncMixin, SyncReport, plan_fingerprint

__all__ = [
    "PRICE_OBJECT",
    "CatalogService",
    "FeatureValue",
    "SyncReport",
    "feature_value",
    "plan_fingerprint",
]

PRODUCT_FIELDS = frozenset({"name", "description", "active", "metadata", "tax_category"})
#: What may change on a plan that something refers to.
PLAN_MUTABLE_FIELDS = ("name", "active", "trial_days", "features")
#: What makes the price; changeable only while nothing refers to the plan.
PLAN_PRICING_FIELDS = ("pricing_model", "unit_amount", "currency", "interval", "interval_count", "tiers")


class CatalogService(CatalogSyncMixin):
    """Products, plans and the sync of their prices to providers."""

    # ------------------------------------------------------------------ products

    async def create_product(
        self,
        name: str,
        description: str | None = None,
        active: bool = True,
        metadata: Mapping[str, Any] | None = None,
        tax_category: str | None = None,
    ) -> Product:
        """Add a product; its plans say how it is priced.

        ``tax_category`` picks reduced VAT rates (``"ebooks"``; ``None``: the standard rate).

        Raises:
            ValidationError: a blank or too long name or description, an unknown tax category.
        """
        product = Product(
            name=check_name(name),
            description=check_description(description),
            active=check_flag(active, "active"),
            metadata_=check_metadata(metadata),
            tax_category=self.svc.tax.check_category(tax_category),
        )
        return await self._products.add(product)

    async def update_product(self, product_id: uuid.UUID, **changes: Any) -> Product:
        """Change a product's ``name``, ``description``, ``active``, ``metadata`` or ``tax_category``.

        Deactivating a product takes all its plans out of the public catalog.

        Raises:
            NotFoundError: no such product.
            ValidationError: a refused value.
        """
        _known(changes, PRODUCT_FIELDS, "update_product")
        product = await self._products.get(product_id, for_update=True)
        if "name" in changes:
            product.name = check_name(changes["name"])
        if "description" in changes:
            product.description = check_description(changes["description"])
        if "active" in changes:
            product.active = check_flag(changes["active"], "active")
        if "metadata" in changes:
            product.metadata_ = check_metadata(changes["metadata"])
        if "tax_category" in changes:
            product.tax_category = self.svc.tax.check_category(changes["tax_category"])
        await self._products.flush()
        return product

    # ------------------------------------------------------------------ plans

    async def create_plan(
        self,
        product_id: uuid.UUID,
        name: str,
        pricing_model: PricingModel | str,
        unit_amount: int,
        currency: str,
        interval: BillingInterval | str,
        interval_count: int = 1,
        trial_days: int = 0,
        tiers: Iterable[Mapping[str, Any] | Tier | TierRef] = (),
        features: Mapping[str, FeatureValue] | None = None,
        active: bool = True,
    ) -> Plan:
        """Add a plan (a price) to a product.

        Args:
            product_id: The product the plan prices.
            name: Shown to customers.
            pricing_model: flat, per_unit, tiered_graduated, tiered_volume, metered or free.
            unit_amount: Minor units per period (flat), per unit (per_unit, metered); 0 for free
                and tiered plans, whose tiers carry the amounts.
            currency: ISO 4217 code.
            interval: day, week, month, year, or one_time (flat and per_unit only).
            interval_count: Periods per billing cycle (1 to 12 months).
            trial_days: Free days before the first charge (0 to 730).
            tiers: ``{up_to, unit_amount, flat_amount}`` in ascending ``up_to`` order, the last
                one open (``up_to`` None); for tiered plans, optional for metered ones.
            features: Entitlements: ``True``/``False`` flags, integer limits, or text.
            active: Whether the plan is offered.

        Raises:
            ValidationError: a refused value; ``field`` names it.
            NotFoundError: no such product.
        """
        pricing = check_pricing(
            pricing_model=pricing_model,
            unit_amount=unit_amount,
            currency=currency,
            interval=interval,
            interval_count=interval_count,
            trial_days=trial_days,
            tiers=tiers,
        )
        plan_name = check_name(name)
        offered = check_flag(active, "active")
        plan_features = check_features(features)
        product = await self._products.get(product_id)
        plan = Plan(
            product_id=product.id,
            name=plan_name,
            pricing_model=pricing.pricing_model,
            unit_amount=pricing.unit_amount,
            currency=pricing.currency,
            interval=pricing.interval,
            interval_count=pricing.interval_count,
            trial_days=pricing.trial_days,
            active=offered,
            tiers=pricing.tier_rows(),
            features=plan_features,
        )
        return await self._plans.add(plan)

    async def update_plan(self, plan_id: uuid.UUID, **changes: Any) -> Plan:
        """Change a plan.

        ``name``, ``active``, ``trial_days`` and ``features`` (replaced as a whole) may always
        change. The pricing fields (``pricing_model``, ``unit_amount``, ``currency``,
        ``interval``, ``interval_count``, ``tiers``) may change only while no subscription,
        checkout session or invoice line refers to the plan; giving them unchanged is allowed.

        Raises:
            NotFoundError: no such plan.
            ValidationError: a refused value, checked against the plan as it would become.
            ConflictError: a price change of a plan in use; create a new plan instead.
        """
        _known(changes, {*PLAN_MUTABLE_FIELDS, *PLAN_PRICING_FIELDS}, "update_plan")
        plan = await self._plans.get(plan_id, for_update=True)
        current = PlanPricing.of(plan)
        merged = {
            key: changes.get(key, getattr(current, key)) for key in (*PLAN_PRICING_FIELDS, "trial_days")
        }
        pricing = check_pricing(**merged)
        name = check_name(changes["name"]) if "name" in changes else plan.name
        offered = check_flag(changes["active"], "active") if "active" in changes else plan.active
        features = check_features(changes["features"]) if "features" in changes else None

        changed = [
            field for field in PLAN_PRICING_FIELDS if getattr(pricing, field) != getattr(current, field)
        ]
        if changed:
            references = await self._references(plan.id)
            if any(references.values()):
                raise ConflictError(
                    f"plan {plan.id} is in use by {_describe_references(references)}; "
                    "create a new plan and deactivate this one",
                    details={"plan_id": str(plan.id), "fields": changed, **references},
                )

        plan.name = name
        plan.active = offered
        plan.trial_days = pricing.trial_days
        plan.pricing_model = pricing.pricing_model
        plan.unit_amount = pricing.unit_amount
        plan.currency = pricing.currency
        plan.interval = pricing.interval
        plan.interval_count = pricing.interval_count
        if pricing.tiers != current.tiers:
            # Old rows go first: (plan_id, position) is unique.
            plan.tiers.clear()
            await self._plans.flush()
            plan.tiers.extend(pricing.tier_rows())
        if features is not None:
            plan.features.clear()
            await self._plans.flush()
            plan.features.extend(features)
        await self._plans.flush()
        return plan

    async def delete_plan(self, plan_id: uuid.UUID) -> None:
        """Delete a plan nothing refers to (one created by mistake).

        Raises:
            NotFoundError: no such plan.
            ConflictError: something refers to the plan; deactivate it instead.
        """
        plan = await self._plans.get(plan_id, for_update=True)
        references = await self._references(plan.id)
        if any(references.values()):
            raise ConflictError(
                f"plan {plan.id} is in use by {_describe_references(references)} and is kept for the "
                "record; deactivate it instead (active: false)",
                details={"plan_id": str(plan.id), **references},
            )
        await self._archive_prices(plan.id)
        await self._plans.delete(plan)

    async def list_active(self) -> Sequence[Plan]:
        """The public catalog: active plans of active products, cheapest first."""
        return await self._plans.list_active()

    async def get_plan(self, plan_id: uuid.UUID) -> Plan:
        """The plan with this id, active or not (``NotFoundError`` otherwise)."""
        return await self._plans.get(plan_id)

    async def _references(self, plan_id: uuid.UUID) -> dict[str, int]:
        counts: dict[str, int] = {}
        for label, model in (
            ("subscriptions", Subscription),
            ("checkout_sessions", CheckoutSession),
            ("invoice_lines", InvoiceLine),
        ):
            stmt = sa.select(sa.func.count()).select_from(model).where(model.plan_id == plan_id)
            counts[label] = int((await self.session.execute(stmt)).scalar_one())
        return counts


# ---------------------------------------------------------------------- helpers


def _references_text(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _describe_references(references: Mapping[str, int]) -> str:
    nouns = {
        "subscriptions": "subscription",
        "checkout_sessions": "checkout session",
        "invoice_lines": "invoice line",
    }
    parts = [_references_text(count, nouns[label]) for label, count in references.items() if count]
    return " and ".join(parts)


def _known(changes: Mapping[str, Any], allowed: Iterable[str], function: str) -> None:
    unknown = sorted(set(changes) - set(allowed))
    if unknown:
        raise TypeError(f"{function}() got unknown fields: {', '.join(unknown)}")
