"""One-off payments at PayPal: Orders v2 with intent CAPTURE, the capture, refunds on the capture.

The checkout is an order whose first purchase unit carries the local ids in ``custom_id`` and the
checkout session's id as ``invoice_id`` (PayPal refuses a second payment with the same invoice id,
one more guard against paying twice). The payer approves on PayPal's page (the order's
``payer-action`` link); the approved order must then be captured, which this module does with a
``PayPal-Request-Id`` derived from the checkout session, so the payer's return and the
``CHECKOUT.ORDER.APPROVED`` webhook, whichever comes first, capture it once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ...errors import InvalidProviderRequestError, ProviderError
from ...statuses import RefundStatus
from ..base import CheckoutRequest, PaymentSnapshot, RefundRequest, RefundResult
from ._amounts import to_paypal_amount
from ._client import PayPalClient
from ._errors import PROVIDER_NAME
from ._objects import (
    MalformedObjectError,
    capture_of_order,
    encode_local_ids,
    link,
    order_id_of_capture,
    payment_snapshot,
    refund_snapshot,
    sale_invoice_snapshot,
)

__all__ = [
    "capture_order",
    "create_order",
    "fetch_payment",
    "order_request",
    "refund_capture",
]


def order_request(request: CheckoutRequest, *, return_url: str) -> dict[str, Any]:
    """The ``POST /v2/checkout/orders`` body of a one-off checkout."""
    if request.amount is None:
        raise InvalidProviderRequestError("a one-off PayPal checkout needs an amount", provider=PROVIDER_NAME)
    unit: dict[str, Any] = {
        "reference_id": "default",
        "custom_id": encode_local_ids(
            {"checkout_session_id": request.session_id, "customer_id": request.customer.id}
        ),
        "invoice_id": str(request.session_id),
        "amount": to_paypal_amount(request.amount),
    }
    if request.description:
        unit["description"] = request.description[:127]
    return {
        "intent": "CAPTURE",
        "purchase_units": [unit],
        "payment_source": {
            "paypal": {
                "experience_context": {
                    "return_url": return_url,
                    "cancel_url": request.cancel_url,
                    "user_action": "PAY_NOW",
                    "shipping_preference": "NO_SHIPPING",
                }
            }
        },
    }


async def create_order(client: PayPalClient, request: CheckoutRequest, *, return_url: str) -> tuple[str, str]:
    """Create the order; its id and the URL the payer approves it at."""
    order = await client.post(
        "/v2/checkout/orders",
        operation="create the order",
        request_id=request.idempotency_key,
        json=order_request(request, return_url=return_url),
    )
    approve = link(order, "payer-action") or link(order, "approve")
    order_id = order.get("id")
    if not isinstance(order_id, str) or approve is None:
        raise ProviderError(
            "PayPal answered the order without an id and approval link", provider=PROVIDER_NAME
        )
    return order_id, approve


async def capture_order(client: PayPalClient, order_id: str, *, request_id: str) -> PaymentSnapshot:
    """Capture an approved order once; the payment it made.

    ``request_id`` is derived from the checkout session, the same whichever path captures. An
    order already captured (with a request id PayPal no longer remembers) is read instead of
    failing. A declined instrument raises ``PaymentDeclinedError``.
    """
    try:
        order = await client.post(
            f"/v2/checkout/orders/{order_id}/capture",
            operation="capture the order",
            request_id=request_id,
        )
    except InvalidProviderRequestError as exc:
        if exc.provider_code != "ORDER_ALREADY_CAPTURED":
            raise
        order = await client.get(f"/v2/checkout/orders/{order_id}", operation="read the order")
    return _payment_of_order(order)


def _payment_of_order(order: Mapping[str, Any]) -> PaymentSnapshot:
    capture = capture_of_order(order)
    if capture is None:
        raise ProviderError(f"PayPal order {order.get('id')} has no capture", provider=PROVIDER_NAME)
    try:
        return payment_snapshot(capture, order=order)
    except MalformedObjectError as exc:
        raise ProviderError(
            f"PayPal answered a capture the adapter cannot read: {exc}", provider=PROVIDER_NAME
        ) from exc


async def fetch_payment(client: PayPalClient, capture_id: str) -> PaymentSnapshot:
    """Re-read a capture, with its order for the refunded total; or a subscription's sale
    (Payments v1), the other kind of PayPal payment."""
    try:
        capture = await client.get(f"/v2/payments/captures/{capture_id}", operation="read the capture")
    except InvalidProviderRequestError as exc:
        if exc.details.get("http_status") != 404:
            raise
        sale = await client.get(f"/v1/payments/sale/{capture_id}", operation="read the sale")
        try:
            return sale_invoice_snapshot(sale)[1]
        except MalformedObjectError as malformed:
            raise ProviderError(
                f"PayPal answered a sale the adapter cannot read: {malformed}", provider=PROVIDER_NAME
            ) from malformed
    order_id = order_id_of_capture(capture)
    order = (
        await client.get(f"/v2/checkout/orders/{order_id}", operation="read the order") if order_id else None
    )
    try:
        return payment_snapshot(capture, order=order)
    except MalformedObjectError as exc:
        raise ProviderError(
            f"PayPal answered a capture the adapter cannot read: {exc}", provider=PROVIDER_NAME
        ) from exc


async def refund_capture(client: PayPalClient, request: RefundRequest) -> RefundResult:
    """Refund ``request.amount`` of the capture ``request.provider_payment_id``."""
    body: dict[str, Any] = {
        "amount": to_paypal_amount(request.amount),
        "custom_id": encode_local_ids({"refund_id": request.refund_id}),
    }
    if request.reason:
        body["note_to_payer"] = request.reason[:255]
    refund = await client.post(
        f"/v2/payments/captures/{request.provider_payment_id}/refund",
        operation="refund the capture",
        request_id=request.idempotency_key,
        json=body,
    )
    try:
        snapshot = refund_snapshot(refund, capture_id=request.provider_payment_id)
    except MalformedObjectError as exc:
        raise ProviderError(
            f"PayPal answered a refund the adapter cannot read: {exc}", provider=PROVIDER_NAME
        ) from exc
    failure = "PayPal could not refund the capture" if snapshot.status is RefundStatus.FAILED else None
    return RefundResult(
        provider_refund_id=snapshot.provider_refund_id, status=snapshot.status, failure_message=failure
    )
