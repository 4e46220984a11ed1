"""Billing Subscriptions v1 of the sandbox: create, approve, revise, suspend, activate, cancel, renew."""

from __future__ import annotations

import html
from datetime import datetime
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
            "amount": {"currency_code": currency, "value": f"{amount:.2f}"},
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
        value = f"{amount:.2f}" if currency not in {"JPY", "HUF", "TWD"} else f"{amount:.0f}"
        sale = {
            "id": sale_id,
            "state": "completed",
            "amount": {"total": value, "currency": currency, "details": {"subtotal": value}},
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
        sub["_pending_revision"] = {
            "plan_id": plan["id"],
            "quantity": str(payload.get("quantity", sub["quantity"])),
            "return_url": context.get("return_url"),
            "cancel_url": context.get("cancel_url"),
        }
        answer = {
            "plan_id": plan["id"],
            "quantity": sub["_pending_revision"]["quantity"],
            "plan_overridden": False,
            "links": [state.link(f"/webapps/billing/subscriptions?ba_token={sub['_ba_token']}", "approve")],
        }
        return json_response(answer, 200)

    return await idempotent(state, request, act)
