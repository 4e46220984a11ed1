"""Reconcile: drift between local rows and the provider is reported, and repaired with fix."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from fastapi_cashier.db.model_repositories import StatusChangeRepository, SubscriptionRepository
from fastapi_cashier.db.models import StatusChange

from .conftest import Harness
from .test_subscriptions import create_plan, subscribe, subscription_state

pytestmark = pytest.mark.anyio


async def _missed_changes(harness: Harness) -> tuple[dict[str, Any], dict[str, Any]]:
    """A subscription canceled and another one's seats changed at the provider, webhooks lost."""
    plan = await create_plan(harness)
    kept = await subscribe(harness, plan["id"], quantity=2, subject="alice")
    dropped = await subscribe(harness, plan["id"], quantity=1, subject="bob")
    harness.fake.auto_deliver = False  # the provider's events never arrive
    async with harness.payments.service() as svc:
        rows = {
            str(row.id): row.provider_subscription_id
            for row in await SubscriptionRepository(session=svc.session).list()
        }
    harness.fake.subscriptions[rows[kept["id"]]].quantity = 5
    await harness.fake.cancel_subscription(
        rows[dropped["id"]], at_period_end=False, idempotency_key="dashboard-cancel"
    )
    return kept, dropped


async def test_drift_is_reported_and_left_alone_without_fix(harness: Harness) -> None:
    kept, dropped = await _missed_changes(harness)
    async with harness.payments.service() as svc:
        report = await svc.reconcile.run("fake")
    found = sorted((d.kind, str(d.local_id), d.field, d.local, d.remote) for d in report.drift)
    assert found == sorted(
        [
            ("subscription", kept["id"], "quantity", "2", "5"),
            ("subscription", dropped["id"], "status", "active", "canceled"),
        ]
    )
    assert report.fixed == []
    assert report.checked >= 4  # two subscriptions and their first payments
    assert (await subscription_state(harness, dropped["id"], "bob"))["status"] == "active"


async def test_fix_applies_the_providers_state_through_the_audit_trail(harness: Harness) -> None:
    kept, dropped = await _missed_changes(harness)
    progress: list[tuple[int, int]] = []
    async with harness.payments.service() as svc:
        report = await svc.reconcile.run(
            "fake", fix=True, on_progress=lambda done, total: progress.append((done, total))
        )
    assert sorted(map(str, report.fixed)) == sorted([kept["id"], dropped["id"]])
    assert report.unfixed == {}
    assert progress[-1][0] == progress[-1][1] == report.checked
    assert (await subscription_state(harness, kept["id"], "alice"))["quantity"] == 5
    assert (await subscription_state(harness, dropped["id"], "bob"))["status"] == "canceled"
    async with harness.payments.service() as svc:
        again = await svc.reconcile.run("fake", fix=True, everything=True)
    assert (again.drift, again.fixed) == ([], [])
    async with harness.payments.service() as svc:
        changes = await StatusChangeRepository(session=svc.session).list(
            StatusChange.entity_id == uuid.UUID(dropped["id"])
        )
    last = max(changes, key=lambda change: change.created_at)
    assert (last.from_status, last.to_status) == ("active", "canceled")
    assert (last.provider_event_id or "").startswith("reconcile-")


async def test_an_object_the_provider_lost_is_reported_missing(harness: Harness) -> None:
    paid = await harness.pay_one_off(amount=1000)
    harness.fake.payments.clear()
    async with harness.payments.service() as svc:
        report = await svc.reconcile.run("fake", fix=True, everything=True)
    missing = [(str(d.local_id), d.field, d.remote) for d in report.drift if d.kind == "payment"]
    assert missing == [(paid["session"]["payment_id"], "existence", "missing")]
    assert "cannot read it from fake" in report.unfixed[next(d.local_id for d in report.drift)]


async def test_a_repair_is_applied_when_the_providers_clock_runs_ahead(harness: Harness) -> None:
    from datetime import timedelta

    import sqlalchemy as sa

    from fastapi_cashier.db.base import utcnow
    from fastapi_cashier.db.models import Subscription

    kept, _ = await _missed_changes(harness)
    async with harness.payments.session_factory() as session:
        # The last event applied was stamped by a provider clock an hour ahead of ours.
        await session.execute(
            sa.update(Subscription)
            .where(Subscription.id == uuid.UUID(kept["id"]))
            .values(provider_updated_at=utcnow() + timedelta(hours=1))
        )
        await session.commit()
    async with harness.payments.service() as svc:
        report = await svc.reconcile.run("fake", fix=True)
    assert uuid.UUID(kept["id"]) in report.fixed
    assert report.unfixed == {}
    assert (await subscription_state(harness, kept["id"], "alice"))["quantity"] == 5
