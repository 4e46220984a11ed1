"""Offline payments: recorded by an admin, confirmed through the status machine, refunded."""

from __future__ import annotations

import pytest

from .conftest import Harness

pytestmark = pytest.mark.anyio


async def _customer_id(harness: Harness, subject: str = "alice") -> str:
    me = await harness.client.get("/billing/me", headers=harness.auth(subject))
    assert me.status_code == 200
    customer_id: str = me.json()["id"]
    return customer_id


async def test_record_confirm_refund_a_bank_transfer(harness: Harness) -> None:
    customer_id = await _customer_id(harness)
    admin = harness.auth("clerk", admin=True)
    recorded = await harness.client.post(
        "/billing/admin/payments",
        json={
            "customer_id": customer_id,
            "amount": 15_000,
            "currency": "eur",
            "method": "bank_transfer",
            "reference": "invoice-2026-001",
            "description": "Workshop fee",
        },
        headers=admin,
    )
    assert recorded.status_code == 201, recorded.text
    payment = recorded.json()
    assert (payment["provider"], payment["status"], payment["currency"]) == ("manual", "pending", "EUR")
    assert payment["method"] == "bank_transfer"

    confirmed = await harness.client.patch(
        f"/billing/admin/payments/{payment['id']}/status",
        json={"status": "succeeded", "reason": "seen on the bank statement"},
        headers=admin,
    )
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["status"] == "succeeded"

    # The customer sees it like any other payment.
    mine = await harness.client.get("/billing/payments?provider=manual", headers=harness.auth())
    assert [p["id"] for p in mine.json()["items"]] == [payment["id"]]

    refund = await harness.client.post(
        f"/billing/admin/payments/{payment['id']}/refunds", json={"amount": 5000}, headers=admin
    )
    assert refund.status_code == 201
    assert refund.json()["status"] == "succeeded"

    trail = await harness.client.get(f"/billing/payments/{payment['id']}/events", headers=harness.auth())
    payment_moves = [
        (e["from_status"], e["to_status"], e["cause"], e["actor"])
        for e in trail.json()
        if e["entity_type"] == "payment"
    ]
    assert payment_moves == [
        (None, "pending", "admin", "clerk"),
        ("pending", "succeeded", "admin", "clerk"),
        ("succeeded", "partially_refunded", "admin", "clerk"),
    ]
    reason = [
        e["reason"] for e in trail.json() if e["to_status"] == "succeeded" and e["entity_type"] == "payment"
    ]
    assert reason == ["seen on the bank statement"]


async def test_a_canceled_manual_payment_cannot_be_confirmed(harness: Harness) -> None:
    customer_id = await _customer_id(harness)
    admin = harness.auth("clerk", admin=True)
    recorded = await harness.client.post(
        "/billing/admin/payments",
        json={"customer_id": customer_id, "amount": 500, "currency": "USD", "method": "cash"},
        headers=admin,
    )
    payment_id = recorded.json()["id"]
    canceled = await harness.client.patch(
        f"/billing/admin/payments/{payment_id}/status", json={"status": "canceled"}, headers=admin
    )
    assert canceled.json()["status"] == "canceled"
    refused = await harness.client.patch(
        f"/billing/admin/payments/{payment_id}/status", json={"status": "succeeded"}, headers=admin
    )
    assert refused.status_code == 409
    assert refused.json()["code"] == "invalid_transition"
    assert "from 'canceled' to 'succeeded'" in refused.json()["detail"]


async def test_unknown_customer_is_404(harness: Harness) -> None:
    response = await harness.client.post(
        "/billing/admin/payments",
        json={
            "customer_id": "00000000-0000-4000-8000-000000000000",
            "amount": 500,
            "currency": "USD",
            "method": "check",
        },
        headers=harness.auth("clerk", admin=True),
    )
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


async def test_summary_totals_by_status_provider_and_currency(harness: Harness) -> None:
    await harness.pay_one_off(amount=1000, currency="EUR")
    await harness.pay_one_off(amount=2000, currency="EUR")
    await harness.pay_one_off(amount=300, currency="USD")
    await harness.pay_one_off(amount=700, currency="EUR", outcome="declined")
    summary = await harness.client.get("/billing/admin/summary", headers=harness.auth("root", admin=True))
    assert summary.status_code == 200
    rows = {
        (r["status"], r["provider"], r["currency"]): (r["count"], r["amount"])
        for r in summary.json()["payments"]
    }
    assert rows == {
        ("succeeded", "fake", "EUR"): (2, 3000),
        ("succeeded", "fake", "USD"): (1, 300),
        ("failed", "fake", "EUR"): (1, 700),
    }
    assert summary.json()["mrr"] == {}
    assert summary.json()["active_subscriptions"] == 0
