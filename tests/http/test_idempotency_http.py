"""Idempotency-Key on creating POSTs, through HTTP."""

from __future__ import annotations

import anyio
import pytest

from .conftest import Harness

pytestmark = pytest.mark.anyio

BODY = {
    "amount": 4200,
    "currency": "EUR",
    "success_url": "https://shop.example/ok",
    "cancel_url": "https://shop.example/cancel",
}


async def test_same_key_same_body_replays_the_first_response(harness: Harness) -> None:
    headers = harness.auth(**{"Idempotency-Key": "order-1"})
    first = await harness.client.post("/billing/checkout-sessions", json=BODY, headers=headers)
    second = await harness.client.post("/billing/checkout-sessions", json=BODY, headers=headers)
    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second.headers.get("Idempotent-Replayed") == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert len(harness.fake.checkout_sessions) == 1


async def test_same_key_other_body_is_a_conflict(harness: Harness) -> None:
    headers = harness.auth(**{"Idempotency-Key": "order-2"})
    await harness.client.post("/billing/checkout-sessions", json=BODY, headers=headers)
    other = await harness.client.post(
        "/billing/checkout-sessions", json={**BODY, "amount": 4300}, headers=headers
    )
    assert other.status_code == 409
    assert other.json()["code"] == "idempotency_conflict"
    assert len(harness.fake.checkout_sessions) == 1


async def test_keys_belong_to_their_principal(harness: Harness) -> None:
    alice = await harness.client.post(
        "/billing/checkout-sessions", json=BODY, headers=harness.auth("alice", **{"Idempotency-Key": "k"})
    )
    bob = await harness.client.post(
        "/billing/checkout-sessions", json=BODY, headers=harness.auth("bob", **{"Idempotency-Key": "k"})
    )
    assert alice.status_code == bob.status_code == 201
    assert alice.json()["id"] != bob.json()["id"]


async def test_racing_requests_with_one_key_create_one_session(harness: Harness) -> None:
    headers = harness.auth(**{"Idempotency-Key": "race-1"})
    responses = []

    async def post() -> None:
        responses.append(await harness.client.post("/billing/checkout-sessions", json=BODY, headers=headers))

    async with anyio.create_task_group() as group:
        for _ in range(8):
            group.start_soon(post)

    created = {r.json()["id"] for r in responses if r.status_code == 201}
    assert len(created) == 1
    assert all(r.status_code in (201, 409) for r in responses)
    assert len(harness.fake.checkout_sessions) == 1


async def test_refund_with_a_key_is_done_once(harness: Harness) -> None:
    paid = await harness.pay_one_off(amount=1000)
    payment_id = paid["session"]["payment_id"]
    headers = harness.auth("root", admin=True, **{"Idempotency-Key": "refund-1"})
    first = await harness.client.post(
        f"/billing/admin/payments/{payment_id}/refunds", json={"amount": 400}, headers=headers
    )
    second = await harness.client.post(
        f"/billing/admin/payments/{payment_id}/refunds", json={"amount": 400}, headers=headers
    )
    assert first.status_code == second.status_code == 201
    assert first.json()["id"] == second.json()["id"]
    payment = await harness.client.get(f"/billing/payments/{payment_id}", headers=harness.auth())
    assert payment.json()["refunded_amount"] == 400
