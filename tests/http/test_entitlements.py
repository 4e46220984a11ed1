"""Entitlements, plan rate limits and credits: host-route dependencies and the HTTP API."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import httpx
import pytest
from fastapi import Depends, FastAPI

from fastapi_cashier import PaymentsRouter
from fastapi_cashier.billing import ratelimits
from fastapi_cashier.billing.entitlements import merge_features
from fastapi_cashier.db.models import Customer, Plan, PlanFeature, Product, Subscription
from fastapi_cashier.errors import ConflictError, IdempotencyConflictError, PermissionDeniedError
from fastapi_cashier.statuses import BillingInterval, CreditTransactionKind, PricingModel, SubscriptionStatus

from .conftest import Harness, settings_for

pytestmark = pytest.mark.anyio

PERIOD_START = datetime(2026, 3, 1, tzinfo=UTC)
PERIOD_END = datetime(2026, 4, 1, tzinfo=UTC)


# ---------------------------------------------------------------------------- set-up helpers


async def make_plan(harness: Harness, name: str, **features: bool | int | str) -> Plan:
    """A plan written straight to the database (the catalog API is tested elsewhere)."""
    rows = []
    for key, value in features.items():
        if isinstance(value, bool):
            rows.append(PlanFeature(key=key, value="true" if value else "false"))
        elif isinstance(value, int):
            rows.append(PlanFeature(key=key, limit=value))
        else:
            rows.append(PlanFeature(key=key, value=value))
    async with harness.payments.service() as svc:
        product = Product(name=f"{name} product")
        svc.session.add(product)
        await svc.session.flush()
        plan = Plan(
            product_id=product.id,
            name=name,
            pricing_model=PricingModel.FLAT,
            unit_amount=900,
            currency="EUR",
            interval=BillingInterval.MONTH,
            features=rows,
        )
        svc.session.add(plan)
    return plan


async def customer_id(harness: Harness, subject: str = "alice") -> uuid.UUID:
    me = await harness.client.get("/billing/me", headers=harness.auth(subject))
    assert me.status_code == 200, me.text
    return uuid.UUID(me.json()["id"])


async def subscribe(
    harness: Harness,
    customer: uuid.UUID,
    plan: Plan,
    status: SubscriptionStatus = SubscriptionStatus.ACTIVE,
) -> Subscription:
    """A subscription row as the provider's events would leave it."""
    async with harness.payments.service() as svc:
        subscription = Subscription(
            customer_id=customer,
            plan_id=plan.id,
            provider="fake",
            provider_subscription_id=f"sub_{uuid.uuid4().hex[:12]}",
            status=status,
            current_period_start=PERIOD_START,
            current_period_end=PERIOD_END,
        )
        svc.session.add(subscription)
    return subscription


async def set_status(harness: Harness, subscription: Subscription, status: SubscriptionStatus) -> None:
    async with harness.payments.service() as svc:
        row = await svc.session.get(Subscription, subscription.id)
        assert row is not None
        row.status = status


def host_route(app: FastAPI, path: str, dependency: Any) -> None:
    """A route of the host's own, guarded by a payments dependency."""

    @app.get(path)
    async def guarded(value: Any = Depends(dependency)) -> dict[str, Any]:
        if isinstance(value, Customer):
            return {"customer_id": str(value.id)}
        return {"value": value}


async def grant(harness: Harness, customer: uuid.UUID, amount: int, **extra: Any) -> httpx.Response:
    return await harness.client.post(
        f"/billing/admin/customers/{customer}/credits",
        json={"amount": amount, "reason": "support gesture", **extra.pop("body", {})},
        headers=harness.auth("root", admin=True, **extra),
    )


async def balance(harness: Harness, subject: str = "alice") -> int:
    response = await harness.client.get("/billing/credits", headers=harness.auth(subject))
    assert response.status_code == 200, response.text
    value: int = response.json()["balance"]
    return value


@asynccontextmanager
async def second_process(database_url: str, path: str) -> AsyncIterator[httpx.AsyncClient]:
    """Another app with its own PaymentsRouter on the same database: another worker process."""
    payments = PaymentsRouter(settings_for(database_url))
    app = FastAPI()
    app.include_router(payments, prefix="/billing")
    host_route(app, path, payments.rate_limit())
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://worker-2") as client:
            yield client


def freeze_rate_limit_clock(monkeypatch: pytest.MonkeyPatch, moment: datetime) -> list[datetime]:
    """Pin the clock the rate limiter reads; change ``clock[0]`` to move it."""
    clock = [moment]
    monkeypatch.setattr(ratelimits, "utc_now", lambda: clock[0])
    return clock


# ---------------------------------------------------------------------------- entitlements


async def test_require_feature_names_the_missing_feature_until_a_plan_grants_it(harness: Harness) -> None:
    host_route(harness.app, "/api/data", harness.payments.require_feature("api_access"))
    alice = await customer_id(harness)

    unsubscribed = await harness.client.get("/api/data", headers=harness.auth())
    assert unsubscribed.status_code == 402
    assert "api_access" in unsubscribed.json()["detail"]

    basic = await make_plan(harness, "Basic", api_access=False, requests_per_minute=10)
    await subscribe(harness, alice, basic)
    not_in_plan = await harness.client.get("/api/data", headers=harness.auth())
    assert not_in_plan.status_code == 403
    assert "api_access" in not_in_plan.json()["detail"]

    pro = await make_plan(harness, "Pro", api_access=True)
    await subscribe(harness, alice, pro)
    allowed = await harness.client.get("/api/data", headers=harness.auth())
    assert allowed.status_code == 200, allowed.text
    assert allowed.json() == {"customer_id": str(alice)}

    anonymous = await harness.client.get("/api/data")
    assert anonymous.status_code == 401


async def test_require_subscription_to_given_plans(harness: Harness) -> None:
    basic = await make_plan(harness, "Basic")
    pro = await make_plan(harness, "Pro")
    host_route(harness.app, "/any", harness.payments.require_subscription())
    host_route(harness.app, "/pro", harness.payments.require_subscription(plans=["Pro", "Enterprise"]))
    host_route(harness.app, "/pro-by-id", harness.payments.require_subscription(plans=[pro.id]))
    alice = await customer_id(harness)

    for path in ("/any", "/pro", "/pro-by-id"):
        refused = await harness.client.get(path, headers=harness.auth())
        assert refused.status_code == 402, path
        assert "subscription" in refused.json()["detail"]

    await subscribe(harness, alice, basic)
    assert (await harness.client.get("/any", headers=harness.auth())).status_code == 200
    wrong_plan = await harness.client.get("/pro", headers=harness.auth())
    assert wrong_plan.status_code == 403
    assert "Pro, Enterprise" in wrong_plan.json()["detail"]
    assert (await harness.client.get("/pro-by-id", headers=harness.auth())).status_code == 403

    async with harness.payments.service() as svc:
        with pytest.raises(PermissionDeniedError) as caught:
            await svc.entitlements.require_subscription(alice, ["Pro"])
        assert caught.value.details == {"required": "subscription", "plans": ["Pro"], "subscribed": True}
        with pytest.raises(PermissionDeniedError) as caught:
            await svc.entitlements.require_feature(alice, "sso")
        assert caught.value.details == {"required_feature": "sso", "subscribed": True}

    await subscribe(harness, alice, pro)
    for path in ("/any", "/pro", "/pro-by-id"):
        assert (await harness.client.get(path, headers=harness.auth())).status_code == 200, path


async def test_only_trialing_active_and_past_due_subscriptions_entitle(harness: Harness) -> None:
    pro = await make_plan(harness, "Pro", api_access=True)
    host_route(harness.app, "/api/data", harness.payments.require_feature("api_access"))
    alice = await customer_id(harness)
    subscription = await subscribe(harness, alice, pro, status=SubscriptionStatus.INCOMPLETE)

    expected = {
        SubscriptionStatus.INCOMPLETE: 402,
        SubscriptionStatus.TRIALING: 200,
        SubscriptionStatus.ACTIVE: 200,
        SubscriptionStatus.PAST_DUE: 200,  # the grace period while the provider retries
        SubscriptionStatus.PAUSED: 402,
        SubscriptionStatus.CANCELED: 402,
        SubscriptionStatus.EXPIRED: 402,
    }
    seen = {}
    for status in expected:
        await set_status(harness, subscription, status)
        response = await harness.client.get("/api/data", headers=harness.auth())
        seen[status] = response.status_code
        entitlements = (await harness.client.get("/billing/entitlements", headers=harness.auth())).json()
        assert bool(entitlements["subscriptions"]) == (response.status_code == 200)
    assert seen == expected


async def test_get_entitlements_merges_the_features_of_entitling_plans(harness: Harness) -> None:
    basic = await make_plan(harness, "Basic", api_access=False, requests_per_minute=10, support="email")
    pro = await make_plan(harness, "Pro", api_access=True, requests_per_minute=60, credits_per_period=100)
    enterprise = await make_plan(harness, "Enterprise", requests_per_minute=10_000, sso=True)
    alice = await customer_id(harness)
    first = await subscribe(harness, alice, basic)
    second = await subscribe(harness, alice, pro, status=SubscriptionStatus.PAST_DUE)
    await subscribe(harness, alice, enterprise, status=SubscriptionStatus.CANCELED)

    response = await harness.client.get("/billing/entitlements", headers=harness.auth())
    assert response.status_code == 200, response.text
    body = response.json()
    assert sorted(
        (s["id"], s["plan_id"], s["plan_name"], s["status"]) for s in body["subscriptions"]
    ) == sorted(
        [
            (str(first.id), str(basic.id), "Basic", "active"),
            (str(second.id), str(pro.id), "Pro", "past_due"),
        ]
    )
    assert sorted(body["plan_ids"]) == sorted([str(basic.id), str(pro.id)])
    assert body["features"] == {
        "api_access": True,  # a true flag wins
        "credits_per_period": 100,
        "requests_per_minute": 60,  # limits merge by maximum; the canceled plan counts for nothing
        "support": "email",
    }

    bob = await harness.client.get("/billing/entitlements", headers=harness.auth("bob"))
    assert bob.json() == {"subscriptions": [], "plan_ids": [], "features": {}}
    assert (await harness.client.get("/billing/entitlements")).status_code == 401

    async with harness.payments.service() as svc:
        assert await svc.entitlements.has_feature(alice, "api_access")
        assert not await svc.entitlements.has_feature(alice, "sso")
        assert await svc.entitlements.limit(alice, "requests_per_minute") == 60
        assert await svc.entitlements.limit(alice, "api_access") is None


async def test_merge_features_rules() -> None:
    newest = [
        PlanFeature(key="seats", limit=5),
        PlanFeature(key="api_access", value="false"),
        PlanFeature(key="tier", value="gold"),
        PlanFeature(key="export", value="true"),
    ]
    oldest = [
        PlanFeature(key="seats", limit=20),
        PlanFeature(key="api_access", value="true"),
        PlanFeature(key="tier", value="silver"),
        PlanFeature(key="export", limit=3),
    ]
    assert merge_features([newest, oldest]) == {
        "api_access": True,  # a true flag wins
        "export": 3,  # a limit beats a flag
        "seats": 20,  # the larger limit
        "tier": "gold",  # the newest subscription's text
    }


# ---------------------------------------------------------------------------- rate limits


async def test_rate_limit_per_minute_is_shared_by_every_process(
    harness: Harness, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    freeze_rate_limit_clock(monkeypatch, datetime(2026, 3, 1, 12, 0, 30, tzinfo=UTC))
    plan = await make_plan(harness, "Metered API", requests_per_minute=5)
    host_route(harness.app, "/api/search", harness.payments.rate_limit())
    await subscribe(harness, await customer_id(harness), plan)

    for _ in range(3):
        assert (await harness.client.get("/api/search", headers=harness.auth())).status_code == 200
    async with second_process(database_url, "/api/search") as worker:
        for _ in range(2):
            assert (await worker.get("/api/search", headers=harness.auth())).status_code == 200
        refused_there = await worker.get("/api/search", headers=harness.auth())
    assert refused_there.status_code == 429
    assert refused_there.headers["Retry-After"] == "30"

    refused = await harness.client.get("/api/search", headers=harness.auth())
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "30"
    assert "requests_per_minute is 5" in refused.json()["detail"]
    # Another customer has a budget of their own (and no plan: no limit).
    assert (await harness.client.get("/api/search", headers=harness.auth("bob"))).status_code == 200


async def test_rate_limit_per_hour_and_a_new_minute(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = freeze_rate_limit_clock(monkeypatch, datetime(2026, 3, 1, 12, 58, 10, tzinfo=UTC))
    plan = await make_plan(harness, "Small", requests_per_minute=2, requests_per_hour=3)
    host_route(harness.app, "/api/export", harness.payments.rate_limit())
    await subscribe(harness, await customer_id(harness), plan)

    codes = [(await harness.client.get("/api/export", headers=harness.auth())).status_code for _ in range(3)]
    assert codes == [200, 200, 429]  # the minute's limit

    clock[0] = datetime(2026, 3, 1, 12, 59, 0, tzinfo=UTC)
    # The request the minute limit refused did not use up the hour: one is left.
    assert (await harness.client.get("/api/export", headers=harness.auth())).status_code == 200
    refused = await harness.client.get("/api/export", headers=harness.auth())
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "60"  # until 13:00, when the hour window ends
    assert "requests_per_hour is 3" in refused.json()["detail"]

    clock[0] = datetime(2026, 3, 1, 13, 0, 0, tzinfo=UTC)
    assert (await harness.client.get("/api/export", headers=harness.auth())).status_code == 200


async def test_a_plan_without_request_limits_is_unlimited(harness: Harness) -> None:
    plan = await make_plan(harness, "Unlimited", api_access=True)
    host_route(harness.app, "/api/free", harness.payments.rate_limit())
    await subscribe(harness, await customer_id(harness), plan)
    codes = {(await harness.client.get("/api/free", headers=harness.auth())).status_code for _ in range(12)}
    assert codes == {200}


# ---------------------------------------------------------------------------- credits


async def test_credits_granted_by_an_admin_and_consumed_by_a_host_route(harness: Harness) -> None:
    host_route(harness.app, "/api/generate", harness.payments.consume_credits(3))
    alice = await customer_id(harness)
    assert await balance(harness) == 0

    granted = await grant(harness, alice, 10)
    assert granted.status_code == 201, granted.text
    assert granted.json()["kind"] == "grant"
    assert granted.json()["balance_after"] == 10
    assert granted.json()["reference"] == "admin:root"

    balances = []
    for _ in range(3):
        response = await harness.client.get("/api/generate", headers=harness.auth())
        assert response.status_code == 200, response.text
        balances.append(response.json()["value"])
    assert balances == [7, 4, 1]

    refused = await harness.client.get("/api/generate", headers=harness.auth())
    assert refused.status_code == 402
    assert "not enough credits" in refused.json()["detail"]
    assert await balance(harness) == 1

    taken = await grant(harness, alice, -1)
    assert taken.status_code == 201, taken.text
    assert (taken.json()["kind"], taken.json()["amount"], taken.json()["balance_after"]) == ("adjust", -1, 0)
    below_zero = await grant(harness, alice, -1)
    assert below_zero.status_code == 409
    assert below_zero.json()["details"] == {"balance": 0, "requested": 1}
    assert await balance(harness) == 0


async def test_admin_credit_changes_are_validated_and_idempotent(harness: Harness) -> None:
    alice = await customer_id(harness)
    for amount in (0, 1.5, "5", True):
        assert (await grant(harness, alice, amount)).status_code == 422, amount  # type: ignore[arg-type]
    expiring_debit = await grant(harness, alice, -1, body={"expires_at": "2026-01-01T00:00:00Z"})
    assert expiring_debit.status_code == 422
    assert (await grant(harness, uuid.uuid4(), 5)).status_code == 404
    not_admin = await harness.client.post(
        f"/billing/admin/customers/{alice}/credits",
        json={"amount": 5, "reason": "please"},
        headers=harness.auth("alice"),
    )
    assert not_admin.status_code == 403

    first = await grant(harness, alice, 5, **{"Idempotency-Key": "gift-1"})
    again = await grant(harness, alice, 5, **{"Idempotency-Key": "gift-1"})
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert await balance(harness) == 5
    other_body = await grant(harness, alice, 6, **{"Idempotency-Key": "gift-1"})
    assert other_body.status_code == 409

    expiring = await grant(harness, alice, 2, body={"expires_at": "2030-01-01T00:00:00Z"})
    assert expiring.status_code == 201
    assert expiring.json()["expires_at"].startswith("2030-01-01T00:00:00")


async def test_concurrent_consumption_never_overdraws(harness: Harness) -> None:
    host_route(harness.app, "/api/one", harness.payments.consume_credits(1))
    alice = await customer_id(harness)
    assert (await grant(harness, alice, 10)).status_code == 201
    statuses: list[int] = []

    async def call() -> None:
        response = await harness.client.get("/api/one", headers=harness.auth())
        statuses.append(response.status_code)

    async with anyio.create_task_group() as group:
        for _ in range(20):
            group.start_soon(call)

    assert sorted(statuses) == [200] * 10 + [402] * 10
    assert await balance(harness) == 0
    ledger = await harness.client.get("/billing/credits/transactions?limit=100", headers=harness.auth())
    consumed = [item for item in ledger.json()["items"] if item["kind"] == "consume"]
    assert sorted(item["balance_after"] for item in consumed) == list(range(10))
    assert {item["reason"] for item in consumed} == {"GET /api/one"}


async def test_consume_with_an_idempotency_key_happens_once(harness: Harness) -> None:
    alice = await customer_id(harness)
    async with harness.payments.service() as svc:
        await svc.credits.grant(alice, 10, reason="welcome")
        assert await svc.credits.consume(alice, 4, idempotency_key="job-1") == 6
        assert await svc.credits.consume(alice, 4, idempotency_key="job-1") == 6
        with pytest.raises(IdempotencyConflictError):
            await svc.credits.consume(alice, 5, idempotency_key="job-1")
        with pytest.raises(ConflictError) as caught:
            await svc.credits.consume(alice, 7)
        assert caught.value.details == {"balance": 6, "requested": 7}
        assert await svc.credits.balance(alice) == 6


async def test_period_credits_are_granted_once_per_period(harness: Harness) -> None:
    plan = await make_plan(harness, "Credits", credits_per_period=50)
    alice = await customer_id(harness)
    subscription = await subscribe(harness, alice, plan)
    async with harness.payments.service() as svc:
        stored = await svc.session.get(Plan, plan.id)
        assert stored is not None
        features = stored.features
        first = await svc.credits.grant_for_period(subscription, features, PERIOD_START, PERIOD_END)
        again = await svc.credits.grant_for_period(subscription, features, PERIOD_START, PERIOD_END)
        assert first is not None
        assert again is not None
        assert again.id == first.id
        assert first.expires_at == PERIOD_END
        assert await svc.credits.balance(alice) == 50
        # The same period seen in another time zone is the same period.
        local = PERIOD_START.astimezone(datetime.now().astimezone().tzinfo)
        same = await svc.credits.grant_for_period(subscription, features, local, PERIOD_END)
        assert same is not None
        assert same.id == first.id
        next_end = datetime(2026, 5, 1, tzinfo=UTC)
        renewal = await svc.credits.grant_for_period(
            subscription, {"credits_per_period": 50}, PERIOD_END, next_end
        )
        assert renewal is not None
        assert renewal.id != first.id
        assert await svc.credits.balance(alice) == 100
        assert (
            await svc.credits.grant_for_period(subscription, {"api_access": True}, next_end, next_end) is None
        )


async def test_expire_due_expires_what_is_left_of_a_grant_once(harness: Harness) -> None:
    alice = await customer_id(harness)
    bob = await customer_id(harness, "bob")
    deadline = datetime(2026, 3, 31, tzinfo=UTC)
    async with harness.payments.service() as svc:
        await svc.credits.grant(alice, 10, reason="monthly", expires_at=deadline)
        await svc.credits.consume(alice, 4)  # taken from the oldest grant first
        await svc.credits.grant(alice, 5, reason="top-up")  # never expires
        # Bob used all of his expiring grant, then bought credits that do not expire.
        await svc.credits.grant(bob, 3, reason="monthly", expires_at=deadline)
        await svc.credits.consume(bob, 3)
        await svc.credits.grant(bob, 7, reason="purchase")

    async with harness.payments.service() as svc:
        assert await svc.credits.expire_due(deadline - timedelta(seconds=1)) == 0
    async with harness.payments.service() as svc:
        assert await svc.credits.expire_due(deadline) == 6
    async with harness.payments.service() as svc:
        assert await svc.credits.expire_due(deadline + timedelta(days=1)) == 0  # once
        assert await svc.credits.balance(alice) == 5
        assert await svc.credits.balance(bob) == 7

    ledger = await harness.client.get("/billing/credits/transactions", headers=harness.auth())
    newest = ledger.json()["items"][0]
    assert (newest["kind"], newest["amount"], newest["balance_after"]) == ("expire", -6, 5)


async def test_expiry_never_takes_more_than_the_balance(harness: Harness) -> None:
    alice = await customer_id(harness)
    deadline = datetime(2026, 3, 31, tzinfo=UTC)
    async with harness.payments.service() as svc:
        await svc.credits.grant(alice, 5, reason="no expiry")
        await svc.credits.grant(alice, 10, reason="monthly", expires_at=deadline)
        await svc.credits.consume(alice, 12)  # 5 from the first grant, 7 from the second
        assert await svc.credits.expire_due(deadline) == 3
        assert await svc.credits.balance(alice) == 0
        assert await svc.credits.expire_due(deadline) == 0


async def test_credit_transactions_are_paginated_newest_first(harness: Harness) -> None:
    alice = await customer_id(harness)
    async with harness.payments.service() as svc:
        for amount in (1, 2, 3, 4, 5):
            await svc.credits.grant(alice, amount, reason=f"grant {amount}", reference=f"order-{amount}")
        await svc.credits.consume(alice, 6, reason="report")

    seen: list[dict[str, Any]] = []
    cursor = None
    pages = 0
    while True:
        query = "limit=4" + (f"&cursor={cursor}" if cursor else "")
        page = await harness.client.get(f"/billing/credits/transactions?{query}", headers=harness.auth())
        assert page.status_code == 200, page.text
        seen.extend(page.json()["items"])
        pages += 1
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break
    assert pages == 2
    assert len({item["id"] for item in seen}) == 6
    assert {item["kind"] for item in seen} == {CreditTransactionKind.GRANT, CreditTransactionKind.CONSUME}
    assert sum(item["amount"] for item in seen) == 9
    assert sorted(item["balance_after"] for item in seen) == [1, 3, 6, 9, 10, 15]
    assert set(seen[0]) == {
        "id",
        "kind",
        "amount",
        "balance_after",
        "reason",
        "reference",
        "expires_at",
        "created_at",
    }

    bob = await harness.client.get("/billing/credits/transactions", headers=harness.auth("bob"))
    assert bob.json() == {"items": [], "next_cursor": None}
    bad = await harness.client.get("/billing/credits/transactions?cursor=nope", headers=harness.auth())
    assert bad.status_code == 422
