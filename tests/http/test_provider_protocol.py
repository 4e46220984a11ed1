"""The provider protocol's promises, through HTTP and the inbox, on every configured database.

Declared capabilities (cancel modes, proration behaviours) are refused before anything is
written; a provider that ignores idempotency keys is settled by lookup, never asked twice; a
change that needs the subscriber's approval stays pending until the provider confirms it; a
checkout's completion step runs once whichever path asks first; refunds the provider reports
only as a larger ``refunded_amount`` are recorded; adapters contribute their own routes.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import anyio
import httpx
import pytest
import sqlalchemy as sa
from fastapi import APIRouter, FastAPI

from fastapi_cashier import PaymentsRouter
from fastapi_cashier.db.models import CheckoutSession, Customer, CustomerAccount, Refund
from fastapi_cashier.errors import ConfigurationError
from fastapi_cashier.money import Money
from fastapi_cashier.providers.base import (
    Capability,
    CheckoutSnapshot,
    CustomerRef,
    ProviderHost,
    RefundRequest,
    SubscriptionChange,
    SubscriptionResult,
    SubscriptionSnapshot,
)
from fastapi_cashier.providers.fake import FakeProvider
from fastapi_cashier.statuses import CheckoutSessionStatus, ProrationBehavior

from .conftest import WEBHOOK_SECRET, Harness, settings_for
from .test_provider_faults import _fake_refunds, flaky
from .test_subscriptions import create_plan, subscribe, subscription_state

pytestmark = pytest.mark.anyio


async def _status_changes(harness: Harness, entity_type: str) -> list[tuple[str | None, str, str | None]]:
    async with harness.payments.service() as svc:
        rows = await svc.session.execute(
            sa.text(
                "SELECT from_status, to_status, reason FROM cashier_status_changes "
                "WHERE entity_type = :kind ORDER BY created_at, id"
            ),
            {"kind": entity_type},
        )
        return [(row[0], row[1], row[2]) for row in rows]


# ---------------------------------------------------------------------- declared capabilities


async def test_cancel_now_is_refused_with_a_422_before_anything_is_written(harness: Harness) -> None:
    plan = await create_plan(harness)
    subscription = await subscribe(harness, plan["id"])
    harness.fake.capabilities = harness.fake.capabilities - {Capability.CANCEL_NOW}
    trail_before = await _status_changes(harness, "subscription")
    calls_before = list(harness.fake.calls)

    refused = await harness.client.post(
        f"/billing/subscriptions/{subscription['id']}/cancel",
        json={"at_period_end": False},
        headers=harness.auth(),
    )

    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["details"]["capability"] == "cancel_now"
    assert await _status_changes(harness, "subscription") == trail_before
    assert harness.fake.calls == calls_before
    assert (await subscription_state(harness, subscription["id"]))["status"] == "active"
    [fake_subscription] = harness.fake.subscriptions.values()
    assert fake_subscription.status.value == "active"

    at_end = await harness.client.post(
        f"/billing/subscriptions/{subscription['id']}/cancel",
        json={"at_period_end": True},
        headers=harness.auth(),
    )
    assert at_end.status_code == 200, at_end.text
    assert at_end.json()["cancel_at_period_end"] is True


async def test_a_proration_the_provider_does_not_declare_is_refused_before_the_call(harness: Harness) -> None:
    plan = await create_plan(harness)
    subscription = await subscribe(harness, plan["id"])
    harness.fake.proration_behaviors = frozenset({ProrationBehavior.CREATE_PRORATIONS})

    refused = await harness.client.patch(
        f"/billing/subscriptions/{subscription['id']}",
        json={"quantity": 4, "proration": "none"},
        headers=harness.auth(),
    )

    assert refused.status_code == 422, refused.text
    assert refused.json()["details"] == {"provider": "fake", "proration": "none", "field": "proration"}
    assert (await subscription_state(harness, subscription["id"]))["quantity"] == 1
    [fake_subscription] = harness.fake.subscriptions.values()
    assert fake_subscription.quantity == 1


# ---------------------------------------------------------------------- approval of a change


async def test_a_change_needing_approval_stays_pending_until_the_provider_confirms_it(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = await create_plan(harness)
    subscription = await subscribe(harness, plan["id"])
    fake = harness.fake
    really_update = fake.update_subscription
    asked: list[SubscriptionChange] = []

    async def needs_approval(change: SubscriptionChange) -> SubscriptionResult:
        # As PayPal's revise: nothing changes until the subscriber approves at the provider.
        asked.append(change)
        current = await fake.fetch("subscription", change.provider_subscription_id)
        assert isinstance(current, SubscriptionSnapshot)
        return SubscriptionResult(snapshot=current, approval_url="https://provider.example/approve/1")

    monkeypatch.setattr(fake, "update_subscription", needs_approval)
    changed = await harness.client.patch(
        f"/billing/subscriptions/{subscription['id']}", json={"quantity": 3}, headers=harness.auth()
    )
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert body["quantity"] == 1
    assert body["pending_change"] == {
        "plan_id": None,
        "quantity": 3,
        "approval_url": "https://provider.example/approve/1",
    }

    # The subscriber approves: the provider applies the change and says so with an event.
    [change] = asked
    await really_update(change)
    confirmed = await subscription_state(harness, subscription["id"])
    assert confirmed["quantity"] == 3
    assert confirmed["pending_change"] is None


# ---------------------------------------------------------------------- providers without idempotency keys


async def test_a_refund_retried_without_idempotency_keys_is_settled_by_lookup_and_made_once(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    paid = await harness.pay_one_off(amount=1000)
    payment_id = paid["session"]["payment_id"]
    fake = harness.fake
    fake.auto_deliver = False
    fake.idempotency_keys = False  # a resent refund would be a second refund
    keys = flaky(monkeypatch, fake, "refund", ["lost"])

    response = await harness.client.post(
        f"/billing/admin/payments/{payment_id}/refunds",
        json={"amount": 400},
        headers=harness.auth("root", admin=True),
    )

    assert response.status_code == 201, response.text
    assert response.json()["status"] == "succeeded"
    assert len(keys) == 1  # found by lookup: never sent again
    assert _fake_refunds(fake) == [400]
    payment = (await harness.client.get(f"/billing/payments/{payment_id}", headers=harness.auth())).json()
    assert (payment["refunded_amount"], payment["status"]) == (400, "partially_refunded")


async def test_a_keyless_provider_without_the_lookup_resends_and_doubles(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The control of the test above: what the lookup prevents is real."""
    paid = await harness.pay_one_off(amount=1000)
    fake = harness.fake
    fake.auto_deliver = False
    fake.idempotency_keys = False
    keys = flaky(monkeypatch, fake, "refund", ["lost"])
    request = RefundRequest(
        refund_id=uuid.uuid4(),
        idempotency_key="refund-control",
        provider_payment_id=next(iter(fake.payments)),
        amount=Money(400, "EUR"),
    )
    with pytest.raises(Exception, match="read timed out"):
        await fake.refund(request)
    await fake.refund(request)
    assert len(keys) == 2
    assert _fake_refunds(fake) == [400, 400]
    assert paid["session"]["payment_id"] is not None


async def test_a_checkout_retried_without_idempotency_keys_is_created_once(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    harness.fake.idempotency_keys = False
    keys = flaky(monkeypatch, harness.fake, "create_checkout", ["lost"])
    paid = await harness.pay_one_off(amount=700)
    assert paid["session"]["status"] == "complete"
    assert len(keys) == 1
    assert len(harness.fake.checkout_sessions) == 1


async def test_usage_retried_without_idempotency_keys_is_recorded_once(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = await create_plan(harness, pricing_model="metered", unit_amount=5)
    subscription = await subscribe(harness, plan["id"])
    harness.fake.idempotency_keys = False
    keys = flaky(monkeypatch, harness.fake, "report_usage", ["lost"])

    reported = await harness.client.post(
        f"/billing/subscriptions/{subscription['id']}/usage",
        json={"quantity": 7, "idempotency_key": "usage-1"},
        headers=harness.auth(),
    )

    assert reported.status_code == 201, reported.text
    assert len(keys) == 1
    [fake_subscription] = harness.fake.subscriptions.values()
    assert [usage.quantity for usage in fake_subscription.usage.values()] == [7]


# ---------------------------------------------------------------------- refunds made at the provider


async def test_a_refund_reported_only_as_refunded_amount_is_recorded_with_its_trail(harness: Harness) -> None:
    paid = await harness.pay_one_off(amount=1000)
    payment_id = paid["session"]["payment_id"]
    fake = harness.fake
    fake.auto_deliver = False
    [provider_payment_id] = fake.payments
    # Refunded in the provider's dashboard: the library never asked for it.
    await fake.refund(
        RefundRequest(
            refund_id=uuid.uuid4(),
            idempotency_key="dashboard-1",
            provider_payment_id=provider_payment_id,
            amount=Money(300, "EUR"),
        )
    )
    refund_event = fake.sent_events[-1]
    body = json.dumps(
        {
            "id": "evt_fake_dashboard_refund",
            "type": "payment.succeeded",
            "created": int(fake.now().timestamp()) + 1,
            "data": {"object": fake.payments[provider_payment_id].to_object()},
        },
        separators=(",", ":"),
    ).encode()

    delivered = await harness.client.post("/billing/webhooks/fake", content=body, headers=fake.sign(body))

    assert delivered.status_code == 200, delivered.text
    payment = (await harness.client.get(f"/billing/payments/{payment_id}", headers=harness.auth())).json()
    assert (payment["refunded_amount"], payment["status"]) == (300, "partially_refunded")
    refunds = await _refunds(harness)
    assert [(r.amount, r.status.value, r.provider_refund_id) for r in refunds] == [(300, "succeeded", None)]
    [(before, after, reason)] = await _status_changes(harness, "refund")
    assert (before, after) == (None, "succeeded")
    assert reason is not None
    assert "refunded_amount 300" in reason

    # The provider's own refund event arrives later: it names the same refund, not another one.
    late = await harness.client.post(
        "/billing/webhooks/fake", content=refund_event[1], headers=refund_event[0]
    )
    assert late.status_code == 200, late.text
    refunds = await _refunds(harness)
    assert [(r.amount, r.provider_refund_id) for r in refunds] == [(300, next(iter(fake.refunds)))]
    payment = (await harness.client.get(f"/billing/payments/{payment_id}", headers=harness.auth())).json()
    assert payment["refunded_amount"] == 300


async def _refunds(harness: Harness) -> list[Refund]:
    async with harness.payments.service() as svc:
        return list((await svc.session.scalars(sa.select(Refund).order_by(Refund.created_at))).all())


# ---------------------------------------------------------------------- customers without ids


async def test_a_provider_without_customer_objects_stores_no_account(harness: Harness) -> None:
    manual = harness.payments.providers["manual"]
    async with harness.payments.service() as svc:
        customer = await svc.customers.get_or_create("carol", email="carol@example.com")
        assert await manual.create_customer(svc.customers.reference(customer), idempotency_key="k") is None
        assert await svc.customers.provider_customer_id(customer, manual) is None
        accounts = await svc.session.scalars(
            sa.select(CustomerAccount).where(CustomerAccount.customer_id == customer.id)
        )
        assert accounts.all() == []


async def test_the_manual_provider_receives_no_webhooks(harness: Harness) -> None:
    # Asked again after a provider that does receive them was looked up: the inbox remembers
    # receivers, never refusals.
    for _ in range(2):
        response = await harness.client.post("/billing/webhooks/manual", content=b"{}")
        assert response.status_code == 404
        assert response.json()["details"] == {"provider": "manual"}
        assert harness.payments.inbox.provider("fake") is harness.fake


# ---------------------------------------------------------------------- adapters are checked at start-up


class _NoRefunds:
    name = "broken"
    capabilities = frozenset({Capability.REFUNDS})
    idempotency_keys = True
    proration_behaviors: frozenset[ProrationBehavior] = frozenset()

    async def create_customer(self, customer: CustomerRef, *, idempotency_key: str) -> str | None:
        return None


class _KeylessWithoutLookup(_NoRefunds):
    capabilities: frozenset[Capability] = frozenset()
    idempotency_keys = False


@pytest.mark.parametrize(
    ("adapter", "message"),
    [
        (_NoRefunds(), "refunds needs the methods of RefundProvider"),
        (_KeylessWithoutLookup(), "without idempotency keys needs ObjectLookup.lookup"),
    ],
)
def test_an_adapter_missing_a_part_it_declares_is_refused_at_start(
    database_url: str, adapter: object, message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        PaymentsRouter(settings_for(database_url), providers=[adapter])  # type: ignore[list-item]


# ---------------------------------------------------------------------- checkout completion, once


class CapturingFake(FakeProvider):
    """The fake with a completion step, as PayPal's capture, and a return route of its own."""

    capabilities = frozenset(Capability)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.completions: list[tuple[str, str]] = []

    async def complete_checkout(self, provider_session_id: str, *, idempotency_key: str) -> CheckoutSnapshot:
        self.completions.append((provider_session_id, idempotency_key))
        await anyio.sleep(0.01)  # let a racing path arrive while this one is at the provider
        return CheckoutSnapshot(
            provider_session_id=provider_session_id, status=CheckoutSessionStatus.COMPLETE
        )

    def routes(self, host: ProviderHost) -> APIRouter:
        router = super().routes(host)

        @router.post("/return/{session_id}", name="payments:capturing_return")
        async def payer_returns(session_id: uuid.UUID) -> dict[str, str]:
            await host.complete_checkout(session_id)
            return {"completed": str(session_id)}

        return router


@pytest.fixture
async def capturing(engine: Any, database_url: str) -> AsyncIterator[Harness]:
    settings = settings_for(database_url, database={"url": database_url, "create_tables": False}, fake=None)
    payments = PaymentsRouter(settings, providers=[CapturingFake(webhook_secret=WEBHOOK_SECRET)])
    app = FastAPI()
    app.include_router(payments, prefix="/billing")
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield Harness(app=app, payments=payments, client=client, settings=settings)


async def test_the_completion_step_runs_once_whichever_path_arrives_first(capturing: Harness) -> None:
    fake = capturing.payments.providers["fake"]
    assert isinstance(fake, CapturingFake)
    created = await capturing.client.post(
        "/billing/checkout-sessions",
        json={
            "amount": 1200,
            "currency": "EUR",
            "success_url": "https://shop.example/ok",
            "cancel_url": "https://shop.example/cancel",
        },
        headers=capturing.auth(),
    )
    assert created.status_code == 201, created.text
    session_id = created.json()["id"]
    [provider_session] = fake.checkout_sessions.values()
    approved = json.dumps(
        {
            "id": "evt_fake_approved_1",
            "type": "checkout.approved",
            "created": int(fake.now().timestamp()),
            "data": {"object": provider_session.to_object()},
        },
        separators=(",", ":"),
    ).encode()
    answers: list[httpx.Response] = []

    async def payer_returns() -> None:
        answers.append(await capturing.client.post(f"/billing/fake/return/{session_id}"))

    async def webhook_arrives() -> None:
        answers.append(
            await capturing.client.post(
                "/billing/webhooks/fake", content=approved, headers=fake.sign(approved)
            )
        )

    async with anyio.create_task_group() as group:
        group.start_soon(payer_returns)
        group.start_soon(webhook_arrives)
    assert [answer.status_code for answer in answers] == [200, 200], [a.text for a in answers]

    again = await capturing.client.post(f"/billing/fake/return/{session_id}")
    assert again.status_code == 200
    assert fake.completions == [(provider_session.id, f"checkout-complete-{session_id}")]
    async with capturing.payments.service() as svc:
        row = await svc.session.get(CheckoutSession, uuid.UUID(session_id))
        assert row is not None
        assert row.completion_started_at is not None


async def test_the_completion_step_is_refused_for_a_provider_without_it(harness: Harness) -> None:
    created = await harness.client.post(
        "/billing/checkout-sessions",
        json={
            "amount": 500,
            "currency": "EUR",
            "success_url": "https://shop.example/ok",
            "cancel_url": "https://shop.example/cancel",
        },
        headers=harness.auth(),
    )
    async with harness.payments.service() as svc:
        from fastapi_cashier.errors import UnsupportedCapabilityError

        with pytest.raises(UnsupportedCapabilityError):
            await svc.checkout.complete(uuid.UUID(created.json()["id"]))
        customers = (await svc.session.scalars(sa.select(Customer))).all()
        assert len(customers) == 1
