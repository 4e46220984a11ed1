"""Period totals the database cannot store (BIGINT) are refused with a 422, never a 500.

Plans are checked when created, at the largest quantity they may be bought with; a plan stored
before that check (made here by writing the row directly) is refused at checkout and on a plan or
quantity change, before anything reaches the provider.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import sqlalchemy as sa

from fastapi_cashier.db.models import CheckoutSession, Plan
from fastapi_cashier.pricing import MAX_QUANTITY, MAX_STORABLE_AMOUNT

from .conftest import Harness
from .test_bad_input import assert_domain_refusal
from .test_subscriptions import URLS, create_plan, subscribe

pytestmark = pytest.mark.anyio

MAX_UNIT_AMOUNT = 10**15
#: The largest per-unit amount whose total at the largest quantity still fits.
LARGEST_FITTING_UNIT = MAX_STORABLE_AMOUNT // MAX_QUANTITY


async def post_plan(harness: Harness, **plan: Any) -> Any:
    admin = harness.auth("root", admin=True)
    product = await harness.client.post("/billing/admin/products", json={"name": "Seats"}, headers=admin)
    body = {
        "product_id": product.json()["id"],
        "name": "Seats",
        "pricing_model": "per_unit",
        "unit_amount": 1000,
        "currency": "EUR",
        "interval": "month",
        **plan,
    }
    return await harness.client.post("/billing/admin/plans", json=body, headers=admin)


async def reprice(harness: Harness, plan_id: str, unit_amount: int) -> None:
    """Give a stored plan a unit amount the catalog would refuse today (a plan from before)."""
    async with harness.payments.session_factory() as session:
        await session.execute(
            sa.update(Plan).where(Plan.id == uuid.UUID(plan_id)).values(unit_amount=unit_amount)
        )
        await session.commit()


async def test_a_per_unit_plan_overflowing_at_the_largest_quantity_is_refused(harness: Harness) -> None:
    refused = await post_plan(harness, unit_amount=MAX_UNIT_AMOUNT)
    problem = assert_domain_refusal(refused, "unit_amount")
    assert str(MAX_QUANTITY) in problem["detail"]

    accepted = await post_plan(harness, unit_amount=LARGEST_FITTING_UNIT)
    assert accepted.status_code == 201, accepted.text
    too_much = await post_plan(harness, unit_amount=LARGEST_FITTING_UNIT + 1)
    assert_domain_refusal(too_much, "unit_amount")


async def test_a_tiered_plan_overflowing_at_the_largest_quantity_is_refused(harness: Harness) -> None:
    tiers = [{"up_to": 10, "unit_amount": 100}, {"up_to": None, "unit_amount": MAX_UNIT_AMOUNT}]
    refused = await post_plan(harness, pricing_model="tiered_graduated", unit_amount=0, tiers=tiers)
    assert_domain_refusal(refused, "tiers")


async def test_checkout_of_an_overflowing_quantity_is_refused(harness: Harness) -> None:
    plan = await create_plan(harness)
    await reprice(harness, plan["id"], MAX_UNIT_AMOUNT)

    response = await harness.client.post(
        "/billing/checkout-sessions",
        json={"plan_id": plan["id"], "quantity": MAX_QUANTITY, **URLS},
        headers=harness.auth(),
    )

    problem = assert_domain_refusal(response, "quantity")
    assert "largest storable amount" in problem["detail"]
    async with harness.payments.session_factory() as session:
        assert (await session.scalars(sa.select(CheckoutSession))).all() == []
    fits = await harness.client.post(
        "/billing/checkout-sessions",
        json={"plan_id": plan["id"], "quantity": 1, **URLS},
        headers=harness.auth(),
    )
    assert fits.status_code == 201, fits.text


async def test_a_quantity_change_overflowing_the_period_total_is_refused(harness: Harness) -> None:
    plan = await create_plan(harness)
    subscription = await subscribe(harness, plan["id"])
    await reprice(harness, plan["id"], MAX_UNIT_AMOUNT)

    response = await harness.client.patch(
        f"/billing/subscriptions/{subscription['id']}",
        json={"quantity": MAX_QUANTITY},
        headers=harness.auth(),
    )

    assert_domain_refusal(response, "quantity")
    after = await harness.client.get(f"/billing/subscriptions/{subscription['id']}", headers=harness.auth())
    assert after.json()["quantity"] == 1
    assert [s.quantity for s in harness.fake.subscriptions.values()] == [1]


async def test_a_plan_change_overflowing_the_period_total_is_refused(harness: Harness) -> None:
    plan = await create_plan(harness)
    bigger = await create_plan(harness, name="Enterprise seats")
    subscription = await subscribe(harness, plan["id"], quantity=MAX_QUANTITY)
    await reprice(harness, bigger["id"], MAX_UNIT_AMOUNT)

    response = await harness.client.patch(
        f"/billing/subscriptions/{subscription['id']}", json={"plan_id": bigger["id"]}, headers=harness.auth()
    )

    assert_domain_refusal(response, "plan_id")
    after = await harness.client.get(f"/billing/subscriptions/{subscription['id']}", headers=harness.auth())
    assert after.json()["plan_id"] == plan["id"]
