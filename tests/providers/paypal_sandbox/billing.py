"""Catalog Products v1 and Billing Subscriptions v1 of the sandbox, renewing on its own clock."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from .state import idempotent, json_response, not_found, paypal_id, problem

if TYPE_CHECKING:
    from . import PayPalSandbox

_UNITS = {"DAY": 1, "WEEK": 7}


def _apply_patch(obj: dict[str, Any], operations: list[dict[str, Any]], allowed: set[str]) -> Response | None:
    for operation in operations:
        field = str(operation.get("path", "")).lstrip("/")
        if operation.get("op") not in {"replace", "add"} or field not in allowed:
            return problem(
                422,
                "UNPROCESSABLE_ENTITY",
                "PATCH_PATH_NOT_SUPPORTED",
                f"Patching /{field} is not supported.",
            )
        obj[field] = operation.get("value")
    return None


# ---------------------------------------------------------------------------- products


async def create_product(sandbox: PayPalSandbox, request: Request) -> Response:
    state = sandbox.state
    payload = await request.json()

    async def act() -> Response:
        if not payload.get("name") or payload.get("type") not in {"PHYSICAL", "DIGITAL", "SERVICE"}:
            return problem(
                400, "INVALID_REQUEST", "MISSING_REQUIRED_PARAMETER", "name and type are required."
            )
        product_id = payload.get("id") or paypal_id("PROD-", 17)
        if product_id in state.products:
            return problem(
                422, "UNPROCESSABLE_ENTITY", "DUPLICATE_RESOURCE_IDENTIFIER", "The product id is taken."
            )
        product = {
            key: payload[key]
            for key in ("name", "description", "type", "category", "image_url", "home_url")
            if key in payload
        }
        product.update(
            id=product_id,
            create_time=state.iso_now(),
            update_time=state.iso_now(),
            links=[
                state.link(f"/v1/catalogs/products/{product_id}", "self"),
                state.link(f"/v1/catalogs/products/{product_id}", "edit", "PATCH"),
            ],
        )
        state.products[product_id] = product
        return json_response(product, 201)

    return await idempotent(state, request, act)


async def get_product(sandbox: PayPalSandbox, request: Request) -> Response:
    product = sandbox.state.products.get(request.path_params["id"])
    return json_response(product) if product else not_found("product")


async def patch_product(sandbox: PayPalSandbox, request: Request) -> Response:
    product = sandbox.state.products.get(request.path_params["id"])
    if product is None:
        return not_found("product")
    refused = _apply_patch(
        product, await request.json(), {"description", "category", "image_url", "home_url"}
    )
    if refused:
        return refused
    product["update_time"] = sandbox.state.iso_now()
    return Response(status_code=204)


# ---------------------------------------------------------------------------- plans


async def create_plan(sandbox: PayPalSandbox, request: Request) -> Response:
    state = sandbox.state
    payload = await request.json()

    async def act() -> Response:
        if payload.get("product_id") not in state.products:
            return problem(422, "UNPROCESSABLE_ENTITY", "INVALID_PRODUCT_ID", "The product id is unknown.")
        cycles = payload.get("billing_cycles")
        if not isinstance(cycles, list) or not cycles or not payload.get("name"):
            return problem(
                400, "INVALID_REQUEST", "MISSING_REQUIRED_PARAMETER", "name and billing_cycles are required."
            )
        plan_id = paypal_id("P-", 24)
        plan = {
            key: payload[key]
            for key in (
                "product_id",
                "name",
                "description",
                "billing_cycles",
                "payment_preferences",
                "taxes",
                "quantity_supported",
            )
            if key in payload
        }
        for cycle in plan["billing_cycles"]:
            if "pricing_scheme" in cycle:
                cycle["pricing_scheme"] = {
                    **cycle["pricing_scheme"],
                    "version": 1,
                    "create_time": state.iso_now(),
                }
        plan.update(
            id=plan_id,
            status=payload.get("status", "ACTIVE"),
            create_time=state.iso_now(),
            update_time=state.iso_now(),
            links=[
                state.link(f"/v1/billing/plans/{plan_id}", "self"),
                state.link(f"/v1/billing/plans/{plan_id}", "edit", "PATCH"),
            ],
        )
        state.plans[plan_id] = plan
        return json_response(plan, 201)

    return await idempotent(state, request, act)


async def get_plan(sandbox: PayPalSandbox, request: Request) -> Response:
    plan = sandbox.state.plans.get(request.path_params["id"])
    return json_response(plan) if plan else not_found("plan")


async def set_plan_status(sandbox: PayPalSandbox, request: Request) -> Response:
    plan = sandbox.state.plans.get(request.path_params["id"])
    if plan is None:
        return not_found("plan")
    plan["status"] = "ACTIVE" if request.url.path.endswith("/activate") else "INACTIVE"
    plan["update_time"] = sandbox.state.iso_now()
    return Response(status_code=204)


async def update_pricing_schemes(sandbox: PayPalSandbox, request: Request) -> Response:
    plan = sandbox.state.plans.get(request.path_params["id"])
    if plan is None:
        return not_found("plan")
    by_sequence = {cycle["sequence"]: cycle for cycle in plan["billing_cycles"]}
    for update in (await request.json()).get("pricing_schemes", []):
        cycle = by_sequence.get(update.get("billing_cycle_sequence"))
        trial = cycle is not None and cycle["tenure_type"] == "TRIAL"
        if cycle is None or (trial and "fixed_price" not in update["pricing_scheme"]):
            return problem(
                422, "UNPROCESSABLE_ENTITY", "INVALID_BILLING_CYCLE_SEQUENCE", "No such billing cycle."
            )
        version = cycle.get("pricing_scheme", {}).get("version", 0) + 1
        cycle["pricing_scheme"] = {
            **update["pricing_scheme"],
            "version": version,
            "update_time": sandbox.state.iso_now(),
        }
    plan["update_time"] = sandbox.state.iso_now()
    return Response(status_code=204)


def cycle_price(plan: dict[str, Any], cycle: dict[str, Any], quantity: int) -> Decimal:
    """What one cycle costs at ``quantity`` under the cycle's pricing scheme."""
    scheme = cycle.get("pricing_scheme") or {}
    if "fixed_price" in scheme:
        unit = Decimal(scheme["fixed_price"]["value"])
        return unit * quantity if plan.get("quantity_supported") else unit
    tiers = scheme.get("tiers") or []
    if scheme.get("pricing_model") == "VOLUME":
        for tier in tiers:
            if quantity >= int(tier["starting_quantity"]) and (
                "ending_quantity" not in tier or quantity <= int(tier["ending_quantity"])
            ):
                return Decimal(tier["amount"]["value"]) * quantity
        return Decimal(0)
    total = Decimal(0)
    for tier in tiers:
        start = int(tier["starting_quantity"])
        end = int(tier["ending_quantity"]) if "ending_quantity" in tier else quantity
        if quantity >= start:
            total += Decimal(tier["amount"]["value"]) * (min(quantity, end) - start + 1)
    return total


def currency_of(plan: dict[str, Any]) -> str:
    for cycle in plan["billing_cycles"]:
        scheme = cycle.get("pricing_scheme") or {}
        if "fixed_price" in scheme:
            return str(scheme["fixed_price"]["currency_code"])
        for tier in scheme.get("tiers") or []:
            return str(tier["amount"]["currency_code"])
    return "USD"


def _next_time(start: datetime, frequency: dict[str, Any]) -> datetime:
    unit, count = frequency["interval_unit"], int(frequency.get("interval_count", 1))
    if unit in _UNITS:
        return start + timedelta(days=_UNITS[unit] * count)
    months = count * (12 if unit == "YEAR" else 1)
    month = start.month - 1 + months
    year, month = start.year + month // 12, month % 12 + 1
    return start.replace(year=year, month=month, day=min(start.day, 28))
