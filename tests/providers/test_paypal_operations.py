"""The PayPal adapter's operations on the sandbox: orders, captures, refunds, subscriptions."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from fastapi_cashier.errors import InvalidProviderRequestError, PaymentDeclinedError, ProviderConnectionError
from fastapi_cashier.money import Money
from fastapi_cashier.providers.base import CheckoutRequest, CustomerRef, PlanRef, RefundRequest
from fastapi_cashier.providers.paypal import PayPalClient
from fastapi_cashier.providers.paypal._catalog import sync_plans
from fastapi_cashier.providers.paypal._payments import (
    capture_order,
    create_order,
    fetch_payment,
    order_request,
    refund_capture,
)
from fastapi_cashier.providers.paypal._subscriptions import (
    create_subscription,
    fetch_subscription,
    move_subscription,
    revise_subscription,
    subscription_request,
)
from fastapi_cashier.statuses import (
    BillingInterval,
    PaymentStatus,
    PricingModel,
    RefundStatus,
    SubscriptionStatus,
)

from .paypal_sandbox import Fault, PayPalSandbox
from .paypal_spec import assert_matches
from .test_paypal_sandbox import click

pytestmark = pytest.mark.anyio

CUSTOMER = CustomerRef(id=uuid.uuid4(), external_id="user-1", email="buyer@example.com")
RETURN = "https://shop.example/billing/paypal/return"


BOOKING = Money(4359, "EUR")


def checkout(amount: Money | None = BOOKING, **extra: object) -> CheckoutRequest:
    session = uuid.uuid4()
    fields: dict[str, object] = {
        "session_id": session,
        "idempotency_key": f"checkout-{session}",
        "mode": "payment",
        "customer": CUSTOMER,
        "success_url": "https://shop.example/ok",
        "cancel_url": "https://shop.example/cancel",
        "expires_at": datetime.now(UTC) + timedelta(hours=3),
        "amount": amount,
        "description": "Booking 42",
    }
    fields.update(extra)
    return CheckoutRequest(**fields)  # type: ignore[arg-type]


async def approved_order(
    paypal_client: PayPalClient, request: CheckoutRequest, action: str = "approve"
) -> str:
    order_id, url = await create_order(paypal_client, request, return_url=RETURN)
    redirect = await click(paypal_client, url, action)
    assert redirect.headers["location"].startswith(RETURN)
    return order_id


async def test_an_order_is_created_approved_and_captured_once(
    paypal_sandbox: PayPalSandbox, paypal_client: PayPalClient
) -> None:
    request = checkout()
    body = order_request(request, return_url=RETURN)
    assert_matches("checkout_orders_v2", "order_request", body)
    assert body["purchase_units"][0]["invoice_id"] == str(request.session_id)
    order_id = await approved_order(paypal_client, request)
    # The payer's return and the webhook both capture, with the same request id: one capture.
    first = await capture_order(paypal_client, order_id, request_id=f"checkout-complete-{request.session_id}")
    second = await capture_order(
        paypal_client, order_id, request_id=f"checkout-complete-{request.session_id}"
    )
    assert first == second
    assert (first.status, first.amount, first.provider_session_id) == (
        PaymentStatus.SUCCEEDED,
        Money(4359, "EUR"),
        order_id,
    )
    assert len(paypal_sandbox.state.captures) == 1
    # After PayPal forgot the request id, the second path reads the capture instead of failing.
    paypal_sandbox.state.answers.clear()
    assert (
        await capture_order(paypal_client, order_id, request_id=f"checkout-complete-{request.session_id}")
        == first
    )


async def test_a_declined_approval_raises_payment_declined(paypal_client: PayPalClient) -> None:
    request = checkout()
    order_id = await approved_order(paypal_client, request, "approve_declined")
    with pytest.raises(PaymentDeclinedError):
        await capture_order(paypal_client, order_id, request_id=f"checkout-complete-{request.session_id}")


async def test_a_pending_capture_stays_processing(
    paypal_sandbox: PayPalSandbox, paypal_client: PayPalClient
) -> None:
    request = checkout()
    order_id = await approved_order(paypal_client, request, "approve_echeck")
    payment = await capture_order(
        paypal_client, order_id, request_id=f"checkout-complete-{request.session_id}"
    )
    assert payment.status is PaymentStatus.PROCESSING
    await paypal_sandbox.complete_pending_capture(payment.provider_payment_id)
    assert (await fetch_payment(paypal_client, payment.provider_payment_id)).status is PaymentStatus.SUCCEEDED


@pytest.mark.parametrize("kind", ["500", "reset"])
async def test_a_capture_retried_after_a_fault_captures_once(
    paypal_sandbox: PayPalSandbox, paypal_client: PayPalClient, kind: str
) -> None:
    request = checkout()
    order_id = await approved_order(paypal_client, request)
    paypal_sandbox.state.faults.append(Fault("POST", "/capture", kind))
    with pytest.raises(ProviderConnectionError):
        await capture_order(paypal_client, order_id, request_id=f"checkout-complete-{request.session_id}")
    payment = await capture_order(
        paypal_client, order_id, request_id=f"checkout-complete-{request.session_id}"
    )
    assert payment.status is PaymentStatus.SUCCEEDED
    assert len(paypal_sandbox.state.captures) == 1
    ids = {call[2] for call in paypal_sandbox.state.calls if call[1].endswith("/capture")}
    assert ids == {f"checkout-complete-{request.session_id}"}


async def test_refunds_partial_then_full(paypal_sandbox: PayPalSandbox, paypal_client: PayPalClient) -> None:
    request = checkout(Money(1000, "JPY"))
    order_id = await approved_order(paypal_client, request)
    payment = await capture_order(
        paypal_client, order_id, request_id=f"checkout-complete-{request.session_id}"
    )
    assert payment.amount == Money(1000, "JPY")
    first = uuid.uuid4()
    result = await refund_capture(
        paypal_client,
        RefundRequest(
            first, f"refund-{first}", payment.provider_payment_id, Money(300, "JPY"), reason="damaged"
        ),
    )
    assert result.status is RefundStatus.SUCCEEDED
    # Retried with the same request id: the same refund, not a second one.
    again = await refund_capture(
        paypal_client,
        RefundRequest(
            first, f"refund-{first}", payment.provider_payment_id, Money(300, "JPY"), reason="damaged"
        ),
    )
    assert again == result
    fetched = await fetch_payment(paypal_client, payment.provider_payment_id)
    assert (fetched.status, fetched.refunded_amount) == (PaymentStatus.PARTIALLY_REFUNDED, 300)
    rest = uuid.uuid4()
    await refund_capture(
        paypal_client, RefundRequest(rest, f"refund-{rest}", payment.provider_payment_id, Money(700, "JPY"))
    )
    fetched = await fetch_payment(paypal_client, payment.provider_payment_id)
    assert (fetched.status, fetched.refunded_amount) == (PaymentStatus.REFUNDED, 1000)
    assert len(paypal_sandbox.state.refunds) == 2
    over = uuid.uuid4()
    with pytest.raises(InvalidProviderRequestError):
        await refund_capture(
            paypal_client, RefundRequest(over, f"refund-{over}", payment.provider_payment_id, Money(1, "JPY"))
        )


async def test_a_subscription_through_approval_revise_and_moves(
    paypal_sandbox: PayPalSandbox, paypal_client: PayPalClient
) -> None:
    seat = PlanRef(
        id=uuid.uuid4(),
        name="Team",
        unit_amount=Money(900, "USD"),
        interval=BillingInterval.MONTH,
        pricing_model=PricingModel.PER_UNIT,
    )
    seat = PlanRef(
        **{
            **{f: getattr(seat, f) for f in seat.__slots__},
            "provider_price_id": (await sync_plans(paypal_client, [seat]))[seat.id],
        }
    )  # type: ignore[arg-type]
    request = checkout(None, mode="subscription", plan=seat, quantity=3)
    body = subscription_request(request)
    assert_matches("billing_subscriptions_v1", "subscription_request_post", body)
    sub_id, url = await create_subscription(paypal_client, request)
    assert (await fetch_subscription(paypal_client, sub_id)).status is SubscriptionStatus.INCOMPLETE
    await click(paypal_client, url, "approve")
    active = await fetch_subscription(paypal_client, sub_id)
    assert (active.status, active.quantity, active.provider_price_id) == (
        SubscriptionStatus.ACTIVE,
        3,
        seat.provider_price_id,
    )

    snapshot, approval = await revise_subscription(
        paypal_client,
        sub_id,
        plan_id=None,
        quantity=5,
        return_url=RETURN,
        cancel_url=RETURN,
        request_id="revise-1",
    )
    assert approval is not None
    assert snapshot.quantity == 3  # pending until the subscriber approves
    await click(paypal_client, approval, "approve")
    assert (await fetch_subscription(paypal_client, sub_id)).quantity == 5

    paused = await move_subscription(
        paypal_client, sub_id, "suspend", reason="customer asked", request_id="p-1"
    )
    assert paused.status is SubscriptionStatus.PAUSED
    # Repeated (a retry after a lost answer): taken as done, since the subscription is suspended.
    assert (
        await move_subscription(paypal_client, sub_id, "suspend", reason="again", request_id="p-2")
    ).paused
    assert (
        await move_subscription(paypal_client, sub_id, "activate", reason="back", request_id="a-1")
    ).status is SubscriptionStatus.ACTIVE
    cancelled = await move_subscription(paypal_client, sub_id, "cancel", reason="bye", request_id="c-1")
    assert cancelled.status is SubscriptionStatus.CANCELED
    with pytest.raises(InvalidProviderRequestError):
        await move_subscription(paypal_client, sub_id, "activate", reason="too late", request_id="a-2")


def test_a_flat_plan_takes_no_quantity() -> None:
    flat = PlanRef(uuid.uuid4(), "Solo", Money(500, "USD"), BillingInterval.MONTH, provider_price_id="P-1")
    assert "quantity" not in subscription_request(checkout(None, mode="subscription", plan=flat))
    with pytest.raises(InvalidProviderRequestError, match="flat"):
        subscription_request(checkout(None, mode="subscription", plan=flat, quantity=2))
    unsynced = PlanRef(uuid.uuid4(), "Solo", Money(500, "USD"), BillingInterval.MONTH)
    with pytest.raises(InvalidProviderRequestError, match="catalog sync"):
        subscription_request(checkout(None, mode="subscription", plan=unsynced))
