"""The subscription lifecycle end to end through HTTP, the fake provider and its clock."""

from __future__ import annotations

from datetime import datetime
from fractions import Fraction
from typing import Any

import pytest

from .conftest import Harness

pytestmark = pytest.mark.anyio

URLS = {"success_url": "https://app.example/welcome", "cancel_url": "https://app.example/pricing"}


async def create_plan(harness: Harness, **plan: Any) -> dict[str, Any]:
    admin = harness.auth("root", admin=True)
    product = await harness.client.post(
        "/billing/admin/products", json={"name": "Team workspace"}, headers=admin
    )
    assert product.status_code == 201, product.text
    body = {
        "product_id": product.json()["id"],
        "name": "Seats",
        "pricing_model": "per_unit",
        "unit_amount": 1000,
        "currency": "EUR",
        "interval": "month",
        **plan,
    }
    created = await harness.client.post("/billing/admin/plans", json=body, headers=admin)
    assert created.status_code == 201, created.text
    result: dict[str, Any] = created.json()
    return result


async def subscribe(
    harness: Harness, plan_id: str, *, quantity: int = 1, subject: str = "alice"
) -> dict[str, Any]:
    created = await harness.client.post(
        "/billing/checkout-sessions",
        json={"plan_id": plan_id, "quantity": quantity, **URLS},
        headers=harness.auth(subject),
    )
    assert created.status_code == 201, created.text
    session = created.json()
    assert session["mode"] == "subscription"
    provider_session_id = session["url"].rsplit("/", 1)[1]
    paid = await harness.client.post(
        f"/billing/fake/checkout/{provider_session_id}", data={"outcome": "succeeded"}
    )
    assert paid.status_code == 303
    assert paid.headers["location"] == URLS["success_url"]
    listing = await harness.client.get("/billing/subscriptions", headers=harness.auth(subject))
    items = listing.json()["items"]
    assert len(items) >= 1
    subscription: dict[str, Any] = items[0]
    return subscription


def assert_prorated(lines: list[dict[str, Any]], period_start: str, *, old: int, new: int) -> tuple[int, int]:
    """Check a change's two proration lines made 10 days into a monthly period; (credit, charge).

    Each is the exact share of the period left when the change happened, rounded to a whole
    cent: the unused part of ``old`` credited, the remaining part of ``new`` charged. (The
    month's length, so the share, depends on the day the test runs.)
    """
    credit, charge = sorted(line["amount"] for line in lines)
    assert credit < 0 < charge
    changed_at = datetime.fromisoformat(lines[0]["period_start"])
    period_end = datetime.fromisoformat(lines[0]["period_end"])
    full = period_end - datetime.fromisoformat(period_start)
    left = Fraction(int((period_end - changed_at).total_seconds()), int(full.total_seconds()))
    assert Fraction(1, 2) < left < Fraction(3, 4)
    assert abs(-credit - old * left) <= Fraction(1, 2)
    assert abs(charge - new * left) <= Fraction(1, 2)
    return credit, charge


async def invoices(harness: Harness, subject: str = "alice") -> list[dict[str, Any]]:
    response = await harness.client.get("/billing/invoices?limit=100", headers=harness.auth(subject))
    assert response.status_code == 200
    items: list[dict[str, Any]] = response.json()["items"]
    return sorted(items, key=lambda invoice: invoice["number"] or "")


async def subscription_state(
    harness: Harness, subscription_id: str, subject: str = "alice"
) -> dict[str, Any]:
    response = await harness.client.get(
        f"/billing/subscriptions/{subscription_id}", headers=harness.auth(subject)
    )
    assert response.status_code == 200
    result: dict[str, Any] = response.json()
    return result


async def test_a_per_seat_subscription_is_invoiced_and_renews(harness: Harness) -> None:
    plan = await create_plan(harness)
    subscription = await subscribe(harness, plan["id"], quantity=3)
    assert subscription["status"] == "active"
    assert subscription["quantity"] == 3
    first = await invoices(harness)
    assert [(i["number"], i["status"], i["total"]) for i in first] == [("INV-000001", "paid", 3000)]
    assert first[0]["lines"][0]["amount"] == 3000

    await harness.fake.advance(days=31)
    renewed = await invoices(harness)
    assert [(i["number"], i["status"], i["total"]) for i in renewed] == [
        ("INV-000001", "paid", 3000),
        ("INV-000002", "paid", 3000),
    ]
    state = await subscription_state(harness, subscription["id"])
    assert state["status"] == "active"
    assert state["current_period_start"] > subscription["current_period_start"]
    payments = (await harness.client.get("/billing/payments", headers=harness.auth())).json()["items"]
    assert sorted(p["amount"] for p in payments if p["status"] == "succeeded") == [3000, 3000]


async def test_a_trial_converts_to_active(harness: Harness) -> None:
    plan = await create_plan(harness, trial_days=14)
    subscription = await subscribe(harness, plan["id"], quantity=2)
    assert subscription["status"] == "trialing"
    assert subscription["trial_end"] is not None
    assert [i["total"] for i in await invoices(harness)] == [0]

    await harness.fake.advance(days=15)
    state = await subscription_state(harness, subscription["id"])
    assert state["status"] == "active"
    assert [i["total"] for i in await invoices(harness)] == [0, 2000]
    trail = await harness.client.get("/billing/payments", headers=harness.auth())
    assert [p["amount"] for p in trail.json()["items"]] == [2000]


async def test_quantity_change_is_prorated_on_the_next_invoice(harness: Harness) -> None:
    plan = await create_plan(harness, unit_amount=3000)
    subscription = await subscribe(harness, plan["id"], quantity=1)
    period_start = subscription["current_period_start"]
    await harness.fake.advance(days=10)
    changed = await harness.client.patch(
        f"/billing/subscriptions/{subscription['id']}", json={"quantity": 2}, headers=harness.auth()
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["quantity"] == 2

    await harness.fake.advance(days=25)
    renewal = (await invoices(harness))[-1]
    prorations = [line for line in renewal["lines"] if line["proration"]]
    regular = [line for line in renewal["lines"] if not line["proration"]]
    assert [line["amount"] for line in regular] == [6000]
    assert len(prorations) == 2
    # Unused part of 1 seat credited, remaining part of 2 seats charged.
    credit, charge = assert_prorated(prorations, period_start, old=3000, new=6000)
    assert renewal["total"] == 6000 + credit + charge
    assert period_start < renewal["period_start"]


async def test_cancel_at_period_end_expires_when_the_clock_passes(harness: Harness) -> None:
    plan = await create_plan(harness)
    subscription = await subscribe(harness, plan["id"])
    canceled = await harness.client.post(
        f"/billing/subscriptions/{subscription['id']}/cancel",
        json={"at_period_end": True},
        headers=harness.auth(),
    )
    assert canceled.status_code == 200, canceled.text
    assert canceled.json()["cancel_at_period_end"] is True
    assert canceled.json()["status"] == "active"

    resumed = await harness.client.post(
        f"/billing/subscriptions/{subscription['id']}/resume", headers=harness.auth()
    )
    assert resumed.json()["cancel_at_period_end"] is False
    await harness.client.post(f"/billing/subscriptions/{subscription['id']}/cancel", headers=harness.auth())

    await harness.fake.advance(days=32)
    state = await subscription_state(harness, subscription["id"])
    assert state["status"] == "expired"
    assert len(await invoices(harness)) == 1  # nothing billed after the end


async def test_cancel_now(harness: Harness) -> None:
    plan = await create_plan(harness)
    subscription = await subscribe(harness, plan["id"])
    canceled = await harness.client.post(
        f"/billing/subscriptions/{subscription['id']}/cancel",
        json={"at_period_end": False},
        headers=harness.auth(),
    )
    assert canceled.json()["status"] == "canceled"
    again = await harness.client.post(
        f"/billing/subscriptions/{subscription['id']}/cancel",
        json={"at_period_end": False},
        headers=harness.auth(),
    )
    assert again.status_code == 409


async def test_pause_and_resume(harness: Harness) -> None:
    plan = await create_plan(harness)
    subscription = await subscribe(harness, plan["id"])
    paused = await harness.client.post(
        f"/billing/subscriptions/{subscription['id']}/pause", headers=harness.auth()
    )
    assert paused.status_code == 200, paused.text
    assert paused.json()["status"] == "paused"
    await harness.fake.advance(days=40)
    assert len(await invoices(harness)) == 1  # collection paused
    resumed = await harness.client.post(
        f"/billing/subscriptions/{subscription['id']}/resume", headers=harness.auth()
    )
    assert resumed.json()["status"] == "active"
    await harness.fake.advance(days=31)
    assert len(await invoices(harness)) == 2  # billing resumed with it


async def test_a_failed_renewal_goes_past_due_and_recovers(harness: Harness) -> None:
    plan = await create_plan(harness)
    subscription = await subscribe(harness, plan["id"])
    customer_id = next(iter(harness.fake.customers))
    harness.fake.decline_payments_for(customer_id)
    await harness.fake.advance(days=31)
    state = await subscription_state(harness, subscription["id"])
    assert state["status"] == "past_due"
    unpaid = (await invoices(harness))[-1]
    assert unpaid["status"] == "open"
    newest = (await harness.client.get("/billing/payments", headers=harness.auth())).json()["items"][0]
    assert newest["status"] == "failed"

    harness.fake.decline_payments_for(customer_id, declined=False)
    await harness.fake.advance(days=31)
    assert (await subscription_state(harness, subscription["id"]))["status"] == "active"


async def test_usage_is_counted_once_per_key_and_invoiced(harness: Harness) -> None:
    plan = await create_plan(harness, name="API calls", pricing_model="metered", unit_amount=2)
    subscription = await subscribe(harness, plan["id"])
    url = f"/billing/subscriptions/{subscription['id']}/usage"
    first = await harness.client.post(
        url, json={"quantity": 700, "idempotency_key": "batch-1"}, headers=harness.auth()
    )
    again = await harness.client.post(
        url, json={"quantity": 700, "idempotency_key": "batch-1"}, headers=harness.auth()
    )
    other = await harness.client.post(
        url, json={"quantity": 300, "idempotency_key": "batch-2"}, headers=harness.auth()
    )
    assert (first.status_code, again.status_code, other.status_code) == (201, 200, 201)
    assert again.json()["duplicate"] is True
    await harness.fake.advance(days=31)
    renewal = (await invoices(harness))[-1]
    assert renewal["total"] == 2 * 1000
    missing_key = await harness.client.post(url, json={"quantity": 1}, headers=harness.auth())
    assert missing_key.status_code == 422


async def test_another_customers_subscription_is_404(harness: Harness) -> None:
    plan = await create_plan(harness)
    subscription = await subscribe(harness, plan["id"])
    for method, path, body in [
        ("GET", f"/billing/subscriptions/{subscription['id']}", None),
        ("PATCH", f"/billing/subscriptions/{subscription['id']}", {"quantity": 2}),
        ("POST", f"/billing/subscriptions/{subscription['id']}/cancel", {}),
        ("POST", f"/billing/subscriptions/{subscription['id']}/pause", None),
        ("POST", f"/billing/subscriptions/{subscription['id']}/resume", None),
        (
            "POST",
            f"/billing/subscriptions/{subscription['id']}/usage",
            {"quantity": 1, "idempotency_key": "k"},
        ),
    ]:
        response = await harness.client.request(method, path, json=body, headers=harness.auth("mallory"))
        assert response.status_code == 404, (method, path, response.text)
    first_invoice = (await invoices(harness))[0]
    foreign = await harness.client.get(
        f"/billing/invoices/{first_invoice['id']}", headers=harness.auth("mallory")
    )
    assert foreign.status_code == 404


async def test_portal_session_and_page(harness: Harness) -> None:
    plan = await create_plan(harness)
    subscription = await subscribe(harness, plan["id"], quantity=2)
    portal = await harness.client.post(
        "/billing/portal-sessions",
        json={"return_url": "https://app.example/account", "subscription_id": subscription["id"]},
        headers=harness.auth(),
    )
    assert portal.status_code == 201, portal.text
    page = await harness.client.get(portal.json()["url"].replace("http://testserver", ""))
    assert page.status_code == 200
    assert "Seats" in page.text


async def test_portal_is_refused_for_a_provider_without_one(harness: Harness) -> None:
    response = await harness.client.post(
        "/billing/portal-sessions",
        json={"return_url": "https://app.example/account", "provider": "manual"},
        headers=harness.auth(),
    )
    assert response.status_code == 422
    assert response.json()["code"] == "unsupported_capability"


@pytest.mark.parametrize("proration", ["always_invoice", "none"])
async def test_other_proration_behaviours(harness: Harness, proration: str) -> None:
    plan = await create_plan(harness, unit_amount=3000)
    subscription = await subscribe(harness, plan["id"], quantity=1)
    await harness.fake.advance(days=10)
    changed = await harness.client.patch(
        f"/billing/subscriptions/{subscription['id']}",
        json={"quantity": 3, "proration": proration},
        headers=harness.auth(),
    )
    assert changed.status_code == 200, changed.text
    after_change = await invoices(harness)
    if proration == "always_invoice":
        # The change is invoiced and charged at once: credit for 1 seat, charge for 3.
        assert len(after_change) == 2
        lines = [line for line in after_change[-1]["lines"] if line["proration"]]
        credit, charge = assert_prorated(lines, subscription["current_period_start"], old=3000, new=9000)
        assert after_change[-1]["status"] == "paid"
        assert after_change[-1]["total"] == credit + charge
    else:
        assert len(after_change) == 1
        await harness.fake.advance(days=25)
        renewal = (await invoices(harness))[-1]
        assert not any(line["proration"] for line in renewal["lines"])
        assert renewal["total"] == 9000


async def test_plan_change_to_another_currency_is_refused(harness: Harness) -> None:
    euros = await create_plan(harness)
    dollars = await create_plan(harness, currency="USD", name="Seats (USD)")
    subscription = await subscribe(harness, euros["id"])
    url = f"/billing/subscriptions/{subscription['id']}"
    refused = await harness.client.patch(url, json={"plan_id": dollars["id"]}, headers=harness.auth())
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == "plan_id"


@pytest.mark.parametrize("ending", ["canceled_now", "expired"])
async def test_an_ended_subscription_cannot_be_resumed(harness: Harness, ending: str) -> None:
    # The row keeps cancel_at_period_end from the earlier cancel, so the resume reached the
    # provider, which refused it: a 502 instead of a 409.
    plan = await create_plan(harness)
    subscription = await subscribe(harness, plan["id"])
    url = f"/billing/subscriptions/{subscription['id']}"
    canceled = await harness.client.post(
        f"{url}/cancel", json={"at_period_end": True}, headers=harness.auth()
    )
    assert canceled.status_code == 200, canceled.text
    if ending == "canceled_now":
        now = await harness.client.post(
            f"{url}/cancel", json={"at_period_end": False}, headers=harness.auth()
        )
        assert now.json()["status"] == "canceled"
    else:
        await harness.fake.advance(days=32)
    ended = (await harness.client.get(url, headers=harness.auth())).json()
    assert ended["status"] == ("canceled" if ending == "canceled_now" else "expired")
    resumed = await harness.client.post(f"{url}/resume", headers=harness.auth())
    assert resumed.status_code == 409, resumed.text
    assert resumed.json()["code"] == "conflict"
    assert "already" in resumed.json()["detail"]
