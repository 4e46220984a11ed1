"""Catalog sync at PayPal: one Catalog Product and one Billing Plan per plan.

Pricing models map onto a plan's REGULAR billing cycle:

* ``flat``: ``fixed_price``, ``quantity_supported=false`` (the price does not grow with seats);
* ``per_unit``: ``fixed_price`` per seat, ``quantity_supported=true``;
* ``tiered_graduated`` / ``tiered_volume``: ``pricing_model`` ``TIERED`` / ``VOLUME`` with
  ``tiers`` (``starting_quantity`` .. ``ending_quantity``, amount per unit);
* a trial of ``trial_days`` is a free TRIAL cycle of that many days before it.

What PayPal cannot express is refused with a 422 :class:`UnsupportedCapabilityError` naming the
plan: metered usage, free plans, one-time plans, tiers with a flat amount, intervals longer than
PayPal allows. A plan synced again keeps its PayPal plan while it bills the same; a changed price (or
anything else) creates a new plan and deactivates the old one, so existing subscribers keep the
price they agreed to, as with the other providers.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping
from typing import Any, Final

from ...errors import InvalidProviderRequestError, UnsupportedCapabilityError
from ...money import Money
from ...statuses import BillingInterval, PricingModel
from ..base import PlanRef
from ._amounts import to_paypal_amount
from ._client import PayPalClient

__all__ = ["plan_request", "product_id", "sync_plans"]

_UNITS: Final = {
    BillingInterval.DAY: ("DAY", 365),
    BillingInterval.WEEK: ("WEEK", 52),
    BillingInterval.MONTH: ("MONTH", 12),
    BillingInterval.YEAR: ("YEAR", 1),
}
_TIERED: Final = {PricingModel.TIERED_GRADUATED: "TIERED", PricingModel.TIERED_VOLUME: "VOLUME"}
_MAX_TRIAL_DAYS: Final = 365


def _refuse(plan: PlanRef, what: str, capability: str) -> UnsupportedCapabilityError:
    return UnsupportedCapabilityError(
        f"PayPal cannot bill plan {plan.name!r} ({plan.id}): {what}",
        field="pricing_model",
        details={"provider": "paypal", "plan_id": str(plan.id), "capability": capability},
    )


def product_id(plan: PlanRef) -> str:
    """The id of the PayPal Catalog Product of a plan (PayPal takes 6 to 50 characters)."""
    return f"CASHIER-{plan.id.hex}"


def pricing_scheme(plan: PlanRef) -> tuple[dict[str, Any], bool]:
    """The REGULAR cycle's ``pricing_scheme`` and whether the plan takes a quantity."""
    model = plan.pricing_model
    if model is PricingModel.METERED:
        raise _refuse(plan, "PayPal subscriptions have no metered usage", "metered_usage")
    if model is PricingModel.FREE:
        raise _refuse(plan, "a free plan needs no PayPal subscription", "free")
    if model in (PricingModel.FLAT, PricingModel.PER_UNIT):
        return {"fixed_price": to_paypal_amount(plan.unit_amount)}, model is PricingModel.PER_UNIT
    tiers: list[dict[str, Any]] = []
    start = 1
    for tier in plan.tiers:
        if tier.flat_amount:
            raise _refuse(plan, "PayPal tiers have no flat amount", "tier_flat_amount")
        entry: dict[str, Any] = {
            "starting_quantity": str(start),
            "amount": to_paypal_amount(Money(tier.unit_amount, plan.unit_amount.currency)),
        }
        if tier.up_to is not None:
            entry["ending_quantity"] = str(tier.up_to)
            start = tier.up_to + 1
        tiers.append(entry)
    if not tiers or "ending_quantity" in tiers[-1]:
        raise InvalidProviderRequestError(
            f"plan {plan.name!r} needs tiers ending with an open one", provider="paypal"
        )
    return {"pricing_model": _TIERED[model], "tiers": tiers}, True


def plan_request(plan: PlanRef, product: str) -> dict[str, Any]:
    """The ``POST /v1/billing/plans`` body for ``plan`` under Catalog Product ``product``."""
    if plan.interval not in _UNITS:
        raise _refuse(plan, "PayPal plans recur; a one-time price is a one-off payment", "one_time")
    unit, longest = _UNITS[plan.interval]
    if not 1 <= plan.interval_count <= longest:
        raise _refuse(plan, f"PayPal bills every 1 to {longest} {unit.lower()}s", "interval_count")
    scheme, quantity_supported = pricing_scheme(plan)
    cycles: list[dict[str, Any]] = []
    if plan.trial_days:
        if plan.trial_days > _MAX_TRIAL_DAYS:
            raise _refuse(plan, f"PayPal trials last at most {_MAX_TRIAL_DAYS} days", "trial_days")
        cycles.append(
            {
                "frequency": {"interval_unit": "DAY", "interval_count": plan.trial_days},
                "tenure_type": "TRIAL",
                "sequence": 1,
                "total_cycles": 1,
            }
        )
    cycles.append(
        {
            "frequency": {"interval_unit": unit, "interval_count": plan.interval_count},
            "tenure_type": "REGULAR",
            "sequence": len(cycles) + 1,
            "total_cycles": 0,
            "pricing_scheme": scheme,
        }
    )
    return {
        "product_id": product,
        "name": plan.name[:127],
        "status": "ACTIVE",
        "billing_cycles": cycles,
        "quantity_supported": quantity_supported,
        "payment_preferences": {
            "auto_bill_outstanding": True,
            "setup_fee_failure_action": "CONTINUE",
            "payment_failure_threshold": 3,
        },
    }


def _fingerprint(body: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:20]


def _shape(plan: Mapping[str, Any]) -> list[Any]:
    """What a pricing update cannot change: the cycles' frequencies and kinds, the quantity flag."""
    cycles = sorted(plan.get("billing_cycles") or [], key=lambda cycle: cycle.get("sequence", 0))
    return [
        bool(plan.get("quantity_supported")),
        plan.get("product_id"),
        [
            (
                cycle.get("tenure_type"),
                cycle.get("frequency"),
                cycle.get("total_cycles", 0),
                (cycle.get("pricing_scheme") or {}).get("pricing_model"),
                "fixed_price" in (cycle.get("pricing_scheme") or {}),
            )
            for cycle in cycles
        ],
    ]


async def _ensure_product(client: PayPalClient, plan: PlanRef) -> str:
    product = product_id(plan)
    name = plan.product_name if plan.product_name and plan.product_name != plan.name else plan.name
    try:
        await client.post(
            "/v1/catalogs/products",
            operation="create the catalog product",
            request_id=f"product-{plan.id.hex}",
            json={"id": product, "name": name[:127], "type": "SERVICE"},
        )
    except InvalidProviderRequestError as exc:
        # Made by an earlier sync whose request id PayPal no longer remembers: it is there.
        if exc.provider_code != "DUPLICATE_RESOURCE_IDENTIFIER":
            raise
    return product


def _pricing(plan: Mapping[str, Any]) -> list[Any]:
    """The cycles' pricing schemes without PayPal's bookkeeping (version, times)."""
    cycles = sorted(plan.get("billing_cycles") or [], key=lambda cycle: cycle.get("sequence", 0))
    kept = ("fixed_price", "pricing_model", "tiers")
    return [
        {key: value for key, value in (cycle.get("pricing_scheme") or {}).items() if key in kept}
        for cycle in cycles
    ]


async def sync_plan(client: PayPalClient, plan: PlanRef) -> str:
    """``plan``'s PayPal plan id: the current one when it bills the same, else a new plan.

    A plan whose price changed gets a new PayPal plan (request id from its fingerprint) and its
    previous one is deactivated: subscriptions on it keep their price, new ones take the new plan.
    """
    body = plan_request(plan, product_id(plan))
    if plan.provider_price_id:
        current = await client.get(f"/v1/billing/plans/{plan.provider_price_id}", operation="read the plan")
        if _shape(current) == _shape(body) and _pricing(current) == _pricing(body):
            if current.get("status") != "ACTIVE":
                await client.post(
                    f"/v1/billing/plans/{plan.provider_price_id}/activate",
                    operation="activate the plan",
                    request_id=f"activate-{plan.provider_price_id}",
                )
            return plan.provider_price_id
    await _ensure_product(client, plan)
    created = await client.post(
        "/v1/billing/plans",
        operation="create the billing plan",
        request_id=f"plan-{plan.id.hex}-{_fingerprint(body)}",
        json=body,
    )
    new_id = created.get("id")
    if not isinstance(new_id, str):
        raise InvalidProviderRequestError("PayPal answered the plan without an id", provider="paypal")
    if plan.provider_price_id and plan.provider_price_id != new_id:
        await client.post(
            f"/v1/billing/plans/{plan.provider_price_id}/deactivate",
            operation="deactivate the previous plan",
            request_id=f"deactivate-{plan.provider_price_id}-{new_id}",
        )
    return new_id


async def sync_plans(client: PayPalClient, plans: list[PlanRef]) -> dict[uuid.UUID, str]:
    """Every plan checked first (nothing is created when one cannot be), then synced in order."""
    for plan in plans:
        plan_request(plan, product_id(plan))
    return {plan.id: await sync_plan(client, plan) for plan in plans}
