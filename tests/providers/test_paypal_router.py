"""A host on the PayPal adapter, end to end through the router, on every configured database.

PayPal is the in-process sandbox; its deliveries reach ``POST /billing/webhooks/paypal`` signed
with its certificate, verified by the adapter as production would (only the sandbox's host and CA
are allowed in addition).
"""

from __future__ import annotations

import json
import random
import uuid
from typing import Any
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa

from fastapi_cashier.db.models import Payment, StatusChange, WebhookEvent

from ..http.test_subscriptions import URLS, create_plan
from .paypal_sandbox.fixtures import PayPalHost

pytestmark = pytest.mark.anyio


@pytest.fixture
def host(paypal_host: PayPalHost) -> PayPalHost:
    return paypal_host


async def test_approve_return_then_webhooks_duplicated_and_shuffled(host: PayPalHost) -> None:
    session = await host.checkout()
    approved = await host.click(session["url"])
    assert approved.status_code == 303
    back = urlsplit(approved.headers["location"])
    assert back.path == f"/billing/paypal/return/{session['id']}"
    returned = await host.client.get(f"{back.path}?{back.query}")
    assert returned.status_code == 303, returned.text
    assert returned.headers["location"] == URLS["success_url"]
    assert len(host.sandbox.state.captures) == 1

    events = list(host.sandbox.sent_events)
    assert [json.loads(body)["event_type"] for _, body in events] == [
        "CHECKOUT.ORDER.APPROVED",
        "PAYMENT.CAPTURE.COMPLETED",
    ]
    deliveries = events * 2
    random.Random(13).shuffle(deliveries)
    await host.deliver_all(deliveries)
    assert len(host.sandbox.state.captures) == 1
    [payment] = await host.payments()
    capture_id = next(iter(host.sandbox.state.captures))
    assert (payment["status"], payment["amount"], payment["currency"]) == ("succeeded", 4359, "EUR")
    assert (payment["provider"], payment["provider_payment_id"]) == ("paypal", capture_id)
    # The return again (a reload): no second capture, the same redirect.
    again = await host.client.get(f"{back.path}?{back.query}")
    assert again.status_code == 303
    assert len(host.sandbox.state.captures) == 1


async def test_refunds_partial_then_the_rest(host: PayPalHost) -> None:
    session = await host.checkout(amount=10000, currency="USD")
    back = urlsplit((await host.click(session["url"])).headers["location"])
    await host.client.get(f"{back.path}?{back.query}")
    await host.deliver_all(host.sandbox.sent_events)
    [payment] = await host.payments()
    admin = host.harness.auth("root", admin=True)
    first = await host.client.post(
        f"/billing/admin/payments/{payment['id']}/refunds",
        json={"amount": 2500, "reason": "late"},
        headers=admin,
    )
    assert first.status_code == 201, first.text
    rest = await host.client.post(f"/billing/admin/payments/{payment['id']}/refunds", json={}, headers=admin)
    assert rest.status_code == 201, rest.text
    refunds = list(host.sandbox.state.refunds.values())
    assert [refund["amount"]["value"] for refund in refunds] == ["25.00", "75.00"]
    await host.deliver_all(host.sandbox.sent_events)
    [refunded] = await host.payments()
    assert (refunded["status"], refunded["refunded_amount"]) == ("refunded", 10000)
    too_much = await host.client.post(
        f"/billing/admin/payments/{payment['id']}/refunds", json={"amount": 1}, headers=admin
    )
    assert too_much.status_code == 409, too_much.text


async def test_a_declined_capture_sends_the_payer_back_to_the_host_with_the_payment_failed(
    host: PayPalHost, engine: Any
) -> None:
    session = await host.checkout()
    back = urlsplit((await host.click(session["url"], "approve_declined")).headers["location"])
    declined = await host.client.get(f"{back.path}?{back.query}")
    assert declined.status_code == 303, declined.text
    assert declined.headers["location"] == f"{URLS['cancel_url']}?checkout=declined"
    assert host.sandbox.state.captures == {}
    [payment] = await host.payments()
    assert (payment["status"], payment["amount"], payment["provider_payment_id"]) == ("failed", 4359, None)
    detail = await host.client.get(
        f"/billing/checkout-sessions/{session['id']}", headers=host.harness.auth("alice")
    )
    assert detail.json()["status"] == "open"  # the payer may approve again at PayPal
    async with engine.connect() as connection:
        row = (
            await connection.execute(
                sa.select(Payment.failure_code, Payment.checkout_session_id).where(
                    Payment.id == uuid.UUID(payment["id"])
                )
            )
        ).one()
        trail = (
            await connection.execute(
                sa.select(StatusChange.from_status, StatusChange.to_status, StatusChange.cause).where(
                    StatusChange.entity_id == uuid.UUID(payment["id"])
                )
            )
        ).all()
    assert (row.failure_code, str(row.checkout_session_id)) == ("INSTRUMENT_DECLINED", session["id"])
    assert [(a, b, str(getattr(c, "value", c))) for a, b, c in trail] == [(None, "failed", "api")]

    # The approval webhook tries the capture too: declined again, recorded on the same payment,
    # and the event is processed (not retried: the same approval would be declined again).
    [(headers, body)] = host.sandbox.sent_events
    delivered = await host.deliver(headers, body)
    assert delivered.status_code == 200, delivered.text
    assert delivered.json()["status"] == "processed"
    # A reload of the return page: the same redirect, still nothing captured, one payment.
    again = await host.client.get(f"{back.path}?{back.query}")
    assert again.headers["location"] == f"{URLS['cancel_url']}?checkout=declined"
    assert host.sandbox.state.captures == {}
    assert [p["status"] for p in await host.payments()] == ["failed"]


async def test_after_a_declined_capture_the_payer_approves_again_and_is_captured_once(
    host: PayPalHost,
) -> None:
    session = await host.checkout()
    back = urlsplit((await host.click(session["url"], "approve_declined")).headers["location"])
    declined = await host.client.get(f"{back.path}?{back.query}")
    assert declined.headers["location"] == f"{URLS['cancel_url']}?checkout=declined"
    # PayPal answers a repeated PayPal-Request-Id with its first answer: the second capture must
    # be sent under a new one, or it would be "declined" again whatever the payer chose.
    back = urlsplit((await host.click(session["url"], "approve")).headers["location"])
    paid = await host.client.get(f"{back.path}?{back.query}")
    assert paid.status_code == 303, paid.text
    assert paid.headers["location"] == URLS["success_url"]
    assert len(host.sandbox.state.captures) == 1
    # Both approvals' webhooks, redelivered: nothing is captured twice.
    for headers, body in list(host.sandbox.sent_events):
        delivered = await host.deliver(headers, body)
        assert delivered.status_code == 200, delivered.text
    assert len(host.sandbox.state.captures) == 1
    [payment] = await host.payments()
    assert (payment["status"], payment["amount"]) == ("succeeded", 4359)
    detail = await host.client.get(
        f"/billing/checkout-sessions/{session['id']}", headers=host.harness.auth("alice")
    )
    assert detail.json()["status"] == "complete"


def test_the_declined_redirect_keeps_the_cancel_urls_own_query() -> None:
    from fastapi_cashier.billing.checkout import with_query

    assert with_query("https://shop.example/cart?step=2#top", checkout="declined") == (
        "https://shop.example/cart?step=2&checkout=declined#top"
    )
    assert with_query("https://shop.example/cart?checkout=old", checkout="declined") == (
        "https://shop.example/cart?checkout=declined"
    )


@pytest.mark.parametrize("tamper", ["body", "webhook_id", "cert_host", "stale", "no_signature"])
async def test_a_bad_delivery_is_refused_and_nothing_is_stored(
    host: PayPalHost, engine: Any, tamper: str
) -> None:
    headers, body = await host.sandbox.emit("PAYMENT.CAPTURE.COMPLETED", "capture", {"id": "X"}, "done")
    headers = dict(headers)
    if tamper == "body":
        body = body.replace(b"done", b"DONE")
    elif tamper == "webhook_id":
        headers = host.sandbox.sign(body, webhook_id="ANOTHER")
    elif tamper == "cert_host":
        headers["PAYPAL-CERT-URL"] = "https://attacker.example/v1/notifications/certs/CERT-1"
    elif tamper == "stale":
        host.sandbox.state.advance(3600)
    else:
        del headers["PAYPAL-TRANSMISSION-SIG"]
    response = await host.deliver(headers, body)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    async with engine.connect() as connection:
        stored = await connection.scalar(sa.select(sa.func.count()).select_from(WebhookEvent))
    assert stored == 0


async def test_a_subscription_through_approval_renewal_revise_suspend_activate_cancel(
    host: PayPalHost,
) -> None:
    plan = await create_plan(host.harness, pricing_model="per_unit", unit_amount=900, currency="USD")
    admin = host.harness.auth("root", admin=True)
    synced = await host.client.post("/billing/admin/catalog/sync", json={"provider": "paypal"}, headers=admin)
    assert synced.status_code == 200, synced.text
    [paypal_plan] = host.sandbox.state.plans.values()
    assert paypal_plan["quantity_supported"] is True
    created = await host.client.post(
        "/billing/checkout-sessions",
        json={"plan_id": plan["id"], "quantity": 2, "provider": "paypal", **URLS},
        headers=host.harness.auth("alice"),
    )
    assert created.status_code == 201, created.text
    approved = await host.click(created.json()["url"])
    assert approved.headers["location"].startswith(URLS["success_url"])
    await host.deliver_all(host.sandbox.sent_events)
    listed = (await host.client.get("/billing/subscriptions", headers=host.harness.auth("alice"))).json()[
        "items"
    ]
    [sub] = listed
    assert (sub["status"], sub["quantity"]) == ("active", 2)
    sent = len(host.sandbox.sent_events)
    await host.sandbox.advance(31 * 86400)
    await host.deliver_all(host.sandbox.sent_events[sent:])
    invoices = (await host.client.get("/billing/invoices", headers=host.harness.auth("alice"))).json()[
        "items"
    ]
    assert [invoice["total"] for invoice in invoices] == [1800, 1800]

    alice = host.harness.auth("alice")
    changed = await host.client.patch(
        f"/billing/subscriptions/{sub['id']}", json={"quantity": 3, "proration": "none"}, headers=alice
    )
    assert changed.status_code == 200, changed.text
    paused = await host.client.post(f"/billing/subscriptions/{sub['id']}/pause", headers=alice)
    assert paused.status_code == 200, paused.text
    resumed = await host.client.post(f"/billing/subscriptions/{sub['id']}/resume", headers=alice)
    assert resumed.status_code == 200, resumed.text
    # PayPal has no cancel at period end: the library keeps the flag (test_paypal_period_end.py).
    at_end = await host.client.post(
        f"/billing/subscriptions/{sub['id']}/cancel", json={"at_period_end": True}, headers=alice
    )
    assert at_end.status_code == 200, at_end.text
    assert (at_end.json()["status"], at_end.json()["cancel_at_period_end"]) == ("active", True)
    now = await host.client.post(
        f"/billing/subscriptions/{sub['id']}/cancel", json={"at_period_end": False}, headers=alice
    )
    assert now.status_code == 200, now.text
    assert now.json()["status"] == "canceled"


async def test_webhook_first_then_return_captures_once(host: PayPalHost) -> None:
    session = await host.checkout()
    back = urlsplit((await host.click(session["url"])).headers["location"])
    [(headers, body)] = host.sandbox.sent_events
    assert json.loads(body)["event_type"] == "CHECKOUT.ORDER.APPROVED"
    # The approval arrives first (twice): the library captures, once.
    await host.deliver_all([(headers, body), (headers, body)])
    assert len(host.sandbox.state.captures) == 1
    later = host.sandbox.sent_events[1:]
    assert [json.loads(b)["event_type"] for _, b in later] == ["PAYMENT.CAPTURE.COMPLETED"]
    shuffled = later * 3
    random.Random(7).shuffle(shuffled)
    await host.deliver_all(shuffled)
    # Then the payer's browser comes back: redirected, nothing captured again.
    returned = await host.client.get(f"{back.path}?{back.query}")
    assert returned.status_code == 303, returned.text
    assert returned.headers["location"] == URLS["success_url"]
    assert len(host.sandbox.state.captures) == 1
    [payment] = await host.payments()
    assert payment["status"] == "succeeded"
    captures = [call for call in host.sandbox.state.calls if call[1].endswith("/capture")]
    assert {call[2] for call in captures} == {f"checkout-complete-{session['id']}"}


@pytest.mark.parametrize("kind", ["500", "reset"])
async def test_a_capture_fault_is_retried_with_the_same_request_id(host: PayPalHost, kind: str) -> None:
    from .paypal_sandbox import Fault

    session = await host.checkout()
    back = urlsplit((await host.click(session["url"])).headers["location"])
    host.sandbox.state.faults.append(Fault("POST", "/capture", kind))
    returned = await host.client.get(f"{back.path}?{back.query}")
    assert returned.status_code == 303, returned.text
    captures = [call for call in host.sandbox.state.calls if call[1].endswith("/capture")]
    assert len(captures) == 2
    assert {call[2] for call in captures} == {f"checkout-complete-{session['id']}"}
    assert len(host.sandbox.state.captures) == 1
    await host.deliver_all(host.sandbox.sent_events)
    [payment] = await host.payments()
    assert payment["status"] == "succeeded"


async def test_a_pending_capture_stays_processing_until_completed(host: PayPalHost) -> None:
    session = await host.checkout()
    back = urlsplit((await host.click(session["url"], "approve_echeck")).headers["location"])
    assert (await host.client.get(f"{back.path}?{back.query}")).status_code == 303
    await host.deliver_all(host.sandbox.sent_events)
    [payment] = await host.payments()
    assert payment["status"] == "processing"
    sent = len(host.sandbox.sent_events)
    await host.sandbox.complete_pending_capture(payment["provider_payment_id"])
    await host.deliver_all(host.sandbox.sent_events[sent:])
    [payment] = await host.payments()
    assert payment["status"] == "succeeded"


@pytest.mark.parametrize("order", ["as_sent", "reversed"])
async def test_a_subscription_checkout_completes_when_its_subscription_activates(
    host: PayPalHost, engine: Any, order: str
) -> None:
    plan = await create_plan(host.harness, pricing_model="flat", unit_amount=1200, currency="USD")
    admin = host.harness.auth("root", admin=True)
    synced = await host.client.post(
        "/billing/admin/catalog/sync", params={"provider": "paypal"}, headers=admin
    )
    assert synced.status_code == 200, synced.text
    alice = host.harness.auth("alice")
    created = await host.client.post(
        "/billing/checkout-sessions",
        json={"plan_id": plan["id"], "provider": "paypal", **URLS},
        headers=alice,
    )
    assert created.status_code == 201, created.text
    session = created.json()
    assert (await host.click(session["url"])).status_code == 303
    events = list(host.sandbox.sent_events)
    types = [json.loads(body)["event_type"] for _, body in events]
    assert not any(kind.startswith("CHECKOUT.") for kind in types), types  # PayPal sends none
    await host.deliver_all(events if order == "as_sent" else events[::-1])
    [sub] = (await host.client.get("/billing/subscriptions", headers=alice)).json()["items"]
    assert sub["status"] == "active"
    detail = await host.client.get(f"/billing/checkout-sessions/{session['id']}", headers=alice)
    assert detail.json()["status"] == "complete"
    async with engine.connect() as connection:
        trail = (
            await connection.execute(
                sa.select(StatusChange.from_status, StatusChange.to_status, StatusChange.reason).where(
                    StatusChange.entity_type == "checkout_session",
                    StatusChange.entity_id == uuid.UUID(session["id"]),
                )
            )
        ).all()
    assert [tuple(row) for row in trail] == [("open", "complete", "its subscription became active")]
    # Every delivery again (PayPal retries): nothing moves twice.
    await host.deliver_all(events)
    detail = await host.client.get(f"/billing/checkout-sessions/{session['id']}", headers=alice)
    assert detail.json()["status"] == "complete"


@pytest.mark.parametrize(
    "body",
    [
        b'{"id": "WH-UNREADABLE-1", "event_type": "PAYMENT.CAPTURE.COMPLETED", "resource": []}',
        b'{"id": "WH-UNREADABLE-2"}',
    ],
    ids=["resource-not-an-object", "no-event-type"],
)
async def test_a_signed_event_the_adapter_cannot_read_is_stored_once_as_ignored(
    host: PayPalHost, engine: Any, body: bytes
) -> None:
    headers = host.sandbox.sign(body)
    first = await host.deliver(headers, body)
    again = await host.deliver(headers, body)

    assert first.status_code == 200, first.text
    assert first.json()["status"] == "ignored"
    assert again.json()["status"] == "duplicate"
    async with engine.connect() as connection:
        rows = (await connection.execute(sa.select(WebhookEvent.status, WebhookEvent.ignored_reason))).all()
    assert len(rows) == 1
    assert str(getattr(rows[0].status, "value", rows[0].status)) == "ignored"
    assert rows[0].ignored_reason


async def test_a_signed_body_without_an_event_id_is_refused(host: PayPalHost, engine: Any) -> None:
    body = b'{"event_type": "PAYMENT.CAPTURE.COMPLETED"}'
    answer = await host.deliver(host.sandbox.sign(body), body)
    assert answer.status_code == 400, answer.text
    async with engine.connect() as connection:
        assert await connection.scalar(sa.select(sa.func.count()).select_from(WebhookEvent)) == 0
