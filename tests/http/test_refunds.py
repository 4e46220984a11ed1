"""Refunds through the admin API: partial, full, refused, and concurrent."""

from __future__ import annotations

import uuid

import anyio
import pytest
import sqlalchemy as sa

from fastapi_cashier.db.models import Payment, Refund

from .conftest import Harness

pytestmark = pytest.mark.anyio

ADMIN = {"admin": True}


async def _paid(harness: Harness, amount: int = 10_000) -> str:
    result = await harness.pay_one_off(amount=amount)
    payment_id: str = result["session"]["payment_id"]
    return payment_id


async def _payment(harness: Harness, payment_id: str) -> dict:  # type: ignore[type-arg]
    response = await harness.client.get(f"/billing/payments/{payment_id}", headers=harness.auth())
    assert response.status_code == 200
    return response.json()  # type: ignore[no-any-return]


async def test_partial_then_full_refund(harness: Harness) -> None:
    payment_id = await _paid(harness)
    admin = harness.auth("root", **ADMIN)

    partial = await harness.client.post(
        f"/billing/admin/payments/{payment_id}/refunds",
        json={"amount": 2500, "reason": "broken seat"},
        headers=admin,
    )
    assert partial.status_code == 201, partial.text
    assert partial.json()["status"] == "succeeded"
    assert partial.json()["amount"] == 2500
    payment = await _payment(harness, payment_id)
    assert (payment["status"], payment["refunded_amount"]) == ("partially_refunded", 2500)

    rest = await harness.client.post(f"/billing/admin/payments/{payment_id}/refunds", json={}, headers=admin)
    assert rest.status_code == 201, rest.text
    assert rest.json()["amount"] == 7500
    payment = await _payment(harness, payment_id)
    assert (payment["status"], payment["refunded_amount"]) == ("refunded", 10_000)

    trail = await harness.client.get(f"/billing/payments/{payment_id}/events", headers=harness.auth())
    moves = [(e["entity_type"], e["from_status"], e["to_status"]) for e in trail.json()]
    assert moves.count(("refund", None, "pending")) == 2
    assert moves.count(("refund", "pending", "succeeded")) == 2
    assert ("payment", "succeeded", "partially_refunded") in moves
    assert ("payment", "partially_refunded", "refunded") in moves
    # The provider refunded exactly what we asked, once each.
    assert sorted(r.amount.amount for r in harness.fake.refunds.values()) == [2500, 7500]


async def test_over_refund_is_refused_and_changes_nothing(harness: Harness) -> None:
    payment_id = await _paid(harness, amount=1000)
    admin = harness.auth("root", **ADMIN)
    too_much = await harness.client.post(
        f"/billing/admin/payments/{payment_id}/refunds", json={"amount": 1001}, headers=admin
    )
    assert too_much.status_code == 409
    assert too_much.json()["code"] == "refund_exceeds_payment"
    assert (await _payment(harness, payment_id))["refunded_amount"] == 0
    assert harness.fake.refunds == {}

    full = await harness.client.post(f"/billing/admin/payments/{payment_id}/refunds", json={}, headers=admin)
    assert full.status_code == 201
    again = await harness.client.post(
        f"/billing/admin/payments/{payment_id}/refunds", json={"amount": 1}, headers=admin
    )
    assert again.status_code == 409
    assert (await _payment(harness, payment_id))["refunded_amount"] == 1000


async def test_ten_concurrent_refunds_never_overdraw(harness: Harness) -> None:
    payment_id = await _paid(harness, amount=1000)
    admin = harness.auth("root", **ADMIN)
    statuses: list[int] = []

    async def refund() -> None:
        response = await harness.client.post(
            f"/billing/admin/payments/{payment_id}/refunds", json={"amount": 300}, headers=admin
        )
        statuses.append(response.status_code)

    async with anyio.create_task_group() as group:
        for _ in range(10):
            group.start_soon(refund)

    assert sorted(statuses) == [201] * 3 + [409] * 7
    payment = await _payment(harness, payment_id)
    assert payment["refunded_amount"] == 900
    assert payment["status"] == "partially_refunded"
    assert sum(r.amount.amount for r in harness.fake.refunds.values()) == 900


async def test_refund_of_an_unpaid_payment_is_refused(harness: Harness) -> None:
    declined = await harness.pay_one_off(outcome="declined")
    response = await harness.client.post(
        f"/billing/admin/payments/{declined['session']['payment_id']}/refunds",
        json={},
        headers=harness.auth("root", **ADMIN),
    )
    assert response.status_code == 409
    assert response.json()["code"] == "conflict"
    assert "failed payment cannot be refunded" in response.json()["detail"]


async def test_refund_of_a_payment_without_provider_id_reserves_nothing(harness: Harness) -> None:
    payment_id = await _paid(harness, amount=1000)
    async with harness.payments.session_factory() as session:
        payment = await session.get(Payment, uuid.UUID(payment_id))
        assert payment is not None
        payment.provider_payment_id = None
        await session.commit()

    response = await harness.client.post(
        f"/billing/admin/payments/{payment_id}/refunds", json={}, headers=harness.auth("root", **ADMIN)
    )

    assert response.status_code == 409, response.text
    assert "no provider payment id" in response.json()["detail"]
    assert (await _payment(harness, payment_id))["refunded_amount"] == 0
    async with harness.payments.session_factory() as session:
        assert (await session.scalars(sa.select(Refund))).all() == []
    assert harness.fake.refunds == {}
