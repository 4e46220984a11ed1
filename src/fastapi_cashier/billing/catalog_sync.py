"""The catalog at providers: plan prices copied to them, recognised by a fingerprint of the price.

:class:`CatalogSyncMixin` is the part of :class:`~fastapi_cashier.billing.catalog.CatalogService`
that talks to providers. A plan's copy at a provider is a ``ProviderObject`` of type
:data:`PRICE_OBJECT`; the current one carries the :func:`plan_fingerprint` of the price it was made
from, so a plan whose price has not changed is not sent again, and a changed price is a new price at
the provider with the old copy archived.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from ..db.model_repositories import PlanRepository, ProductRepository, ProviderObjectRepository
from ..db.models import Plan, Product, ProviderObject
from ..errors import ConflictError, ProviderError, ValidationError
from ..money import Money
from ..providers.base import Capability, PaymentProvider, PlanRef, TierRef, require_capability
from ..statuses import BillingInterval, PricingModel
from ._base import DomainService

__all__ = ["PRICE_OBJECT", "CatalogSyncMixin", "SyncReport", "plan_fingerprint"]

#: ``ProviderObject.object_type`` of a plan's price at a provider.
PRICE_OBJECT = "price"


@dataclass(frozen=True, slots=True)
class SyncReport:
    """What a catalog sync did at one provider.

    Attributes:
        created: Plans whose price was sent to the provider and recorded as current.
        unchanged: Plans whose current provider price already matches.
        archived: Earlier provider prices marked archived because their plan's price changed.
    """

    created: int
    unchanged: int
    archived: int


def plan_fingerprint(plan: Plan) -> str:
    """SHA-256 hex of a plan's pricing fields: equal fingerprints, the same provider price."""
    payload = {
        "pricing_model": PricingModel(plan.pricing_model).value,
        "unit_amount": plan.unit_amount,
        "currency": plan.currency,
        "interval": BillingInterval(plan.interval).value,
        "interval_count": plan.interval_count,
        "tiers": [[tier.up_to, tier.unit_amount, tier.flat_amount] for tier in plan.tiers],
    }
    encoded = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(encoded).hexdigest()


class CatalogSyncMixin(DomainService):
    """The catalog's repositories, and the copies of its plans' prices at providers."""

    @property
    def _products(self) -> ProductRepository:
        return ProductRepository(session=self.session)

    @property
    def _plans(self) -> PlanRepository:
        return PlanRepository(session=self.session)

    @property
    def _objects(self) -> ProviderObjectRepository:
        return ProviderObjectRepository(session=self.session)

    async def plan_ref(self, plan: Plan, provider: PaymentProvider) -> PlanRef:
        """The plan as ``provider`` needs it, with its price id there once synced."""
        product = await self._products.get(plan.product_id)
        current = await self._objects.current(provider.name, PRICE_OBJECT, plan.id)
        return _plan_ref(plan, product.name, current.provider_id if current is not None else None)

    async def sync(
        self,
        provider_name: str | None = None,
        *,
        batch_size: int = 20,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> SyncReport:
        """Copy the active plans' prices to a provider; idempotent.

        A plan whose price the provider has, with the same pricing fingerprint, is left alone.
        The others are sent in ``sync_catalog`` calls of ``batch_size`` plans, made outside any
        transaction; each price id returned is recorded (and committed) as the plan's current
        copy and the copy it replaces is archived (a changed price is a new price at the
        provider). A run cut short is completed by running it again.

        Args:
            provider_name: An enabled provider; ``None`` for ``settings.default_provider``.
            batch_size: Plans per call to the provider.
            on_progress: Called with ``(plans sent, plans to send)`` after each call.

        Raises:
            UnsupportedCapabilityError: the provider cannot sync a catalog.
            ProviderError: the provider failed, or returned no price for some plans (the ones it
                did return are recorded).
        """
        provider = self.svc.provider(provider_name)
        require_capability(provider, Capability.CATALOG_SYNC)
        plans = await self._plans.list_active()
        product_names = await self._product_names({plan.product_id for plan in plans})
        to_send: list[PlanRef] = []
        fingerprints: dict[uuid.UUID, str] = {}
        unchanged = 0
        for plan in plans:
            fingerprint = plan_fingerprint(plan)
            current = await self._objects.current(provider.name, PRICE_OBJECT, plan.id)
            if current is not None and current.fingerprint == fingerprint:
                unchanged += 1
                continue
            fingerprints[plan.id] = fingerprint
            previous_id = current.provider_id if current is not None else None
            to_send.append(_plan_ref(plan, product_names[plan.product_id], previous_id))
        await self.svc.commit()
        if not to_send:
            return SyncReport(created=0, unchanged=unchanged, archived=0)

        if batch_size < 1:
            raise ValidationError("batch_size must be at least 1", field="batch_size")
        price_ids: dict[uuid.UUID, str] = {}
        created = archived = 0
        for start in range(0, len(to_send), batch_size):
            batch = to_send[start : start + batch_size]
            returned = await provider.sync_catalog(batch)
            for ref in batch:
                price_id = returned.get(ref.id)
                if price_id is None:
                    continue
                price_ids[ref.id] = price_id
                archived += await self._record_price(provider.name, ref.id, price_id, fingerprints[ref.id])
                created += 1
            await self.svc.commit()
            if on_progress is not None:
                on_progress(start + len(batch), len(to_send))
        missing = [str(ref.id) for ref in to_send if ref.id not in price_ids]
        if missing:
            raise ProviderError(
                f"provider {provider.name!r} returned no price for {len(missing)} plan(s)",
                provider=provider.name,
                details={"plan_ids": missing},
            )
        return SyncReport(created=created, unchanged=unchanged, archived=archived)

    async def _archive_prices(self, plan_id: uuid.UUID) -> None:
        """Mark every provider's copy of the plan's price as no longer current."""
        # Copies at providers stay recorded (a late webhook may name them).
        for copy in await self._objects.list(
            ProviderObject.object_type == PRICE_OBJECT,
            ProviderObject.object_id == plan_id,
            ProviderObject.archived.is_(False),
        ):
            copy.archived = True

    async def _product_names(self, product_ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
        if not product_ids:
            return {}
        products = await self._products.list(Product.id.in_(product_ids))
        return {product.id: product.name for product in products}

    async def _record_price(self, provider: str, plan_id: uuid.UUID, price_id: str, fingerprint: str) -> int:
        """Make ``price_id`` the plan's current price; how many earlier copies were archived."""
        # The plan's row lock serialises concurrent syncs of one plan.
        plan = await self._plans.get_or_none(plan_id, for_update=True)
        archived = 0
        for copy in await self._objects.list(
            ProviderObject.provider == provider,
            ProviderObject.object_type == PRICE_OBJECT,
            ProviderObject.object_id == plan_id,
            ProviderObject.archived.is_(False),
        ):
            if copy.provider_id != price_id:
                copy.archived = True
                archived += 1
        same = await self._objects.by_provider_id(provider, PRICE_OBJECT, price_id)
        if same is None:
            await self._objects.add(
                ProviderObject(
                    provider=provider,
                    object_type=PRICE_OBJECT,
                    object_id=plan_id,
                    provider_id=price_id,
                    fingerprint=fingerprint,
                    archived=plan is None,
                )
            )
        elif same.object_id != plan_id:
            raise ConflictError(
                f"provider {provider!r} returned price {price_id!r} for plan {plan_id}, "
                f"but it belongs to {same.object_id}",
                details={"provider": provider, "provider_id": price_id, "plan_id": str(plan_id)},
            )
        else:
            same.fingerprint = fingerprint
            same.archived = plan is None
        await self._objects.flush()
        return archived


def _plan_ref(plan: Plan, product_name: str, provider_price_id: str | None) -> PlanRef:
    return PlanRef(
        id=plan.id,
        name=plan.name,
        unit_amount=Money(plan.unit_amount, plan.currency),
        interval=BillingInterval(plan.interval),
        interval_count=plan.interval_count,
        trial_days=plan.trial_days,
        pricing_model=PricingModel(plan.pricing_model),
        tiers=tuple(TierRef(t.up_to, t.unit_amount, t.flat_amount) for t in plan.tiers),
        product_name=product_name,
        provider_price_id=provider_price_id,
    )
