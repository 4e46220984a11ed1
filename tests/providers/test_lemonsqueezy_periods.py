"""Billing periods of Lemon Squeezy subscriptions: the start it never reports, and the credits it starts.

Lemon Squeezy sends ``renews_at`` (the period's end) but no period start. The adapter gives a
trial's start (the subscription's creation); the library steps back from the end by the plan's
interval for a paid period, so period-based credit grants fire on Lemon Squeezy as on the fake.
"""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from fastapi_cashier.providers.lemonsqueezy._objects import subscription_snapshot
from fastapi_cashier.statuses import SubscriptionStatus

from .lemonsqueezy_payloads import payload_files
from .test_lemonsqueezy_router import SEATS, LemonHost, lemon  # noqa: F401 - the fixture

pytestmark = [pytest.mark.anyio]


def test_a_trial_starts_its_period_when_the_subscription_was_created() -> None:
    resource = {
        "type": "subscriptions",
        "id": "1",
        "attributes": {
            "status": "on_trial",
            "variant_id": 2,
            "trial_ends_at": "2023-01-24T12:43:48.000000Z",
            "renews_at": "2023-01-24T12:43:48.000000Z",
            "created_at": "2023-01-17T12:43:50.000000Z",
            "updated_at": "2023-01-17T12:43:51.000000Z",
        },
    }

    snapshot = subscription_snapshot(resource)

    assert snapshot.status is SubscriptionStatus.TRIALING
    created = datetime.fromisoformat("2023-01-17T12:43:50+00:00")
    assert (snapshot.current_period_start, snapshot.trial_start) == (created, created)
    assert snapshot.current_period_end == datetime.fromisoformat("2023-01-24T12:43:48+00:00")


def test_the_real_trial_payloads_carry_a_period_start() -> None:
    trials = [
        payload
        for payload in (json.loads(path.read_bytes()) for path in payload_files())
        if payload["data"]["type"] == "subscriptions"
        and payload["data"]["attributes"]["status"] == "on_trial"
    ]
    if not trials:
        pytest.skip("the shared Lemon Squeezy payloads are absent")
    for payload in trials:
        snapshot = subscription_snapshot(payload["data"])
        assert snapshot.current_period_start is not None
        assert snapshot.current_period_end is not None
        assert snapshot.current_period_start < snapshot.current_period_end


@pytest.mark.db
async def test_each_renewal_grants_the_periods_credits_once(lemon: LemonHost) -> None:  # noqa: F811
    admin = lemon.auth("root", admin=True)
    product = await lemon.client.post(
        "/billing/admin/products", json={"name": "Team workspace"}, headers=admin
    )
    plan = await lemon.client.post(
        "/billing/admin/plans",
        json={
            "product_id": product.json()["id"],
            "name": "Seats",
            "pricing_model": "per_unit",
            "unit_amount": 1000,
            "currency": "EUR",
            "interval": "month",
            "features": {"credits_per_period": 100},
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
    (provider_id,) = lemon.server.subscriptions
    assert lemon.server.subscriptions[provider_id]["variant_id"] == SEATS
    first_end = datetime.fromisoformat(subscription["current_period_end"])
    first_start = datetime.fromisoformat(subscription["current_period_start"])
    assert first_start < first_end
    assert (await lemon.get("/credits"))["balance"] == 100

    await lemon.server.renew(provider_id)
    await lemon.server.flush()
    # Lemon Squeezy redelivers; the same period is reported again and again.
    lemon.server.outbox.extend(lemon.server.sent)
    await lemon.server.flush()

    renewed = await lemon.get(f"/subscriptions/{subscription['id']}")
    assert datetime.fromisoformat(renewed["current_period_start"]) > first_start
    assert datetime.fromisoformat(renewed["current_period_end"]) > first_end
    history = (await lemon.get("/credits/transactions"))["items"]
    grants = [item for item in history if item["kind"] == "grant"]
    assert len(grants) == 2
    assert sorted(grant["amount"] for grant in grants) == [100, 100]
    assert (await lemon.get("/credits"))["balance"] >= 100
