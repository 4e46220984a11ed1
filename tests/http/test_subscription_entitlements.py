"""What a subscription unlocks on the host's own routes, bought through the real checkout flow."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import anyio
import pytest
from fastapi import Depends

from fastapi_cashier.billing.invoices import format_invoice_number
from fastapi_cashier.db.models import Customer
from fastapi_cashier.money import Money
from fastapi_cashier.providers.base import InvoiceSnapshot, ProviderEvent
from fastapi_cashier.statuses import InvoiceStatus

from .conftest import Harness
from .test_subscriptions import create_plan, invoices, subscribe

pytestmark = pytest.mark.anyio


def mount_host_routes(harness: Harness) -> None:
    payments = harness.payments

    @harness.app.get("/api/reports", dependencies=[Depends(payments.require_feature("api_access"))])
    async def reports() -> dict[str, str]:
        return {"report": "ready"}

    limited = Depends(payments.rate_limit())
    paid_in_credits = Depends(payments.consume_credits(40))

    @harness.app.get("/api/search")
    async def search(customer: Customer = limited) -> dict[str, str]:
        return {"customer": customer.external_id}

    @harness.app.post("/api/generate")
    async def generate(balance: int = paid_in_credits) -> dict[str, int]:
        return {"balance": balance}


async def test_a_feature_guarded_host_route_opens_after_subscribing(harness: Harness) -> None:
    mount_host_routes(harness)
    before = await harness.client.get("/api/reports", headers=harness.auth())
    assert before.status_code == 402
    assert "api_access" in before.json()["detail"]

    basic = await create_plan(harness, name="Basic", features={"reports": True})
    await subscribe(harness, basic["id"])
    still = await harness.client.get("/api/reports", headers=harness.auth())
    assert still.status_code == 403  # subscribed, but the plan lacks the feature

    pro = await create_plan(harness, name="Pro", features={"api_access": True})
    await subscribe(harness, pro["id"])
    after = await harness.client.get("/api/reports", headers=harness.auth())
    assert after.status_code == 200
    assert after.json() == {"report": "ready"}
    assert (await harness.client.get("/api/reports")).status_code == 401


async def test_the_plans_rate_limit_answers_429_with_retry_after(harness: Harness) -> None:
    mount_host_routes(harness)
    plan = await create_plan(
        harness, name="Free", pricing_model="free", unit_amount=0, features={"requests_per_minute": 3}
    )
    await subscribe(harness, plan["id"])
    codes = [(await harness.client.get("/api/search", headers=harness.auth())).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    refused = await harness.client.get("/api/search", headers=harness.auth())
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert "requests_per_minute is 3" in refused.json()["detail"]
    # Another customer has a counter of their own.
    other = await harness.client.get("/api/search", headers=harness.auth("bob"))
    assert other.status_code == 200  # no plan features: no limit


async def test_credits_are_granted_each_period_and_consumed(harness: Harness) -> None:
    mount_host_routes(harness)
    plan = await create_plan(harness, features={"credits_per_period": 100})
    await subscribe(harness, plan["id"])
    assert (await harness.client.get("/billing/credits", headers=harness.auth())).json()["balance"] == 100
    spent = [await harness.client.post("/api/generate", headers=harness.auth()) for _ in range(3)]
    assert [r.status_code for r in spent] == [200, 200, 402]
    assert spent[1].json() == {"balance": 20}

    await harness.fake.advance(days=31)
    assert (await harness.client.get("/billing/credits", headers=harness.auth())).json()["balance"] >= 100
    history = await harness.client.get("/billing/credits/transactions", headers=harness.auth())
    kinds = [t["kind"] for t in history.json()["items"]]
    assert kinds.count("grant") == 2
    assert kinds.count("consume") == 2


async def test_plan_preview_prices_quantity_and_tiers(harness: Harness) -> None:
    seats = await create_plan(harness, unit_amount=900)
    preview = await harness.client.get(f"/billing/plans/{seats['id']}/preview?quantity=3")
    assert preview.status_code == 200
    assert (preview.json()["amount"], preview.json()["currency"]) == (2700, "EUR")
    tiered = await create_plan(
        harness,
        name="Graduated",
        pricing_model="tiered_graduated",
        unit_amount=0,
        tiers=[{"up_to": 10, "unit_amount": 500}, {"up_to": None, "unit_amount": 200}],
    )
    graduated = await harness.client.get(f"/billing/plans/{tiered['id']}/preview?quantity=15")
    assert graduated.json()["amount"] == 10 * 500 + 5 * 200
    assert sum(line["amount"] for line in graduated.json()["lines"]) == graduated.json()["amount"]
    assert (await harness.client.get(f"/billing/plans/{uuid.uuid4()}/preview")).status_code == 404
    assert (await harness.client.get(f"/billing/plans/{seats['id']}/preview?quantity=-1")).status_code == 422


async def test_invoice_numbers_are_gap_free_and_unique_under_concurrency(harness: Harness) -> None:
    plan = await create_plan(harness)
    await subscribe(harness, plan["id"])
    subscription = next(iter(harness.fake.subscriptions.values()))
    start = datetime(2026, 1, 1, tzinfo=UTC)

    async def apply(index: int) -> None:
        event = ProviderEvent(
            provider="fake",
            id=f"evt_concurrent_{index}",
            type="invoice.paid",
            occurred_at=start + timedelta(seconds=index),
            object_kind="invoice",
            object_id=f"in_concurrent_{index}",
            snapshot=InvoiceSnapshot(
                provider_invoice_id=f"in_concurrent_{index}",
                status=InvoiceStatus.PAID,
                total=Money(100, "EUR"),
                amount_paid=100,
                provider_subscription_id=subscription.id,
                lines=({"description": "x", "quantity": 1, "unit_amount": 100, "amount": 100},),
            ),
        )
        async with harness.payments.service() as svc:
            outcome = await svc.events.apply(event)
            assert outcome.status == "processed", outcome.reason

    async with anyio.create_task_group() as group:
        for index in range(12):
            group.start_soon(apply, index)
    numbers = sorted(i["number"] for i in await invoices(harness))
    assert numbers == [format_invoice_number(n) for n in range(1, 14)]
