"""The Stripe adapter against ``localstripe``: a stateful fake Stripe server on 127.0.0.1.

localstripe speaks the Stripe API for customers, payment methods, PaymentIntents with the test
cards (success, declines, 3-D Secure), refunds, subscriptions on legacy Plans and their
cancellation, and it signs and delivers real webhooks. What it lacks (Prices, Checkout, the
Billing Portal, subscription updates, meters) is covered with the recorded-shape stub instead.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import httpx
import pytest
from fastapi import FastAPI

from fastapi_cashier import PaymentsRouter, PaymentsSettings
from fastapi_cashier.api.auth import create_token
from fastapi_cashier.errors import InvalidProviderRequestError, PaymentDeclinedError
from fastapi_cashier.money import Money
from fastapi_cashier.providers.base import (
    InvoiceSnapshot,
    PaymentSnapshot,
    RefundSnapshot,
    SubscriptionSnapshot,
)
from fastapi_cashier.providers.stripe import StripeProvider, stripe_errors
from fastapi_cashier.settings import AuthSettings
from fastapi_cashier.statuses import InvoiceStatus, PaymentStatus, RefundStatus, SubscriptionStatus

from .conftest import localstripe_provider
from .contract import CUSTOMER, ROTATED_SECRET, SECRET, refund_request
from .servers import DeliveryRecorder, serve

pytestmark = pytest.mark.anyio

VISA = "4242424242424242"
DECLINED_ON_ATTACH = "4000000000000002"
DECLINED_ON_CHARGE = "4000000000000341"
THREE_D_SECURE = "4000002760003184"
JWT_SECRET = "localstripe-test-jwt-secret-long-enough-for-hs256"


@pytest.fixture
async def provider(localstripe_url: str) -> AsyncIterator[StripeProvider]:
    async with httpx.AsyncClient() as http_client:
        yield localstripe_provider(localstripe_url, http_client)


async def new_customer(provider: StripeProvider) -> str:
    return await provider.create_customer(
        dataclasses.replace(CUSTOMER, id=uuid.uuid4()), idempotency_key=f"customer-{uuid.uuid4()}"
    )


async def card(provider: StripeProvider, number: str) -> str:
    with stripe_errors("create a payment method"):
        method = await provider.client.v1.payment_methods.create_async(
            {"type": "card", "card": {"number": number, "exp_month": 12, "exp_year": 2034, "cvc": "123"}}
        )
    return method.id


async def pay(provider: StripeProvider, number: str, amount: int = 1000, *, confirm: bool = True) -> str:
    """A PaymentIntent paid (or attempted) with the test card ``number``; its id."""
    customer = await new_customer(provider)
    method = await card(provider, number)
    with stripe_errors("create a PaymentIntent"):
        intent = await provider.client.v1.payment_intents.create_async(
            {"amount": amount, "currency": "eur", "customer": customer, "payment_method": method}
        )
        if confirm:
            await provider.client.v1.payment_intents.confirm_async(intent.id)
    return intent.id


async def payment(provider: StripeProvider, intent_id: str) -> PaymentSnapshot:
    snapshot = await provider.fetch("payment", intent_id)
    assert isinstance(snapshot, PaymentSnapshot)
    return snapshot


# --------------------------------------------------------------------------- customers and cards


async def test_a_customer_is_created_with_the_local_ids(provider: StripeProvider) -> None:
    local = dataclasses.replace(CUSTOMER, id=uuid.uuid4())
    customer_id = await provider.create_customer(local, idempotency_key=f"customer-{local.id}")

    with stripe_errors("read a customer"):
        customer = await provider.client.v1.customers.retrieve_async(customer_id)
    assert customer.id.startswith("cus_")
    assert (customer.email, customer.name) == ("grace@example.com", "Grace")
    assert customer.metadata is not None
    assert customer.metadata.to_dict() == {"customer_id": str(local.id), "external_id": "user-7"}


async def test_a_card_declined_when_attached_is_a_payment_declined_error(provider: StripeProvider) -> None:
    customer = await new_customer(provider)
    method = await card(provider, DECLINED_ON_ATTACH)

    with pytest.raises(PaymentDeclinedError) as raised, stripe_errors("attach a card"):
        await provider.client.v1.payment_methods.attach_async(method, {"customer": customer})

    assert raised.value.provider_code == "card_declined"
    assert raised.value.details["http_status"] == 402


# --------------------------------------------------------------------------- PaymentIntents


async def test_a_card_payment_succeeds(provider: StripeProvider) -> None:
    snapshot = await payment(provider, await pay(provider, VISA, 2500))

    assert snapshot.status is PaymentStatus.SUCCEEDED
    assert snapshot.amount == Money(2500, "EUR")
    assert snapshot.provider_customer_id is not None


async def test_a_payment_not_yet_confirmed_is_pending(provider: StripeProvider) -> None:
    snapshot = await payment(provider, await pay(provider, VISA, confirm=False))

    assert snapshot.status is PaymentStatus.PENDING


async def test_a_declined_charge_fails_the_payment(provider: StripeProvider) -> None:
    customer = await new_customer(provider)
    method = await card(provider, DECLINED_ON_CHARGE)
    with stripe_errors("create a PaymentIntent"):
        intent = await provider.client.v1.payment_intents.create_async(
            {"amount": 1000, "currency": "eur", "customer": customer, "payment_method": method}
        )

    with pytest.raises(PaymentDeclinedError, match="declined") as raised, stripe_errors("confirm a payment"):
        await provider.client.v1.payment_intents.confirm_async(intent.id)

    assert raised.value.provider_code == "card_declined"
    snapshot = await payment(provider, intent.id)
    assert snapshot.status is PaymentStatus.FAILED
    assert (snapshot.failure_code, snapshot.failure_message) == ("card_declined", "Your card was declined.")


@pytest.mark.parametrize(
    ("authenticated", "status"), [(True, PaymentStatus.SUCCEEDED), (False, PaymentStatus.FAILED)]
)
async def test_a_3d_secure_card_needs_action_then_succeeds_or_fails(
    provider: StripeProvider, localstripe_url: str, authenticated: bool, status: PaymentStatus
) -> None:
    intent_id = await pay(provider, THREE_D_SECURE)
    before = await payment(provider, intent_id)
    with stripe_errors("read a PaymentIntent"):
        secret = (await provider.client.v1.payment_intents.retrieve_async(intent_id)).client_secret

    # What Stripe.js does when the payer passes (or fails) the challenge.
    async with httpx.AsyncClient() as browser:
        answered = await browser.post(
            f"{localstripe_url}/v1/payment_intents/{intent_id}/_authenticate",
            data={
                "client_secret": secret,
                "success": "true" if authenticated else "false",
                "key": "pk_test_x",
            },
        )
    answered.raise_for_status()
    after = await payment(provider, intent_id)

    assert before.status is PaymentStatus.REQUIRES_ACTION
    assert after.status is status


# --------------------------------------------------------------------------- refunds


async def test_a_partial_then_a_full_refund(provider: StripeProvider) -> None:
    intent_id = await pay(provider, VISA, 1000)

    # localstripe takes no refund reason; free text goes to the refund's metadata anyway.
    partial = await provider.refund(
        dataclasses.replace(refund_request(intent_id, 250), reason="changed mind")
    )
    after_partial = await payment(provider, intent_id)
    rest = await provider.refund(dataclasses.replace(refund_request(intent_id, 750), reason=None))
    after_rest = await payment(provider, intent_id)
    refund = await provider.fetch("refund", partial.provider_refund_id)

    assert (partial.status, rest.status) == (RefundStatus.SUCCEEDED, RefundStatus.SUCCEEDED)
    assert (after_partial.status, after_partial.refunded_amount) == (PaymentStatus.PARTIALLY_REFUNDED, 250)
    assert (after_rest.status, after_rest.refunded_amount) == (PaymentStatus.REFUNDED, 1000)
    assert isinstance(refund, RefundSnapshot)
    assert (refund.provider_payment_id, refund.amount, refund.status) == (
        intent_id,
        Money(250, "EUR"),
        RefundStatus.SUCCEEDED,
    )
    assert refund.reason == "changed mind"


async def test_a_failed_payment_cannot_be_refunded(provider: StripeProvider) -> None:
    customer = await new_customer(provider)
    method = await card(provider, DECLINED_ON_CHARGE)
    with stripe_errors("create a PaymentIntent"):
        intent = await provider.client.v1.payment_intents.create_async(
            {"amount": 1000, "currency": "eur", "customer": customer, "payment_method": method}
        )
    with pytest.raises(PaymentDeclinedError), stripe_errors("confirm a payment"):
        await provider.client.v1.payment_intents.confirm_async(intent.id)

    with pytest.raises(InvalidProviderRequestError, match="Cannot refund a failed payment"):
        await provider.refund(dataclasses.replace(refund_request(intent.id, 100), reason=None))


# --------------------------------------------------------------------------- subscriptions


async def legacy_subscription(
    provider: StripeProvider, amount: int = 1200, quantity: int = 2
) -> tuple[str, str]:
    """A subscription to a legacy Plan, paid by a Visa card: (subscription id, plan id)."""
    customer = await new_customer(provider)
    method = await card(provider, VISA)
    with stripe_errors("set up a subscription"):
        await provider.client.v1.payment_methods.attach_async(method, {"customer": customer})
        await provider.client.v1.customers.update_async(
            customer, {"invoice_settings": {"default_payment_method": method}}
        )
        product = await provider.client.v1.products.create_async({"name": "Gold"})
        legacy_plan = await provider.client.v1.plans.create_async(
            {"amount": amount, "currency": "eur", "interval": "month", "product": product.id}
        )
        subscription = await provider.client.v1.subscriptions.create_async(
            {"customer": customer, "items": [{"plan": legacy_plan.id, "quantity": quantity}]}
        )
    return subscription.id, legacy_plan.id


async def test_a_subscription_on_a_legacy_plan_is_read(provider: StripeProvider) -> None:
    subscription_id, plan_id = await legacy_subscription(provider)

    snapshot = await provider.fetch("subscription", subscription_id)

    assert isinstance(snapshot, SubscriptionSnapshot)
    assert snapshot.status is SubscriptionStatus.ACTIVE
    assert (snapshot.provider_price_id, snapshot.quantity) == (plan_id, 2)
    # localstripe keeps the period on the subscription, as API versions before 2025 did.
    assert snapshot.current_period_start is not None
    assert snapshot.current_period_end is not None
    assert snapshot.current_period_end > snapshot.current_period_start


async def test_its_first_invoice_is_paid(provider: StripeProvider) -> None:
    subscription_id, _ = await legacy_subscription(provider, amount=1200, quantity=2)
    with stripe_errors("read a subscription"):
        latest = (await provider.client.v1.subscriptions.retrieve_async(subscription_id)).latest_invoice
    assert isinstance(latest, str)

    invoice = await provider.fetch("invoice", latest)

    assert isinstance(invoice, InvoiceSnapshot)
    assert (invoice.status, invoice.total, invoice.amount_paid) == (
        InvoiceStatus.PAID,
        Money(2400, "EUR"),
        2400,
    )
    assert invoice.provider_subscription_id == subscription_id
    assert invoice.provider_payment_id is not None
    paid_by = await payment(provider, invoice.provider_payment_id)
    assert paid_by.status is PaymentStatus.SUCCEEDED


async def test_cancel_at_period_end_resume_then_cancel_now(provider: StripeProvider) -> None:
    subscription_id, _ = await legacy_subscription(provider)

    scheduled = await provider.cancel_subscription(
        subscription_id, at_period_end=True, idempotency_key="c-end"
    )
    resumed = await provider.resume_subscription(subscription_id, idempotency_key="resume")
    canceled = await provider.cancel_subscription(
        subscription_id, at_period_end=False, idempotency_key="c-now"
    )

    assert (scheduled.snapshot.status, scheduled.snapshot.cancel_at_period_end) == (
        SubscriptionStatus.ACTIVE,
        True,
    )
    assert (resumed.snapshot.status, resumed.snapshot.cancel_at_period_end) == (
        SubscriptionStatus.ACTIVE,
        False,
    )
    assert canceled.snapshot.status is SubscriptionStatus.CANCELED
    assert canceled.snapshot.ended_at is not None


# --------------------------------------------------------------------------- real signed webhooks


@pytest.fixture
def app_url(own_localstripe: str, tmp_path: Path) -> Iterator[tuple[str, DeliveryRecorder]]:
    """The PaymentsRouter, with a Stripe provider on localstripe, served on 127.0.0.1."""
    app_provider = StripeProvider(
        api_key="sk_test_app",
        webhook_secrets=[SECRET, ROTATED_SECRET],
        base_addresses={"api": own_localstripe},
        max_network_retries=0,
    )
    settings = PaymentsSettings(
        environment="test",
        database={"url": f"sqlite+aiosqlite:///{tmp_path / 'payments.db'}", "create_tables": True},
        auth={"jwt_secret": JWT_SECRET},
        webhooks={"retry_loop": False},
    )
    payments = PaymentsRouter(settings, providers=[app_provider])

    @asynccontextmanager
    async def close_provider(app: FastAPI) -> AsyncIterator[None]:
        yield
        await app_provider.aclose()

    app = FastAPI(lifespan=close_provider)
    app.include_router(payments, prefix="/billing")
    recorder = DeliveryRecorder(app, "/billing/webhooks/stripe")
    with serve(recorder) as url:
        yield url, recorder


async def configure_webhook(
    localstripe_url: str, name: str, url: str, secret: str, events: list[str]
) -> None:
    async with httpx.AsyncClient() as client:
        answered = await client.post(
            f"{localstripe_url}/_config/webhooks/{name}",
            data={"url": url, "secret": secret, **{f"events[{i}]": e for i, e in enumerate(events)}},
        )
    answered.raise_for_status()


async def wait_for(condition: Callable[[], bool], seconds: float = 15.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for webhook deliveries")
        await anyio.sleep(0.05)


async def test_localstripe_webhooks_reach_the_inbox_through_our_endpoint(
    own_provider: StripeProvider, own_localstripe: str, app_url: tuple[str, DeliveryRecorder]
) -> None:
    provider = own_provider
    url, recorder = app_url
    endpoint = f"{url}/billing/webhooks/stripe"
    events = ["payment_intent.succeeded", "customer.subscription.deleted"]
    # The current secret, the one being rotated out, and one this app does not know.
    for name, secret in [("current", SECRET), ("rotated", ROTATED_SECRET), ("stranger", "whsec_stranger")]:
        await configure_webhook(own_localstripe, name, endpoint, secret, events)
    intent_id = await pay(provider, VISA, 1800)
    subscription_id, _ = await legacy_subscription(provider)
    await provider.cancel_subscription(subscription_id, at_period_end=False, idempotency_key="cancel-hook")
    # The subscription's first invoice was paid by a PaymentIntent too: three events in all.
    await wait_for(lambda: len(recorder.deliveries) >= 9)

    accepted = [d for d in recorder.deliveries if d.status == 200]
    refused = [d for d in recorder.deliveries if d.status != 200]
    assert len(accepted) == 6, [(d.status, d.body[:300]) for d in refused]
    assert len(refused) == 3
    assert {d.status for d in refused} == {400}
    verified = [await provider.verify_webhook(d.headers, d.body) for d in accepted]
    assert {e.type for e in verified} == {"payment.succeeded", "subscription.canceled"}
    assert {e.object_id for e in verified} >= {intent_id, subscription_id}
    assert all(e.refetch for e in verified)

    token = create_token(AuthSettings(jwt_secret=JWT_SECRET), "ops", roles=["admin"])
    async with httpx.AsyncClient(base_url=url) as client:
        listed = await client.get(
            "/billing/admin/webhook-events",
            params={"provider": "stripe", "limit": 100},
            headers={"Authorization": f"Bearer {token}"},
        )
    assert listed.status_code == 200, listed.text
    stored = listed.json()["items"]
    # Each event is stored once, however many endpoints delivered it; re-reading it from
    # localstripe worked (nothing failed), and nothing local matches it (ignored).
    assert len(stored) == 3
    assert {item["event_id"] for item in stored} == {e.id for e in verified}
    assert {item["status"] for item in stored} == {"ignored"}
