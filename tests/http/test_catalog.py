"""The catalog through HTTP: products and plans, validation, the public list, the provider sync."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from fastapi_cashier import PaymentsRouter
from fastapi_cashier.db.models import (
    CheckoutSession,
    Invoice,
    InvoiceLine,
    Plan,
    PlanTier,
    ProviderObject,
    Subscription,
)
from fastapi_cashier.errors import ValidationError
from fastapi_cashier.providers.base import (
    Capability,
    CustomerRef,
    PaymentProvider,
    PlanRef,
    TierRef,
)
from fastapi_cashier.statuses import BillingInterval, PricingModel, ProrationBehavior

from .conftest import Harness, settings_for

pytestmark = pytest.mark.anyio

TIERS: list[dict[str, Any]] = [
    {"up_to": 10, "unit_amount": 500},
    {"up_to": 100, "unit_amount": 400, "flat_amount": 1000},
    {"up_to": None, "unit_amount": 300},
]

# One plan of every pricing model (product_id is filled in).
PLANS: dict[str, dict[str, Any]] = {
    "flat": {
        "name": "Pro",
        "pricing_model": "flat",
        "unit_amount": 1500,
        "currency": "eur",
        "interval": "month",
        "trial_days": 14,
        "features": {"api_access": True, "beta": False, "credits_per_period": 1000, "support": "email"},
    },
    "per_unit": {
        "name": "Team seats",
        "pricing_model": "per_unit",
        "unit_amount": 800,
        "currency": "EUR",
        "interval": "year",
    },
    "tiered_graduated": {
        "name": "Graduated",
        "pricing_model": "tiered_graduated",
        "unit_amount": 0,
        "currency": "USD",
        "interval": "month",
        "tiers": TIERS,
    },
    "tiered_volume": {
        "name": "Volume",
        "pricing_model": "tiered_volume",
        "unit_amount": 0,
        "currency": "USD",
        "interval": "month",
        "interval_count": 3,
        "tiers": TIERS,
    },
    "metered": {
        "name": "API calls",
        "pricing_model": "metered",
        "unit_amount": 2,
        "currency": "USD",
        "interval": "month",
        "features": {"requests_per_minute": 600},
    },
    "metered_tiered": {
        "name": "API calls, tiered",
        "pricing_model": "metered",
        "unit_amount": 0,
        "currency": "USD",
        "interval": "month",
        "tiers": [{"up_to": 1000, "unit_amount": 0}, {"up_to": None, "unit_amount": 1}],
    },
    "free": {
        "name": "Hobby",
        "pricing_model": "free",
        "unit_amount": 0,
        "currency": "EUR",
        "interval": "month",
        "features": {"api_access": False},
    },
    "one_time": {
        "name": "Lifetime",
        "pricing_model": "flat",
        "unit_amount": 29900,
        "currency": "EUR",
        "interval": "one_time",
    },
}


def admin(harness: Harness, **extra: str) -> dict[str, str]:
    return harness.auth("root", admin=True, **extra)


async def create_product(harness: Harness, **body: Any) -> dict[str, Any]:
    response = await harness.client.post(
        "/billing/admin/products", json={"name": "Acme API", **body}, headers=admin(harness)
    )
    assert response.status_code == 201, response.text
    product: dict[str, Any] = response.json()
    return product


async def create_plan(
    harness: Harness, product_id: str, kind: str = "flat", **overrides: Any
) -> dict[str, Any]:
    response = await harness.client.post(
        "/billing/admin/plans",
        json={**PLANS[kind], "product_id": product_id, **overrides},
        headers=admin(harness),
    )
    assert response.status_code == 201, response.text
    plan: dict[str, Any] = response.json()
    return plan


async def plan_rows(harness: Harness) -> int:
    async with harness.payments.service() as svc:
        return int((await svc.session.execute(sa.select(sa.func.count()).select_from(Plan))).scalar_one())


# ---------------------------------------------------------------------- creating and listing


async def test_a_product_and_plans_of_every_pricing_model(harness: Harness) -> None:
    product = await create_product(harness, description="Requests to the Acme API", metadata={"sku": "api"})
    assert (product["name"], product["description"], product["active"]) == (
        "Acme API",
        "Requests to the Acme API",
        True,
    )
    assert product["metadata"] == {"sku": "api"}

    created = {kind: await create_plan(harness, product["id"], kind) for kind in PLANS}
    for kind, plan in created.items():
        spec = PLANS[kind]
        assert plan["product_id"] == product["id"]
        assert plan["pricing_model"] == spec["pricing_model"]
        assert plan["unit_amount"] == spec["unit_amount"]
        assert plan["currency"] == spec["currency"].upper()
        assert plan["interval"] == spec["interval"]
        assert plan["interval_count"] == spec.get("interval_count", 1)
        assert plan["trial_days"] == spec.get("trial_days", 0)
        assert plan["active"] is True
        expected_tiers = [{"flat_amount": 0, **tier} for tier in spec.get("tiers", [])]
        assert plan["tiers"] == expected_tiers
        assert plan["features"] == spec.get("features", {})
    # Flags come back as booleans, limits as integers, text as text.
    assert created["flat"]["features"] == {
        "api_access": True,
        "beta": False,
        "credits_per_period": 1000,
        "support": "email",
    }

    async with harness.payments.service() as svc:
        row = await svc.catalog.get_plan(uuid.UUID(created["flat"]["id"]))
        stored = {feature.key: (feature.value, feature.limit) for feature in row.features}
    assert stored == {
        "api_access": ("true", None),
        "beta": ("false", None),
        "credits_per_period": (None, 1000),
        "support": ("email", None),
    }


async def test_the_public_catalog_lists_active_plans_of_active_products_only(harness: Harness) -> None:
    product = await create_product(harness)
    shown = await create_plan(harness, product["id"], "tiered_graduated")
    cheap = await create_plan(harness, product["id"], "free")
    await create_plan(harness, product["id"], "flat", active=False)
    hidden_product = await create_product(harness, name="Retired", active=False)
    await create_plan(harness, hidden_product["id"], "per_unit")

    listed = await harness.client.get("/billing/plans")  # no credentials needed
    assert listed.status_code == 200, listed.text
    plans = listed.json()
    # Cheapest first, then by name: both have unit_amount 0, "Graduated" < "Hobby".
    assert [plan["id"] for plan in plans] == [shown["id"], cheap["id"]]
    assert plans[0]["tiers"] == [{"flat_amount": 0, **tier} for tier in TIERS]
    assert plans[1]["features"] == {"api_access": False}
    assert harness.app.url_path_for("payments:plans") == "/billing/plans"

    reactivated = await harness.client.patch(
        f"/billing/admin/products/{hidden_product['id']}", json={"active": True}, headers=admin(harness)
    )
    assert reactivated.status_code == 200, reactivated.text
    assert reactivated.json()["active"] is True
    listed_again = (await harness.client.get("/billing/plans")).json()
    assert len(listed_again) == 3


# ---------------------------------------------------------------------- validation


INVALID: list[tuple[str, str, dict[str, Any], str, str]] = [
    # (case, plan kind, overrides, field, text in the detail)
    (
        "tiers not ascending",
        "tiered_graduated",
        {"tiers": [{"up_to": 10, "unit_amount": 5}, {"up_to": 10, "unit_amount": 4}, {"up_to": None}]},
        "tiers",
        "tiers[1].up_to must be greater than tiers[0].up_to",
    ),
    (
        "last tier bounded",
        "tiered_volume",
        {"tiers": [{"up_to": 10, "unit_amount": 5}, {"up_to": 20, "unit_amount": 4}]},
        "tiers",
        "tiers[1].up_to must be null",
    ),
    (
        "open tier in the middle",
        "tiered_volume",
        {"tiers": [{"up_to": None, "unit_amount": 5}, {"up_to": None, "unit_amount": 4}]},
        "tiers",
        "tiers[0].up_to is null",
    ),
    ("tiered without tiers", "tiered_graduated", {"tiers": []}, "tiers", "at least one tier"),
    (
        "tiered with a unit amount",
        "tiered_graduated",
        {"unit_amount": 100},
        "unit_amount",
        "priced by its tiers",
    ),
    ("zero tier bound", "tiered_graduated", {"tiers": [{"up_to": 0}, {"up_to": None}]}, "tiers.0.up_to", ""),
    ("flat with tiers", "flat", {"tiers": TIERS}, "tiers", "takes no tiers"),
    ("free with an amount", "free", {"unit_amount": 100}, "unit_amount", "free plan"),
    ("unknown currency", "flat", {"currency": "ZZZ"}, "currency", "ZZZ"),
    ("float unit_amount", "flat", {"unit_amount": 15.5}, "unit_amount", ""),
    ("string unit_amount", "flat", {"unit_amount": "1500"}, "unit_amount", ""),
    ("negative unit_amount", "flat", {"unit_amount": -1}, "unit_amount", ""),
    ("bad interval", "flat", {"interval": "fortnight"}, "interval", ""),
    ("one_time tiered", "tiered_volume", {"interval": "one_time"}, "interval", "one_time"),
    ("one_time metered", "metered", {"interval": "one_time"}, "interval", "one_time"),
    ("13 months", "flat", {"interval_count": 13}, "interval_count", "1 to 12"),
    ("zero interval_count", "flat", {"interval_count": 0}, "interval_count", ""),
    ("negative trial_days", "flat", {"trial_days": -1}, "trial_days", ""),
    ("too long a trial", "flat", {"trial_days": 731}, "trial_days", ""),
    ("bad feature key", "flat", {"features": {"API Access": True}}, "features", "API Access"),
    ("negative limit", "flat", {"features": {"seats": -5}}, "features", "features.seats"),
    ("blank name", "flat", {"name": "   "}, "name", ""),
    ("unknown field", "flat", {"price": 10}, "price", ""),
]


@pytest.mark.parametrize(
    ("kind", "overrides", "field", "detail"),
    [case[1:] for case in INVALID],
    ids=[case[0] for case in INVALID],
)
async def test_invalid_plans_are_refused_naming_the_field(
    harness: Harness, kind: str, overrides: dict[str, Any], field: str, detail: str
) -> None:
    product = await create_product(harness)
    response = await harness.client.post(
        "/billing/admin/plans",
        json={**PLANS[kind], "product_id": product["id"], **overrides},
        headers=admin(harness),
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["errors"][0]["field"] == field
    assert detail in problem["detail"]
    if detail.startswith("tiers["):  # a tier's rule names its index in the details too
        assert problem["details"]["index"] == int(detail[len("tiers[")])
    assert await plan_rows(harness) == 0


async def test_an_unknown_product_is_a_404(harness: Harness) -> None:
    response = await harness.client.post(
        "/billing/admin/plans",
        json={**PLANS["flat"], "product_id": str(uuid.uuid4())},
        headers=admin(harness),
    )
    assert response.status_code == 404, response.text
    assert response.json()["code"] == "not_found"
    missing = await harness.client.patch(
        f"/billing/admin/products/{uuid.uuid4()}", json={"name": "x"}, headers=admin(harness)
    )
    assert missing.status_code == 404


async def test_a_product_needs_a_name(harness: Harness) -> None:
    response = await harness.client.post("/billing/admin/products", json={"name": ""}, headers=admin(harness))
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "name"
    product = await create_product(harness)
    cleared = await harness.client.patch(
        f"/billing/admin/products/{product['id']}", json={"name": None}, headers=admin(harness)
    )
    assert cleared.status_code == 422
    assert cleared.json()["errors"][0]["field"] == "name"


async def test_catalog_administration_needs_the_admin_role(harness: Harness) -> None:
    product = await create_product(harness)
    plan = await create_plan(harness, product["id"])
    calls = [
        ("POST", "/billing/admin/products", {"name": "x"}),
        ("PATCH", f"/billing/admin/products/{product['id']}", {"name": "x"}),
        ("POST", "/billing/admin/plans", {**PLANS["flat"], "product_id": product["id"]}),
        ("PATCH", f"/billing/admin/plans/{plan['id']}", {"name": "x"}),
        ("DELETE", f"/billing/admin/plans/{plan['id']}", None),
        ("POST", "/billing/admin/catalog/sync", None),
    ]
    for method, url, body in calls:
        customer = await harness.client.request(method, url, json=body, headers=harness.auth("mallory"))
        assert customer.status_code == 403, (method, url, customer.text)
        anonymous = await harness.client.request(method, url, json=body)
        assert anonymous.status_code == 401, (method, url, anonymous.text)
    assert (await harness.client.get("/billing/plans")).json()[0]["name"] == "Pro"


# ---------------------------------------------------------------------- changing and deleting


async def test_patch_name_active_trial_and_features(harness: Harness) -> None:
    product = await create_product(harness)
    plan = await create_plan(harness, product["id"])
    url = f"/billing/admin/plans/{plan['id']}"

    renamed = await harness.client.patch(
        url, json={"name": "Pro (2026)", "trial_days": 30}, headers=admin(harness)
    )
    assert renamed.status_code == 200, renamed.text
    assert (renamed.json()["name"], renamed.json()["trial_days"]) == ("Pro (2026)", 30)
    assert renamed.json()["unit_amount"] == 1500

    features = await harness.client.patch(
        url, json={"features": {"api_access": True, "seats": 5}}, headers=admin(harness)
    )
    assert features.status_code == 200, features.text
    assert features.json()["features"] == {"api_access": True, "seats": 5}

    deactivated = await harness.client.patch(url, json={"active": False}, headers=admin(harness))
    assert deactivated.status_code == 200
    assert deactivated.json()["active"] is False
    assert (await harness.client.get("/billing/plans")).json() == []

    product_renamed = await harness.client.patch(
        f"/billing/admin/products/{product['id']}",
        json={"name": "Acme Platform", "description": None},
        headers=admin(harness),
    )
    assert product_renamed.status_code == 200
    assert (product_renamed.json()["name"], product_renamed.json()["description"]) == ("Acme Platform", None)


async def test_the_price_of_an_unreferenced_plan_may_change(harness: Harness) -> None:
    product = await create_product(harness)
    plan = await create_plan(harness, product["id"])
    url = f"/billing/admin/plans/{plan['id']}"
    repriced = await harness.client.patch(
        url,
        json={"pricing_model": "tiered_volume", "unit_amount": 0, "tiers": TIERS, "currency": "usd"},
        headers=admin(harness),
    )
    assert repriced.status_code == 200, repriced.text
    assert (repriced.json()["pricing_model"], repriced.json()["currency"]) == ("tiered_volume", "USD")
    assert len(repriced.json()["tiers"]) == 3

    retiered = await harness.client.patch(
        url,
        json={"tiers": [{"up_to": 5, "unit_amount": 9}, {"up_to": None, "unit_amount": 7}]},
        headers=admin(harness),
    )
    assert retiered.status_code == 200, retiered.text
    assert [tier["up_to"] for tier in retiered.json()["tiers"]] == [5, None]

    # The plan as it would become is checked: back to flat needs the tiers removed.
    flat_with_tiers = await harness.client.patch(
        url, json={"pricing_model": "flat", "unit_amount": 900}, headers=admin(harness)
    )
    assert flat_with_tiers.status_code == 422
    assert flat_with_tiers.json()["errors"][0]["field"] == "tiers"
    flat = await harness.client.patch(
        url, json={"pricing_model": "flat", "unit_amount": 900, "tiers": []}, headers=admin(harness)
    )
    assert flat.status_code == 200, flat.text
    assert (flat.json()["unit_amount"], flat.json()["tiers"]) == (900, [])


async def _refer_to(harness: Harness, plan_id: str, kind: str) -> None:
    """Store a row of ``kind`` that refers to the plan (subscription checkout is not wired yet)."""
    async with harness.payments.service() as svc:
        customer = await svc.customers.get_or_create("alice")
        plan = uuid.UUID(plan_id)
        if kind == "checkout_session":
            svc.session.add(
                CheckoutSession(
                    customer_id=customer.id,
                    provider="fake",
                    mode="subscription",
                    plan_id=plan,
                    currency="EUR",
                )
            )
        elif kind == "subscription":
            svc.session.add(Subscription(customer_id=customer.id, plan_id=plan, provider="fake"))
        else:
            line = InvoiceLine(position=0, description="Pro", plan_id=plan, amount=1500, currency="EUR")
            svc.session.add(
                Invoice(
                    customer_id=customer.id, currency="EUR", subtotal=1500, tax=0, total=1500, lines=[line]
                )
            )


@pytest.mark.parametrize("kind", ["checkout_session", "subscription", "invoice_line"])
async def test_a_plan_in_use_keeps_its_price(harness: Harness, kind: str) -> None:
    product = await create_product(harness)
    plan = await create_plan(harness, product["id"])
    await _refer_to(harness, plan["id"], kind)
    url = f"/billing/admin/plans/{plan['id']}"

    repriced = await harness.client.patch(url, json={"unit_amount": 1900}, headers=admin(harness))
    assert repriced.status_code == 409, repriced.text
    problem = repriced.json()
    assert problem["code"] == "conflict"
    assert "create a new plan and deactivate this one" in problem["detail"]
    assert problem["details"]["fields"] == ["unit_amount"]
    assert problem["details"][f"{kind}s"] == 1

    for change in (
        {"currency": "USD"},
        {"interval": "year"},
        {"tiers": TIERS, "pricing_model": "tiered_volume"},
    ):
        refused = await harness.client.patch(url, json={**change, "unit_amount": 0}, headers=admin(harness))
        assert refused.status_code == 409, (change, refused.text)

    # The same price sent again is no change; the other fields still change.
    same = await harness.client.patch(
        url, json={"unit_amount": 1500, "currency": "eur", "name": "Pro (legacy)"}, headers=admin(harness)
    )
    assert same.status_code == 200, same.text
    retired = await harness.client.patch(url, json={"active": False}, headers=admin(harness))
    assert retired.status_code == 200
    assert (retired.json()["name"], retired.json()["unit_amount"], retired.json()["active"]) == (
        "Pro (legacy)",
        1500,
        False,
    )


async def test_only_unreferenced_plans_are_deleted(harness: Harness) -> None:
    product = await create_product(harness)
    unused = await create_plan(harness, product["id"], "tiered_graduated")
    used = await create_plan(harness, product["id"])
    await _refer_to(harness, used["id"], "checkout_session")

    deleted = await harness.client.delete(f"/billing/admin/plans/{unused['id']}", headers=admin(harness))
    assert deleted.status_code == 204, deleted.text
    assert deleted.content == b""
    async with harness.payments.service() as svc:
        tiers_left = (
            await svc.session.execute(sa.select(sa.func.count()).select_from(PlanTier))
        ).scalar_one()
    assert tiers_left == 0
    gone = await harness.client.delete(f"/billing/admin/plans/{unused['id']}", headers=admin(harness))
    assert gone.status_code == 404

    kept = await harness.client.delete(f"/billing/admin/plans/{used['id']}", headers=admin(harness))
    assert kept.status_code == 409, kept.text
    assert "deactivate it instead" in kept.json()["detail"]
    assert kept.json()["details"]["checkout_sessions"] == 1
    assert [plan["id"] for plan in (await harness.client.get("/billing/plans")).json()] == [used["id"]]


async def test_create_plan_honours_idempotency_key(harness: Harness) -> None:
    product = await create_product(harness)
    body = {**PLANS["metered"], "product_id": product["id"]}
    headers = admin(harness, **{"Idempotency-Key": "plan-api-calls"})
    first = await harness.client.post("/billing/admin/plans", json=body, headers=headers)
    second = await harness.client.post("/billing/admin/plans", json=body, headers=headers)
    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second.headers.get("Idempotent-Replayed") == "true"
    assert await plan_rows(harness) == 1

    other = await harness.client.post(
        "/billing/admin/plans", json={**body, "unit_amount": 3}, headers=headers
    )
    assert other.status_code == 409
    assert other.json()["code"] == "idempotency_conflict"

    product_headers = admin(harness, **{"Idempotency-Key": "product-1"})
    made = await harness.client.post("/billing/admin/products", json={"name": "B"}, headers=product_headers)
    again = await harness.client.post("/billing/admin/products", json={"name": "B"}, headers=product_headers)
    assert made.json() == again.json()
    assert again.headers.get("Idempotent-Replayed") == "true"


# ---------------------------------------------------------------------- provider sync


class StubProvider:
    """A provider that only syncs catalogs: the protocol's core and its catalog part, nothing else."""

    name = "stub"
    capabilities = frozenset({Capability.CATALOG_SYNC})
    idempotency_keys = True
    proration_behaviors: frozenset[ProrationBehavior] = frozenset()

    def __init__(self) -> None:
        self.calls: list[list[PlanRef]] = []
        self._issued = 0

    async def create_customer(self, customer: CustomerRef, *, idempotency_key: str) -> str | None:
        return f"cus_{customer.id.hex}"

    async def sync_catalog(self, plans: list[PlanRef]) -> Mapping[uuid.UUID, str]:
        self.calls.append(list(plans))
        issued: dict[uuid.UUID, str] = {}
        for plan in plans:
            self._issued += 1
            issued[plan.id] = f"price_{self._issued}"
        return issued


@pytest.fixture
async def stub(engine: Any, database_url: str) -> AsyncIterator[tuple[Harness, StubProvider]]:
    """The router with the stub provider as the default, on every configured database."""
    provider = StubProvider()
    assert isinstance(provider, PaymentProvider)
    settings = settings_for(database_url, default_provider="stub")
    payments = PaymentsRouter(settings, providers=[provider])
    app = FastAPI()
    app.include_router(payments, prefix="/billing")
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield Harness(app=app, payments=payments, client=client, settings=settings), provider


async def price_objects(harness: Harness) -> list[tuple[uuid.UUID, str, bool]]:
    async with harness.payments.service() as svc:
        rows = (await svc.session.execute(sa.select(ProviderObject))).scalars().all()
    return sorted((row.object_id, row.provider_id, row.archived) for row in rows)


async def test_sync_creates_prices_once_and_replaces_a_changed_one(
    stub: tuple[Harness, StubProvider],
) -> None:
    harness, provider = stub
    product = await create_product(harness)
    flat = await create_plan(harness, product["id"], "flat")
    tiered = await create_plan(harness, product["id"], "tiered_graduated")
    await create_plan(harness, product["id"], "per_unit", active=False)  # not in the catalog: not sent

    first = await harness.client.post("/billing/admin/catalog/sync", headers=admin(harness))
    assert first.status_code == 200, first.text
    assert first.json() == {"provider": "stub", "created": 2, "unchanged": 0, "archived": 0}
    assert len(provider.calls) == 1
    sent = {ref.id: ref for ref in provider.calls[0]}
    assert set(sent) == {uuid.UUID(flat["id"]), uuid.UUID(tiered["id"])}
    tiered_ref = sent[uuid.UUID(tiered["id"])]
    assert tiered_ref.pricing_model is PricingModel.TIERED_GRADUATED
    assert tiered_ref.tiers == (TierRef(10, 500, 0), TierRef(100, 400, 1000), TierRef(None, 300, 0))
    assert tiered_ref.product_name == "Acme API"
    assert tiered_ref.provider_price_id is None

    second = await harness.client.post("/billing/admin/catalog/sync?provider=stub", headers=admin(harness))
    assert second.json() == {"provider": "stub", "created": 0, "unchanged": 2, "archived": 0}
    assert len(provider.calls) == 1
    before = await price_objects(harness)
    assert len(before) == 2
    assert not any(archived for _, _, archived in before)

    # Name and trial are not part of the price: still nothing to sync.
    await harness.client.patch(
        f"/billing/admin/plans/{flat['id']}", json={"name": "Pro+", "trial_days": 7}, headers=admin(harness)
    )
    assert (await harness.client.post("/billing/admin/catalog/sync", headers=admin(harness))).json()[
        "unchanged"
    ] == 2

    repriced = await harness.client.patch(
        f"/billing/admin/plans/{flat['id']}", json={"unit_amount": 1900}, headers=admin(harness)
    )
    assert repriced.status_code == 200, repriced.text
    third = await harness.client.post("/billing/admin/catalog/sync", headers=admin(harness))
    assert third.json() == {"provider": "stub", "created": 1, "unchanged": 1, "archived": 1}
    assert [ref.id for ref in provider.calls[1]] == [uuid.UUID(flat["id"])]
    assert provider.calls[1][0].unit_amount.amount == 1900
    old_price = next(price for plan_id, price, _ in before if plan_id == uuid.UUID(flat["id"]))
    assert provider.calls[1][0].provider_price_id == old_price

    flat_prices = [
        (price, archived)
        for plan_id, price, archived in await price_objects(harness)
        if plan_id == uuid.UUID(flat["id"])
    ]
    assert sorted(flat_prices) == [(old_price, True), ("price_3", False)]

    async with harness.payments.service() as svc:
        plan = await svc.catalog.get_plan(uuid.UUID(flat["id"]))
        ref = await svc.catalog.plan_ref(plan, provider)
    assert (ref.provider_price_id, ref.unit_amount.amount, ref.unit_amount.currency) == (
        "price_3",
        1900,
        "EUR",
    )
    assert ref.interval is BillingInterval.MONTH

    fourth = await harness.client.post("/billing/admin/catalog/sync", headers=admin(harness))
    assert fourth.json() == {"provider": "stub", "created": 0, "unchanged": 2, "archived": 0}
    assert len(provider.calls) == 2


async def test_sync_needs_a_provider_that_can_sync(harness: Harness) -> None:
    response = await harness.client.post(
        "/billing/admin/catalog/sync?provider=manual", headers=admin(harness)
    )
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["code"] == "unsupported_capability"
    assert problem["details"] == {"provider": "manual", "capability": "catalog_sync", "field": "provider"}

    unknown = await harness.client.post("/billing/admin/catalog/sync?provider=nope", headers=admin(harness))
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["field"] == "provider"


async def test_a_provider_that_leaves_a_plan_out_is_a_502_and_the_rest_is_recorded(
    stub: tuple[Harness, StubProvider], monkeypatch: pytest.MonkeyPatch
) -> None:
    harness, provider = stub
    product = await create_product(harness)
    await create_plan(harness, product["id"], "flat")
    await create_plan(harness, product["id"], "free")

    async def partial(plans: list[PlanRef]) -> Mapping[uuid.UUID, str]:
        return {plans[0].id: "price_partial"}

    monkeypatch.setattr(provider, "sync_catalog", partial)
    response = await harness.client.post("/billing/admin/catalog/sync", headers=admin(harness))
    assert response.status_code == 502, response.text
    assert response.json()["code"] == "provider_error"
    [left_out] = response.json()["details"]["plan_ids"]
    [(recorded, price_id, archived)] = await price_objects(harness)
    assert (price_id, archived) == ("price_partial", False)
    assert str(recorded) != left_out

    monkeypatch.undo()
    retried = await harness.client.post("/billing/admin/catalog/sync", headers=admin(harness))
    assert retried.json() == {"provider": "stub", "created": 1, "unchanged": 1, "archived": 0}
    assert [str(ref.id) for ref in provider.calls[-1]] == [left_out]


async def test_deleting_a_synced_plan_archives_its_price(stub: tuple[Harness, StubProvider]) -> None:
    harness, _provider = stub
    product = await create_product(harness)
    plan = await create_plan(harness, product["id"], "metered")
    await harness.client.post("/billing/admin/catalog/sync", headers=admin(harness))
    deleted = await harness.client.delete(f"/billing/admin/plans/{plan['id']}", headers=admin(harness))
    assert deleted.status_code == 204, deleted.text
    assert await price_objects(harness) == [(uuid.UUID(plan["id"]), "price_1", True)]


async def test_the_service_checks_what_the_api_schema_cannot(harness: Harness) -> None:
    async with harness.payments.service() as svc:
        product = await svc.catalog.create_product("Acme")
        plan = await svc.catalog.create_plan(
            product.id,
            "Graduated",
            PricingModel.TIERED_GRADUATED,
            0,
            "usd",
            BillingInterval.MONTH,
            tiers=[TierRef(100, 10), TierRef(None, 5, 250)],
            features={"seats": 3},
        )
        assert [(t.position, t.up_to, t.unit_amount, t.flat_amount) for t in plan.tiers] == [
            (0, 100, 10, 0),
            (1, None, 5, 250),
        ]
        with pytest.raises(TypeError, match="unknown fields: price"):
            await svc.catalog.update_plan(plan.id, price=5)
        with pytest.raises(TypeError, match="unknown fields: colour"):
            await svc.catalog.update_product(product.id, colour="red")
        bad_calls: list[tuple[dict[str, Any], str, str]] = [
            (
                {"tiers": [{"up_to": None, "unit_amont": 5}]},
                "tiers",
                "tiers[0] has unknown fields: unit_amont",
            ),
            ({"tiers": [{"up_to": 5, "unit_amount": 1.5}, {"up_to": None}]}, "tiers", "tiers[0].unit_amount"),
            ({"features": {"ratio": 0.5}}, "features", "features.ratio"),
            ({"unit_amount": 10.0, "tiers": []}, "unit_amount", "unit_amount"),
            ({"pricing_model": "bespoke"}, "pricing_model", "pricing_model must be one of"),
            ({"interval": "week", "interval_count": 157}, "interval_count", "1 to 156"),
            ({"active": "yes"}, "active", "true or false"),
        ]
        for changes, field, message in bad_calls:
            with pytest.raises(ValidationError, match=re.escape(message)) as raised:
                await svc.catalog.update_plan(plan.id, **changes)
            assert raised.value.field == field, changes
