"""Period totals the database cannot store (BIGINT) are refused with a 422, never a 500.

Plans are checked when created, at the largest quantity they may be bought with; a plan stored
before that check (made here by writing the row directly) is refused at checkout and on a plan or
quantity change, before anything reaches the provider. Metered usage is checked as it is
reported: a record that would make the period's total unstorable is refused, and the renewal
that bills the period afterwards still succeeds.
"""

from __future__ import annotations

import uuid
from typing import Any

import anyio
import pytest
import sqlalchemy as sa

from fastapi_cashier.db.models import CheckoutSession, Plan, UsageRecord, WebhookEvent
from fastapi_cashier.pricing import MAX_QUANTITY, MAX_STORABLE_AMOUNT
from fastapi_cashier.statuses import WebhookEventStatus

from .conftest import Harness
from .test_bad_input import assert_domain_refusal
from .test_subscriptions import URLS, create_plan, invoices, subscribe, subscription_state

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


async def metered_subscription(harness: Harness) -> tuple[dict[str, Any], str]:
    """A subscription to a metered plan at the largest unit amount; (subscription, usage URL)."""
    plan = await create_plan(harness, name="API calls", pricing_model="metered", unit_amount=MAX_UNIT_AMOUNT)
    subscription = await subscribe(harness, plan["id"])
    return subscription, f"/billing/subscriptions/{subscription['id']}/usage"


async def stored_usage(harness: Harness) -> list[tuple[str, int]]:
    async with harness.payments.session_factory() as session:
        rows = (await session.scalars(sa.select(UsageRecord).order_by(UsageRecord.created_at))).all()
        return sorted((row.idempotency_key, row.quantity) for row in rows)


async def test_usage_overflowing_the_period_total_is_refused_and_the_renewal_still_succeeds(
    harness: Harness,
) -> None:
    subscription, url = await metered_subscription(harness)
    #: The most units whose period total still fits: 9223 at 10**15 each.
    fitting = MAX_STORABLE_AMOUNT // MAX_UNIT_AMOUNT

    first = await harness.client.post(
        url, json={"quantity": fitting - 300, "idempotency_key": "batch-1"}, headers=harness.auth()
    )
    assert first.status_code == 201, first.text
    over = await harness.client.post(
        url, json={"quantity": 301, "idempotency_key": "batch-2"}, headers=harness.auth()
    )
    problem = assert_domain_refusal(over, "quantity")
    assert "largest storable amount" in problem["detail"]
    assert problem["details"]["period_usage"] == str(fitting + 1)
    # Nothing stored, nothing told to the provider: the key is free for a smaller report.
    assert await stored_usage(harness) == [("batch-1", fitting - 300)]
    (fake_subscription,) = harness.fake.subscriptions.values()
    assert sorted(fake_subscription.usage) == ["usage-" + str(await usage_id(harness, "batch-1"))]
    last = await harness.client.post(
        url, json={"quantity": 300, "idempotency_key": "batch-2"}, headers=harness.auth()
    )
    assert last.status_code == 201, last.text
    replay = await harness.client.post(
        url, json={"quantity": 300, "idempotency_key": "batch-2"}, headers=harness.auth()
    )
    assert (replay.status_code, replay.json()["duplicate"]) == (200, True)

    await harness.fake.advance(days=31)

    renewal = (await invoices(harness))[-1]
    assert (renewal["status"], renewal["total"]) == ("paid", fitting * MAX_UNIT_AMOUNT)
    state = await subscription_state(harness, subscription["id"])
    assert state["status"] == "active"
    assert state["current_period_start"] > subscription["current_period_start"]
    async with harness.payments.session_factory() as session:
        events = (await session.scalars(sa.select(WebhookEvent))).all()
    assert events
    assert [e.type for e in events if e.status is not WebhookEventStatus.PROCESSED] == [], [
        (e.type, e.status, e.last_error) for e in events
    ]
    # The new period starts from nothing: a full period's usage fits again.
    again = await harness.client.post(
        url, json={"quantity": fitting, "idempotency_key": "next-period"}, headers=harness.auth()
    )
    assert again.status_code == 201, again.text


async def test_one_usage_record_overflowing_on_its_own_is_refused(harness: Harness) -> None:
    _subscription, url = await metered_subscription(harness)

    response = await harness.client.post(
        url, json={"quantity": 10**12, "idempotency_key": "huge"}, headers=harness.auth()
    )

    assert_domain_refusal(response, "quantity")
    assert await stored_usage(harness) == []
    assert [dict(sub.usage) for sub in harness.fake.subscriptions.values()] == [{}]


async def usage_id(harness: Harness, key: str) -> uuid.UUID:
    async with harness.payments.session_factory() as session:
        record = await session.scalar(sa.select(UsageRecord).where(UsageRecord.idempotency_key == key))
        assert record is not None
        return record.id


async def test_concurrent_usage_reports_never_overflow_the_period_together(harness: Harness) -> None:
    """Each report fits on its own; together they would not: the subscription row lock counts
    them one after another, so exactly as many are stored as fit."""
    _subscription, url = await metered_subscription(harness)
    fitting = MAX_STORABLE_AMOUNT // MAX_UNIT_AMOUNT  # 9223 units
    statuses: list[int] = []

    async def report(n: int) -> None:
        response = await harness.client.post(
            url, json={"quantity": 1000, "idempotency_key": f"burst-{n}"}, headers=harness.auth()
        )
        statuses.append(response.status_code)

    async with anyio.create_task_group() as group:
        for n in range(12):
            group.start_soon(report, n)

    assert sorted(statuses) == [201] * (fitting // 1000) + [422] * (12 - fitting // 1000)
    assert sum(quantity for _key, quantity in await stored_usage(harness)) == 1000 * (fitting // 1000)
