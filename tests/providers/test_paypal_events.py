"""PayPal events normalised: the sandbox's deliveries and the real ones in ../shared."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from fastapi_cashier.errors import WebhookError
from fastapi_cashier.money import Money
from fastapi_cashier.providers.base import (
    CheckoutSnapshot,
    InvoiceSnapshot,
    PaymentSnapshot,
    RefundSnapshot,
    SubscriptionSnapshot,
)
from fastapi_cashier.providers.paypal import PayPalClient
from fastapi_cashier.providers.paypal._events import parse_event
from fastapi_cashier.providers.paypal._objects import decode_local_ids, encode_local_ids
from fastapi_cashier.statuses import (
    CheckoutSessionStatus,
    InvoiceStatus,
    PaymentStatus,
    RefundStatus,
    SubscriptionStatus,
)

from .paypal_sandbox import PayPalSandbox
from .test_paypal_sandbox import ORDER, click, link, plan_request

pytestmark = pytest.mark.anyio

PAYLOADS = Path(__file__).resolve().parents[2].parent / "shared" / "provider-payloads" / "paypal"
SESSION = uuid.UUID("5b0c9a52-7d1e-4c1b-9a57-0f3c6f0b9a11")
CUSTOMER = uuid.UUID("0e8b1c70-2f4e-4d7a-8d35-7a3c1e55b0c2")


def test_local_ids_round_trip_through_custom_id() -> None:
    encoded = encode_local_ids({"checkout_session_id": SESSION, "customer_id": CUSTOMER, "reference": "x"})
    assert encoded == f"cs={SESSION};cu={CUSTOMER}"
    assert len(encoded) <= 127
    assert decode_local_ids(encoded) == {"checkout_session_id": str(SESSION), "customer_id": str(CUSTOMER)}
    # Someone else's custom_id (pretix writes "Order PAYPALV2-JWJGC") names no local row.
    for foreign in ("Order PAYPALV2-JWJGC", "cs=not-a-uuid", "xx=1", "", None, 5):
        assert decode_local_ids(foreign) == {}


async def test_a_one_off_payment_story(paypal_sandbox: PayPalSandbox, paypal_client: PayPalClient) -> None:
    order_request = json.loads(json.dumps(ORDER))
    order_request["purchase_units"][0]["custom_id"] = encode_local_ids({"checkout_session_id": SESSION})
    order = await paypal_client.post(
        "/v2/checkout/orders", operation="create", request_id="c-1", json=order_request
    )
    await click(paypal_client, link(order, "payer-action"), "approve")
    captured = await paypal_client.post(
        f"/v2/checkout/orders/{order['id']}/capture", operation="capture", request_id="k"
    )
    capture_id = captured["purchase_units"][0]["payments"]["captures"][0]["id"]
    await paypal_client.post(
        f"/v2/payments/captures/{capture_id}/refund",
        operation="refund",
        request_id="r-1",
        json={"amount": {"currency_code": "EUR", "value": "3.59"}},
    )
    approved, completed, refunded = (parse_event(body) for _, body in paypal_sandbox.sent_events)

    assert (approved.type, approved.object_kind, approved.object_id) == (
        "checkout.approved",
        "checkout_session",
        order["id"],
    )
    assert approved.snapshot == CheckoutSnapshot(order["id"], CheckoutSessionStatus.OPEN)
    assert approved.local_ids == {"checkout_session_id": str(SESSION)}
    assert not approved.refetch

    assert (completed.type, completed.object_kind, completed.object_id) == (
        "payment.succeeded",
        "payment",
        capture_id,
    )
    payment = completed.snapshot
    assert isinstance(payment, PaymentSnapshot)
    assert (payment.status, payment.amount, payment.refunded_amount) == (
        PaymentStatus.SUCCEEDED,
        Money(4359, "EUR"),
        0,
    )
    assert payment.provider_session_id == order["id"]
    assert completed.local_ids == {"checkout_session_id": str(SESSION)}
    assert completed.refetch

    assert refunded.type == "refund.succeeded"
    refund = refunded.snapshot
    assert isinstance(refund, RefundSnapshot)
    assert (refund.provider_payment_id, refund.amount, refund.status) == (
        capture_id,
        Money(359, "EUR"),
        RefundStatus.SUCCEEDED,
    )
    assert refunded.refetch

    # The order, re-read, carries the refunded total of its capture.
    from fastapi_cashier.providers.paypal._objects import capture_of_order, payment_snapshot

    fetched = await paypal_client.get(f"/v2/checkout/orders/{order['id']}", operation="read")
    capture = capture_of_order(fetched)
    assert capture is not None
    again = payment_snapshot(capture, order=fetched)
    assert (again.status, again.refunded_amount) == (PaymentStatus.PARTIALLY_REFUNDED, 359)


async def test_pending_then_completed_capture(
    paypal_sandbox: PayPalSandbox, paypal_client: PayPalClient
) -> None:
    order = await paypal_client.post("/v2/checkout/orders", operation="create", request_id="c-1", json=ORDER)
    await click(paypal_client, link(order, "payer-action"), "approve_echeck")
    captured = await paypal_client.post(
        f"/v2/checkout/orders/{order['id']}/capture", operation="capture", request_id="k"
    )
    capture_id = captured["purchase_units"][0]["payments"]["captures"][0]["id"]
    await paypal_sandbox.complete_pending_capture(capture_id, deny=True)
    pending, denied = (parse_event(body) for _, body in paypal_sandbox.sent_events[1:])
    assert pending.type == "payment.processing"
    assert isinstance(pending.snapshot, PaymentSnapshot)
    assert pending.snapshot.status is PaymentStatus.PROCESSING
    assert denied.type == "payment.failed"
    assert isinstance(denied.snapshot, PaymentSnapshot)
    assert denied.snapshot.status is PaymentStatus.FAILED


async def test_a_subscription_story(paypal_sandbox: PayPalSandbox, paypal_client: PayPalClient) -> None:
    product = await paypal_client.post(
        "/v1/catalogs/products", operation="create", request_id="p", json={"name": "Team", "type": "SERVICE"}
    )
    plan = await paypal_client.post(
        "/v1/billing/plans", operation="create", request_id="pl", json=plan_request(product["id"])
    )
    custom_id = encode_local_ids({"checkout_session_id": SESSION})
    sub = await paypal_client.post(
        "/v1/billing/subscriptions",
        operation="create",
        request_id="s",
        json={
            "plan_id": plan["id"],
            "quantity": "3",
            "custom_id": custom_id,
            "application_context": {
                "return_url": "https://shop.example/ok",
                "cancel_url": "https://shop.example/no",
            },
        },
    )
    await click(paypal_client, link(sub, "approve"), "approve")
    await paypal_sandbox.advance(14 * 86400)
    paypal_sandbox.fail_next_payment(sub["id"])
    await paypal_sandbox.advance(31 * 86400)
    await paypal_client.post(
        f"/v1/billing/subscriptions/{sub['id']}/suspend", operation="s", request_id="s1", json={"reason": "r"}
    )
    await paypal_client.post(
        f"/v1/billing/subscriptions/{sub['id']}/cancel", operation="c", request_id="c1", json={"reason": "r"}
    )
    events = [parse_event(body) for _, body in paypal_sandbox.sent_events]
    assert [event.type for event in events] == [
        "subscription.created",
        "subscription.updated",
        "invoice.paid",
        "subscription.updated",
        "subscription.updated",
        "subscription.canceled",
    ]
    created, activated, paid, failed, suspended, cancelled = events
    assert created.local_ids == {"checkout_session_id": str(SESSION)}
    assert isinstance(created.snapshot, SubscriptionSnapshot)
    assert created.snapshot.status is SubscriptionStatus.INCOMPLETE
    assert isinstance(activated.snapshot, SubscriptionSnapshot)
    assert activated.snapshot.status is SubscriptionStatus.TRIALING
    assert activated.snapshot.trial_end == activated.snapshot.current_period_end
    assert (activated.snapshot.quantity, activated.snapshot.provider_price_id) == (3, plan["id"])
    assert isinstance(paid.snapshot, InvoiceSnapshot)
    assert paid.snapshot.status is InvoiceStatus.PAID
    assert (paid.snapshot.total, paid.snapshot.amount_paid) == (Money(3000, "USD"), 3000)
    assert paid.snapshot.provider_subscription_id == sub["id"]
    assert paid.local_ids == {"checkout_session_id": str(SESSION)}  # the sale's "custom"
    assert isinstance(failed.snapshot, SubscriptionSnapshot)
    assert failed.snapshot.status is SubscriptionStatus.ACTIVE  # nothing outstanding in the sandbox
    assert isinstance(suspended.snapshot, SubscriptionSnapshot)
    assert suspended.snapshot.status is SubscriptionStatus.PAUSED
    assert suspended.snapshot.paused
    assert isinstance(cancelled.snapshot, SubscriptionSnapshot)
    assert cancelled.snapshot.status is SubscriptionStatus.CANCELED
    assert cancelled.snapshot.ended_at is not None


def shared(name: str) -> bytes:
    path = PAYLOADS / name
    if not path.is_file():
        pytest.skip("../shared/provider-payloads/paypal is not here")
    return path.read_bytes()


def test_real_capture_and_refund_events() -> None:
    completed = parse_event(shared("pretix__PAYMENT.CAPTURE.COMPLETED.json"))
    assert (completed.id, completed.type, completed.object_id) == (
        "WH-88L014580L300952M-4BX97184625330932",
        "payment.succeeded",
        "22A4162004478570J",
    )
    assert isinstance(completed.snapshot, PaymentSnapshot)
    assert completed.snapshot.amount == Money(4359, "EUR")
    assert completed.snapshot.provider_session_id == "806440346Y391300T"
    assert completed.local_ids == {}

    refunded = parse_event(shared("pretix__PAYMENT.CAPTURE.REFUNDED.json"))
    assert refunded.type == "refund.succeeded"
    assert isinstance(refunded.snapshot, RefundSnapshot)
    assert (refunded.snapshot.provider_refund_id, refunded.snapshot.provider_payment_id) == (
        "1YK122615V244890X",
        "22A4162004478570J",
    )
    assert refunded.snapshot.amount == Money(4359, "EUR")

    order = parse_event(shared("pretix__CHECKOUT.ORDER.COMPLETED.json"))
    assert order.type == "checkout.completed"
    assert isinstance(order.snapshot, CheckoutSnapshot)
    assert order.snapshot.status is CheckoutSessionStatus.COMPLETE
    assert order.snapshot.provider_payment_id == "22A4162004478570J"


@pytest.mark.parametrize(
    "name",
    [
        "java_sdk__BILLING.PLAN.CREATED.body.json",
        "node_sdk_sample__PAYMENT.SALE.COMPLETED.body.json",
        "php_sdk__PAYMENTS.PAYMENT.CREATED.body.json",
        "node_sdk_test__PAYMENT.AUTHORIZATION.CREATED.body.json",
    ],
)
def test_events_the_library_does_not_apply_are_recorded_only(name: str) -> None:
    event = parse_event(shared(name))
    assert event.snapshot is None
    assert event.type == json.loads(shared(name))["event_type"]
    assert event.id.startswith("WH-")


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[]", b'{"id": "WH-1"}', b'{"id": "WH-1", "event_type": "X", "resource": []}'],
)
def test_bodies_that_are_not_events_are_refused(body: bytes) -> None:
    with pytest.raises(WebhookError):
        parse_event(body)


def test_a_malformed_resource_is_refused() -> None:
    event = {
        "id": "WH-1",
        "event_type": "PAYMENT.CAPTURE.COMPLETED",
        "create_time": "2026-01-01T00:00:00Z",
        "resource": {"id": "C1", "status": "COMPLETED", "amount": {"currency_code": "USD", "value": "1.005"}},
    }
    with pytest.raises(WebhookError, match="malformed"):
        parse_event(json.dumps(event).encode())
