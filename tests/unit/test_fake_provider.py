"""The fake provider: hosted checkout flows, idempotency, refunds, signed events and their verification."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import uuid
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from typing import Any

import pytest
from pydantic import SecretStr

from fastapi_cashier.errors import (
    ConfigurationError,
    InvalidProviderRequestError,
    SignatureVerificationError,
    WebhookError,
)
from fastapi_cashier.money import Money
from fastapi_cashier.providers.base import (
    Capability,
    CheckoutRequest,
    CheckoutSnapshot,
    CustomerRef,
    PaymentProvider,
    PaymentSnapshot,
    PlanRef,
    PortalRequest,
    ProviderEvent,
    RefundRequest,
    RefundSnapshot,
    SubscriptionChange,
    UsageReport,
    check_adapter,
)
from fastapi_cashier.providers.fake import FakeProvider
from fastapi_cashier.settings import FakeProviderSettings
from fastapi_cashier.statuses import (
    BillingInterval,
    CheckoutSessionStatus,
    PaymentStatus,
    ProrationBehavior,
    RefundStatus,
)

pytestmark = pytest.mark.anyio

SECRET = "whsec_fake_test"
START = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
BASE_URL = "https://shop.test/billing"
CUSTOMER = CustomerRef(id=uuid.UUID(int=1), external_id="user-1", email="ada@example.com", name="Ada")


class Clock:
    """A clock the tests move by hand."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: int) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def provider(clock: Clock) -> FakeProvider:
    return FakeProvider(webhook_secret=SECRET, auto_deliver=False, clock=clock)


def checkout_request(**overrides: Any) -> CheckoutRequest:
    session_id = overrides.pop("session_id", uuid.UUID(int=42))
    values: dict[str, Any] = {
        "session_id": session_id,
        "idempotency_key": f"checkout:{session_id}",
        "mode": "payment",
        "customer": CUSTOMER,
        "success_url": "https://shop.test/thanks",
        "cancel_url": "https://shop.test/cart",
        "expires_at": START + timedelta(hours=1),
        "amount": Money(1050, "EUR"),
        "description": "Concert ticket",
        "reference": "booking-7",
        "return_base_url": BASE_URL + "/",
    }
    values.update(overrides)
    return CheckoutRequest(**values)


def refund_request(
    payment_id: str, amount: int | Money, *, key: str = "refund-1", **overrides: Any
) -> RefundRequest:
    values: dict[str, Any] = {
        "refund_id": uuid.UUID(int=99),
        "idempotency_key": key,
        "provider_payment_id": payment_id,
        "amount": amount if isinstance(amount, Money) else Money(amount, "EUR"),
    }
    values.update(overrides)
    return RefundRequest(**values)


async def open_session(provider: FakeProvider, **overrides: Any) -> str:
    return (await provider.create_checkout(checkout_request(**overrides))).provider_session_id


async def paid_payment(provider: FakeProvider) -> str:
    session_id = await open_session(provider)
    return (await provider.submit_checkout(session_id, "succeeded")).provider_payment_id


async def verified(provider: FakeProvider) -> list[ProviderEvent]:
    """Every event the provider emitted, each put through signature verification."""
    return [await provider.verify_webhook(headers, body) for headers, body in provider.sent_events]


async def event_types(provider: FakeProvider) -> list[str]:
    return [event.type for event in await verified(provider)]


class _PageParser(HTMLParser):
    """Collects the forms and buttons of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, str | None]] = []
        self.buttons: dict[str, dict[str, str | None]] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "form":
            self.forms.append(attributes)
        elif tag == "button":
            self.buttons[attributes["id"] or ""] = attributes


def parse_page(page: str) -> _PageParser:
    parser = _PageParser()
    parser.feed(page)
    parser.close()
    return parser


# --------------------------------------------------------------------------- construction


def test_fake_provider_satisfies_the_protocol(provider: FakeProvider) -> None:
    assert isinstance(provider, PaymentProvider)
    check_adapter(provider)
    assert provider.name == "fake"
    assert provider.capabilities == set(Capability) - {
        Capability.CHECKOUT_COMPLETION,
        Capability.CANCELS_AT_PERIOD_END_LOCALLY,
    }
    assert provider.idempotency_keys is True
    assert provider.proration_behaviors == set(ProrationBehavior)


def test_from_settings_uses_the_secret_and_auto_deliver() -> None:
    settings = FakeProviderSettings(webhook_secret=SecretStr(SECRET), auto_deliver=False)
    provider = FakeProvider.from_settings(settings, tolerance_seconds=60)
    assert provider.auto_deliver is False
    assert provider.tolerance_seconds == 60
    body = b'{"id":"evt_1"}'
    expected = hmac.new(SECRET.encode(), b"123." + body, hashlib.sha256).hexdigest()
    assert provider.sign(body, timestamp=123)["Fake-Signature"] == f"t=123,v1={expected}"


@pytest.mark.parametrize("secret", ["", [], ["ok", ""]])
def test_an_empty_webhook_secret_is_refused(secret: str | list[str]) -> None:
    with pytest.raises(ConfigurationError, match="webhook secret"):
        FakeProvider(webhook_secret=secret)


# --------------------------------------------------------------------------- customers and checkout


async def test_create_customer_is_idempotent_by_key(provider: FakeProvider) -> None:
    first = await provider.create_customer(CUSTOMER, idempotency_key="customer-1")
    again = await provider.create_customer(CUSTOMER, idempotency_key="customer-1")
    other = await provider.create_customer(CUSTOMER, idempotency_key="customer-2")

    assert re.fullmatch(r"cus_fake_[0-9a-f]+", first)
    assert again == first
    assert other != first
    assert set(provider.customers) == {first, other}
    assert provider.calls == [("create_customer", "customer-1"), ("create_customer", "customer-2")]


async def test_create_checkout_returns_the_hosted_page_url(provider: FakeProvider) -> None:
    request = checkout_request()
    result = await provider.create_checkout(request)

    assert re.fullmatch(r"cs_fake_[0-9a-f]+", result.provider_session_id)
    assert result.url == f"{BASE_URL}/fake/checkout/{result.provider_session_id}"
    assert result.expires_at == request.expires_at
    assert result.provider_customer_id is not None
    assert result.provider_customer_id.startswith("cus_fake_")
    session = provider.checkout_session(result.provider_session_id)
    assert session.status is CheckoutSessionStatus.OPEN
    assert session.amount == Money(1050, "EUR")
    assert (session.success_url, session.cancel_url) == (request.success_url, request.cancel_url)
    assert session.metadata == {
        "checkout_session_id": str(request.session_id),
        "customer_id": str(CUSTOMER.id),
        "reference": "booking-7",
    }
    assert provider.sent_events == []


async def test_create_checkout_keeps_a_known_provider_customer(provider: FakeProvider) -> None:
    customer_id = await provider.create_customer(CUSTOMER, idempotency_key="customer-1")
    customer = CustomerRef(id=CUSTOMER.id, external_id="user-1", provider_customer_id=customer_id)
    result = await provider.create_checkout(checkout_request(customer=customer))
    assert result.provider_customer_id == customer_id
    assert len(provider.customers) == 1


async def test_create_checkout_with_the_same_key_creates_one_session(provider: FakeProvider) -> None:
    first = await provider.create_checkout(checkout_request())
    again = await provider.create_checkout(checkout_request())

    assert again == first
    assert list(provider.checkout_sessions) == [first.provider_session_id]
    assert provider.calls == [("create_checkout", f"checkout:{uuid.UUID(int=42)}")]


async def test_create_checkout_with_the_same_key_and_other_parameters_is_refused(
    provider: FakeProvider,
) -> None:
    await provider.create_checkout(checkout_request())
    with pytest.raises(InvalidProviderRequestError, match="idempotency key"):
        await provider.create_checkout(checkout_request(amount=Money(2000, "EUR")))
    assert len(provider.checkout_sessions) == 1
    assert len(provider.calls) == 1


async def test_an_idempotency_key_cannot_be_reused_by_another_method(provider: FakeProvider) -> None:
    await provider.create_customer(CUSTOMER, idempotency_key="shared")
    with pytest.raises(InvalidProviderRequestError, match="create_customer"):
        await provider.create_checkout(checkout_request(idempotency_key="shared"))
    assert provider.checkout_sessions == {}


async def test_create_checkout_needs_the_routers_base_url(provider: FakeProvider) -> None:
    with pytest.raises(InvalidProviderRequestError, match="served by the router") as caught:
        await provider.create_checkout(checkout_request(return_base_url=None))
    assert "payments.service(base_url=payments.base_url(request))" in caught.value.message
    assert caught.value.provider == "fake"
    assert provider.checkout_sessions == {}
    assert provider.calls == []


@pytest.mark.parametrize("amount", [None, Money(0, "EUR")])
async def test_a_payment_checkout_needs_a_positive_amount(
    provider: FakeProvider, amount: Money | None
) -> None:
    with pytest.raises(InvalidProviderRequestError, match="positive amount"):
        await provider.create_checkout(checkout_request(amount=amount))
    assert provider.checkout_sessions == {}


async def test_a_checkout_expiring_in_the_past_is_refused(provider: FakeProvider) -> None:
    with pytest.raises(InvalidProviderRequestError, match="expires_at"):
        await provider.create_checkout(checkout_request(expires_at=START - timedelta(seconds=1)))


async def test_a_subscription_checkout_needs_a_recurring_plan(provider: FakeProvider) -> None:
    with pytest.raises(InvalidProviderRequestError, match="needs a plan"):
        await provider.create_checkout(checkout_request(mode="subscription", amount=None))
    once = PlanRef(
        id=uuid.uuid4(), name="Pro", unit_amount=Money(900, "EUR"), interval=BillingInterval.ONE_TIME
    )
    with pytest.raises(InvalidProviderRequestError, match="recurring"):
        await provider.create_checkout(checkout_request(mode="subscription", amount=None, plan=once))
    assert provider.checkout_sessions == {}


# --------------------------------------------------------------------------- hosted checkout flows


async def test_pay_emits_payment_succeeded_then_checkout_completed(provider: FakeProvider) -> None:
    session_id = await open_session(provider)
    step = await provider.submit_checkout(session_id, "succeeded")

    assert step.redirect_url == "https://shop.test/thanks"
    assert step.needs_authentication is False
    assert provider.checkout_session(session_id).status is CheckoutSessionStatus.COMPLETE
    payment_event, checkout_event = await verified(provider)
    assert [payment_event.type, checkout_event.type] == ["payment.succeeded", "checkout.completed"]

    assert payment_event.object_kind == "payment"
    assert payment_event.object_id == step.provider_payment_id
    assert re.fullmatch(r"pay_fake_[0-9a-f]+", step.provider_payment_id)
    assert payment_event.snapshot == PaymentSnapshot(
        provider_payment_id=step.provider_payment_id,
        status=PaymentStatus.SUCCEEDED,
        amount=Money(1050, "EUR"),
        provider_session_id=session_id,
        provider_customer_id=provider.checkout_session(session_id).customer,
        payment_method_summary="visa •••• 4242",
        description="Concert ticket",
    )
    assert payment_event.local_ids == {
        "checkout_session_id": str(uuid.UUID(int=42)),
        "customer_id": str(CUSTOMER.id),
        "reference": "booking-7",
    }
    assert payment_event.occurred_at == START
    assert payment_event.provider == "fake"

    assert checkout_event.object_kind == "checkout_session"
    assert checkout_event.object_id == session_id
    assert isinstance(checkout_event.snapshot, CheckoutSnapshot)
    assert checkout_event.snapshot.status is CheckoutSessionStatus.COMPLETE
    assert checkout_event.snapshot.provider_payment_id == step.provider_payment_id
    assert checkout_event.local_ids["checkout_session_id"] == str(uuid.UUID(int=42))


async def test_decline_emits_payment_failed_and_keeps_the_session_open(provider: FakeProvider) -> None:
    session_id = await open_session(provider)
    step = await provider.submit_checkout(session_id, "declined")

    assert step.redirect_url == "https://shop.test/cart"
    assert provider.checkout_session(session_id).status is CheckoutSessionStatus.OPEN
    [event] = await verified(provider)
    assert event.type == "payment.failed"
    assert isinstance(event.snapshot, PaymentSnapshot)
    assert event.snapshot.status is PaymentStatus.FAILED
    assert event.snapshot.failure_code == "card_declined"
    assert event.snapshot.failure_message == "Your card was declined."


async def test_decline_then_pay_retries_the_same_payment(provider: FakeProvider) -> None:
    session_id = await open_session(provider)
    declined = await provider.submit_checkout(session_id, "declined")
    paid = await provider.submit_checkout(session_id, "succeeded")

    assert paid.provider_payment_id == declined.provider_payment_id
    assert list(provider.payments) == [paid.provider_payment_id]
    events = await verified(provider)
    assert [event.type for event in events] == ["payment.failed", "payment.succeeded", "checkout.completed"]
    assert {event.object_id for event in events[:2]} == {paid.provider_payment_id}
    assert isinstance(events[1].snapshot, PaymentSnapshot)
    assert events[1].snapshot.failure_code is None  # the retry clears the decline


async def test_three_d_secure_then_authenticated(provider: FakeProvider) -> None:
    session_id = await open_session(provider)
    step = await provider.submit_checkout(session_id, "requires_action")

    assert step.needs_authentication is True
    assert step.redirect_url is None
    assert (await event_types(provider)) == ["payment.requires_action"]
    assert provider.payments[step.provider_payment_id].status is PaymentStatus.REQUIRES_ACTION

    done = await provider.authenticate(session_id, succeeded=True)
    assert done.redirect_url == "https://shop.test/thanks"
    assert done.provider_payment_id == step.provider_payment_id
    assert (await event_types(provider)) == [
        "payment.requires_action",
        "payment.succeeded",
        "checkout.completed",
    ]
    assert provider.checkout_session(session_id).status is CheckoutSessionStatus.COMPLETE


async def test_three_d_secure_failed_then_paid_on_the_same_payment(provider: FakeProvider) -> None:
    session_id = await open_session(provider)
    step = await provider.submit_checkout(session_id, "requires_action")
    failed = await provider.authenticate(session_id, succeeded=False)

    assert failed.redirect_url == "https://shop.test/cart"
    assert provider.checkout_session(session_id).status is CheckoutSessionStatus.OPEN
    failure = (await verified(provider))[-1]
    assert failure.type == "payment.failed"
    assert isinstance(failure.snapshot, PaymentSnapshot)
    assert failure.snapshot.failure_code == "authentication_failed"

    paid = await provider.submit_checkout(session_id, "succeeded")
    assert paid.provider_payment_id == step.provider_payment_id
    assert (await event_types(provider)) == [
        "payment.requires_action",
        "payment.failed",
        "payment.succeeded",
        "checkout.completed",
    ]


async def test_authenticate_without_a_pending_challenge_is_refused(provider: FakeProvider) -> None:
    session_id = await open_session(provider)
    with pytest.raises(InvalidProviderRequestError, match="waiting for authentication"):
        await provider.authenticate(session_id, succeeded=True)
    await provider.submit_checkout(session_id, "declined")
    with pytest.raises(InvalidProviderRequestError, match="waiting for authentication"):
        await provider.authenticate(session_id, succeeded=True)
    assert (await event_types(provider)) == ["payment.failed"]


async def test_a_completed_session_cannot_be_completed_again(provider: FakeProvider) -> None:
    session_id = await open_session(provider)
    await provider.submit_checkout(session_id, "succeeded")
    for outcome in ("succeeded", "declined", "requires_action"):
        with pytest.raises(InvalidProviderRequestError, match="complete"):
            await provider.submit_checkout(session_id, outcome)
    assert len(provider.sent_events) == 2
    assert len(provider.payments) == 1


async def test_unknown_sessions_and_outcomes_are_refused(provider: FakeProvider) -> None:
    with pytest.raises(InvalidProviderRequestError, match="no fake checkout_session"):
        await provider.submit_checkout("cs_fake_nope", "succeeded")
    with pytest.raises(InvalidProviderRequestError, match="no fake checkout_session"):
        provider.checkout_session("cs_fake_nope")
    session_id = await open_session(provider)
    with pytest.raises(InvalidProviderRequestError, match="outcome"):
        await provider.submit_checkout(session_id, "maybe")  # type: ignore[arg-type]
    assert provider.sent_events == []


async def test_an_expired_session_cancels_its_payment_and_cannot_be_paid(
    provider: FakeProvider, clock: Clock
) -> None:
    session_id = await open_session(provider)
    declined = await provider.submit_checkout(session_id, "declined")
    clock.advance(3600)

    with pytest.raises(InvalidProviderRequestError, match="expired"):
        await provider.submit_checkout(session_id, "succeeded")
    # An hour later the first signature is stale, so read the bodies and verify only the new events.
    assert [json.loads(body)["type"] for _, body in provider.sent_events] == [
        "payment.failed",
        "payment.canceled",
        "checkout.expired",
    ]
    canceled, expired = [await provider.verify_webhook(*event) for event in provider.sent_events[1:]]
    assert isinstance(canceled.snapshot, PaymentSnapshot)
    assert canceled.snapshot.status is PaymentStatus.CANCELED
    assert isinstance(expired.snapshot, CheckoutSnapshot)
    assert expired.snapshot.status is CheckoutSessionStatus.EXPIRED
    assert provider.payments[declined.provider_payment_id].status is PaymentStatus.CANCELED
    assert provider.checkout_session(session_id).status is CheckoutSessionStatus.EXPIRED
    page = provider.render_checkout_page(session_id, action_url="/pay")
    assert "expired" in page
    assert parse_page(page).buttons == {}


# --------------------------------------------------------------------------- pages


async def test_checkout_page_escapes_and_shows_the_amount_and_buttons(provider: FakeProvider) -> None:
    session_id = await open_session(provider, description="<script>alert(1)</script>")
    page = provider.render_checkout_page(session_id, action_url='/billing/fake/checkout/x?a=1&b="2"')

    assert page.startswith("<!DOCTYPE html>")
    assert page.rstrip().endswith("</html>")
    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "10.50 EUR" in page
    assert "EUR" in page
    assert "<link" not in page
    assert "src=" not in page
    parsed = parse_page(page)
    assert parsed.forms == [{"method": "post", "action": '/billing/fake/checkout/x?a=1&b="2"'}]
    assert {button_id: (b["name"], b["value"]) for button_id, b in parsed.buttons.items()} == {
        "pay": ("outcome", "succeeded"),
        "decline": ("outcome", "declined"),
        "three-d-secure": ("outcome", "requires_action"),
    }


async def test_checkout_page_shows_a_decline_and_closes_once_paid(provider: FakeProvider) -> None:
    session_id = await open_session(provider)
    await provider.submit_checkout(session_id, "declined")
    assert "Your card was declined." in provider.render_checkout_page(session_id, action_url="/pay")

    await provider.submit_checkout(session_id, "succeeded")
    page = provider.render_checkout_page(session_id, action_url="/pay")
    assert "already been paid" in page
    assert parse_page(page).buttons == {}
    assert parse_page(page).forms == []


async def test_authentication_page_only_while_a_challenge_is_pending(provider: FakeProvider) -> None:
    session_id = await open_session(provider)
    before = provider.render_authentication_page(session_id, action_url="/auth")
    assert "Nothing to authenticate" in before
    assert parse_page(before).buttons == {}

    await provider.submit_checkout(session_id, "requires_action")
    page = provider.render_authentication_page(session_id, action_url="/auth")
    parsed = parse_page(page)
    assert parsed.forms == [{"method": "post", "action": "/auth"}]
    assert {button_id: (b["name"], b["value"]) for button_id, b in parsed.buttons.items()} == {
        "authenticate": ("result", "succeeded"),
        "fail-authentication": ("result", "failed"),
    }
    assert "10.50 EUR" in page


# --------------------------------------------------------------------------- refunds


async def test_partial_then_full_refund(provider: FakeProvider) -> None:
    payment_id = await paid_payment(provider)
    first = await provider.refund(refund_request(payment_id, 300, key="refund-1", reason="late"))

    assert first.status is RefundStatus.SUCCEEDED
    assert re.fullmatch(r"re_fake_[0-9a-f]+", first.provider_refund_id)
    event = (await verified(provider))[-1]
    assert event.type == "refund.succeeded"
    assert event.object_id == first.provider_refund_id
    assert event.snapshot == RefundSnapshot(
        provider_refund_id=first.provider_refund_id,
        provider_payment_id=payment_id,
        status=RefundStatus.SUCCEEDED,
        amount=Money(300, "EUR"),
        reason="late",
    )
    assert event.local_ids["refund_id"] == str(uuid.UUID(int=99))
    assert event.local_ids["checkout_session_id"] == str(uuid.UUID(int=42))
    partial = await provider.fetch("payment", payment_id)
    assert isinstance(partial, PaymentSnapshot)
    assert (partial.status, partial.refunded_amount) == (PaymentStatus.PARTIALLY_REFUNDED, 300)

    rest = await provider.refund(refund_request(payment_id, 750, key="refund-2", refund_id=uuid.uuid4()))
    assert rest.provider_refund_id != first.provider_refund_id
    full = await provider.fetch("payment", payment_id)
    assert isinstance(full, PaymentSnapshot)
    assert (full.status, full.refunded_amount) == (PaymentStatus.REFUNDED, 1050)
    assert (await event_types(provider))[-2:] == ["refund.succeeded", "refund.succeeded"]


async def test_refunding_more_than_is_left_is_refused(provider: FakeProvider) -> None:
    payment_id = await paid_payment(provider)
    await provider.refund(refund_request(payment_id, 300, key="refund-1"))
    events_before = len(provider.sent_events)

    with pytest.raises(InvalidProviderRequestError, match="exceeds") as caught:
        await provider.refund(refund_request(payment_id, 751, key="refund-2"))
    assert caught.value.provider_code == "amount_too_large"
    assert provider.payments[payment_id].refunded_amount == 300
    assert len(provider.refunds) == 1
    assert len(provider.sent_events) == events_before


async def test_a_refund_is_idempotent_by_key(provider: FakeProvider) -> None:
    payment_id = await paid_payment(provider)
    first = await provider.refund(refund_request(payment_id, 1050))
    again = await provider.refund(refund_request(payment_id, 1050))

    assert again == first
    assert len(provider.refunds) == 1
    assert provider.payments[payment_id].refunded_amount == 1050
    assert (await event_types(provider)).count("refund.succeeded") == 1
    assert [call for call in provider.calls if call[0] == "refund"] == [("refund", "refund-1")]
    with pytest.raises(InvalidProviderRequestError, match="idempotency key"):
        await provider.refund(refund_request(payment_id, 500))


@pytest.mark.parametrize(
    ("amount", "currency", "match"),
    [(0, "EUR", "positive amount"), (100, "USD", "positive amount of EUR")],
)
async def test_a_refund_in_another_currency_or_of_nothing_is_refused(
    provider: FakeProvider, amount: int, currency: str, match: str
) -> None:
    payment_id = await paid_payment(provider)
    with pytest.raises(InvalidProviderRequestError, match=match):
        await provider.refund(refund_request(payment_id, Money(amount, currency)))
    assert provider.refunds == {}


async def test_only_succeeded_payments_can_be_refunded(provider: FakeProvider) -> None:
    with pytest.raises(InvalidProviderRequestError, match="no fake payment"):
        await provider.refund(refund_request("pay_fake_nope", 100))
    session_id = await open_session(provider)
    declined = await provider.submit_checkout(session_id, "declined")
    with pytest.raises(InvalidProviderRequestError, match="is failed"):
        await provider.refund(refund_request(declined.provider_payment_id, 100))
    assert provider.refunds == {}


# --------------------------------------------------------------------------- fetch, portal, unsupported


async def test_fetch_returns_the_current_snapshot(provider: FakeProvider) -> None:
    session_id = await open_session(provider)
    opened = await provider.fetch("checkout_session", session_id)
    assert opened == CheckoutSnapshot(
        provider_session_id=session_id,
        status=CheckoutSessionStatus.OPEN,
        provider_customer_id=provider.checkout_session(session_id).customer,
    )
    step = await provider.submit_checkout(session_id, "succeeded")
    assert await provider.fetch("payment", step.provider_payment_id) == (await verified(provider))[0].snapshot
    assert await provider.fetch("checkout_session", session_id) == (await verified(provider))[1].snapshot

    for kind in ("payment", "refund", "checkout_session"):
        with pytest.raises(InvalidProviderRequestError, match=f"no fake {kind}") as caught:
            await provider.fetch(kind, "x_fake_nope")
        assert caught.value.provider_code == "resource_missing"
    for kind in ("subscription", "invoice"):
        with pytest.raises(InvalidProviderRequestError, match=f"no fake {kind}"):
            await provider.fetch(kind, "x_fake_nope")
    with pytest.raises(InvalidProviderRequestError, match="cannot fetch customer"):
        await provider.fetch("customer", "cus_fake_nope")


async def test_portal_url_points_at_the_routers_page(provider: FakeProvider) -> None:
    customer = CustomerRef(id=CUSTOMER.id, external_id="user-1", provider_customer_id="cus_fake_abc")
    result = await provider.create_portal_session(
        PortalRequest(customer=customer, return_url="https://shop.test/account", return_base_url=BASE_URL)
    )
    assert result.url == f"{BASE_URL}/fake/portal/cus_fake_abc"
    with pytest.raises(InvalidProviderRequestError):
        await provider.create_portal_session(
            PortalRequest(customer=CUSTOMER, return_url="/", return_base_url=BASE_URL)
        )


SUBSCRIPTION_CALLS: dict[str, Callable[[FakeProvider], Awaitable[object]]] = {
    "update": lambda p: p.update_subscription(
        SubscriptionChange(
            subscription_id=uuid.uuid4(), idempotency_key="k", provider_subscription_id="s", quantity=2
        )
    ),
    "cancel": lambda p: p.cancel_subscription("s", at_period_end=True, idempotency_key="k"),
    "resume": lambda p: p.resume_subscription("s", idempotency_key="k"),
    "pause": lambda p: p.pause_subscription("s", idempotency_key="k"),
    "usage": lambda p: p.report_usage(
        UsageReport(
            subscription_id=uuid.uuid4(),
            provider_subscription_id="s",
            quantity=1,
            idempotency_key="k",
            recorded_at=START,
        )
    ),
}


@pytest.mark.parametrize("call", SUBSCRIPTION_CALLS.values(), ids=SUBSCRIPTION_CALLS.keys())
async def test_subscription_methods_refuse_an_unknown_subscription(
    provider: FakeProvider, call: Callable[[FakeProvider], Awaitable[object]]
) -> None:
    with pytest.raises(InvalidProviderRequestError, match="no fake subscription") as caught:
        await call(provider)
    assert caught.value.provider_code == "resource_missing"
    assert provider.sent_events == []


# --------------------------------------------------------------------------- wire format and delivery


async def test_events_use_the_documented_wire_format(provider: FakeProvider) -> None:
    session_id = await open_session(provider)
    await provider.submit_checkout(session_id, "succeeded")
    headers, body = provider.sent_events[0]

    payload = json.loads(body)
    assert body == json.dumps(payload, separators=(",", ":")).encode()
    assert set(payload) == {"id", "type", "created", "data"}
    assert re.fullmatch(r"evt_fake_[0-9a-f]+", payload["id"])
    assert payload["type"] == "payment.succeeded"
    assert payload["created"] == int(START.timestamp())
    obj = payload["data"]["object"]
    assert obj["object"] == "payment"
    assert (obj["amount"], obj["currency"], obj["status"]) == (1050, "EUR", "succeeded")
    assert obj["checkout_session"] == session_id
    assert obj["updated"] == int(START.timestamp())
    assert headers["Content-Type"] == "application/json"
    timestamp = payload["created"]
    signature = hmac.new(SECRET.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    assert headers["Fake-Signature"] == f"t={timestamp},v1={signature}"
    assert len({json.loads(b)["id"] for _, b in provider.sent_events}) == len(provider.sent_events)


async def test_auto_deliver_awaits_each_event_in_order(clock: Clock) -> None:
    provider = FakeProvider(webhook_secret=SECRET, clock=clock)
    delivered: list[tuple[Mapping[str, str], bytes]] = []
    statuses_seen: list[CheckoutSessionStatus] = []

    async def deliver(headers: Mapping[str, str], body: bytes) -> None:
        delivered.append((headers, body))
        event = await provider.verify_webhook(headers, body)
        if event.object_kind == "payment":
            statuses_seen.append(
                provider.checkout_session(event.raw["data"]["object"]["checkout_session"]).status
            )

    provider.deliver = deliver
    session_id = await open_session(provider)
    await provider.submit_checkout(session_id, "declined")
    await provider.submit_checkout(session_id, "succeeded")

    assert delivered == provider.sent_events
    assert (await event_types(provider)) == ["payment.failed", "payment.succeeded", "checkout.completed"]
    # The state a handler re-fetches is already the new one when the event arrives.
    assert statuses_seen == [CheckoutSessionStatus.OPEN, CheckoutSessionStatus.COMPLETE]


async def test_without_auto_deliver_events_are_only_kept(provider: FakeProvider) -> None:
    delivered: list[bytes] = []

    async def deliver(headers: Mapping[str, str], body: bytes) -> None:
        delivered.append(body)

    provider.deliver = deliver
    await paid_payment(provider)
    assert delivered == []
    assert len(provider.sent_events) == 2


async def test_a_failing_delivery_propagates(clock: Clock) -> None:
    provider = FakeProvider(webhook_secret=SECRET, clock=clock)

    async def deliver(headers: Mapping[str, str], body: bytes) -> None:
        raise RuntimeError("inbox bug")

    provider.deliver = deliver
    session_id = await open_session(provider)
    with pytest.raises(RuntimeError, match="inbox bug"):
        await provider.submit_checkout(session_id, "succeeded")
    assert len(provider.sent_events) == 1  # the second event is not emitted after a failed delivery


# --------------------------------------------------------------------------- verify_webhook


async def _one_event(provider: FakeProvider) -> tuple[dict[str, str], bytes]:
    session_id = await open_session(provider)
    await provider.submit_checkout(session_id, "declined")
    return provider.sent_events[-1]


async def test_verify_accepts_any_header_case_and_extra_signatures(provider: FakeProvider) -> None:
    headers, body = await _one_event(provider)
    value = headers["Fake-Signature"]
    assert (await provider.verify_webhook({"fake-signature": value}, body)).type == "payment.failed"
    assert (
        await provider.verify_webhook({"FAKE-SIGNATURE": f"{value},v1=00ff,v0=abc"}, body)
    ).type == "payment.failed"
    timestamp, good = value.split(",")
    assert (await provider.verify_webhook({"Fake-Signature": f"{timestamp},v1=deadbeef,{good}"}, body)).id


async def test_verify_refuses_a_missing_header(provider: FakeProvider) -> None:
    _, body = await _one_event(provider)
    with pytest.raises(SignatureVerificationError, match="missing"):
        await provider.verify_webhook({"Content-Type": "application/json"}, body)


async def test_verify_refuses_another_secret(provider: FakeProvider, clock: Clock) -> None:
    _, body = await _one_event(provider)
    forged = FakeProvider(webhook_secret="not-the-secret", clock=clock).sign(body)
    with pytest.raises(SignatureVerificationError, match="no v1 signature"):
        await provider.verify_webhook(forged, body)


async def test_verify_refuses_a_tampered_body(provider: FakeProvider) -> None:
    headers, body = await _one_event(provider)
    tampered = body.replace(b'"amount":1050', b'"amount":1')
    assert tampered != body
    with pytest.raises(SignatureVerificationError):
        await provider.verify_webhook(headers, tampered)


async def test_verify_refuses_a_stale_or_future_timestamp(provider: FakeProvider, clock: Clock) -> None:
    headers, body = await _one_event(provider)
    clock.advance(300)
    assert (await provider.verify_webhook(headers, body)).type == "payment.failed"  # at the edge: accepted
    clock.advance(1)
    with pytest.raises(SignatureVerificationError, match="301 seconds old"):
        await provider.verify_webhook(headers, body)
    future = provider.sign(body, timestamp=int((clock.now + timedelta(seconds=600)).timestamp()))
    with pytest.raises(SignatureVerificationError, match="in the future"):
        await provider.verify_webhook(future, body)


@pytest.mark.parametrize(
    "header",
    [
        "",
        "garbage",
        "t=,v1=ab",
        "t=abc,v1=ab",
        "v1=ab",
        "t=1893499200",
        "t=1,t=2,v1=ab",
        "t=-5,v1=ab",
        "=x,t=1,v1=a",
    ],
)
async def test_verify_refuses_a_malformed_header(provider: FakeProvider, header: str) -> None:
    _, body = await _one_event(provider)
    with pytest.raises(SignatureVerificationError):
        await provider.verify_webhook({"Fake-Signature": header}, body)


async def test_verify_refuses_a_non_ascii_signature_without_crashing(provider: FakeProvider) -> None:
    headers, body = await _one_event(provider)
    timestamp = headers["Fake-Signature"].split(",")[0]
    with pytest.raises(SignatureVerificationError):
        await provider.verify_webhook({"Fake-Signature": f"{timestamp},v1=é\udcff"}, body)


async def test_verify_accepts_a_rotated_secret(clock: Clock) -> None:
    old = FakeProvider(webhook_secret="old-secret", auto_deliver=False, clock=clock)
    headers, body = await _one_event(old)
    rotated = FakeProvider(webhook_secret=["new-secret", "old-secret"], clock=clock)
    assert (await rotated.verify_webhook(headers, body)).type == "payment.failed"
    # The rotated provider signs with its first secret, which the old one does not know.
    with pytest.raises(SignatureVerificationError):
        await old.verify_webhook(rotated.sign(body), body)


async def test_verify_reports_a_signed_non_event_as_a_webhook_error(provider: FakeProvider) -> None:
    for body in (b"not json", b"[1, 2]", b'{"id": "evt_1", "type": "payment.failed"}', b"[" * 100_000):
        with pytest.raises(WebhookError) as caught:
            await provider.verify_webhook(provider.sign(body), body)
        assert not isinstance(caught.value, SignatureVerificationError)


async def test_verify_reports_a_malformed_object_as_a_webhook_error(provider: FakeProvider) -> None:
    _, body = await _one_event(provider)
    payload = json.loads(body)
    payload["data"]["object"]["amount"] = 10.5
    bad = json.dumps(payload).encode()
    with pytest.raises(WebhookError, match="malformed"):
        await provider.verify_webhook(provider.sign(bad), bad)


async def test_verify_returns_unknown_event_types_without_a_snapshot(provider: FakeProvider) -> None:
    body = json.dumps(
        {
            "id": "evt_fake_1",
            "type": "payment.disputed",
            "created": int(START.timestamp()),
            "data": {"object": {"object": "payment", "id": "pay_fake_1", "metadata": {"refund_id": "r"}}},
        }
    ).encode()
    event = await provider.verify_webhook(provider.sign(body), body)
    assert (event.type, event.object_kind, event.object_id) == ("payment.disputed", "payment", "pay_fake_1")
    assert event.snapshot is None
    assert event.local_ids == {"refund_id": "r"}
    assert event.raw["id"] == "evt_fake_1"
