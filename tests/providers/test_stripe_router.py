"""A host app on the Stripe adapter, end to end through the HTTP API and the command line.

The host mounts ``PaymentsRouter(settings, providers=[StripeProvider(...)])`` with no fake
provider; every Stripe request goes to the recorded-shape stub (``stripe_stub.py``). The catalog
is copied with ``fastapi-cashier catalog sync --app``, customers pay through
``POST /checkout-sessions`` and the stub's hosted page, the events Stripe would send reach
``POST /webhooks/stripe`` signed with the endpoint's secrets, ``fastapi-cashier reconcile --app``
repairs what lost webhooks left behind, and a refund reaches Stripe keyed by its local row.

The tests are synchronous: the command line runs its own event loop, so each piece of HTTP work
serves the app in an event loop of its own, as one process of the host would.
"""

from __future__ import annotations

import asyncio
import random
import sys
import types
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import httpx
import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result
from fastapi import FastAPI

from fastapi_cashier import PaymentsRouter
from fastapi_cashier.billing.catalog_sync import PRICE_OBJECT
from fastapi_cashier.cli import main
from fastapi_cashier.db import Base, create_engine
from fastapi_cashier.db.model_repositories import ProviderObjectRepository
from fastapi_cashier.db.models import StatusChange
from fastapi_cashier.providers.stripe import StripeProvider
from fastapi_cashier.settings import DatabaseSettings

from ..http.conftest import Harness, settings_for
from ..http.test_subscriptions import URLS, create_plan
from .contract import ROTATED_SECRET, SECRET, Clock
from .stripe_stub import Json, StripeError, StripeStub, signed_delivery

T = TypeVar("T")

HOST_MODULE = "cashier_stripe_host"
APP = f"{HOST_MODULE}:payments"
#: The events of a paid subscription checkout, in the order the stub sends them (Stripe's usual one).
SUBSCRIPTION_EVENTS = [
    "customer.subscription.created",
    "invoice.paid",
    "payment_intent.succeeded",
    "checkout.session.completed",
]


@dataclass
class StripeHost:
    """The host's router (importable as ``cashier_stripe_host:payments``) and its Stripe stub."""

    payments: PaymentsRouter
    stub: StripeStub
    clock: Clock

    def run(self, work: Callable[[Harness], Awaitable[T]]) -> T:
        """Serve the app (lifespan included) for one piece of work."""

        async def serve() -> T:
            app = FastAPI()
            app.include_router(self.payments, prefix="/billing")
            async with app.router.lifespan_context(app):
                transport = httpx.ASGITransport(app=app)
                async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
                    settings = self.payments.settings
                    return await work(
                        Harness(app=app, payments=self.payments, client=client, settings=settings)
                    )

        return asyncio.run(serve())

    def cli(self, *args: str) -> Result:
        """``fastapi-cashier ARGS --app cashier_stripe_host:payments``."""
        return CliRunner().invoke(main, [*args, "--app", APP], catch_exceptions=False)

    def sync_catalog(self) -> Result:
        result = self.cli("catalog", "sync", "--provider", "stripe")
        assert result.exit_code == 0, result.output
        return result

    def only(self, kind: str) -> Json:
        """The one stub object of ``kind``."""
        (found,) = [obj for obj in self.stub.objects.values() if obj["object"] == kind]
        return found


_tables_made: set[str] = set()


async def _prepare(database_url: str, *, clear: bool) -> None:
    """Create the tables on first use of a scratch database (as a migration would); or delete
    every row, like the root conftest's ``engine`` fixture (async, so not for these sync tests)."""
    engine = create_engine(DatabaseSettings(url=database_url))
    try:
        async with engine.begin() as connection:
            if not clear:
                await connection.run_sync(Base.metadata.create_all)
            else:
                for table in reversed(Base.metadata.sorted_tables):
                    await connection.execute(table.delete())
    finally:
        await engine.dispose()


@pytest.fixture
def host(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[StripeHost]:
    """A Stripe-only host on the run's scratch database (emptied afterwards); its Stripe is the stub.

    Stripe's clock runs ten minutes behind the app's: events were created before they arrive,
    and a reconcile runs later than both (its repairs are stamped with the app's clock).
    """
    if database_url not in _tables_made:
        asyncio.run(_prepare(database_url, clear=False))
        _tables_made.add(database_url)
    clock = Clock()
    clock.now = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
    stub = StripeStub(clock=lambda: clock.unix)
    http_client = httpx.AsyncClient(transport=stub.transport)
    provider = StripeProvider(
        api_key="sk_test_host",
        webhook_secrets=[SECRET, ROTATED_SECRET],
        http_client=http_client,
        max_network_retries=0,
        clock=clock,
    )
    # No default provider: settings only know their built-in sections, and this Stripe provider
    # is the host's own, so every request names it.
    database = {"url": database_url, "create_tables": False}
    settings = settings_for(database_url, database=database, fake=None, default_provider=None)
    payments = PaymentsRouter(settings, providers=[provider])
    assert sorted(payments.providers) == ["manual", "stripe"]
    module = types.ModuleType(HOST_MODULE)
    module.payments = payments  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, HOST_MODULE, module)
    try:
        yield StripeHost(payments=payments, stub=stub, clock=clock)
    finally:
        asyncio.run(http_client.aclose())
        asyncio.run(_prepare(database_url, clear=True))


# --------------------------------------------------------------------------- helpers


async def deliver(harness: Harness, events: list[Json], clock: Clock, *, secret: str = SECRET) -> list[str]:
    """POST each event to the Stripe endpoint, signed as Stripe signs; the inbox's answers."""
    statuses = []
    for event in events:
        headers, body = signed_delivery(event, secret, timestamp=clock.unix)
        response = await harness.client.post("/billing/webhooks/stripe", content=body, headers=headers)
        assert response.status_code == 200, response.text
        assert response.json()["event_id"] == event["id"]
        statuses.append(response.json()["status"])
    return statuses


async def get(harness: Harness, path: str, subject: str = "alice", *, admin: bool = False) -> Any:
    response = await harness.client.get(f"/billing{path}", headers=harness.auth(subject, admin=admin))
    assert response.status_code == 200, response.text
    return response.json()


async def start_checkout(harness: Harness, subject: str, **body: Any) -> Json:
    created = await harness.client.post(
        "/billing/checkout-sessions",
        json={"provider": "stripe", **URLS, **body},
        headers=harness.auth(subject),
    )
    assert created.status_code == 201, created.text
    session: Json = created.json()
    assert session["provider"] == "stripe"
    assert session["status"] == "open"
    assert session["url"].startswith("https://checkout.stripe.com/c/pay/cs_")
    return session


def stripe_session_id(session: Json) -> str:
    """The Checkout Session id at Stripe: the last part of its hosted page's URL."""
    session_id: str = session["url"].rsplit("/", 1)[1]
    return session_id


async def customer_state(harness: Harness, subject: str) -> dict[str, Any]:
    """Everything the customer sees of their billing, and every stored event, for comparisons."""
    payments = (await get(harness, "/payments", subject))["items"]
    return {
        "subscriptions": await get(harness, "/subscriptions", subject),
        "invoices": await get(harness, "/invoices", subject),
        "payments": payments,
        "payment_events": [await get(harness, f"/payments/{p['id']}/events", subject) for p in payments],
        "webhook_events": await get(harness, "/admin/webhook-events?limit=100", "root", admin=True),
    }


async def subscribe(
    host: StripeHost, harness: Harness, plan_id: str, quantity: int, subject: str
) -> list[Json]:
    """Check out a subscription and pay on the stub's hosted page; the events Stripe sends."""
    session = await start_checkout(harness, subject, plan_id=plan_id, quantity=quantity)
    events = host.stub.complete_checkout(stripe_session_id(session))
    assert [event["type"] for event in events] == SUBSCRIPTION_EVENTS
    return events


# --------------------------------------------------------------------------- catalog sync


def test_catalog_sync_creates_the_product_and_price_at_stripe_once(host: StripeHost) -> None:
    plan = host.run(lambda harness: create_plan(harness, unit_amount=1500, currency="EUR", interval="month"))
    plan_id = uuid.UUID(plan["id"])

    first = host.sync_catalog()
    assert first.stdout.splitlines()[-1] == "1 prices created, 0 unchanged, 0 archived"
    (product,) = host.stub.requests_to("POST", "/v1/products")
    assert product.params == {
        "id": f"cashier_plan_{plan_id.hex}",
        "name": "Team workspace \N{EN DASH} Seats",
        "metadata": {"plan_id": str(plan_id)},
    }
    assert product.headers["Idempotency-Key"] == f"product-{plan_id}"
    (price_request,) = host.stub.requests_to("POST", "/v1/prices")
    assert price_request.params["product"] == f"cashier_plan_{plan_id.hex}"
    assert price_request.params["unit_amount"] == "1500"
    assert price_request.params["currency"] == "eur"
    assert price_request.params["recurring"] == {"interval": "month", "interval_count": "1"}
    assert price_request.params["metadata"]["plan_id"] == str(plan_id)
    price = host.only("price")
    assert (price["type"], price["unit_amount"], price["currency"], price["active"]) == (
        "recurring",
        1500,
        "eur",
        True,
    )
    assert price["recurring"]["interval"] == "month"

    async def current_price_id(harness: Harness) -> str | None:
        async with harness.payments.service() as svc:
            row = await ProviderObjectRepository(session=svc.session).current("stripe", PRICE_OBJECT, plan_id)
        return row.provider_id if row is not None else None

    assert host.run(current_price_id) == price["id"]

    sent_before = len(host.stub.requests)
    again = host.sync_catalog()
    assert again.stdout.splitlines()[-1] == "0 prices created, 1 unchanged, 0 archived"
    # The plan's fingerprint is unchanged: Stripe is not even asked.
    assert len(host.stub.requests) == sent_before
    assert [obj["object"] for obj in host.stub.objects.values()] == ["product", "price"]
    assert host.run(current_price_id) == price["id"]


# --------------------------------------------------------------------------- subscription checkout


def test_a_subscription_bought_through_stripe_checkout_is_applied_once_from_its_webhooks(
    host: StripeHost,
) -> None:
    plan = host.run(lambda harness: create_plan(harness, unit_amount=1500, currency="EUR"))
    host.sync_catalog()
    price = host.only("price")

    async def buy(harness: Harness) -> tuple[Json, list[Json], list[str]]:
        session = await start_checkout(harness, "alice", plan_id=plan["id"], quantity=2)
        assert (session["mode"], session["amount"], session["currency"]) == ("subscription", 3000, "EUR")
        events = host.stub.complete_checkout(stripe_session_id(session))
        assert [event["type"] for event in events] == SUBSCRIPTION_EVENTS
        return session, events, await deliver(harness, events, host.clock)

    session, events, statuses = host.run(buy)
    assert statuses == ["processed"] * 4

    customer = host.only("customer")
    assert customer["metadata"]["external_id"] == "alice"
    (checkout_request,) = host.stub.requests_to("POST", "/v1/checkout/sessions")
    assert checkout_request.headers["Idempotency-Key"] == f"checkout-{session['id']}"
    assert checkout_request.params["mode"] == "subscription"
    assert checkout_request.params["customer"] == customer["id"]
    assert checkout_request.params["client_reference_id"] == session["id"]
    assert checkout_request.params["line_items"] == [{"price": price["id"], "quantity": "2"}]
    assert checkout_request.params["subscription_data"]["metadata"]["plan_id"] == plan["id"]
    stripe_subscription = host.only("subscription")
    paid_by = host.only("invoice")["_payment_intent"]

    async def look(harness: Harness) -> tuple[dict[str, Any], Json]:
        return await customer_state(harness, "alice"), await get(
            harness, f"/checkout-sessions/{session['id']}"
        )

    state, checkout = host.run(look)
    assert checkout["status"] == "complete"
    (subscription,) = state["subscriptions"]["items"]
    assert subscription["status"] == "active"
    assert subscription["quantity"] == 2
    assert subscription["plan_id"] == plan["id"]
    assert subscription["provider"] == "stripe"
    assert subscription["cancel_at_period_end"] is False
    assert datetime.fromisoformat(subscription["current_period_end"]) == datetime.fromtimestamp(
        stripe_subscription["items"]["data"][0]["current_period_end"], UTC
    )
    (invoice,) = state["invoices"]["items"]
    assert (invoice["status"], invoice["currency"], invoice["total"], invoice["amount_paid"]) == (
        "paid",
        "EUR",
        3000,
        3000,
    )
    assert invoice["subscription_id"] == subscription["id"]
    assert invoice["paid_at"] is not None
    assert [(line["quantity"], line["unit_amount"], line["amount"]) for line in invoice["lines"]] == [
        (2, 1500, 3000)
    ]
    (payment,) = state["payments"]
    assert (payment["status"], payment["amount"], payment["currency"]) == ("succeeded", 3000, "EUR")
    assert payment["provider_payment_id"] == paid_by
    stored = state["webhook_events"]["items"]
    assert sorted(event["event_id"] for event in stored) == sorted(event["id"] for event in events)
    assert {event["status"] for event in stored} == {"processed"}

    # Stripe retries for days and in any order; two endpoint secrets may both be in use.
    redeliveries = events * 2
    random.Random(20300301).shuffle(redeliveries)

    async def redeliver(harness: Harness) -> tuple[list[str], list[str], dict[str, Any]]:
        current = await deliver(harness, redeliveries[:4], host.clock)
        rotated = await deliver(harness, redeliveries[4:], host.clock, secret=ROTATED_SECRET)
        return current, rotated, await customer_state(harness, "alice")

    current, rotated, after = host.run(redeliver)
    assert current + rotated == ["duplicate"] * 8
    assert after == state


def test_events_overtaking_the_subscription_wait_for_it(host: StripeHost) -> None:
    plan = host.run(lambda harness: create_plan(harness, unit_amount=1500, currency="EUR"))
    host.sync_catalog()

    async def buy(harness: Harness) -> tuple[list[Json], dict[str, Any]]:
        events = await subscribe(host, harness, plan["id"], 3, "carol")
        # The first invoice's PaymentIntent and the invoice arrive before the subscription they
        # bill. Stripe copies no metadata onto the PaymentIntent, so nothing says it is this
        # app's: it is ignored. The invoice carries the subscription's metadata, and waits.
        assert await deliver(harness, [events[2], events[1]], host.clock) == ["ignored", "failed"]
        assert await deliver(harness, [events[0], events[3]], host.clock) == ["processed", "processed"]
        return events, await customer_state(harness, "carol")

    events, state = host.run(buy)
    (subscription,) = state["subscriptions"]["items"]
    assert (subscription["status"], subscription["quantity"]) == ("active", 3)
    assert state["invoices"]["items"] == []
    assert state["payments"] == []
    (stored_invoice,) = [e for e in state["webhook_events"]["items"] if e["event_id"] == events[1]["id"]]
    assert stored_invoice["status"] == "failed"
    assert "not recorded here yet" in stored_invoice["last_error"]

    retried = host.cli("webhooks", "retry", "--failed")
    assert retried.exit_code == 0, retried.output
    assert retried.stdout.splitlines()[-1] == "1 processed"

    async def redeliver_payment(harness: Harness) -> tuple[list[str], dict[str, Any]]:
        # Stripe's redelivery of the ignored PaymentIntent event is a duplicate.
        statuses = await deliver(harness, [events[2]], host.clock)
        return statuses, await customer_state(harness, "carol")

    statuses, after = host.run(redeliver_payment)
    assert statuses == ["duplicate"]
    (invoice,) = after["invoices"]["items"]
    assert (invoice["status"], invoice["total"], invoice["subscription_id"]) == (
        "paid",
        4500,
        subscription["id"],
    )
    # The paid invoice recorded the payment its ignored event could not.
    (payment,) = after["payments"]
    assert (payment["status"], payment["amount"]) == ("succeeded", 4500)
    assert {e["status"] for e in after["webhook_events"]["items"]} == {"processed", "ignored"}


# --------------------------------------------------------------------------- reconcile


def test_reconcile_reports_and_fixes_drift_from_lost_webhooks(host: StripeHost) -> None:
    plan = host.run(lambda harness: create_plan(harness, unit_amount=1500, currency="EUR"))
    host.sync_catalog()

    async def buy(harness: Harness) -> Json:
        events = await subscribe(host, harness, plan["id"], 2, "alice")
        assert await deliver(harness, events, host.clock) == ["processed"] * 4
        (subscription,) = (await get(harness, "/subscriptions"))["items"]
        subscription_: Json = subscription
        return subscription_

    local = host.run(buy)
    stripe_subscription = host.only("subscription")
    label = f"subscription {local['id']} ({stripe_subscription['id']})"

    async def seen(harness: Harness) -> Json:
        subscription: Json = await get(harness, f"/subscriptions/{local['id']}")
        return subscription

    # Seats changed in the Dashboard; the webhook never arrived.
    stripe_subscription["items"]["data"][0]["quantity"] = 5
    report = host.cli("reconcile", "--provider", "stripe")
    assert report.exit_code == 1
    # The subscription and its first payment are compared; only the subscription drifted.
    assert report.stdout.splitlines() == [
        f"{label}: quantity local=2 provider=5 [not fixed]",
        "2 checked, 1 drifted, 0 fixed",
    ]
    assert host.run(seen)["quantity"] == 2

    fixed = host.cli("reconcile", "--provider", "stripe", "--fix")
    assert fixed.exit_code == 0, fixed.output
    assert fixed.stdout.splitlines() == [
        f"{label}: quantity local=2 provider=5 [fixed]",
        "2 checked, 1 drifted, 1 fixed",
    ]
    assert host.run(seen)["quantity"] == 5
    clean = host.cli("reconcile", "--provider", "stripe")
    assert clean.exit_code == 0, clean.output
    assert clean.stdout.splitlines() == ["2 checked, 0 drifted, 0 fixed"]

    # Canceled at Stripe; that webhook was lost too.
    stripe_subscription.update(status="canceled", canceled_at=host.clock.unix, ended_at=host.clock.unix)
    report = host.cli("reconcile", "--provider", "stripe")
    assert report.exit_code == 1
    assert report.stdout.splitlines() == [
        f"{label}: status local=active provider=canceled [not fixed]",
        "2 checked, 1 drifted, 0 fixed",
    ]
    fixed = host.cli("reconcile", "--provider", "stripe", "--fix")
    assert fixed.exit_code == 0, fixed.output
    assert fixed.stdout.splitlines() == [
        f"{label}: status local=active provider=canceled [fixed]",
        "2 checked, 1 drifted, 1 fixed",
    ]

    async def canceled(harness: Harness) -> tuple[Json, list[StatusChange]]:
        async with harness.payments.service() as svc:
            changes = await svc.session.scalars(
                sa.select(StatusChange).where(StatusChange.entity_id == uuid.UUID(local["id"]))
            )
            audit = list(changes.all())
        return await seen(harness), audit

    subscription, audit = host.run(canceled)
    assert subscription["status"] == "canceled"
    assert subscription["quantity"] == 5
    assert subscription["canceled_at"] is not None
    (repair,) = [change for change in audit if change.to_status == "canceled"]
    assert repair.from_status == "active"
    assert repair.provider_event_id is not None
    assert repair.provider_event_id.startswith("reconcile-")
    everything = host.cli("reconcile", "--provider", "stripe", "--all")
    assert everything.exit_code == 0, everything.output
    assert everything.stdout.splitlines() == ["2 checked, 0 drifted, 0 fixed"]


# --------------------------------------------------------------------------- one-off payment, refund


def test_a_one_off_stripe_payment_is_partially_refunded_with_a_stable_idempotency_key(
    host: StripeHost,
) -> None:
    async def pay(harness: Harness) -> tuple[Json, Json, list[str]]:
        session = await start_checkout(
            harness, "alice", amount=2500, currency="EUR", description="Concert ticket"
        )
        assert (session["mode"], session["amount"], session["currency"]) == ("payment", 2500, "EUR")
        events = host.stub.complete_checkout(stripe_session_id(session))
        assert [event["type"] for event in events] == [
            "payment_intent.succeeded",
            "checkout.session.completed",
        ]
        statuses = await deliver(harness, events, host.clock)
        return session, await get(harness, f"/checkout-sessions/{session['id']}"), statuses

    session, completed, statuses = host.run(pay)
    assert statuses == ["processed", "processed"]
    (checkout_request,) = host.stub.requests_to("POST", "/v1/checkout/sessions")
    assert checkout_request.headers["Idempotency-Key"] == f"checkout-{session['id']}"
    assert checkout_request.params["mode"] == "payment"
    (line,) = checkout_request.params["line_items"]
    assert line["price_data"]["unit_amount"] == "2500"
    assert line["price_data"]["currency"] == "eur"
    assert line["price_data"]["product_data"]["name"] == "Concert ticket"
    assert checkout_request.params["payment_intent_data"]["metadata"]["checkout_session_id"] == session["id"]
    intent = host.only("payment_intent")
    assert completed["status"] == "complete"
    payment_id = completed["payment_id"]
    assert payment_id is not None

    refund_body = {"amount": 1000, "reason": "requested_by_customer"}

    async def refund(harness: Harness) -> tuple[httpx.Response, httpx.Response, Json]:
        payment = await get(harness, f"/payments/{payment_id}")
        assert (payment["status"], payment["amount"], payment["refunded_amount"]) == ("succeeded", 2500, 0)
        assert payment["provider_payment_id"] == intent["id"]
        assert payment["payment_method_summary"] == "visa \N{BULLET}\N{BULLET}\N{BULLET}\N{BULLET} 4242"
        admin = harness.auth("root", admin=True, **{"Idempotency-Key": "refund-ticket-alice-1"})
        # Stripe's first answer is a 500: the call is repeated, with the same key.
        host.stub.failures.append(StripeError(500, "An unknown error occurred", type="api_error"))
        created = await harness.client.post(
            f"/billing/admin/payments/{payment_id}/refunds", json=refund_body, headers=admin
        )
        # The host's own client retries its request (a lost response): answered from the first.
        replayed = await harness.client.post(
            f"/billing/admin/payments/{payment_id}/refunds", json=refund_body, headers=admin
        )
        return created, replayed, await get(harness, f"/payments/{payment_id}")

    created, replayed, after = host.run(refund)
    assert created.status_code == 201, created.text
    local_refund = created.json()
    assert (local_refund["status"], local_refund["amount"], local_refund["currency"]) == (
        "succeeded",
        1000,
        "EUR",
    )
    assert (replayed.status_code, replayed.json()) == (201, local_refund)
    assert replayed.headers["Idempotent-Replayed"] == "true"

    sent = host.stub.requests_to("POST", "/v1/refunds")
    assert len(sent) == 2
    assert {request.headers["Idempotency-Key"] for request in sent} == {f"refund-{local_refund['id']}"}
    assert (
        sent[0].params
        == sent[1].params
        == {
            "amount": "1000",
            "payment_intent": intent["id"],
            "reason": "requested_by_customer",
            "metadata": {"refund_id": local_refund["id"]},
        }
    )
    stripe_refund = host.only("refund")
    assert local_refund["provider_refund_id"] == stripe_refund["id"]
    assert stripe_refund["amount"] == 1000
    assert host.only("charge")["amount_refunded"] == 1000
    assert (after["status"], after["refunded_amount"]) == ("partially_refunded", 1000)

    refund_events = [
        event for event in host.stub.events if event["type"] in ("refund.created", "charge.refunded")
    ]
    assert [event["type"] for event in refund_events] == ["refund.created", "charge.refunded"]

    async def apply_refund_events(harness: Harness) -> tuple[list[str], Json, Any, httpx.Response]:
        before = await get(harness, f"/payments/{payment_id}/events")
        statuses = await deliver(harness, refund_events, host.clock)
        again = await get(harness, f"/payments/{payment_id}")
        assert await get(harness, f"/payments/{payment_id}/events") == before
        too_much = await harness.client.post(
            f"/billing/admin/payments/{payment_id}/refunds",
            json={"amount": 1501},
            headers=harness.auth("root", admin=True),
        )
        return statuses, again, before, too_much

    statuses, again, audit, too_much = host.run(apply_refund_events)
    # Stripe's word on a refund already applied changes nothing.
    assert set(statuses) <= {"processed", "ignored"}
    assert (again["status"], again["refunded_amount"]) == ("partially_refunded", 1000)
    (succeeded,) = [c for c in audit if c["entity_type"] == "refund" and c["to_status"] == "succeeded"]
    assert "1 retried provider fault" in succeeded["reason"]
    # More than is left is refused here; Stripe is not asked.
    assert too_much.status_code == 409, too_much.text
    assert too_much.json()["code"] == "refund_exceeds_payment"
    assert len(host.stub.requests_to("POST", "/v1/refunds")) == 2
    assert host.only("charge")["amount_refunded"] == 1000
