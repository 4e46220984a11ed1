"""A host app on the Lemon Squeezy adapter, end to end through the HTTP API, on every database.

Lemon Squeezy is the in-process server (``lemonsqueezy_server.py``): the host's checkouts are paid
on its hosted page, and its signed webhooks reach ``POST /billing/webhooks/lemonsqueezy`` when the
test flushes them, in order, duplicated or shuffled.
"""

from __future__ import annotations

import hmac
import json
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from hashlib import sha256
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from fastapi_cashier import PaymentsRouter
from fastapi_cashier.db.models import WebhookEvent
from fastapi_cashier.providers.lemonsqueezy import LemonSqueezyProvider

from ..http.conftest import Harness, settings_for
from .lemonsqueezy_payloads import payload_files, payload_params, read_payload
from .lemonsqueezy_server import LemonSqueezyServer, Variant

pytestmark = [pytest.mark.anyio, pytest.mark.db]

SECRET = "ls-webhook-secret"
ROTATED_SECRET = "ls-webhook-secret-previous"
URLS = {"success_url": "https://shop.example/ok", "cancel_url": "https://shop.example/cancel"}
SEATS, SEATS_PRO, ONE_OFF = 11, 12, 21


@dataclass
class LemonHost:
    harness: Harness
    server: LemonSqueezyServer
    page: httpx.AsyncClient

    @property
    def client(self) -> httpx.AsyncClient:
        return self.harness.client

    def auth(self, subject: str = "alice", *, admin: bool = False) -> dict[str, str]:
        token = self.harness.token(subject, admin=admin, email=f"{subject}@example.com")
        return {"Authorization": f"Bearer {token}"}

    async def pay(self, url: str) -> httpx.Response:
        """Submit the server's hosted checkout page; its redirect."""
        page = await self.page.get(url)
        assert page.status_code == 200
        assert "Pay" in page.text
        return await self.page.post(url, data={"outcome": "paid"})

    async def checkout(self, **body: Any) -> dict[str, Any]:
        created = await self.client.post(
            "/billing/checkout-sessions",
            json={"provider": "lemonsqueezy", **URLS, **body},
            headers=self.auth(),
        )
        assert created.status_code == 201, created.text
        session: dict[str, Any] = created.json()
        return session

    async def get(self, path: str, *, admin: bool = False) -> Any:
        answer = await self.client.get(
            f"/billing{path}", headers=self.auth("root" if admin else "alice", admin=admin)
        )
        assert answer.status_code == 200, answer.text
        return answer.json()

    async def post(
        self, path: str, body: dict[str, Any] | None = None, *, admin: bool = False
    ) -> httpx.Response:
        return await self.client.post(
            f"/billing{path}", json=body or {}, headers=self.auth("root" if admin else "alice", admin=admin)
        )

    async def events(self) -> list[WebhookEvent]:
        async with self.harness.payments.service() as svc:
            rows = await svc.session.scalars(
                sa.select(WebhookEvent)
                .where(WebhookEvent.provider == "lemonsqueezy")
                .order_by(WebhookEvent.received_at)
            )
            return list(rows)


def seeded_server() -> LemonSqueezyServer:
    server = LemonSqueezyServer(currency="EUR", webhook_secret=SECRET)
    server.add_product(
        "Team workspace",
        [
            Variant(SEATS, 0, "Seats", 1000),
            Variant(SEATS_PRO, 0, "Seats Pro", 2000),
        ],
    )
    server.add_product("Payment", [Variant(ONE_OFF, 0, "Default", 100, is_subscription=False, interval=None)])
    return server


@pytest.fixture
async def lemon(engine: Any, database_url: str) -> AsyncIterator[LemonHost]:
    server = seeded_server()
    async with httpx.AsyncClient(transport=server.transport()) as api:
        provider = LemonSqueezyProvider(
            api_key=server.api_key,
            store_id=str(server.store_id),
            webhook_secrets=[SECRET, ROTATED_SECRET],
            api_base="https://ls.test/v1",
            http_client=api,
        )
        settings = settings_for(
            database_url,
            database={"url": database_url, "create_tables": False},
            fake=None,
            default_provider=None,
        )
        payments = PaymentsRouter(settings, providers=[provider])
        app = FastAPI()
        app.include_router(payments, prefix="/billing")
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with (
                httpx.AsyncClient(transport=transport, base_url="http://testserver") as client,
                httpx.AsyncClient(transport=httpx.ASGITransport(app=server.app)) as page,
            ):

                async def deliver(headers: dict[str, str], body: bytes) -> None:
                    answer = await client.post(
                        "/billing/webhooks/lemonsqueezy", content=body, headers=headers
                    )
                    assert answer.status_code == 200, answer.text

                server.deliver = deliver
                harness = Harness(app=app, payments=payments, client=client, settings=settings)
                yield LemonHost(harness, server, page)


async def link_plans(lemon: LemonHost) -> dict[str, str]:
    admin = lemon.auth("root", admin=True)
    product = await lemon.client.post(
        "/billing/admin/products", json={"name": "Team workspace"}, headers=admin
    )
    assert product.status_code == 201, product.text
    ids = {}
    for name, amount in (("Seats", 1000), ("Seats Pro", 2000)):
        plan = await lemon.client.post(
            "/billing/admin/plans",
            json={
                "product_id": product.json()["id"],
                "name": name,
                "pricing_model": "per_unit",
                "unit_amount": amount,
                "currency": "EUR",
                "interval": "month",
            },
            headers=admin,
        )
        assert plan.status_code == 201, plan.text
        ids[name] = plan.json()["id"]
    synced = await lemon.client.post("/billing/admin/catalog/sync?provider=lemonsqueezy", headers=admin)
    assert synced.status_code == 200, synced.text
    return ids


# --------------------------------------------------------------------------- one-off payments


async def test_a_one_off_purchase_is_paid_on_the_hosted_page_and_recorded_from_order_created(
    lemon: LemonHost,
) -> None:
    session = await lemon.checkout(
        amount=2500, currency="EUR", description="Concert ticket", reference="booking-7"
    )
    (checkout,) = lemon.server.checkouts.values()
    assert checkout["custom_price"] == 2500
    assert checkout["variant_id"] == ONE_OFF
    assert checkout["checkout_data"]["email"] == "alice@example.com"
    assert checkout["checkout_data"]["custom"]["checkout_session_id"] == session["id"]
    assert checkout["product_options"]["redirect_url"] == URLS["success_url"]
    assert checkout["expires_at"] is not None

    redirect = await lemon.pay(session["url"])
    assert redirect.status_code == 303
    assert redirect.headers["location"] == URLS["success_url"]
    assert await lemon.server.flush() == 1

    detail = await lemon.get(f"/checkout-sessions/{session['id']}")
    assert detail["status"] == "complete"
    (payment,) = (await lemon.get("/payments"))["items"]
    assert payment["status"] == "succeeded"
    assert (payment["amount"], payment["currency"]) == (2500, "EUR")
    assert payment["reference"] == "booking-7"
    (order_id,) = lemon.server.orders
    assert payment["provider_payment_id"] == f"orders/{order_id}"


async def test_partial_then_full_refund_of_an_order(lemon: LemonHost) -> None:
    session = await lemon.checkout(amount=2500, currency="EUR", description="Ticket")
    await lemon.pay(session["url"])
    await lemon.server.flush()
    (payment,) = (await lemon.get("/payments"))["items"]

    partial = await lemon.post(f"/admin/payments/{payment['id']}/refunds", {"amount": 1000}, admin=True)
    assert partial.status_code == 201, partial.text
    await lemon.server.flush()
    assert (await lemon.get(f"/payments/{payment['id']}"))["refunded_amount"] == 1000
    assert (await lemon.get(f"/payments/{payment['id']}"))["status"] == "partially_refunded"

    rest = await lemon.post(f"/admin/payments/{payment['id']}/refunds", {}, admin=True)
    assert rest.status_code == 201, rest.text
    await lemon.server.flush()
    after = await lemon.get(f"/payments/{payment['id']}")
    assert (after["refunded_amount"], after["status"]) == (2500, "refunded")
    (order,) = lemon.server.orders.values()
    assert (order["refunded_amount"], order["status"]) == (2500, "refunded")


async def test_a_checkout_whose_answer_is_lost_is_not_created_twice(lemon: LemonHost) -> None:
    lemon.server.lose_answers.add(("POST", "/v1/checkouts"))

    session = await lemon.checkout(amount=1200, currency="EUR", description="Ticket")

    assert len(lemon.server.checkouts) == 1
    (checkout_id,) = lemon.server.checkouts
    assert session["url"].endswith(f"/checkout/{checkout_id}")
    assert [call for call in lemon.server.requests if call == ("POST", "/v1/checkouts")] == [
        ("POST", "/v1/checkouts")
    ]


# --------------------------------------------------------------------------- subscriptions


async def test_a_subscription_from_checkout_through_renewal_change_pause_cancel_resume_and_expiry(
    lemon: LemonHost,
) -> None:
    plans = await link_plans(lemon)
    session = await lemon.checkout(plan_id=plans["Seats"], quantity=3)
    (checkout,) = lemon.server.checkouts.values()
    assert checkout["variant_id"] == SEATS
    assert checkout["checkout_data"]["variant_quantities"] == [{"variant_id": SEATS, "quantity": 3}]

    await lemon.pay(session["url"])
    assert await lemon.server.flush() == 3
    (subscription,) = (await lemon.get("/subscriptions"))["items"]
    assert (subscription["status"], subscription["quantity"], subscription["plan_id"]) == (
        "active",
        3,
        plans["Seats"],
    )
    assert (await lemon.get(f"/checkout-sessions/{session['id']}"))["status"] == "complete"
    (first_payment,) = (await lemon.get("/payments"))["items"]
    assert (first_payment["amount"], first_payment["status"]) == (3000, "succeeded")
    assert len((await lemon.get("/invoices"))["items"]) == 1

    (provider_id,) = lemon.server.subscriptions
    await lemon.server.renew(provider_id)
    await lemon.server.flush()
    payments = (await lemon.get("/payments"))["items"]
    assert sorted(payment["amount"] for payment in payments) == [3000, 3000]
    assert len((await lemon.get("/invoices"))["items"]) == 2

    sub_path = f"/subscriptions/{subscription['id']}"
    changed = await lemon.client.patch(
        f"/billing{sub_path}", json={"plan_id": plans["Seats Pro"], "proration": "none"}, headers=lemon.auth()
    )
    assert changed.status_code == 200, changed.text
    await lemon.server.flush()
    assert lemon.server.subscriptions[provider_id]["variant_id"] == SEATS_PRO
    seats = await lemon.client.patch(f"/billing{sub_path}", json={"quantity": 5}, headers=lemon.auth())
    assert seats.status_code == 200, seats.text
    await lemon.server.flush()
    current = await lemon.get(sub_path)
    assert (current["plan_id"], current["quantity"]) == (plans["Seats Pro"], 5)

    paused = await lemon.post(f"{sub_path}/pause")
    assert paused.status_code == 200, paused.text
    await lemon.server.flush()
    assert lemon.server.subscriptions[provider_id]["pause"] == {"mode": "void", "resumes_at": None}
    assert (await lemon.get(sub_path))["status"] == "paused"
    resumed = await lemon.post(f"{sub_path}/resume")
    assert resumed.status_code == 200, resumed.text
    await lemon.server.flush()
    assert (await lemon.get(sub_path))["status"] == "active"

    now = await lemon.post(f"{sub_path}/cancel", {"at_period_end": False})
    assert now.status_code == 422, now.text
    assert now.json()["code"] == "unsupported_capability"
    assert lemon.server.subscriptions[provider_id]["cancelled"] is False

    cancelled = await lemon.post(f"{sub_path}/cancel", {"at_period_end": True})
    assert cancelled.status_code == 200, cancelled.text
    await lemon.server.flush()
    assert (await lemon.get(sub_path))["cancel_at_period_end"] is True
    undo = await lemon.post(f"{sub_path}/resume")
    assert undo.status_code == 200, undo.text
    await lemon.server.flush()
    assert (await lemon.get(sub_path))["cancel_at_period_end"] is False

    again = await lemon.post(f"{sub_path}/cancel", {"at_period_end": True})
    assert again.status_code == 200, again.text
    await lemon.server.renew(provider_id)
    await lemon.server.flush()
    assert (await lemon.get(sub_path))["status"] == "expired"

    portal = await lemon.post(
        "/portal-sessions", {"provider": "lemonsqueezy", "return_url": "https://app.example/account"}
    )
    assert portal.status_code in (200, 201), portal.text
    assert portal.json()["url"].startswith("https://ls.test/billing")


async def test_duplicated_and_shuffled_deliveries_converge_to_the_in_order_state(lemon: LemonHost) -> None:
    plans = await link_plans(lemon)
    session = await lemon.checkout(plan_id=plans["Seats"], quantity=2)
    await lemon.pay(session["url"])
    (provider_id,) = lemon.server.subscriptions
    await lemon.server.renew(provider_id)
    await lemon.server.flush()
    (subscription,) = (await lemon.get("/subscriptions"))["items"]
    sub_path = f"/subscriptions/{subscription['id']}"
    assert (await lemon.post(f"{sub_path}/cancel", {"at_period_end": True})).status_code == 200
    in_order = list(lemon.server.outbox)
    lemon.server.outbox.clear()
    shuffled = in_order + in_order[: len(in_order) // 2]
    random.Random(14).shuffle(shuffled)
    lemon.server.outbox.extend(shuffled)
    await lemon.server.flush()

    final = await lemon.get(sub_path)
    assert (final["status"], final["cancel_at_period_end"], final["quantity"]) == ("active", True, 2)
    rows = await lemon.events()
    assert len({row.event_id for row in rows}) == len(rows)
    assert all(row.status in ("processed", "ignored") for row in rows)


# --------------------------------------------------------------------------- webhooks


def signed(body: bytes, secret: str = SECRET) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "X-Signature": hmac.new(secret.encode(), body, sha256).hexdigest(),
    }


@pytest.mark.parametrize("path", payload_params())
async def test_every_real_payload_is_accepted_stored_once_and_never_failed(
    lemon: LemonHost, path: Path
) -> None:
    body = read_payload(path)

    first = await lemon.client.post("/billing/webhooks/lemonsqueezy", content=body, headers=signed(body))
    again = await lemon.client.post("/billing/webhooks/lemonsqueezy", content=body, headers=signed(body))

    assert first.status_code == 200, first.text
    assert again.status_code == 200, again.text
    (row,) = await lemon.events()
    assert row.status in ("processed", "ignored")


async def test_all_real_payloads_together_are_stored_once_each(lemon: LemonHost) -> None:
    files = payload_files()
    if not files:
        pytest.skip("the shared Lemon Squeezy payloads are absent")
    for path in files + files:
        body = read_payload(path)
        answer = await lemon.client.post("/billing/webhooks/lemonsqueezy", content=body, headers=signed(body))
        assert answer.status_code == 200, answer.text

    rows = await lemon.events()
    assert len(rows) == len(files)
    assert {row.status for row in rows} <= {"processed", "ignored"}


BODY = json.dumps(
    {
        "meta": {"event_name": "subscription_updated"},
        "data": {
            "type": "subscriptions",
            "id": "5",
            "attributes": {"status": "active", "updated_at": "2026-01-01T00:00:00Z"},
        },
    }
).encode()


@pytest.mark.parametrize(
    ("headers", "body"),
    [
        ({"Content-Type": "application/json"}, BODY),
        (signed(BODY, "not-the-secret"), BODY),
        (signed(BODY), BODY.replace(b'"5"', b'"6"')),
        ({"Content-Type": "application/json", "X-Signature": ""}, BODY),
    ],
    ids=["missing", "wrong-secret", "tampered-body", "empty"],
)
async def test_a_bad_signature_is_refused_and_nothing_is_stored(
    lemon: LemonHost, headers: dict[str, str], body: bytes
) -> None:
    answer = await lemon.client.post("/billing/webhooks/lemonsqueezy", content=body, headers=headers)

    assert answer.status_code == 400, answer.text
    assert answer.json()["code"] == "invalid_signature"
    assert await lemon.events() == []


async def test_a_delivery_signed_with_the_rotated_secret_is_accepted(lemon: LemonHost) -> None:
    answer = await lemon.client.post(
        "/billing/webhooks/lemonsqueezy", content=BODY, headers=signed(BODY, ROTATED_SECRET)
    )

    assert answer.status_code == 200, answer.text
    (row,) = await lemon.events()
    assert row.status == "ignored"


# --------------------------------------------------------------------------- usage and invoice refunds


async def metered_subscription(lemon: LemonHost) -> str:
    """A paid subscription to a metered plan linked to a usage-based variant; its API path."""
    lemon.server.add_product("API", [Variant(31, 0, "API calls", 5, usage_based=True)])
    admin = lemon.auth("root", admin=True)
    product = await lemon.client.post("/billing/admin/products", json={"name": "API"}, headers=admin)
    plan = await lemon.client.post(
        "/billing/admin/plans",
        json={
            "product_id": product.json()["id"],
            "name": "API calls",
            "pricing_model": "metered",
            "unit_amount": 5,
            "currency": "EUR",
            "interval": "month",
        },
        headers=admin,
    )
    assert plan.status_code == 201, plan.text
    synced = await lemon.client.post("/billing/admin/catalog/sync?provider=lemonsqueezy", headers=admin)
    assert synced.status_code == 200, synced.text
    session = await lemon.checkout(plan_id=plan.json()["id"], quantity=1)
    await lemon.pay(session["url"])
    await lemon.server.flush()
    (subscription,) = (await lemon.get("/subscriptions"))["items"]
    return f"/subscriptions/{subscription['id']}"


async def test_metered_usage_is_recorded_once_per_key_and_billed_at_renewal(lemon: LemonHost) -> None:
    usage_path = f"{await metered_subscription(lemon)}/usage"

    first = await lemon.post(usage_path, {"quantity": 40, "idempotency_key": "batch-1"})
    repeat = await lemon.post(usage_path, {"quantity": 40, "idempotency_key": "batch-1"})
    second = await lemon.post(usage_path, {"quantity": 2, "idempotency_key": "batch-2"})

    assert (first.status_code, repeat.status_code, second.status_code) == (201, 200, 201)
    assert sorted(record["quantity"] for record in lemon.server.usage_records.values()) == [2, 40]
    (provider_id,) = lemon.server.subscriptions
    invoice_id = await lemon.server.renew(provider_id)
    assert lemon.server.invoices[invoice_id]["total"] == 42 * 5


async def test_a_lost_usage_answer_is_settled_without_a_second_record(lemon: LemonHost) -> None:
    usage_path = f"{await metered_subscription(lemon)}/usage"
    lemon.server.lose_answers.add(("POST", "/v1/usage-records"))

    answer = await lemon.post(usage_path, {"quantity": 7, "idempotency_key": "k"})

    assert answer.status_code == 201, answer.text
    assert [record["quantity"] for record in lemon.server.usage_records.values()] == [7]
    assert lemon.server.requests.count(("POST", "/v1/usage-records")) == 1


async def test_a_subscription_payment_is_refunded_on_its_invoice(lemon: LemonHost) -> None:
    plans = await link_plans(lemon)
    session = await lemon.checkout(plan_id=plans["Seats"], quantity=2)
    await lemon.pay(session["url"])
    await lemon.server.flush()
    (payment,) = (await lemon.get("/payments"))["items"]
    assert payment["provider_payment_id"].startswith("subscription-invoices/")

    refund = await lemon.post(f"/admin/payments/{payment['id']}/refunds", {"amount": 500}, admin=True)
    assert refund.status_code == 201, refund.text
    await lemon.server.flush()

    after = await lemon.get(f"/payments/{payment['id']}")
    assert (after["refunded_amount"], after["status"]) == (500, "partially_refunded")
    (invoice,) = lemon.server.invoices.values()
    assert (invoice["refunded_amount"], invoice["status"]) == (500, "partial_refund")


# --------------------------------------------------------------------------- reconcile


async def test_reconcile_reports_and_fixes_what_lost_webhooks_left_behind(lemon: LemonHost) -> None:
    plans = await link_plans(lemon)
    session = await lemon.checkout(plan_id=plans["Seats"], quantity=1)
    await lemon.pay(session["url"])
    await lemon.server.flush()
    (subscription,) = (await lemon.get("/subscriptions"))["items"]
    (provider_id,) = lemon.server.subscriptions
    # Cancelled in Lemon Squeezy's dashboard; the deliveries never arrive.
    record = lemon.server.subscriptions[provider_id]
    record.update(cancelled=True, status="cancelled", ends_at=record["renews_at"])
    lemon.server.outbox.clear()

    async with lemon.harness.payments.service() as svc:
        report = await svc.reconcile.run("lemonsqueezy")
    assert {(drift.kind, drift.field) for drift in report.drift} >= {("subscription", "cancel_at_period_end")}
    assert report.fixed == []

    async with lemon.harness.payments.service() as svc:
        fixed = await svc.reconcile.run("lemonsqueezy", fix=True)
    assert fixed.fixed
    after = await lemon.get(f"/subscriptions/{subscription['id']}")
    assert (after["status"], after["cancel_at_period_end"]) == ("active", True)


async def test_a_checkout_in_another_currency_than_the_stores_is_refused(lemon: LemonHost) -> None:
    created = await lemon.client.post(
        "/billing/checkout-sessions",
        json={"provider": "lemonsqueezy", "amount": 2500, "currency": "USD", "description": "Ticket", **URLS},
        headers=lemon.auth(),
    )

    assert created.status_code == 422, created.text
    problem = created.json()
    assert created.headers["content-type"].startswith("application/problem+json")
    assert problem["code"] == "currency_mismatch"
    assert "sells in EUR" in problem["detail"]
    assert "a checkout in USD" in problem["detail"]
    assert problem["details"]["currency"] == "USD"
    assert problem["details"]["store_currency"] == "EUR"
    assert [error["field"] for error in problem["errors"]] == ["currency"]
    assert lemon.server.checkouts == {}


async def test_the_real_trio_delivered_backwards_converges_once_the_waiting_event_is_retried(
    lemon: LemonHost,
) -> None:
    plans = await link_plans(lemon)
    session = await lemon.checkout(plan_id=plans["Seats"], quantity=2)
    await lemon.pay(session["url"])
    names = [json.loads(body)["meta"]["event_name"] for _, body in lemon.server.outbox]
    assert names == ["order_created", "subscription_created", "subscription_payment_success"]
    lemon.server.outbox.reverse()
    await lemon.server.flush()

    waiting = [row for row in await lemon.events() if row.status not in ("processed", "ignored")]
    for row in waiting:
        result = await lemon.harness.payments.inbox.retry(row.id)
        assert result.status == "processed", result

    (subscription,) = (await lemon.get("/subscriptions"))["items"]
    assert (subscription["status"], subscription["quantity"]) == ("active", 2)
    (payment,) = (await lemon.get("/payments"))["items"]
    assert (payment["amount"], payment["status"]) == (2000, "succeeded")
    assert (await lemon.get(f"/checkout-sessions/{session['id']}"))["status"] == "complete"
    assert {row.status for row in await lemon.events()} <= {"processed", "ignored"}


async def test_a_refund_made_in_the_dashboard_is_recorded_from_order_refunded(lemon: LemonHost) -> None:
    session = await lemon.checkout(amount=2500, currency="EUR", description="Ticket")
    await lemon.pay(session["url"])
    await lemon.server.flush()
    (payment,) = (await lemon.get("/payments"))["items"]
    (order_id,) = lemon.server.orders
    order = lemon.server.orders[order_id]
    order.update(
        refunded_amount=700, refunded=True, status="partial_refund", updated_at="2099-01-01T00:00:00.000000Z"
    )
    await lemon.server.send("order_refunded", "orders", order_id, lemon.server.custom_data[order_id])
    await lemon.server.flush()

    after = await lemon.get(f"/payments/{payment['id']}")
    assert (after["refunded_amount"], after["status"]) == (700, "partially_refunded")
    rows = await lemon.events()
    assert [row.status for row in rows if row.type == "refund.succeeded"] == ["processed"]


@pytest.mark.parametrize(
    "body",
    [
        b'{"meta": {"event_name": "order_created"}}',
        b'{"meta": {}, "data": {"type": "orders", "id": "1"}}',
        json.dumps(
            {
                "meta": {"event_name": "order_created"},
                "data": {"type": "orders", "id": "3", "attributes": {"total": 19.99, "currency": "EUR"}},
            }
        ).encode(),
    ],
    ids=["no-data", "no-event-name", "float-total"],
)
async def test_a_signed_object_that_is_no_readable_event_is_stored_once_as_ignored(
    lemon: LemonHost, body: bytes
) -> None:
    first = await lemon.client.post("/billing/webhooks/lemonsqueezy", content=body, headers=signed(body))
    again = await lemon.client.post("/billing/webhooks/lemonsqueezy", content=body, headers=signed(body))

    assert first.status_code == 200, first.text
    assert first.json()["status"] == "ignored"
    assert again.json()["status"] == "duplicate"
    (row,) = await lemon.events()
    assert row.status == "ignored"
    assert row.ignored_reason
    assert row.last_error is None


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]"], ids=["not-json", "not-an-object"])
async def test_a_signed_body_that_is_no_json_object_is_refused(lemon: LemonHost, body: bytes) -> None:
    answer = await lemon.client.post("/billing/webhooks/lemonsqueezy", content=body, headers=signed(body))

    assert answer.status_code == 400, answer.text
    assert await lemon.events() == []
