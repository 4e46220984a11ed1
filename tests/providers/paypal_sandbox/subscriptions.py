"""Billing Subscriptions v1 of the sandbox: create, approve, revise, patch, suspend, activate, cancel, renew.

Taxes follow PayPal's documents: a subscription's inline ``plan`` override (on create and
revise; a revise does not carry an earlier override forward) or a ``PATCH`` of
``/plan/taxes/percentage`` and ``/plan/taxes/inclusive`` sets its ``taxes``, else the plan's own
apply. With ``inclusive: false`` each billing amount is charged with the tax added: the sale's
``amount.total`` is the price plus ``percentage`` of it, rounded to the currency's minor unit half
up (an assumption: PayPal does not document its rounding), and ``amount.details`` reports
``{"subtotal": <price>, "tax": <tax>}``. With ``inclusive: true`` the price is charged as it is.
"""

from __future__ import annotations

import html
import re
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from .billing import _next_time, currency_of, cycle_price
from .orders import public
from .state import idempotent, json_response, not_found, paypal_id, problem, rfc3339

if TYPE_CHECKING:
    from . import PayPalSandbox


def _links(sandbox: PayPalSandbox, sub: dict[str, Any]) -> list[dict[str, str]]:
    state = sandbox.state
    links = [
        state.link(f"/v1/billing/subscriptions/{sub['id']}", "self"),
        state.link(f"/v1/billing/subscriptions/{sub['id']}", "edit", "PATCH"),
    ]
    if sub["status"] == "APPROVAL_PENDING" or sub.get("_pending_revision"):
        links.insert(0, state.link(f"/webapps/billing/subscriptions?ba_token={sub['_ba_token']}", "approve"))
    return links


def view(sandbox: PayPalSandbox, sub: dict[str, Any]) -> dict[str, Any]:
    sub["links"] = _links(sandbox, sub)
    return public(sub)


async def create_subscription(sandbox: PayPalSandbox, request: Request) -> Response:
    state = sandbox.state
    payload = await request.json()

    async def act() -> Response:
        plan = state.plans.get(payload.get("plan_id"))
        if plan is None or plan["status"] != "ACTIVE":
            return problem(
                422, "UNPROCESSABLE_ENTITY", "PLAN_STATUS_INVALID", "The plan is unknown or not active."
            )
        quantity = str(payload.get("quantity", "1"))
        if quantity != "1" and not plan.get("quantity_supported"):
            return problem(
                422, "UNPROCESSABLE_ENTITY", "QUANTITY_NOT_SUPPORTED", "The plan does not support quantity."
            )
        context = payload.get("application_context") or {}
        sub: dict[str, Any] = {
            "id": paypal_id("I-", 12),
            "plan_id": plan["id"],
            "status": "APPROVAL_PENDING",
            "quantity": quantity,
            "create_time": state.iso_now(),
            "update_time": state.iso_now(),
            "status_update_time": state.iso_now(),
            "plan_overridden": False,
            "_ba_token": paypal_id("BA-", 17),
            "_return_url": context.get("return_url"),
            "_cancel_url": context.get("cancel_url"),
            "_cycle": 0,
            "_cycles_done": 0,
        }
        if "custom_id" in payload:
            sub["custom_id"] = payload["custom_id"]
        override = payload.get("plan")
        if override is not None:
            refused = _check_override(override)
            if refused is not None:
                return refused
            sub["plan"] = override
            sub["plan_overridden"] = True
        state.subscriptions[sub["id"]] = sub
        await sandbox.emit(
            "BILLING.SUBSCRIPTION.CREATED", "subscription", view(sandbox, sub), "Subscription created"
        )
        return json_response(view(sandbox, sub), 201)

    return await idempotent(state, request, act)


async def get_subscription(sandbox: PayPalSandbox, request: Request) -> Response:
    sub = sandbox.state.subscriptions.get(request.path_params["id"])
    return json_response(view(sandbox, sub)) if sub else not_found("subscription")


def _by_token(sandbox: PayPalSandbox, token: str) -> dict[str, Any] | None:
    return next((sub for sub in sandbox.state.subscriptions.values() if sub["_ba_token"] == token), None)


async def approval_page(sandbox: PayPalSandbox, request: Request) -> Response:
    sub = _by_token(sandbox, request.query_params.get("ba_token", ""))
    if sub is None:
        return HTMLResponse("<h1>No such subscription</h1>", status_code=404)
    return HTMLResponse(
        "<!doctype html><title>PayPal sandbox subscription</title>"
        f"<h1>Subscribe to {html.escape(sub['plan_id'])}</h1>"
        f'<form method="post" action="/webapps/billing/subscriptions/{html.escape(sub["_ba_token"])}">'
        '<button type="submit" name="action" value="approve">Agree and subscribe</button>'
        '<button type="submit" name="action" value="cancel">Cancel</button></form>'
    )


async def approve(sandbox: PayPalSandbox, request: Request) -> Response:
    sub = _by_token(sandbox, request.path_params["token"])
    if sub is None:
        return HTMLResponse("<h1>No such subscription</h1>", status_code=404)
    action = (await request.form()).get("action")
    query = urlencode({"subscription_id": sub["id"], "ba_token": sub["_ba_token"], "token": sub["_ba_token"]})
    revision = sub.get("_pending_revision")
    if action != "approve":
        sub.pop("_pending_revision", None)
        target = (revision or {}).get("cancel_url") or sub["_cancel_url"]
        return RedirectResponse(f"{target}?{query}", status_code=303)
    if revision:
        sub.pop("_pending_revision")
        sub["plan_id"] = revision.get("plan_id", sub["plan_id"])
        sub["quantity"] = str(revision.get("quantity", sub["quantity"]))
        # "Any existing overrides will not be carried forward during subscription revise."
        if revision.get("plan") is not None:
            sub["plan"] = revision["plan"]
            sub["plan_overridden"] = True
        else:
            sub.pop("plan", None)
            sub["plan_overridden"] = False
        sub["update_time"] = sandbox.state.iso_now()
        await sandbox.emit(
            "BILLING.SUBSCRIPTION.UPDATED", "subscription", view(sandbox, sub), "Subscription updated"
        )
        return RedirectResponse(
            f"{revision.get('return_url') or sub['_return_url']}?{query}", status_code=303
        )
    if sub["status"] == "APPROVAL_PENDING":
        state = sandbox.state
        sub.update(status="ACTIVE", start_time=state.iso_now(), status_update_time=state.iso_now())
        sub["billing_info"] = {
            "outstanding_balance": {
                "currency_code": currency_of(state.plans[sub["plan_id"]]),
                "value": "0.00",
            },
            "cycle_executions": [
                {
                    "tenure_type": cycle["tenure_type"],
                    "sequence": cycle["sequence"],
                    "cycles_completed": 0,
                    "cycles_remaining": int(cycle.get("total_cycles", 0)),
                    "total_cycles": int(cycle.get("total_cycles", 0)),
                }
                for cycle in sorted(
                    state.plans[sub["plan_id"]]["billing_cycles"], key=lambda c: c["sequence"]
                )
            ],
            "failed_payments_count": 0,
        }
        await sandbox.emit(
            "BILLING.SUBSCRIPTION.ACTIVATED", "subscription", view(sandbox, sub), "Subscription activated"
        )
        await _bill_cycle(sandbox, sub, state.now)
    return RedirectResponse(f"{sub['_return_url']}?{query}", status_code=303)


_PERCENTAGE = re.compile(r"^((-?[0-9]+)|(-?([0-9]+)?[.][0-9]+))$")
_NO_DECIMALS = {"JPY", "HUF", "TWD"}


def _format(amount: Decimal, currency: str) -> str:
    return f"{amount:.0f}" if currency in _NO_DECIMALS else f"{amount:.2f}"


def _check_override(override: object) -> Response | None:
    """Refuse a ``plan`` override whose ``taxes`` do not match PayPal's schema."""
    taxes = override.get("taxes") if isinstance(override, dict) else None
    if not isinstance(override, dict) or (taxes is not None and not isinstance(taxes, dict)):
        return problem(400, "INVALID_REQUEST", "INVALID_PARAMETER_SYNTAX", "plan must be an object.")
    if taxes is None:
        return None
    percentage = taxes.get("percentage")
    if percentage is not None and (not isinstance(percentage, str) or not _PERCENTAGE.match(percentage)):
        return problem(
            400, "INVALID_REQUEST", "INVALID_PARAMETER_SYNTAX", "plan.taxes.percentage is not a percentage."
        )
    if "inclusive" in taxes and not isinstance(taxes["inclusive"], bool):
        return problem(
            400, "INVALID_REQUEST", "INVALID_PARAMETER_SYNTAX", "plan.taxes.inclusive must be a boolean."
        )
    return None


def taxes_of(sandbox: PayPalSandbox, sub: dict[str, Any]) -> dict[str, Any] | None:
    """The taxes the subscription is billed with: its override's over its plan's."""
    plan_taxes = sandbox.state.plans[sub["plan_id"]].get("taxes")
    override = (sub.get("plan") or {}).get("taxes")
    if override is None:
        return plan_taxes if isinstance(plan_taxes, dict) else None
    return {**(plan_taxes or {}), **override}


def added_tax(sandbox: PayPalSandbox, sub: dict[str, Any], amount: Decimal, currency: str) -> Decimal:
    """The tax PayPal adds to a billing amount: none when the taxes are inclusive (the default)."""
    taxes = taxes_of(sandbox, sub)
    if not taxes or taxes.get("inclusive", True) or taxes.get("percentage") is None:
        return Decimal(0)
    unit = Decimal(1) if currency in _NO_DECIMALS else Decimal("0.01")
    return (amount * Decimal(taxes["percentage"]) / 100).quantize(unit, rounding=ROUND_HALF_UP)


async def _bill_cycle(sandbox: PayPalSandbox, sub: dict[str, Any], at: datetime) -> None:
    """Charge the subscription's current cycle at ``at`` and set its next billing time."""
    state = sandbox.state
    plan = state.plans[sub["plan_id"]]
    cycles = sorted(plan["billing_cycles"], key=lambda cycle: cycle["sequence"])
    cycle = cycles[min(sub["_cycle"], len(cycles) - 1)]
    amount = cycle_price(plan, cycle, int(sub["quantity"]))
    currency = currency_of(plan)
    info = sub["billing_info"]
    if amount > 0 and sub.pop("_fail_next", False):
        info["failed_payments_count"] += 1
        info["last_failed_payment"] = {
            "amount": {
                "currency_code": currency,
                "value": _format(amount + added_tax(sandbox, sub, amount, currency), currency),
            },
            "time": rfc3339(at),
        }
        await sandbox.emit(
            "BILLING.SUBSCRIPTION.PAYMENT.FAILED",
            "subscription",
            view(sandbox, sub),
            "Subscription payment failed",
        )
    elif amount > 0:
        sale_id = paypal_id()
        tax = added_tax(sandbox, sub, amount, currency)
        value = _format(amount + tax, currency)
        details = {"subtotal": _format(amount, currency)}
        if tax:
            details["tax"] = _format(tax, currency)
        sale = {
            "id": sale_id,
            "state": "completed",
            "amount": {"total": value, "currency": currency, "details": details},
            "payment_mode": "INSTANT_TRANSFER",
            "protection_eligibility": "ELIGIBLE",
            "billing_agreement_id": sub["id"],
            "create_time": rfc3339(at),
            "update_time": rfc3339(at),
            "links": [state.link(f"/v1/payments/sale/{sale_id}", "self")],
        }
        if "custom_id" in sub:
            sale["custom"] = sub["custom_id"]
        state.sales[sale_id] = sale
        info["last_payment"] = {"amount": {"currency_code": currency, "value": value}, "time": rfc3339(at)}
        await sandbox.emit(
            "PAYMENT.SALE.COMPLETED", "sale", sale, f"Payment completed for {value} {currency}", version=None
        )
    sub["_cycles_done"] += 1
    execution = info["cycle_executions"][min(sub["_cycle"], len(cycles) - 1)]
    execution["cycles_completed"] += 1
    if execution["total_cycles"]:
        execution["cycles_remaining"] = max(0, execution["total_cycles"] - execution["cycles_completed"])
    total = int(cycle.get("total_cycles", 0))
    if total and sub["_cycles_done"] >= total and sub["_cycle"] < len(cycles) - 1:
        sub["_cycle"] += 1
        sub["_cycles_done"] = 0
    info["next_billing_time"] = rfc3339(_next_time(at, cycle["frequency"]))


async def renew_due(sandbox: PayPalSandbox) -> None:
    """Bill every active subscription whose next billing time has come (the sandbox's clock moved)."""
    state = sandbox.state
    for sub in list(state.subscriptions.values()):
        while sub["status"] == "ACTIVE" and rfc3339(state.now) >= sub["billing_info"]["next_billing_time"]:
            due = datetime.fromisoformat(sub["billing_info"]["next_billing_time"].replace("Z", "+00:00"))
            await _bill_cycle(sandbox, sub, due)


_MOVES = {
    "suspend": ({"ACTIVE"}, "SUSPENDED", "BILLING.SUBSCRIPTION.SUSPENDED"),
    "activate": ({"SUSPENDED"}, "ACTIVE", "BILLING.SUBSCRIPTION.ACTIVATED"),
    "cancel": (
        {"ACTIVE", "SUSPENDED", "APPROVAL_PENDING", "APPROVED"},
        "CANCELLED",
        "BILLING.SUBSCRIPTION.CANCELLED",
    ),
}


async def move(sandbox: PayPalSandbox, request: Request) -> Response:
    state = sandbox.state
    sub = state.subscriptions.get(request.path_params["id"])
    if sub is None:
        return not_found("subscription")
    action = request.url.path.rsplit("/", 1)[-1]
    allowed, target, event = _MOVES[action]

    async def act() -> Response:
        if sub["status"] not in allowed:
            return problem(
                422,
                "UNPROCESSABLE_ENTITY",
                "SUBSCRIPTION_STATUS_INVALID",
                f"Invalid subscription status for {action} action; "
                f"subscription status should be {' or '.join(sorted(allowed))}.",
            )
        sub.update(status=target, status_update_time=state.iso_now(), update_time=state.iso_now())
        sub["status_change_note"] = (await request.json()).get("reason", "") if await request.body() else ""
        await sandbox.emit(event, "subscription", view(sandbox, sub), f"Subscription {target.lower()}")
        return Response(status_code=204)

    return await idempotent(state, request, act)


async def revise(sandbox: PayPalSandbox, request: Request) -> Response:
    state = sandbox.state
    sub = state.subscriptions.get(request.path_params["id"])
    if sub is None:
        return not_found("subscription")
    payload = await request.json()

    async def act() -> Response:
        if sub["status"] != "ACTIVE":
            return problem(
                422,
                "UNPROCESSABLE_ENTITY",
                "SUBSCRIPTION_STATUS_INVALID",
                "Only an active subscription can be revised.",
            )
        plan = state.plans.get(payload.get("plan_id", sub["plan_id"]))
        if plan is None:
            return problem(422, "UNPROCESSABLE_ENTITY", "INVALID_PLAN_ID", "The plan is unknown.")
        context = payload.get("application_context") or {}
        override = payload.get("plan")
        if override is not None:
            refused = _check_override(override)
            if refused is not None:
                return refused
        sub["_pending_revision"] = {
            "plan_id": plan["id"],
            "quantity": str(payload.get("quantity", sub["quantity"])),
            "plan": override,
            "return_url": context.get("return_url"),
            "cancel_url": context.get("cancel_url"),
        }
        answer = {
            "plan_id": plan["id"],
            "quantity": sub["_pending_revision"]["quantity"],
            "plan_overridden": override is not None,
            "links": [state.link(f"/webapps/billing/subscriptions?ba_token={sub['_ba_token']}", "approve")],
        }
        return json_response(answer, 200)

    return await idempotent(state, request, act)


_PATCHABLE_TAXES = {"/plan/taxes/percentage": "percentage", "/plan/taxes/inclusive": "inclusive"}


async def patch_subscription(sandbox: PayPalSandbox, request: Request) -> Response:
    """``PATCH`` a subscription: here only its taxes (the paths the adapter patches), answered 204."""
    state = sandbox.state
    sub = state.subscriptions.get(request.path_params["id"])
    if sub is None:
        return not_found("subscription")
    operations = await request.json()
    if not isinstance(operations, list):
        return problem(400, "INVALID_REQUEST", "INVALID_PARAMETER_SYNTAX", "A JSON Patch array is expected.")
    if sub["status"] not in {"ACTIVE", "SUSPENDED"}:
        return problem(
            422,
            "UNPROCESSABLE_ENTITY",
            "SUBSCRIPTION_STATUS_INVALID",
            "Invalid subscription status for patch action; subscription status should be either active "
            "or suspended.",
        )
    taxes = dict((sub.get("plan") or {}).get("taxes") or {})
    for operation in operations:
        key = _PATCHABLE_TAXES.get(str(operation.get("path")))
        if operation.get("op") not in {"add", "replace"} or key is None:
            return problem(
                422,
                "UNPROCESSABLE_ENTITY",
                "PATCH_PATH_NOT_SUPPORTED",
                f"Patching {operation.get('path')} is not supported by the sandbox.",
            )
        taxes[key] = operation.get("value")
    refused = _check_override({"taxes": taxes})
    if refused is not None:
        return refused
    sub["plan"] = {**(sub.get("plan") or {}), "taxes": taxes}
    sub["plan_overridden"] = True
    sub["update_time"] = state.iso_now()
    await sandbox.emit(
        "BILLING.SUBSCRIPTION.UPDATED", "subscription", view(sandbox, sub), "Subscription updated"
    )
    return Response(status_code=204)
