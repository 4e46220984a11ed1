"""The fake provider's subscriptions: checkout, the clock, renewals, prorations, usage, catalog, portal.

Every event is verified at the moment it is delivered (its signature is made at the provider's
own time, which :meth:`FakeProvider.advance` moves), so the tests read normalised events.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from typing import Any

import pytest

from fastapi_cashier.errors import InvalidProviderRequestError, WebhookError
from fastapi_cashier.money import Money
from fastapi_cashier.pricing import add_interval
from fastapi_cashier.providers.base import (
    CheckoutRequest,
    CheckoutSnapshot,
    CustomerRef,
    InvoiceSnapshot,
    PaymentSnapshot,
    PlanRef,
    PortalRequest,
    ProviderEvent,
    SubscriptionChange,
    SubscriptionSnapshot,
    TierRef,
    UsageReport,
)
from fastapi_cashier.providers.fake import FakeProvider, FakeSubscription
from fastapi_cashier.statuses import (
    BillingInterval,
    CheckoutSessionStatus,
    InvoiceStatus,
    PaymentStatus,
    PricingModel,
    ProrationBehavior,
    SubscriptionStatus,
)

pytestmark = pytest.mark.anyio

SECRET = "whsec_fake_test"
APRIL = datetime(2030, 4, 1, tzinfo=UTC)  # a 30-day month: prorations divide evenly
BASE_URL = "https://shop.test/billing"
CUSTOMER = CustomerRef(id=uuid.UUID(int=1), external_id="user-1", email="ada@example.com", name="Ada")
SESSION_ID = uuid.UUID(int=42)
MONTH = BillingInterval.MONTH


class Clock:
    """The host's clock; it stays put unless a test moves it (the provider's offset moves its own)."""

    def __init__(self, now: datetime = APRIL) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class Inbox:
    """Verifies each delivery when it arrives, as the router's inbox does, and keeps the events."""

    def __init__(self, provider: FakeProvider) -> None:
        self.provider = provider
        self.events: list[ProviderEvent] = []
        provider.deliver = self

    async def __call__(self, headers: Mapping[str, str], body: bytes) -> None:
        self.events.append(await self.provider.verify_webhook(headers, body))

    def types(self) -> list[str]:
        return [event.type for event in self.events]

    def since(self, start: int) -> list[str]:
        return [event.type for event in self.events[start:]]

    def last(self, event_type: str) -> ProviderEvent:
        return [event for event in self.events if event.type == event_type][-1]


def make_provider(now: datetime = APRIL) -> tuple[FakeProvider, Inbox]:
    provider = FakeProvider(webhook_secret=SECRET, clock=Clock(now))
    return provider, Inbox(provider)


@pytest.fixture
def fake() -> tuple[FakeProvider, Inbox]:
    return make_provider()


def seats(**overrides: Any) -> PlanRef:
    values: dict[str, Any] = {
        "id": uuid.UUID(int=7),
        "name": "Seats",
        "unit_amount": Money(1000, "EUR"),
        "interval": MONTH,
        "pricing_model": PricingModel.PER_UNIT,
        "product_name": "Team workspace",
    }
    values.update(overrides)
    return PlanRef(**values)


async def subscribe(
    provider: FakeProvider, plan: PlanRef, *, quantity: int = 1, session_id: uuid.UUID = SESSION_ID
) -> FakeSubscription:
    provider_session_id = await open_subscription_checkout(
        provider, plan, quantity=quantity, session_id=session_id
    )
    step = await provider.submit_checkout(provider_session_id, "succeeded")
    assert step.redirect_url == "https://shop.test/welcome"
    assert step.provider_subscription_id is not None
    return provider.subscriptions[step.provider_subscription_id]


async def open_subscription_checkout(
    provider: FakeProvider, plan: PlanRef, *, quantity: int = 1, session_id: uuid.UUID = SESSION_ID
) -> str:
    request = CheckoutRequest(
        session_id=session_id,
        idempotency_key=f"checkout-{session_id}",
        mode="subscription",
        customer=CUSTOMER,
        success_url="https://shop.test/welcome",
        cancel_url="https://shop.test/pricing",
        expires_at=provider.now() + timedelta(hours=1),
        plan=plan,
        quantity=quantity,
        return_base_url=BASE_URL,
        metadata={
            "checkout_session_id": str(session_id),
            "customer_id": str(CUSTOMER.id),
            "plan_id": str(plan.id),
        },
    )
    return (await provider.create_checkout(request)).provider_session_id


def change(sub: FakeSubscription, key: str = "change-1", **values: Any) -> SubscriptionChange:
    return SubscriptionChange(
        subscription_id=uuid.UUID(int=500), idempotency_key=key, provider_subscription_id=sub.id, **values
    )


def invoice_of(event: ProviderEvent) -> InvoiceSnapshot:
    assert isinstance(event.snapshot, InvoiceSnapshot)
    return event.snapshot


def subscription_of(event: ProviderEvent) -> SubscriptionSnapshot:
    assert isinstance(event.snapshot, SubscriptionSnapshot)
    return event.snapshot


def amounts(invoice: InvoiceSnapshot) -> list[tuple[int, bool]]:
    return [(line["amount"], line["proration"]) for line in invoice.lines]


# --------------------------------------------------------------------------- checkout


async def test_subscription_checkout_creates_a_subscription_and_its_first_paid_invoice(
    fake: tuple[FakeProvider, Inbox],
) -> None:
    provider, inbox = fake
    plan = seats()
    session_id = await open_subscription_checkout(provider, plan, quantity=3)
    session = provider.checkout_session(session_id)
    assert (session.mode, session.amount, session.quantity) == ("subscription", Money(3000, "EUR"), 3)
    page = provider.render_checkout_page(session_id, action_url="/pay")
    for text in ("Subscribe", "Team workspace: Seats", "30.00 EUR per month", "Quantity: 3"):
        assert text in page
    assert 'id="trial"' not in page

    step = await provider.submit_checkout(session_id, "succeeded")

    assert inbox.types() == [
        "subscription.created",
        "invoice.paid",
        "payment.succeeded",
        "checkout.completed",
    ]
    created, paid, payment, completed = inbox.events
    sub_id = step.provider_subscription_id
    assert sub_id is not None
    assert re.fullmatch(r"sub_fake_[0-9a-f]+", sub_id)
    period_end = datetime(2030, 5, 1, tzinfo=UTC)
    assert created.snapshot == SubscriptionSnapshot(
        provider_subscription_id=sub_id,
        status=SubscriptionStatus.ACTIVE,
        quantity=3,
        provider_customer_id=session.customer,
        current_period_start=APRIL,
        current_period_end=period_end,
    )
    assert created.local_ids == {
        "checkout_session_id": str(SESSION_ID),
        "customer_id": str(CUSTOMER.id),
        "plan_id": str(plan.id),
    }
    invoice = invoice_of(paid)
    assert re.fullmatch(r"in_fake_[0-9a-f]+", invoice.provider_invoice_id)
    assert invoice == InvoiceSnapshot(
        provider_invoice_id=invoice.provider_invoice_id,
        status=InvoiceStatus.PAID,
        total=Money(3000, "EUR"),
        amount_paid=3000,
        provider_subscription_id=sub_id,
        provider_payment_id=step.provider_payment_id,
        period_start=APRIL,
        period_end=period_end,
        lines=(
            {
                "description": "Seats period: 3 units at 10.00 EUR each",
                "quantity": 3,
                "unit_amount": 1000,
                "amount": 3000,
                "proration": False,
                "period_start": APRIL,
                "period_end": period_end,
                "plan_id": str(plan.id),
            },
        ),
    )
    assert paid.local_ids == {"customer_id": str(CUSTOMER.id)}
    assert isinstance(payment.snapshot, PaymentSnapshot)
    assert payment.snapshot.status is PaymentStatus.SUCCEEDED
    assert payment.snapshot.amount == Money(3000, "EUR")
    assert (payment.snapshot.provider_invoice_id, payment.snapshot.provider_subscription_id) == (
        invoice.provider_invoice_id,
        sub_id,
    )
    assert payment.local_ids["checkout_session_id"] == str(SESSION_ID)
    assert isinstance(completed.snapshot, CheckoutSnapshot)
    assert completed.snapshot.status is CheckoutSessionStatus.COMPLETE
    assert completed.snapshot.provider_subscription_id == sub_id
    assert await provider.fetch("subscription", sub_id) == created.snapshot
    assert await provider.fetch("invoice", invoice.provider_invoice_id) == invoice


async def test_a_trial_checkout_bills_nothing_until_the_trial_ends(fake: tuple[FakeProvider, Inbox]) -> None:
    provider, inbox = fake
    plan = seats(trial_days=14)
    session_id = await open_subscription_checkout(provider, plan, quantity=2)
    assert provider.checkout_session(session_id).amount == Money(0, "EUR")
    assert "14-day free trial" in provider.render_checkout_page(session_id, action_url="/pay")

    step = await provider.submit_checkout(session_id, "succeeded")

    assert step.provider_payment_id is None
    assert provider.payments == {}
    assert inbox.types() == ["subscription.created", "invoice.paid", "checkout.completed"]
    trial_end = APRIL + timedelta(days=14)
    created = subscription_of(inbox.events[0])
    assert (created.status, created.trial_start, created.trial_end) == (
        SubscriptionStatus.TRIALING,
        APRIL,
        trial_end,
    )
    assert (created.current_period_start, created.current_period_end) == (APRIL, trial_end)
    trial_invoice = invoice_of(inbox.events[1])
    assert (trial_invoice.total, trial_invoice.amount_paid, trial_invoice.provider_payment_id) == (
        Money(0, "EUR"),
        0,
        None,
    )
    assert [(line["description"], line["amount"]) for line in trial_invoice.lines] == [("Trial period", 0)]

    await provider.advance(days=13)
    assert len(inbox.events) == 3
    await provider.advance(days=1)

    assert inbox.since(3) == ["invoice.paid", "payment.succeeded", "subscription.updated"]
    first = invoice_of(inbox.events[3])
    assert (first.total, first.period_start, first.period_end) == (
        Money(2000, "EUR"),
        trial_end,
        add_interval(trial_end, MONTH),
    )
    active = subscription_of(inbox.events[5])
    assert active.status is SubscriptionStatus.ACTIVE
    assert (active.current_period_start, active.current_period_end) == (
        trial_end,
        add_interval(trial_end, MONTH),
    )
    assert inbox.events[5].occurred_at == trial_end


async def test_a_declined_or_authenticated_subscription_checkout(fake: tuple[FakeProvider, Inbox]) -> None:
    provider, inbox = fake
    session_id = await open_subscription_checkout(provider, seats())
    declined = await provider.submit_checkout(session_id, "declined")
    assert declined.redirect_url == "https://shop.test/pricing"
    assert provider.subscriptions == {}
    challenged = await provider.submit_checkout(session_id, "requires_action")
    assert challenged.needs_authentication
    assert provider.subscriptions == {}

    done = await provider.authenticate(session_id, succeeded=True)

    assert done.provider_payment_id == declined.provider_payment_id
    assert inbox.types() == [
        "payment.failed",
        "payment.requires_action",
        "subscription.created",
        "invoice.paid",
        "payment.succeeded",
        "checkout.completed",
    ]
    payment = inbox.last("payment.succeeded").snapshot
    assert isinstance(payment, PaymentSnapshot)
    assert payment.payment_method_summary == "visa •••• 3155"
    assert payment.failure_code is None
    assert payment.provider_subscription_id == done.provider_subscription_id


@pytest.mark.parametrize(
    ("plan", "quantity", "match"),
    [
        (seats(interval=BillingInterval.ONE_TIME), 1, "recurring"),
        (seats(), 0, "quantity"),
        (seats(pricing_model=PricingModel.TIERED_VOLUME), 1, "no valid price"),
    ],
)
async def test_a_subscription_checkout_refuses_an_unusable_plan(
    fake: tuple[FakeProvider, Inbox], plan: PlanRef, quantity: int, match: str
) -> None:
    provider, _ = fake
    with pytest.raises(InvalidProviderRequestError, match=match):
        await open_subscription_checkout(provider, plan, quantity=quantity)
    assert provider.checkout_sessions == {}


# --------------------------------------------------------------------------- the clock and renewals


async def test_advance_renews_every_period_end_in_order_keeping_the_anchor_day() -> None:
    start = datetime(2030, 1, 31, 12, tzinfo=UTC)
    provider, inbox = make_provider(start)
    sub = await subscribe(provider, seats(), quantity=3)

    now = await provider.advance(days=90)

    assert now == provider.now() == start + timedelta(days=90)
    ends = [add_interval(start, MONTH, k) for k in range(1, 5)]
    assert ends[:3] == [
        datetime(2030, 2, 28, 12, tzinfo=UTC),
        datetime(2030, 3, 31, 12, tzinfo=UTC),
        datetime(2030, 4, 30, 12, tzinfo=UTC),
    ]
    assert inbox.since(4) == ["invoice.paid", "payment.succeeded", "subscription.updated"] * 3
    renewals = [invoice_of(event) for event in inbox.events[4:] if event.type == "invoice.paid"]
    assert [(i.period_start, i.period_end, i.total.amount) for i in renewals] == [
        (ends[0], ends[1], 3000),
        (ends[1], ends[2], 3000),
        (ends[2], ends[3], 3000),
    ]
    assert [event.occurred_at for event in inbox.events[4:] if event.type == "subscription.updated"] == ends[
        :3
    ]
    assert len(provider.invoices) == 4
    assert sorted(p.amount.amount for p in provider.payments.values()) == [3000] * 4
    current = await provider.fetch("subscription", sub.id)
    assert isinstance(current, SubscriptionSnapshot)
    assert (current.current_period_start, current.current_period_end) == (ends[2], ends[3])


async def test_advance_refuses_to_go_back_and_expires_open_checkouts(
    fake: tuple[FakeProvider, Inbox],
) -> None:
    provider, inbox = fake
    for step in ({"days": -1}, {"hours": -1}, {"seconds": -5}):
        with pytest.raises(InvalidProviderRequestError, match="never goes back"):
            await provider.advance(**step)
    assert provider.now() == APRIL
    session_id = await open_subscription_checkout(provider, seats())

    assert await provider.advance(hours=2) == APRIL + timedelta(hours=2)

    assert inbox.types() == ["checkout.expired"]
    assert inbox.events[0].occurred_at == APRIL + timedelta(hours=1)
    assert provider.checkout_session(session_id).status is CheckoutSessionStatus.EXPIRED


# --------------------------------------------------------------------------- plan and quantity changes


async def test_a_quantity_change_with_create_prorations_lands_on_the_next_invoice(
    fake: tuple[FakeProvider, Inbox],
) -> None:
    provider, inbox = fake
    plan = seats(unit_amount=Money(3000, "EUR"))
    sub = await subscribe(provider, plan)
    await provider.advance(days=10)  # 20 of April's 30 days are left
    mark = len(inbox.events)

    result = await provider.update_subscription(change(sub, quantity=2))

    assert result.snapshot.quantity == 2
    assert inbox.since(mark) == ["subscription.updated"]
    assert subscription_of(inbox.events[-1]).quantity == 2
    assert len(provider.invoices) == 1  # nothing invoiced yet
    assert await provider.update_subscription(change(sub, quantity=2)) == result  # replayed by key
    assert len(inbox.events) == mark + 1
    with pytest.raises(InvalidProviderRequestError, match="idempotency key"):
        await provider.update_subscription(change(sub, quantity=3))

    await provider.advance(days=20)

    renewal = invoice_of(inbox.last("invoice.paid"))
    changed_at, may = APRIL + timedelta(days=10), datetime(2030, 5, 1, tzinfo=UTC)
    # Unused 20/30 of one seat (3000) credited, 20/30 of two seats (6000) charged.
    assert [(line["description"], line["amount"], line["proration"]) for line in renewal.lines] == [
        ("Seats period: 2 units at 30.00 EUR each", 6000, False),
        ("Unused time on 1 x Seats", -2000, True),
        ("Remaining time on 2 x Seats", 4000, True),
    ]
    assert [(line["period_start"], line["period_end"]) for line in renewal.lines[1:]] == [
        (changed_at, may)
    ] * 2
    assert renewal.total == Money(8000, "EUR")
    assert renewal.provider_payment_id is not None
    assert provider.payments[renewal.provider_payment_id].amount == Money(8000, "EUR")


async def test_always_invoice_bills_the_prorations_at_once(fake: tuple[FakeProvider, Inbox]) -> None:
    provider, inbox = fake
    sub = await subscribe(provider, seats(unit_amount=Money(3000, "EUR")))
    await provider.advance(days=10)
    mark = len(inbox.events)

    await provider.update_subscription(change(sub, quantity=2, proration=ProrationBehavior.ALWAYS_INVOICE))

    assert inbox.since(mark) == ["invoice.paid", "payment.succeeded", "subscription.updated"]
    proration = invoice_of(inbox.events[mark])
    assert amounts(proration) == [(-2000, True), (4000, True)]
    assert (proration.total, proration.amount_paid) == (Money(2000, "EUR"), 2000)
    assert (proration.period_start, proration.period_end) == (
        APRIL + timedelta(days=10),
        datetime(2030, 5, 1, tzinfo=UTC),
    )
    payment = inbox.events[mark + 1].snapshot
    assert isinstance(payment, PaymentSnapshot)
    assert (payment.amount, payment.provider_invoice_id) == (
        Money(2000, "EUR"),
        proration.provider_invoice_id,
    )
    assert inbox.events[mark].local_ids == {
        "customer_id": str(CUSTOMER.id),
        "subscription_id": str(uuid.UUID(int=500)),
    }

    await provider.advance(days=20)
    assert amounts(invoice_of(inbox.last("invoice.paid"))) == [(6000, False)]


async def test_always_invoice_carries_a_net_credit_to_the_next_invoice(
    fake: tuple[FakeProvider, Inbox],
) -> None:
    provider, inbox = fake
    sub = await subscribe(provider, seats(unit_amount=Money(3000, "EUR")), quantity=2)
    await provider.advance(days=10)
    mark = len(inbox.events)

    await provider.update_subscription(change(sub, quantity=1, proration=ProrationBehavior.ALWAYS_INVOICE))

    assert inbox.since(mark) == ["invoice.paid", "subscription.updated"]
    credit_note = invoice_of(inbox.events[mark])
    assert amounts(credit_note) == [(-4000, True), (2000, True), (2000, False)]
    assert (credit_note.total, credit_note.amount_paid, credit_note.provider_payment_id) == (
        Money(0, "EUR"),
        0,
        None,
    )
    assert subscription_of(inbox.events[-1]).status is SubscriptionStatus.ACTIVE

    await provider.advance(days=20)
    renewal = invoice_of(inbox.last("invoice.paid"))
    assert [(line["description"], line["amount"]) for line in renewal.lines] == [
        ("Seats period: 1 unit at 30.00 EUR each", 3000),
        (f"Credit carried from invoice {credit_note.provider_invoice_id}", -2000),
    ]
    assert renewal.total == Money(1000, "EUR")


async def test_no_proration_and_no_proration_during_a_trial() -> None:
    provider, inbox = make_provider()
    sub = await subscribe(provider, seats(unit_amount=Money(3000, "EUR")))
    await provider.advance(days=10)
    await provider.update_subscription(change(sub, quantity=2, proration=ProrationBehavior.NONE))
    await provider.advance(days=20)
    assert amounts(invoice_of(inbox.last("invoice.paid"))) == [(6000, False)]

    trial, trial_inbox = make_provider()
    trialing = await subscribe(trial, seats(trial_days=14))
    await trial.advance(days=5)
    await trial.update_subscription(change(trialing, quantity=4))
    await trial.advance(days=9)
    assert amounts(invoice_of(trial_inbox.last("invoice.paid"))) == [(4000, False)]


async def test_a_plan_change_updates_the_plan_id_and_the_price(fake: tuple[FakeProvider, Inbox]) -> None:
    provider, inbox = fake
    sub = await subscribe(provider, seats(unit_amount=Money(3000, "EUR")))
    team = seats(
        id=uuid.UUID(int=8), name="Team", pricing_model=PricingModel.FLAT, unit_amount=Money(9000, "EUR")
    )
    [price_id] = (await provider.sync_catalog([team])).values()
    synced_team = provider.prices[price_id]
    await provider.advance(days=10)

    result = await provider.update_subscription(change(sub, plan=synced_team))

    assert result.snapshot.provider_price_id == price_id
    assert inbox.events[-1].local_ids["plan_id"] == str(team.id)
    with pytest.raises(InvalidProviderRequestError, match="priced in USD"):
        await provider.update_subscription(change(sub, "change-2", plan=seats(unit_amount=Money(1, "USD"))))
    await provider.advance(days=20)
    assert amounts(invoice_of(inbox.last("invoice.paid"))) == [(9000, False), (-2000, True), (6000, True)]


# --------------------------------------------------------------------------- cancel, pause, resume


async def test_cancel_at_period_end_expires_without_an_invoice(fake: tuple[FakeProvider, Inbox]) -> None:
    provider, inbox = fake
    sub = await subscribe(provider, seats())
    await provider.advance(days=3)

    result = await provider.cancel_subscription(sub.id, at_period_end=True, idempotency_key="cancel-1")

    assert result.snapshot.cancel_at_period_end is True
    assert result.snapshot.status is SubscriptionStatus.ACTIVE
    assert result.snapshot.canceled_at == APRIL + timedelta(days=3)
    assert inbox.types()[-1] == "subscription.updated"
    await provider.advance(days=40)

    assert inbox.types()[-1] == "subscription.expired"
    expired = subscription_of(inbox.events[-1])
    assert (expired.status, expired.ended_at) == (
        SubscriptionStatus.EXPIRED,
        datetime(2030, 5, 1, tzinfo=UTC),
    )
    assert len(provider.invoices) == 1
    with pytest.raises(InvalidProviderRequestError, match="expired") as caught:
        await provider.resume_subscription(sub.id, idempotency_key="resume-1")
    assert caught.value.provider_code == "subscription_ended"


async def test_resume_undoes_a_cancel_at_period_end(fake: tuple[FakeProvider, Inbox]) -> None:
    provider, _ = fake
    sub = await subscribe(provider, seats())
    await provider.cancel_subscription(sub.id, at_period_end=True, idempotency_key="cancel-1")
    resumed = await provider.resume_subscription(sub.id, idempotency_key="resume-1")
    assert (resumed.snapshot.cancel_at_period_end, resumed.snapshot.canceled_at) == (False, None)
    with pytest.raises(InvalidProviderRequestError, match="nothing to resume"):
        await provider.resume_subscription(sub.id, idempotency_key="resume-2")
    await provider.advance(days=31)
    assert provider.subscriptions[sub.id].status is SubscriptionStatus.ACTIVE
    assert len(provider.invoices) == 2


async def test_cancel_now(fake: tuple[FakeProvider, Inbox]) -> None:
    provider, inbox = fake
    sub = await subscribe(provider, seats())
    await provider.advance(days=5)

    result = await provider.cancel_subscription(sub.id, at_period_end=False, idempotency_key="cancel-1")

    canceled_at = APRIL + timedelta(days=5)
    assert inbox.types()[-1] == "subscription.canceled"
    assert subscription_of(inbox.events[-1]) == result.snapshot
    assert (result.snapshot.status, result.snapshot.canceled_at, result.snapshot.ended_at) == (
        SubscriptionStatus.CANCELED,
        canceled_at,
        canceled_at,
    )
    assert (
        await provider.cancel_subscription(sub.id, at_period_end=False, idempotency_key="cancel-1") == result
    )
    with pytest.raises(InvalidProviderRequestError, match="canceled"):
        await provider.cancel_subscription(sub.id, at_period_end=False, idempotency_key="cancel-2")
    mark = len(inbox.events)
    await provider.advance(days=60)
    assert inbox.since(mark) == []


async def test_a_paused_subscription_rolls_on_without_invoices_until_resumed(
    fake: tuple[FakeProvider, Inbox],
) -> None:
    provider, inbox = fake
    sub = await subscribe(provider, seats())
    paused = await provider.pause_subscription(sub.id, idempotency_key="pause-1")
    assert (paused.snapshot.status, paused.snapshot.paused) == (SubscriptionStatus.PAUSED, True)
    with pytest.raises(InvalidProviderRequestError, match="already paused"):
        await provider.pause_subscription(sub.id, idempotency_key="pause-2")
    with pytest.raises(InvalidProviderRequestError, match="paused"):
        await provider.update_subscription(change(sub, quantity=2))
    mark = len(inbox.events)

    await provider.advance(days=70)

    assert inbox.since(mark) == ["subscription.updated"] * 2  # May 1 and June 1: periods roll, nothing billed
    assert subscription_of(inbox.events[-1]).current_period_end == datetime(2030, 7, 1, tzinfo=UTC)
    assert len(provider.invoices) == 1
    resumed = await provider.resume_subscription(sub.id, idempotency_key="resume-1")
    assert (resumed.snapshot.status, resumed.snapshot.paused) == (SubscriptionStatus.ACTIVE, False)
    await provider.advance(days=25)
    assert inbox.types()[-3:] == ["invoice.paid", "payment.succeeded", "subscription.updated"]
    assert len(provider.invoices) == 2


# --------------------------------------------------------------------------- declined renewals


async def test_a_declined_renewal_goes_past_due_and_recovers(fake: tuple[FakeProvider, Inbox]) -> None:
    provider, inbox = fake
    sub = await subscribe(provider, seats())
    with pytest.raises(InvalidProviderRequestError, match="no fake customer"):
        provider.decline_payments_for("cus_fake_nope")
    provider.decline_payments_for(sub.customer)
    mark = len(inbox.events)

    await provider.advance(days=30)

    assert inbox.since(mark) == ["invoice.payment_failed", "payment.failed", "subscription.updated"]
    unpaid = invoice_of(inbox.events[mark])
    assert (unpaid.status, unpaid.amount_paid, unpaid.total) == (InvoiceStatus.OPEN, 0, Money(1000, "EUR"))
    failed = inbox.events[mark + 1].snapshot
    assert isinstance(failed, PaymentSnapshot)
    assert (failed.status, failed.failure_code) == (PaymentStatus.FAILED, "card_declined")
    assert (failed.provider_invoice_id, failed.provider_subscription_id) == (
        unpaid.provider_invoice_id,
        sub.id,
    )
    assert failed.provider_session_id is None
    assert inbox.events[mark + 1].local_ids == {"customer_id": str(CUSTOMER.id)}
    past_due = subscription_of(inbox.events[-1])
    assert past_due.status is SubscriptionStatus.PAST_DUE
    assert past_due.current_period_start == datetime(2030, 5, 1, tzinfo=UTC)  # the period advanced anyway

    provider.decline_payments_for(sub.customer, declined=False)
    await provider.advance(days=31)

    assert inbox.since(mark + 3) == ["invoice.paid", "payment.succeeded", "subscription.updated"]
    assert subscription_of(inbox.events[-1]).status is SubscriptionStatus.ACTIVE
    assert provider.invoices[unpaid.provider_invoice_id].status is InvoiceStatus.OPEN


# --------------------------------------------------------------------------- metered usage


async def test_metered_usage_is_summed_per_period_and_counted_once_per_key(
    fake: tuple[FakeProvider, Inbox],
) -> None:
    provider, inbox = fake
    plan = seats(name="API calls", pricing_model=PricingModel.METERED, unit_amount=Money(2, "EUR"))
    sub = await subscribe(provider, plan)
    assert invoice_of(inbox.last("invoice.paid")).total == Money(0, "EUR")

    def usage(quantity: int, key: str) -> UsageReport:
        return UsageReport(
            subscription_id=uuid.UUID(int=500),
            provider_subscription_id=sub.id,
            quantity=quantity,
            idempotency_key=key,
            recorded_at=provider.now(),
        )

    await provider.report_usage(usage(700, "batch-1"))
    await provider.report_usage(usage(700, "batch-1"))
    await provider.report_usage(usage(300, "batch-2"))
    with pytest.raises(InvalidProviderRequestError, match="already used"):
        await provider.report_usage(usage(5, "batch-1"))
    with pytest.raises(InvalidProviderRequestError, match="at least 0"):
        await provider.report_usage(usage(-1, "batch-3"))
    await provider.advance(days=30)
    await provider.report_usage(usage(5, "batch-3"))
    await provider.advance(days=31)

    renewals = [invoice_of(event) for event in inbox.events if event.type == "invoice.paid"][1:]
    assert [(i.total.amount, i.period_start, i.period_end) for i in renewals] == [
        (2000, APRIL, datetime(2030, 5, 1, tzinfo=UTC)),
        (10, datetime(2030, 5, 1, tzinfo=UTC), datetime(2030, 6, 1, tzinfo=UTC)),
    ]
    assert renewals[0].lines[0]["description"] == "API calls usage: 1000 units at 0.02 EUR each"


async def test_usage_tiers_and_a_non_metered_plan(fake: tuple[FakeProvider, Inbox]) -> None:
    provider, inbox = fake
    sub = await subscribe(provider, seats())
    await provider.report_usage(
        UsageReport(
            subscription_id=uuid.UUID(int=500),
            provider_subscription_id=sub.id,
            quantity=50,
            idempotency_key="u-1",
            recorded_at=APRIL,
        )
    )
    await provider.advance(days=30)
    assert amounts(invoice_of(inbox.last("invoice.paid"))) == [(1000, False)]  # usage is not billed


# --------------------------------------------------------------------------- catalog and portal


async def test_sync_catalog_keeps_a_price_id_until_the_pricing_changes(
    fake: tuple[FakeProvider, Inbox],
) -> None:
    provider, _ = fake
    basic = seats()
    graduated = seats(
        id=uuid.UUID(int=9),
        pricing_model=PricingModel.TIERED_GRADUATED,
        unit_amount=Money(0, "EUR"),
        tiers=(TierRef(10, 500), TierRef(None, 400)),
    )
    first = await provider.sync_catalog([basic, graduated])
    assert set(first) == {basic.id, graduated.id}
    assert all(re.fullmatch(r"price_fake_[0-9a-f]+", price_id) for price_id in first.values())
    assert len(set(first.values())) == 2
    again = await provider.sync_catalog([seats(name="Seats (renamed)", trial_days=30)])
    assert again == {basic.id: first[basic.id]}
    repriced = await provider.sync_catalog([seats(unit_amount=Money(1200, "EUR"))])
    assert repriced[basic.id] != first[basic.id]
    assert provider.prices[repriced[basic.id]].provider_price_id == repriced[basic.id]
    assert provider.prices[first[graduated.id]].tiers == graduated.tiers
    with pytest.raises(InvalidProviderRequestError, match="no valid price"):
        await provider.sync_catalog([seats(pricing_model=PricingModel.TIERED_VOLUME)])


class _Forms(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.actions: list[str | None] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "form":
            self.actions.append(attributes.get("action"))
        if attributes.get("id"):
            self.ids.add(str(attributes["id"]))


async def test_portal_url_and_page(fake: tuple[FakeProvider, Inbox]) -> None:
    provider, _ = fake
    sub = await subscribe(provider, seats(), quantity=2)
    customer = CustomerRef(id=CUSTOMER.id, external_id="user-1", provider_customer_id=sub.customer)
    portal = await provider.create_portal_session(
        PortalRequest(
            customer=customer, return_url="https://shop.test/account", return_base_url=BASE_URL + "/"
        )
    )
    assert portal.url == f"{BASE_URL}/fake/portal/{sub.customer}"

    page = provider.render_portal_page(
        sub.customer, action_url=lambda sub_id, action: f"/x/{sub_id}/{action}"
    )

    forms = _Forms()
    forms.feed(page)
    assert forms.actions == [f"/x/{sub.id}/quantity", f"/x/{sub.id}/cancel"]
    assert {
        f"subscription-{sub.id}",
        f"quantity-{sub.id}",
        f"change-quantity-{sub.id}",
        "return",
    } <= forms.ids
    for text in ("Seats", "2030-05-01 00:00 UTC", "ada@example.com", "https://shop.test/account"):
        assert text in page
    await provider.cancel_subscription(sub.id, at_period_end=True, idempotency_key="cancel-1")
    later = provider.render_portal_page(
        sub.customer, action_url=lambda sub_id, action: f"/x/{sub_id}/{action}"
    )
    assert "Cancels at the end of the period" in later
    assert f"cancel-{sub.id}" not in later
    with pytest.raises(InvalidProviderRequestError, match="no fake customer"):
        provider.render_portal_page("cus_fake_nope", action_url=lambda sub_id, action: "/")


# --------------------------------------------------------------------------- the wire format


async def test_every_new_object_kind_round_trips_through_verify_webhook(
    fake: tuple[FakeProvider, Inbox],
) -> None:
    provider, inbox = fake
    sub = await subscribe(provider, seats(trial_days=3))
    provider.decline_payments_for(sub.customer)
    await provider.advance(days=3)
    provider.decline_payments_for(sub.customer, declined=False)
    await provider.advance(days=31)
    await provider.cancel_subscription(sub.id, at_period_end=False, idempotency_key="cancel-1")

    assert {event.object_kind for event in inbox.events} == {
        "subscription",
        "invoice",
        "payment",
        "checkout_session",
    }
    for event in inbox.events:
        assert event.snapshot is not None
        body = json.dumps(event.raw, separators=(",", ":")).encode()
        assert (await provider.verify_webhook(provider.sign(body), body)).snapshot == event.snapshot
    subscription = inbox.events[-1].raw["data"]["object"]
    assert set(subscription) >= {
        "object",
        "id",
        "status",
        "customer",
        "price",
        "quantity",
        "current_period_start",
        "current_period_end",
        "trial_start",
        "trial_end",
        "cancel_at_period_end",
        "canceled_at",
        "ended_at",
        "paused",
        "updated",
        "metadata",
    }
    invoice = inbox.last("invoice.payment_failed").raw["data"]["object"]
    assert set(invoice) >= {
        "object",
        "id",
        "status",
        "currency",
        "total",
        "amount_paid",
        "subscription",
        "payment",
    }
    assert set(invoice["lines"][0]) == {
        "description",
        "quantity",
        "unit_amount",
        "amount",
        "proration",
        "period_start",
        "period_end",
        "plan_id",
    }
    for kind, bad in (("subscription", {"quantity": "2"}), ("invoice", {"lines": [{"amount": 1.5}]})):
        source = inbox.events[-1] if kind == "subscription" else inbox.last("invoice.payment_failed")
        payload = json.loads(json.dumps(source.raw))
        payload["data"]["object"].update(bad)
        tampered = json.dumps(payload).encode()
        with pytest.raises(WebhookError, match=f"fake {kind} object is malformed"):
            await provider.verify_webhook(provider.sign(tampered), tampered)
