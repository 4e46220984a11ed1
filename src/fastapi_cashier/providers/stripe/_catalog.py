"""Catalog sync at Stripe: one Product per plan, one Price per pricing, one Billing Meter per metered plan.

Stripe Prices are immutable, so a plan whose pricing changed gets a new Price and its previous one
is archived (``active=false``; subscriptions on it keep running). Each Price carries a fingerprint
of the parameters it was made from (``metadata.cashier_fingerprint``): a plan synced again with
the same pricing keeps its Price. Pricing models map onto Prices exactly, in minor units:

* ``flat``: a recurring volume-tiered Price with one open tier whose ``flat_amount`` is the price,
  so the amount does not grow with the quantity (a one-time flat plan is a plain ``unit_amount``);
* ``per_unit`` and ``free``: ``unit_amount``;
* ``tiered_graduated`` / ``tiered_volume``: ``billing_scheme=tiered`` with ``tiers_mode``;
* ``metered``: ``recurring.usage_type=metered`` on the plan's Billing Meter (event name
  ``cashier_<plan id>``, summing ``value`` per ``stripe_customer_id``), graduated when tiered.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from ...errors import InvalidProviderRequestError
from ...statuses import BillingInterval, PricingModel
from ..base import Capability, PlanRef
from ._base import StripeBase, refused
from ._objects import object_id

if TYPE_CHECKING:
    from stripe.params import PriceCreateParams, PriceCreateParamsRecurring, PriceCreateParamsTier

__all__ = ["FINGERPRINT_KEY", "METER_EVENT_KEY", "CatalogMixin", "meter_event_name", "price_params"]

logger = logging.getLogger("fastapi_cashier.providers.stripe")

FINGERPRINT_KEY: Final = "cashier_fingerprint"
"""Price metadata: the fingerprint of the pricing the Price was created from."""

METER_EVENT_KEY: Final = "cashier_meter_event"
"""Price metadata of a metered Price: the event name usage is reported under."""

_TIERED: Final = {
    PricingModel.TIERED_GRADUATED: "graduated",
    PricingModel.TIERED_VOLUME: "volume",
}


def meter_event_name(plan_id: uuid.UUID) -> str:
    """The Billing Meter event name of a metered plan."""
    return f"cashier_{plan_id.hex}"


def product_id(plan_id: uuid.UUID) -> str:
    """The id of the Stripe Product a plan's Prices belong to."""
    return f"cashier_plan_{plan_id.hex}"


def product_name(plan: PlanRef) -> str:
    """``"<product> - <plan>"`` (with an en dash), or the plan's name when the product has the same
    one or none."""
    if plan.product_name and plan.product_name != plan.name:
        return f"{plan.product_name} \N{EN DASH} {plan.name}"
    return plan.name


def _tiers(plan: PlanRef) -> list[PriceCreateParamsTier]:
    tiers: list[PriceCreateParamsTier] = []
    for tier in plan.tiers:
        entry: PriceCreateParamsTier = {
            "up_to": "inf" if tier.up_to is None else tier.up_to,
            "unit_amount": tier.unit_amount,
        }
        if tier.flat_amount:
            entry["flat_amount"] = tier.flat_amount
        tiers.append(entry)
    return tiers


def _tiered(params: PriceCreateParams, mode: str, tiers: list[PriceCreateParamsTier]) -> None:
    params["billing_scheme"] = "tiered"
    params["tiers_mode"] = mode
    params["tiers"] = tiers


def price_params(plan: PlanRef) -> PriceCreateParams:
    """The pricing part of the Price of ``plan`` (no product, meter or metadata yet).

    Raises:
        InvalidProviderRequestError: A tiered or metered plan that does not recur, or a tiered
            plan without tiers.
    """
    params: PriceCreateParams = {"currency": plan.unit_amount.currency.lower(), "nickname": plan.name[:250]}
    model = plan.pricing_model
    recurs = plan.interval is not BillingInterval.ONE_TIME
    if (model in _TIERED or model is PricingModel.METERED) and not recurs:
        raise refused(f"plan {plan.id} is {model.value} but does not recur; Stripe needs an interval")
    recurring: PriceCreateParamsRecurring | None = None
    if recurs:
        recurring = {"interval": plan.interval.value, "interval_count": plan.interval_count}
    if model in _TIERED:
        if not plan.tiers:
            raise refused(f"plan {plan.id} is {model.value} but has no tiers")
        _tiered(params, _TIERED[model], _tiers(plan))
    elif model is PricingModel.METERED:
        assert recurring is not None
        recurring["usage_type"] = "metered"
        if plan.tiers:
            _tiered(params, "graduated", _tiers(plan))
        else:
            params["unit_amount"] = plan.unit_amount.amount
    elif model is PricingModel.FLAT and recurs:
        _tiered(
            params, "volume", [{"up_to": "inf", "unit_amount": 0, "flat_amount": plan.unit_amount.amount}]
        )
    else:
        params["unit_amount"] = plan.unit_amount.amount
    if recurring is not None:
        params["recurring"] = recurring
    return params


def fingerprint(params: Mapping[str, object]) -> str:
    """A short, stable digest of Price parameters."""
    encoded = json.dumps(params, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(encoded).hexdigest()[:32]


class CatalogMixin(StripeBase):
    """``sync_catalog``: Products, Prices and Meters."""

    async def sync_catalog(self, plans: list[PlanRef]) -> Mapping[uuid.UUID, str]:
        """Give each plan a Stripe Price for its current pricing; returns plan id -> price id.

        A plan whose ``provider_price_id`` already has this pricing keeps it (reactivated if it
        was archived); otherwise a new Price is created (keyed by plan and pricing, so a retry
        never makes two) and the previous one is archived. A plan Stripe refuses is logged and
        left out of the result, so the others are still recorded.

        Raises:
            UnsupportedCapabilityError: ``catalog_sync`` is switched off.
            ProviderError: Stripe failed for a reason other than refusing one plan.
        """
        self._require(Capability.CATALOG_SYNC)
        synced: dict[uuid.UUID, str] = {}
        for plan in plans:
            try:
                synced[plan.id] = await self._sync_plan(plan)
            except InvalidProviderRequestError as exc:
                logger.warning("Stripe refused plan %s (%s): %s", plan.id, plan.name, exc)
        return synced

    async def _sync_plan(self, plan: PlanRef) -> str:
        params = price_params(plan)
        digest = fingerprint(params)
        previous = await self._previous_price(plan.provider_price_id)
        if previous is not None and previous.get("metadata", {}).get(FINGERPRINT_KEY) == digest:
            if not previous.get("active", True):
                with self._calling("reactivate a price"):
                    await self._client.v1.prices.update_async(
                        previous["id"], {"active": True}, {"idempotency_key": f"reactivate-{previous['id']}"}
                    )
            return str(previous["id"])
        product = object_id(previous.get("product")) if previous is not None else None
        params["product"] = product or await self._ensure_product(plan)
        metadata = {"plan_id": str(plan.id), FINGERPRINT_KEY: digest}
        if plan.pricing_model is PricingModel.METERED:
            meter_id, event_name = await self._ensure_meter(plan)
            params["recurring"]["meter"] = meter_id
            metadata[METER_EVENT_KEY] = event_name
        params["metadata"] = metadata
        params["lookup_key"] = f"cashier_{plan.id.hex}"
        params["transfer_lookup_key"] = True
        with self._calling("create a price"):
            price = await self._client.v1.prices.create_async(
                params, {"idempotency_key": f"price-{plan.id}-{digest}"}
            )
        if previous is not None and previous["id"] != price.id and previous.get("active", True):
            with self._calling("archive a price"):
                await self._client.v1.prices.update_async(
                    previous["id"], {"active": False}, {"idempotency_key": f"archive-{previous['id']}"}
                )
        return price.id

    async def _previous_price(self, price_id: str | None) -> dict[str, Any] | None:
        """The plan's current Stripe Price, or ``None`` (none yet, or gone from this account)."""
        if price_id is None:
            return None
        try:
            with self._calling("read a price"):
                return self._json(await self._client.v1.prices.retrieve_async(price_id))
        except InvalidProviderRequestError as exc:
            if exc.provider_code == "resource_missing":
                logger.warning("Stripe has no price %s any more; creating a new one", price_id)
                return None
            raise

    async def _ensure_product(self, plan: PlanRef) -> str:
        """The plan's Product, created with a fixed id on first use and renamed with the plan."""
        wanted, name = product_id(plan.id), product_name(plan)
        try:
            with self._calling("read a product"):
                existing = await self._client.v1.products.retrieve_async(wanted)
        except InvalidProviderRequestError as exc:
            if exc.provider_code != "resource_missing":
                raise
            with self._calling("create a product"):
                created = await self._client.v1.products.create_async(
                    {"id": wanted, "name": name, "metadata": {"plan_id": str(plan.id)}},
                    {"idempotency_key": f"product-{plan.id}"},
                )
            return created.id
        if existing.name != name or not existing.active:
            with self._calling("update a product"):
                await self._client.v1.products.update_async(
                    wanted,
                    {"name": name, "active": True},
                    {"idempotency_key": f"product-{plan.id}-{fingerprint({'name': name})}"},
                )
        return existing.id

    async def _ensure_meter(self, plan: PlanRef) -> tuple[str, str]:
        """The plan's active Billing Meter (created on first use): ``(meter id, event name)``."""
        event_name = meter_event_name(plan.id)
        starting_after: str | None = None
        while True:
            with self._calling("list billing meters"):
                page = await self._client.v1.billing.meters.list_async(
                    {"status": "active", "limit": 100}
                    if starting_after is None
                    else {"status": "active", "limit": 100, "starting_after": starting_after}
                )
            for meter in page.data:
                if meter.event_name == event_name:
                    return meter.id, event_name
            if not page.has_more or not page.data:
                break
            starting_after = page.data[-1].id
        with self._calling("create a billing meter"):
            meter = await self._client.v1.billing.meters.create_async(
                {
                    "display_name": plan.name[:250],
                    "event_name": event_name,
                    "default_aggregation": {"formula": "sum"},
                    "customer_mapping": {"type": "by_id", "event_payload_key": "stripe_customer_id"},
                    "value_settings": {"event_payload_key": "value"},
                },
                {"idempotency_key": f"meter-{plan.id}"},
            )
        return meter.id, event_name
