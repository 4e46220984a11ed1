"""Orders v2 and Payments v2 of the sandbox: create, approve (hosted page), capture, refund."""

from __future__ import annotations

import html
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from .state import idempotent, json_response, not_found, paypal_id, problem

if TYPE_CHECKING:
    from . import PayPalSandbox


def _order_links(sandbox: PayPalSandbox, order_id: str) -> list[dict[str, str]]:
    state = sandbox.state
    return [
        state.link(f"/v2/checkout/orders/{order_id}", "self"),
        state.link(f"/checkoutnow?token={order_id}", "payer-action"),
        state.link(f"/v2/checkout/orders/{order_id}", "update", "PATCH"),
        state.link(f"/v2/checkout/orders/{order_id}/capture", "capture", "POST"),
    ]


async def create_order(sandbox: PayPalSandbox, request: Request) -> Response:
    state = sandbox.state
    payload = await request.json()

    async def act() -> Response:
        units = payload.get("purchase_units")
        if payload.get("intent") not in {"CAPTURE", "AUTHORIZE"} or not isinstance(units, list) or not units:
            return problem(
                400,
                "INVALID_REQUEST",
                "MISSING_REQUIRED_PARAMETER",
                "intent and purchase_units are required.",
            )
        context = (payload.get("payment_source") or {}).get("paypal", {}).get("experience_context") or {}
        order_id = paypal_id()
        order = {
            "id": order_id,
            "intent": payload["intent"],
            "status": "PAYER_ACTION_REQUIRED" if context else "CREATED",
            "purchase_units": [
                {
                    key: unit[key]
                    for key in ("reference_id", "amount", "custom_id", "invoice_id", "description")
                    if key in unit
                }
                for unit in units
            ],
            "create_time": state.iso_now(),
            "update_time": state.iso_now(),
            "links": _order_links(sandbox, order_id),
        }
        for unit in order["purchase_units"]:
            unit.setdefault("reference_id", "default")
            unit["payee"] = {"merchant_id": "7KNGBPH2U58GQ"}
        order["_return_url"] = context.get("return_url") or (payload.get("application_context") or {}).get(
            "return_url"
        )
        order["_cancel_url"] = context.get("cancel_url") or (payload.get("application_context") or {}).get(
            "cancel_url"
        )
        state.orders[order_id] = order
        return json_response(public(order), 201)

    return await idempotent(state, request, act)


def public(obj: dict[str, Any]) -> dict[str, Any]:
    """An object without the sandbox's own bookkeeping keys."""
    return {key: value for key, value in obj.items() if not key.startswith("_")}


def embedded(capture: dict[str, Any]) -> dict[str, Any]:
    """A capture as an order embeds it (Orders v2's capture has no ``supplementary_data``)."""
    return {key: value for key, value in public(capture).items() if key != "supplementary_data"}


async def get_order(sandbox: PayPalSandbox, request: Request) -> Response:
    order = sandbox.state.orders.get(request.path_params["id"])
    return json_response(public(order)) if order else not_found("order")


async def approval_page(sandbox: PayPalSandbox, request: Request) -> Response:
    order_id = request.query_params.get("token", "")
    order = sandbox.state.orders.get(order_id)
    if order is None:
        return HTMLResponse("<h1>No such order</h1>", status_code=404)
    amount = order["purchase_units"][0]["amount"]
    buttons = "".join(
        f'<button type="submit" name="action" value="{value}">{label}</button>'
        for value, label in (
            ("approve", "Pay with PayPal"),
            ("approve_echeck", "Pay by eCheck (pending)"),
            ("approve_declined", "Pay with a card that will be declined"),
            ("cancel", "Cancel and return to the merchant"),
        )
    )
    return HTMLResponse(
        f"<!doctype html><title>PayPal sandbox checkout</title><h1>Pay {html.escape(amount['value'])} "
        f"{html.escape(amount['currency_code'])}</h1>"
        f'<form method="post" action="/checkoutnow/{html.escape(order_id)}">{buttons}</form>'
    )


async def approve(sandbox: PayPalSandbox, request: Request) -> Response:
    state = sandbox.state
    order = state.orders.get(request.path_params["id"])
    if order is None:
        return HTMLResponse("<h1>No such order</h1>", status_code=404)
    action = (await request.form()).get("action")
    if action == "cancel":
        return RedirectResponse(
            f"{order['_cancel_url']}?{urlencode({'token': order['id']})}", status_code=303
        )
    # After INSTRUMENT_DECLINED the payer is sent back to approve the same order with another
    # funding source.
    declined_before = order["status"] == "APPROVED" and state.funding.get(order["id"]) == "declined"
    if order["status"] in {"CREATED", "PAYER_ACTION_REQUIRED"} or declined_before:
        order["status"] = "APPROVED"
        order["payer"] = {"payer_id": "QYR5Z8XDVJNXQ", "email_address": "buyer@example.com"}
        order["update_time"] = state.iso_now()
        state.funding[order["id"]] = {"approve_echeck": "echeck", "approve_declined": "declined"}.get(
            str(action), "instant"
        )
        await sandbox.emit(
            "CHECKOUT.ORDER.APPROVED", "checkout-order", public(order), "Checkout Order Approved"
        )
    query = urlencode({"token": order["id"], "PayerID": "QYR5Z8XDVJNXQ"})
    return RedirectResponse(f"{order['_return_url']}?{query}", status_code=303)


async def capture_order(sandbox: PayPalSandbox, request: Request) -> Response:
    state = sandbox.state
    order = state.orders.get(request.path_params["id"])
    if order is None:
        return not_found("order")

    async def act() -> Response:
        if order["status"] == "COMPLETED":
            return problem(422, "UNPROCESSABLE_ENTITY", "ORDER_ALREADY_CAPTURED", "Order already captured.")
        if order["status"] != "APPROVED":
            return problem(
                422,
                "UNPROCESSABLE_ENTITY",
                "ORDER_NOT_APPROVED",
                "Payer has not yet approved the Order for payment.",
            )
        funding = state.funding.get(order["id"], "instant")
        if funding == "declined":
            return problem(
                422, "UNPROCESSABLE_ENTITY", "INSTRUMENT_DECLINED", "The instrument presented was declined."
            )
        unit = order["purchase_units"][0]
        capture_id = paypal_id()
        capture: dict[str, Any] = {
            "id": capture_id,
            "status": "PENDING" if funding == "echeck" else "COMPLETED",
            "amount": unit["amount"],
            "final_capture": True,
            "seller_protection": {"status": "ELIGIBLE", "dispute_categories": ["ITEM_NOT_RECEIVED"]},
            "supplementary_data": {"related_ids": {"order_id": order["id"]}},
            "create_time": state.iso_now(),
            "update_time": state.iso_now(),
            "links": [
                state.link(f"/v2/payments/captures/{capture_id}", "self"),
                state.link(f"/v2/payments/captures/{capture_id}/refund", "refund", "POST"),
                state.link(f"/v2/checkout/orders/{order['id']}", "up"),
            ],
        }
        if funding == "echeck":
            capture["status_details"] = {"reason": "ECHECK"}
        for key in ("custom_id", "invoice_id"):
            if key in unit:
                capture[key] = unit[key]
        capture["_refunded"] = Decimal(0)
        state.captures[capture_id] = capture
        unit["payments"] = {"captures": [embedded(capture)]}
        order["status"] = "COMPLETED"
        order["update_time"] = state.iso_now()
        kind = "PAYMENT.CAPTURE.PENDING" if funding == "echeck" else "PAYMENT.CAPTURE.COMPLETED"
        await sandbox.emit(kind, "capture", public(capture), f"Payment {capture['status'].lower()}")
        return json_response(public(order), 201)

    return await idempotent(state, request, act)


async def complete_pending_capture(sandbox: PayPalSandbox, capture_id: str, *, deny: bool = False) -> None:
    """The e-check cleared (or bounced): the capture completes (or is denied) and an event says so."""
    state = sandbox.state
    capture = state.captures[capture_id]
    capture["status"] = "DECLINED" if deny else "COMPLETED"
    capture.pop("status_details", None)
    capture["update_time"] = state.iso_now()
    _refresh_order_capture(sandbox, capture)
    kind = "PAYMENT.CAPTURE.DENIED" if deny else "PAYMENT.CAPTURE.COMPLETED"
    await sandbox.emit(kind, "capture", public(capture), f"Payment {capture['status'].lower()}")


def _refresh_order_capture(sandbox: PayPalSandbox, capture: dict[str, Any]) -> None:
    order = sandbox.state.orders[capture["supplementary_data"]["related_ids"]["order_id"]]
    payments: dict[str, Any] = {"captures": [embedded(capture)]}
    if capture.get("_refunds"):
        payments["refunds"] = list(capture["_refunds"])
    order["purchase_units"][0]["payments"] = payments


async def get_capture(sandbox: PayPalSandbox, request: Request) -> Response:
    capture = sandbox.state.captures.get(request.path_params["id"])
    # The API's capture has no supplementary_data (webhook events' copies do, as PayPal sends them).
    return json_response(embedded(capture)) if capture else not_found("capture")


async def refund_capture(sandbox: PayPalSandbox, request: Request) -> Response:
    state = sandbox.state
    capture = state.captures.get(request.path_params["id"])
    if capture is None:
        return not_found("capture")
    payload = await request.json() if await request.body() else {}

    async def act() -> Response:
        if capture["status"] not in {"COMPLETED", "PARTIALLY_REFUNDED"}:
            if capture["status"] == "REFUNDED":
                return problem(
                    422,
                    "UNPROCESSABLE_ENTITY",
                    "CAPTURE_FULLY_REFUNDED",
                    "The capture has already been fully refunded.",
                )
            return problem(
                422, "UNPROCESSABLE_ENTITY", "REFUND_NOT_ALLOWED", "Refund cannot be issued for this capture."
            )
        total = Decimal(capture["amount"]["value"])
        remaining = total - capture["_refunded"]
        amount = payload.get("amount") or {
            "currency_code": capture["amount"]["currency_code"],
            "value": str(remaining),
        }
        if amount["currency_code"] != capture["amount"]["currency_code"]:
            return problem(
                422,
                "UNPROCESSABLE_ENTITY",
                "REFUND_CURRENCY_MISMATCH",
                "Refund must be in the capture's currency.",
            )
        value = Decimal(amount["value"])
        if value <= 0 or value > remaining:
            return problem(
                422,
                "UNPROCESSABLE_ENTITY",
                "REFUND_AMOUNT_EXCEEDED",
                "The refund amount exceeds the amount left.",
            )
        refund_id = paypal_id()
        refund = {
            "id": refund_id,
            "status": "COMPLETED",
            "amount": amount,
            "create_time": state.iso_now(),
            "update_time": state.iso_now(),
            "links": [
                state.link(f"/v2/payments/refunds/{refund_id}", "self"),
                state.link(f"/v2/payments/captures/{capture['id']}", "up"),
            ],
        }
        for key in ("invoice_id", "custom_id", "note_to_payer"):
            if key in payload:
                refund[key] = payload[key]
        state.refunds[refund_id] = refund
        capture.setdefault("_refunds", []).append(refund)
        capture["_refunded"] += value
        capture["status"] = "REFUNDED" if capture["_refunded"] == total else "PARTIALLY_REFUNDED"
        capture["update_time"] = state.iso_now()
        _refresh_order_capture(sandbox, capture)
        await sandbox.emit(
            "PAYMENT.CAPTURE.REFUNDED",
            "refund",
            refund,
            f"A {amount['value']} {amount['currency_code']} capture payment was refunded",
        )
        return json_response(refund, 201)

    return await idempotent(state, request, act)


async def get_refund(sandbox: PayPalSandbox, request: Request) -> Response:
    refund = sandbox.state.refunds.get(request.path_params["id"])
    return json_response(refund) if refund else not_found("refund")
