"""A subscription checkout completes when its subscription first starts, whichever event comes
first: the subscription's or the provider's own checkout event. Here on the fake; PayPal, which
sends no checkout event for a subscription at all, in ``tests/providers/test_paypal_router.py``."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
import sqlalchemy as sa

from fastapi_cashier.db.models import StatusChange

from .conftest import Harness
from .test_subscriptions import URLS, create_plan

pytestmark = pytest.mark.anyio

Delivery = tuple[dict[str, str], bytes]


async def paid_subscription_checkout(harness: Harness, **plan: Any) -> tuple[str, list[tuple[str, Delivery]]]:
    """A paid subscription checkout's id and its signed events, by type, none delivered yet."""
    created_plan = await create_plan(harness, **plan)
    harness.fake.auto_deliver = False
    created = await harness.client.post(
        "/billing/checkout-sessions", json={"plan_id": created_plan["id"], **URLS}, headers=harness.auth()
    )
    assert created.status_code == 201, created.text
    provider_session_id = created.json()["url"].rsplit("/", 1)[1]
    paid = await harness.client.post(
        f"/billing/fake/checkout/{provider_session_id}", data={"outcome": "succeeded"}
    )
    assert paid.status_code == 303, paid.text
    events = [(json.loads(body)["type"], (headers, body)) for headers, body in harness.fake.sent_events]
    harness.fake.sent_events.clear()
    return created.json()["id"], events


async def deliver(harness: Harness, delivery: Delivery) -> str:
    headers, body = delivery
    response = await harness.client.post("/billing/webhooks/fake", content=body, headers=headers)
    assert response.status_code == 200, response.text
    return str(response.json()["status"])


async def session_status(harness: Harness, session_id: str) -> str:
    detail = await harness.client.get(f"/billing/checkout-sessions/{session_id}", headers=harness.auth())
    assert detail.status_code == 200, detail.text
    return str(detail.json()["status"])


async def checkout_trail(harness: Harness, session_id: str) -> list[tuple[str | None, str, str, str | None]]:
    async with harness.payments.session_factory() as session:
        rows = await session.scalars(
            sa.select(StatusChange)
            .where(
                StatusChange.entity_type == "checkout_session",
                StatusChange.entity_id == uuid.UUID(session_id),
            )
            .order_by(StatusChange.created_at)
        )
        return [(row.from_status, row.to_status, row.cause.value, row.reason) for row in rows]


@pytest.mark.parametrize("trial_days", [0, 14])
async def test_the_subscription_completes_its_checkout_when_the_checkout_event_is_late(
    harness: Harness, trial_days: int
) -> None:
    session_id, events = await paid_subscription_checkout(harness, trial_days=trial_days)
    types = [kind for kind, _ in events]
    assert "checkout.completed" in types, types
    early = [delivery for kind, delivery in events if kind != "checkout.completed"]
    (late,) = [delivery for kind, delivery in events if kind == "checkout.completed"]
    for delivery in early:
        assert await deliver(harness, delivery) == "processed"
    assert await session_status(harness, session_id) == "complete"
    started = "trialing" if trial_days else "active"
    assert await checkout_trail(harness, session_id) == [
        ("open", "complete", "webhook", f"its subscription became {started}")
    ]
    # The provider's own word comes afterwards: agreed, nothing recorded twice.
    assert await deliver(harness, late) == "processed"
    assert await session_status(harness, session_id) == "complete"
    assert len(await checkout_trail(harness, session_id)) == 1


async def test_the_checkout_event_first_completes_it_once(harness: Harness) -> None:
    session_id, events = await paid_subscription_checkout(harness)
    ordered = sorted(events, key=lambda event: event[0] != "checkout.completed")
    for _, delivery in ordered:
        await deliver(harness, delivery)
    assert await session_status(harness, session_id) == "complete"
    assert await checkout_trail(harness, session_id) == [("open", "complete", "webhook", "reported complete")]
    listed = await harness.client.get("/billing/subscriptions", headers=harness.auth())
    assert [sub["status"] for sub in listed.json()["items"]] == ["active"]


async def test_a_checkout_completion_runs_its_hook_once(harness: Harness) -> None:
    seen: list[tuple[str, str]] = []

    @harness.payments.on("checkout_session.complete")
    async def completed(event: Any) -> None:
        seen.append((event.type, str(event.entity_id)))

    session_id, events = await paid_subscription_checkout(harness)
    for _, delivery in events:
        await deliver(harness, delivery)
    assert seen == [("checkout_session.complete", session_id)]
