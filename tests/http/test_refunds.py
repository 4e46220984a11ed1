"""Refunds through the admin API (partial, full, refused, and concurrent) and from host code,
where each step commits in a unit of work of its own and never the caller's."""

from __future__ import annotations

import uuid

import anyio
import pytest
import sqlalchemy as sa

from fastapi_cashier.db.models import Payment, Product, Refund
from fastapi_cashier.errors import InvalidProviderRequestError
from fastapi_cashier.statuses import RefundStatus

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


# --------------------------------------------------------------------------- the caller's unit of work


class _CallerGaveUp(Exception):
    """The host code's own failure after the refund, which rolls its unit of work back."""


async def _products(harness: Harness) -> list[str]:
    async with harness.payments.session_factory() as session:
        return sorted((await session.scalars(sa.select(Product.name))).all())


async def _refund_rows(harness: Harness) -> list[tuple[int, RefundStatus]]:
    async with harness.payments.session_factory() as session:
        return [(row.amount, row.status) for row in (await session.scalars(sa.select(Refund))).all()]


async def test_a_refund_that_fails_does_not_commit_the_callers_pending_changes(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    payment_id = uuid.UUID(await _paid(harness, amount=1000))

    async def refuse(*_args: object, **_kwargs: object) -> None:
        raise InvalidProviderRequestError("charge already refunded", provider="fake")

    monkeypatch.setattr(harness.fake, "refund", refuse)

    async def host_code() -> None:
        async with harness.payments.service() as svc:
            svc.session.add(Product(name="added by the caller"))
            await svc.refunds.create(payment_id, amount=400, actor="host")

    with pytest.raises(InvalidProviderRequestError):
        await host_code()

    # The caller's pending product went with its unit of work; the refund's own steps were
    # committed: reserved, then failed and released.
    assert await _products(harness) == []
    assert await _refund_rows(harness) == [(400, RefundStatus.FAILED)]
    payment = await _payment(harness, str(payment_id))
    assert (payment["refunded_amount"], payment["status"]) == (0, "succeeded")


async def test_a_refund_commits_its_own_steps_and_leaves_the_callers_changes_to_the_caller(
    harness: Harness,
) -> None:
    payment_id = uuid.UUID(await _paid(harness, amount=1000))
    harness.fake.auto_deliver = False  # the API's answer settles the refund

    async def host_code() -> None:
        async with harness.payments.service() as svc:
            svc.session.add(Product(name="added by the caller"))
            refund = await svc.refunds.create(payment_id, amount=400, actor="host")
            assert (refund.amount, refund.status) == (400, RefundStatus.SUCCEEDED)
            assert [p.name for p in svc.session.new] == ["added by the caller"]  # never flushed
            raise _CallerGaveUp

    with pytest.raises(_CallerGaveUp):
        await host_code()

    assert await _products(harness) == []
    assert await _refund_rows(harness) == [(400, RefundStatus.SUCCEEDED)]
    payment = await _payment(harness, str(payment_id))
    assert (payment["refunded_amount"], payment["status"]) == (400, "partially_refunded")


async def test_a_refund_beside_an_open_transaction(harness: Harness) -> None:
    """SQLite has one writer at a time: a caller's open transaction is refused at once, before
    anything is written. PostgreSQL and MariaDB refund beside it, and the caller's flushed
    change stays the caller's to commit or roll back."""
    payment_id = uuid.UUID(await _paid(harness, amount=1000))
    harness.fake.auto_deliver = False
    sqlite = harness.payments.engine.dialect.name == "sqlite"

    async def host_code() -> None:
        async with harness.payments.service() as svc:
            svc.session.add(Product(name="flushed by the caller"))
            await svc.session.flush()
            await svc.refunds.create(payment_id, amount=300, actor="host")
            raise _CallerGaveUp

    with pytest.raises(RuntimeError if sqlite else _CallerGaveUp, match=r"one writer|^$"):
        await host_code()

    assert await _products(harness) == []
    if sqlite:
        assert await _refund_rows(harness) == []
        assert (await _payment(harness, str(payment_id)))["refunded_amount"] == 0
        assert harness.fake.refunds == {}
    else:
        assert await _refund_rows(harness) == [(300, RefundStatus.SUCCEEDED)]
        assert (await _payment(harness, str(payment_id)))["refunded_amount"] == 300
