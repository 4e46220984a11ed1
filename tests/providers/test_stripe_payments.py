"""Customers, Checkout Sessions, refunds, the Billing Portal and fetch, against the Stripe stub.

These check what the adapter sends (parameters, idempotency keys, metadata that links Stripe
objects back to local rows) and how it reads the answers.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from fastapi_cashier.errors import InvalidProviderRequestError
from fastapi_cashier.money import Money
from fastapi_cashier.providers.base import (
    CheckoutSnapshot,
    InvoiceSnapshot,
    PaymentSnapshot,
    PortalRequest,
    SubscriptionSnapshot,
)
from fastapi_cashier.providers.stripe import StripeProvider
from fastapi_cashier.statuses import CheckoutSessionStatus, PaymentStatus, PricingModel, SubscriptionStatus

from .contract import CUSTOMER, Clock, checkout_request, plan, refund_request, synced
from .stripe_stub import StripeStub

pytestmark = pytest.mark.anyio


async def test_a_customer_carries_the_local_ids(stripe_provider: StripeProvider, stub: StripeStub) -> None:
    customer_id = await stripe_provider.create_customer(CUSTOMER, idempotency_key="customer-7-stripe")

    [request] = stub.requests_to("POST", "/v1/customers")
    assert request.headers["Idempotency-Key"] == "customer-7-stripe"
    assert request.params == {
        "email": "grace@example.com",
        "name": "Grace",
        "metadata": {"customer_id": str(CUSTOMER.id), "external_id": "user-7"},
    }
    assert stub.find("customer", customer_id)["metadata"]["external_id"] == "user-7"


async def test_a_payment_checkout(stripe_provider: StripeProvider, stub: StripeStub, clock: Clock) -> None:
    request = checkout_request(
        clock, reference="booking-7", customer=dataclasses.replace(CUSTOMER, provider_customer_id="cus_7")
    )
    result = await stripe_provider.create_checkout(request)

    [sent] = stub.requests_to("POST", "/v1/checkout/sessions")
    local = {
        "checkout_session_id": str(request.session_id),
        "customer_id": str(CUSTOMER.id),
        "reference": "booking-7",
    }
    assert sent.headers["Idempotency-Key"] == request.idempotency_key
    assert sent.params == {
        "mode": "payment",
        "success_url": "https://shop.example/thanks",
        "cancel_url": "https://shop.example/cart",
        "client_reference_id": str(request.session_id),
        "metadata": local,
        "expires_at": str(int(request.expires_at.timestamp())),
        "customer": "cus_7",
        "line_items": [
            {
                "quantity": "1",
                "price_data": {
                    "currency": "eur",
                    "unit_amount": "1000",
                    "product_data": {"name": "Concert ticket"},
                },
            }
        ],
        "payment_intent_data": {"metadata": local, "description": "Concert ticket"},
    }
    assert result.url == f"https://checkout.stripe.com/c/pay/{result.provider_session_id}"
    assert result.expires_at == request.expires_at
    assert result.provider_customer_id == "cus_7"


async def test_a_checkout_without_a_stripe_customer_creates_one(
    stripe_provider: StripeProvider, stub: StripeStub, clock: Clock
) -> None:
    await stripe_provider.create_checkout(checkout_request(clock))

    [sent] = stub.requests_to("POST", "/v1/checkout/sessions")
    assert (sent.params["customer_email"], sent.params["customer_creation"]) == (
        "grace@example.com",
        "always",
    )
    assert "customer" not in sent.params


@pytest.mark.parametrize(("hours", "sent_hours"), [(0.1, 0.5 + 1 / 60), (24, 23), (30, 23), (22, 22)])
async def test_the_checkout_expiry_is_kept_inside_stripes_window(
    stripe_provider: StripeProvider, stub: StripeStub, clock: Clock, hours: float, sent_hours: float
) -> None:
    await stripe_provider.create_checkout(
        checkout_request(clock, expires_at=clock() + timedelta(hours=hours))
    )

    [sent] = stub.requests_to("POST", "/v1/checkout/sessions")
    assert int(sent.params["expires_at"]) == int((clock() + timedelta(hours=sent_hours)).timestamp())


async def test_a_subscription_checkout(
    stripe_provider: StripeProvider, stub: StripeStub, clock: Clock
) -> None:
    pro = await synced(stripe_provider, plan(trial_days=14))
    request = checkout_request(clock, mode="subscription", amount=None, plan=pro, quantity=3)
    result = await stripe_provider.create_checkout(request)

    [sent] = stub.requests_to("POST", "/v1/checkout/sessions")
    assert sent.params["line_items"] == [{"price": pro.provider_price_id, "quantity": "3"}]
    assert sent.params["subscription_data"] == {
        "metadata": sent.params["metadata"],
        "trial_period_days": "14",
    }
    assert "payment_intent_data" not in sent.params
    # The hosted page is paid: the subscription Stripe creates names the local rows.
    events = stub.complete_checkout(result.provider_session_id)
    created = next(e for e in events if e["type"] == "customer.subscription.created")
    assert created["data"]["object"]["metadata"]["checkout_session_id"] == str(request.session_id)
    snapshot = await stripe_provider.fetch("subscription", created["data"]["object"]["id"])
    assert isinstance(snapshot, SubscriptionSnapshot)
    assert (snapshot.status, snapshot.quantity) == (SubscriptionStatus.TRIALING, 3)


async def test_a_metered_subscription_checkout_sends_no_quantity(
    stripe_provider: StripeProvider, stub: StripeStub, clock: Clock
) -> None:
    metered = await synced(stripe_provider, plan(10, pricing_model=PricingModel.METERED))
    await stripe_provider.create_checkout(
        checkout_request(clock, mode="subscription", amount=None, plan=metered, quantity=5)
    )

    [sent] = stub.requests_to("POST", "/v1/checkout/sessions")
    assert sent.params["line_items"] == [{"price": metered.provider_price_id}]


async def test_a_subscription_checkout_needs_a_synced_price(
    stripe_provider: StripeProvider, clock: Clock
) -> None:
    with pytest.raises(InvalidProviderRequestError, match="catalog sync --provider stripe"):
        await stripe_provider.create_checkout(
            checkout_request(clock, mode="subscription", amount=None, plan=plan())
        )


async def test_a_payment_checkout_needs_a_positive_amount(
    stripe_provider: StripeProvider, clock: Clock
) -> None:
    with pytest.raises(InvalidProviderRequestError, match="positive amount"):
        await stripe_provider.create_checkout(checkout_request(clock, amount=Money(0, "EUR")))


async def test_a_completed_checkout_is_fetched(
    stripe_provider: StripeProvider, stub: StripeStub, clock: Clock
) -> None:
    result = await stripe_provider.create_checkout(checkout_request(clock))
    stub.complete_checkout(result.provider_session_id)

    snapshot = await stripe_provider.fetch("checkout_session", result.provider_session_id)

    assert isinstance(snapshot, CheckoutSnapshot)
    assert snapshot.status is CheckoutSessionStatus.COMPLETE
    assert (
        snapshot.provider_payment_id
        == stub.find("checkout.session", result.provider_session_id)["payment_intent"]
    )


async def test_a_declined_payment_is_fetched_as_failed(
    stripe_provider: StripeProvider, stub: StripeStub, clock: Clock
) -> None:
    result = await stripe_provider.create_checkout(checkout_request(clock))
    [failed] = stub.complete_checkout(result.provider_session_id, declined=True)

    snapshot = await stripe_provider.fetch("payment", failed["data"]["object"]["id"])

    assert isinstance(snapshot, PaymentSnapshot)
    assert snapshot.status is PaymentStatus.FAILED
    assert (snapshot.failure_code, snapshot.payment_method_summary) == ("generic_decline", "visa •••• 0002")


async def test_a_subscription_payment_is_fetched_with_its_invoice_and_subscription(
    stripe_provider: StripeProvider, stub: StripeStub, clock: Clock
) -> None:
    pro = await synced(stripe_provider, plan())
    result = await stripe_provider.create_checkout(
        checkout_request(clock, mode="subscription", amount=None, plan=pro, quantity=2)
    )
    events = {e["type"]: e["data"]["object"] for e in stub.complete_checkout(result.provider_session_id)}

    payment = await stripe_provider.fetch("payment", events["payment_intent.succeeded"]["id"])
    invoice = await stripe_provider.fetch("invoice", events["invoice.paid"]["id"])

    assert isinstance(payment, PaymentSnapshot)
    assert payment.provider_invoice_id == events["invoice.paid"]["id"]
    assert payment.provider_subscription_id == events["customer.subscription.created"]["id"]
    assert payment.amount == Money(3000, "EUR")
    assert isinstance(invoice, InvoiceSnapshot)
    assert invoice.provider_payment_id == events["payment_intent.succeeded"]["id"]
    assert [(line["quantity"], line["unit_amount"], line["amount"]) for line in invoice.lines] == [
        (2, 1500, 3000)
    ]


async def test_customers_cannot_be_fetched(stripe_provider: StripeProvider) -> None:
    with pytest.raises(InvalidProviderRequestError, match="cannot fetch customer"):
        await stripe_provider.fetch("customer", "cus_1")


async def test_an_unknown_object_is_an_invalid_request(stripe_provider: StripeProvider) -> None:
    with pytest.raises(InvalidProviderRequestError) as raised:
        await stripe_provider.fetch("refund", "re_missing")
    assert raised.value.provider_code == "resource_missing"


# --------------------------------------------------------------------------- refunds


async def test_a_refund_links_back_to_the_local_row(
    stripe_provider: StripeProvider, stub: StripeStub
) -> None:
    intent = stub.add_payment_intent(2000, "eur")
    request = refund_request(intent["id"], 500)
    result = await stripe_provider.refund(dataclasses.replace(request, reason="arrived broken"))

    [sent] = stub.requests_to("POST", "/v1/refunds")
    assert sent.headers["Idempotency-Key"] == request.idempotency_key
    assert sent.params == {
        "amount": "500",
        "payment_intent": intent["id"],
        "metadata": {"refund_id": str(request.refund_id), "reason": "arrived broken"},
    }
    refund_event = next(e for e in stub.events if e["type"] == "refund.created")
    assert refund_event["data"]["object"]["id"] == result.provider_refund_id


async def test_a_refund_reason_stripe_knows_is_sent_as_reason(
    stripe_provider: StripeProvider, stub: StripeStub
) -> None:
    intent = stub.add_payment_intent(2000, "eur")
    await stripe_provider.refund(refund_request(intent["id"], 500))

    [sent] = stub.requests_to("POST", "/v1/refunds")
    assert sent.params["reason"] == "requested_by_customer"
    assert "reason" not in sent.params["metadata"]


async def test_a_refund_beyond_what_is_left_is_refused_by_stripe(
    stripe_provider: StripeProvider, stub: StripeStub
) -> None:
    intent = stub.add_payment_intent(2000, "eur")
    with pytest.raises(InvalidProviderRequestError) as raised:
        await stripe_provider.refund(refund_request(intent["id"], 2001))
    assert raised.value.provider_code == "amount_too_large"


# --------------------------------------------------------------------------- portal


async def test_a_portal_session(stripe_provider: StripeProvider, stub: StripeStub) -> None:
    customer_id = await stripe_provider.create_customer(CUSTOMER, idempotency_key="customer-portal")
    result = await stripe_provider.create_portal_session(
        PortalRequest(
            customer=dataclasses.replace(CUSTOMER, provider_customer_id=customer_id),
            return_url="https://shop.example/account",
        )
    )

    [sent] = stub.requests_to("POST", "/v1/billing_portal/sessions")
    assert sent.params == {"customer": customer_id, "return_url": "https://shop.example/account"}
    assert result.url.startswith("https://billing.stripe.com/p/session/")


async def test_a_portal_session_needs_a_stripe_customer(stripe_provider: StripeProvider) -> None:
    with pytest.raises(InvalidProviderRequestError, match="no Stripe customer id"):
        await stripe_provider.create_portal_session(
            PortalRequest(customer=CUSTOMER, return_url="https://shop.example/account")
        )


async def test_a_checkout_repeated_minutes_later_with_its_key_is_the_same_session(
    stripe_provider: StripeProvider, stub: StripeStub, clock: Clock
) -> None:
    # The library's checkout lives 24 hours, longer than Stripe allows: the expiry sent must not
    # depend on the minute of the call, or Stripe would refuse the repeated key.
    request = checkout_request(clock, expires_at=clock() + timedelta(hours=24))
    first = await stripe_provider.create_checkout(request)
    clock.now += timedelta(minutes=10)
    again = await stripe_provider.create_checkout(request)

    assert again.provider_session_id == first.provider_session_id
    assert again.expires_at == request.expires_at - timedelta(hours=1)
