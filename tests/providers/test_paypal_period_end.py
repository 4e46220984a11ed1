"""Cancel at period end on PayPal, which has no such call: the library keeps the flag and cancels
at PayPal once the period has ended (``cancels_at_period_end_locally``), on every database.

The library's clock is moved past the period end by passing ``at`` (and, for the lifespan loop,
by replacing the module's clock); PayPal's (the sandbox's) is left before it, as it would be when
the library's loop runs before PayPal bills the next cycle.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from fastapi_cashier import PaymentsRouter
from fastapi_cashier.billing import period_end
from fastapi_cashier.db.models import StatusChange

from ..http.test_subscriptions import URLS, create_plan
from .paypal_sandbox import subscriptions as sandbox_subscriptions
from .paypal_sandbox.fixtures import PayPalHost, sandbox_provider

pytestmark = pytest.mark.anyio


async def subscribed(host: PayPalHost) -> dict[str, Any]:
    """Alice's active PayPal subscription (2 seats), as the API shows it."""
    plan = await create_plan(host.harness, pricing_model="per_unit", unit_amount=900, currency="USD")
    admin = host.harness.auth("root", admin=True)
    synced = await host.client.post(
        "/billing/admin/catalog/sync", params={"provider": "paypal"}, headers=admin
    )
    assert synced.status_code == 200, synced.text
    created = await host.client.post(
        "/billing/checkout-sessions",
        json={"plan_id": plan["id"], "quantity": 2, "provider": "paypal", **URLS},
        headers=host.harness.auth("alice"),
    )
    assert created.status_code == 201, created.text
    assert (await host.click(created.json()["url"])).status_code == 303
    await host.deliver_all(host.sandbox.sent_events)
    [sub] = (await host.client.get("/billing/subscriptions", headers=host.harness.auth("alice"))).json()[
        "items"
    ]
    assert sub["status"] == "active"
    assert sub["current_period_end"] is not None
    return dict(sub)


def cancels_at_paypal(host: PayPalHost) -> list[str]:
    return [
        path for method, path, _ in host.sandbox.state.calls if method == "POST" and path.endswith("/cancel")
    ]


async def read(host: PayPalHost, sub: dict[str, Any]) -> dict[str, Any]:
    got = await host.client.get(f"/billing/subscriptions/{sub['id']}", headers=host.harness.auth("alice"))
    assert got.status_code == 200, got.text
    return dict(got.json())


async def audit(engine: AsyncEngine, sub: dict[str, Any]) -> list[tuple[str | None, str, str, str | None]]:
    async with engine.connect() as connection:
        rows = await connection.execute(
            sa.select(
                StatusChange.from_status, StatusChange.to_status, StatusChange.cause, StatusChange.reason
            )
            .where(StatusChange.entity_type == "subscription", StatusChange.entity_id == uuid.UUID(sub["id"]))
            .order_by(StatusChange.created_at)
        )
        return [(row[0], row[1], str(getattr(row[2], "value", row[2])), row[3]) for row in rows]


async def test_the_flag_is_kept_locally_and_the_period_end_cancels_once_with_two_workers(
    paypal_host: PayPalHost, engine: AsyncEngine
) -> None:
    host = paypal_host
    sub = await subscribed(host)
    alice = host.harness.auth("alice")
    at_end = await host.client.post(
        f"/billing/subscriptions/{sub['id']}/cancel", json={"at_period_end": True}, headers=alice
    )
    assert at_end.status_code == 200, at_end.text
    assert (at_end.json()["status"], at_end.json()["cancel_at_period_end"]) == ("active", True)
    assert cancels_at_paypal(host) == []  # nothing is cancelled at PayPal before the period ends

    # A PayPal event about the subscription (which never carries the flag) keeps it.
    host.sandbox.state.advance(60)
    [paypal_sub] = host.sandbox.state.subscriptions.values()
    sent = len(host.sandbox.sent_events)
    await host.sandbox.emit(
        "BILLING.SUBSCRIPTION.UPDATED",
        "subscription",
        sandbox_subscriptions.view(host.sandbox, paypal_sub),
        "A billing subscription was updated.",
    )
    await host.deliver_all(host.sandbox.sent_events[sent:])
    assert (await read(host, sub))["cancel_at_period_end"] is True
    # Nor does reconcile see drift in it.
    async with host.harness.payments.service() as svc:
        report = await svc.reconcile.run("paypal")
    assert [drift for drift in report.drift if drift.field == "cancel_at_period_end"] == []

    ends = datetime.fromisoformat(sub["current_period_end"])
    payments = host.harness.payments
    assert await payments.cancel_due_subscriptions(at=ends - timedelta(minutes=1)) == []
    assert cancels_at_paypal(host) == []

    # Two processes (their own PayPal connection pools) run their loops at the same moment.
    other = PaymentsRouter(host.harness.settings, providers=[sandbox_provider(host.sandbox)])
    await other.startup()
    try:
        first, second = await asyncio.gather(
            payments.cancel_due_subscriptions(at=ends + timedelta(seconds=1)),
            other.cancel_due_subscriptions(at=ends + timedelta(seconds=1)),
        )
        assert sorted(str(found) for found in [*first, *second]) == [sub["id"]]
        assert len(cancels_at_paypal(host)) == 1
        # Later passes find nothing to do.
        assert await other.cancel_due_subscriptions(at=ends + timedelta(days=1)) == []
    finally:
        await other.shutdown()

    ended = await read(host, sub)
    assert (ended["status"], ended["cancel_at_period_end"]) == ("canceled", False)
    assert paypal_sub["status"] == "CANCELLED"
    changes = await audit(engine, sub)
    assert changes[-1][:3] == ("active", "canceled", "system")
    assert "period end" in (changes[-1][3] or "")
    # PayPal's own word of the cancel arrives afterwards and changes nothing.
    await host.deliver_all(host.sandbox.sent_events)
    assert [json.loads(body)["event_type"] for _, body in host.sandbox.sent_events][-1] == (
        "BILLING.SUBSCRIPTION.CANCELLED"
    )
    assert await audit(engine, sub) == changes
    assert len(cancels_at_paypal(host)) == 1


async def test_resume_before_the_period_end_only_clears_the_flag(paypal_host: PayPalHost) -> None:
    host = paypal_host
    sub = await subscribed(host)
    alice = host.harness.auth("alice")
    path = f"/billing/subscriptions/{sub['id']}"
    assert (await host.client.post(f"{path}/cancel", json={"at_period_end": True}, headers=alice)).is_success
    calls = len(host.sandbox.state.calls)
    resumed = await host.client.post(f"{path}/resume", headers=alice)
    assert resumed.status_code == 200, resumed.text
    assert (resumed.json()["status"], resumed.json()["cancel_at_period_end"]) == ("active", False)
    assert host.sandbox.state.calls[calls:] == []  # PayPal was not asked anything
    ends = datetime.fromisoformat(sub["current_period_end"])
    assert await host.harness.payments.cancel_due_subscriptions(at=ends + timedelta(days=1)) == []
    assert cancels_at_paypal(host) == []
    assert (await read(host, sub))["status"] == "active"
    # Resuming again has nothing to undo.
    again = await host.client.post(f"{path}/resume", headers=alice)
    assert again.status_code == 409, again.text


async def test_the_lifespan_loop_cancels_a_subscription_whose_period_ended(
    paypal_host: PayPalHost, monkeypatch: pytest.MonkeyPatch
) -> None:
    host = paypal_host
    sub = await subscribed(host)
    alice = host.harness.auth("alice")
    cancel = await host.client.post(
        f"/billing/subscriptions/{sub['id']}/cancel", json={"at_period_end": True}, headers=alice
    )
    assert cancel.status_code == 200, cancel.text
    ends = datetime.fromisoformat(sub["current_period_end"])
    monkeypatch.setattr(period_end, "now", lambda: ends + timedelta(seconds=1))
    settings = host.harness.settings.model_copy(
        update={
            "webhooks": host.harness.settings.webhooks.model_copy(
                update={"retry_loop": True, "poll_interval_seconds": 0.05}
            )
        }
    )
    looping = PaymentsRouter(settings, providers=[sandbox_provider(host.sandbox)])
    from fastapi import FastAPI

    app = FastAPI()
    app.include_router(looping, prefix="/billing")
    async with app.router.lifespan_context(app):
        for _ in range(200):
            if (await read(host, sub))["status"] == "canceled":
                break
            await asyncio.sleep(0.05)
    assert len(cancels_at_paypal(host)) == 1
    assert (await read(host, sub))["status"] == "canceled"


async def test_cancel_at_period_end_needs_a_confirmed_subscription_and_an_unended_one(
    paypal_host: PayPalHost,
) -> None:
    host = paypal_host
    sub = await subscribed(host)
    alice = host.harness.auth("alice")
    path = f"/billing/subscriptions/{sub['id']}"
    now = await host.client.post(f"{path}/cancel", json={"at_period_end": False}, headers=alice)
    assert now.status_code == 200, now.text
    again = await host.client.post(f"{path}/cancel", json={"at_period_end": True}, headers=alice)
    assert again.status_code == 409, again.text
    assert (await read(host, sub))["cancel_at_period_end"] is False
