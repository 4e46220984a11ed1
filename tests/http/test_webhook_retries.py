"""Stored events that failed or were never applied: backoff, claiming, the loop, admins, replays."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from typing import Any

import anyio
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from sqlalchemy.exc import OperationalError

from fastapi_cashier import PaymentsRouter
from fastapi_cashier.billing.events import EventApplier
from fastapi_cashier.db.base import utcnow
from fastapi_cashier.db.models import CheckoutSession, Payment, StatusChange, WebhookEvent
from fastapi_cashier.providers.base import ProviderEvent
from fastapi_cashier.providers.fake import FakeProvider

from .conftest import Harness, settings_for

pytestmark = pytest.mark.anyio

Delivery = tuple[dict[str, str], bytes]


async def _one_off_events(harness: Harness, count: int = 1) -> list[Delivery]:
    """The signed events of ``count`` paid one-off checkouts, not delivered yet."""
    harness.fake.auto_deliver = False
    for _ in range(count):
        await harness.pay_one_off()
    events = list(harness.fake.sent_events)
    harness.fake.sent_events.clear()
    assert len(events) == 2 * count
    return events


async def _rows(harness: Harness) -> list[WebhookEvent]:
    async with harness.payments.session_factory() as session:
        stmt = sa.select(WebhookEvent).order_by(WebhookEvent.received_at, WebhookEvent.id)
        return list((await session.scalars(stmt)).all())


async def _make_due(harness: Harness) -> None:
    """Move every scheduled attempt into the past (the clock of the inbox is the real one)."""
    async with harness.payments.session_factory() as session:
        await session.execute(
            sa.update(WebhookEvent)
            .where(WebhookEvent.next_attempt_at.is_not(None))
            .values(next_attempt_at=utcnow() - timedelta(seconds=1))
        )
        await session.commit()


async def _status_changes(harness: Harness) -> list[tuple[str, str | None, str]]:
    async with harness.payments.session_factory() as session:
        rows = (await session.scalars(sa.select(StatusChange))).all()
    changes = [(row.entity_type, row.from_status, row.to_status) for row in rows]
    return sorted(changes, key=lambda change: (change[0], change[1] or "", change[2]))


async def _payment_statuses(harness: Harness, subject: str = "alice") -> list[str]:
    listed = await harness.client.get("/billing/payments", headers=harness.auth(subject))
    return [payment["status"] for payment in listed.json()["items"]]


@pytest.fixture
def broken_apply(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Make applying fail after it has changed rows; the list collects the failed event ids.

    Clearing the list's ``"on"`` marker lets applies through again.
    """
    original = EventApplier.apply
    failed: list[str] = ["on"]

    async def apply(self: EventApplier, event: ProviderEvent, *located: Any) -> Any:
        outcome = await original(self, event, *located)
        if "on" in failed:
            failed.append(event.id)
            raise RuntimeError(f"injected failure after applying {event.id}")
        return outcome

    monkeypatch.setattr(EventApplier, "apply", apply)
    return failed


async def _deliver(harness: Harness, delivery: Delivery) -> dict[str, Any]:
    headers, body = delivery
    response = await harness.client.post("/billing/webhooks/fake", content=body, headers=headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def test_a_failure_mid_apply_leaves_nothing_and_the_retry_applies_it_once(
    harness: Harness, broken_apply: list[str]
) -> None:
    payment_event, checkout_event = await _one_off_events(harness)
    before = await _status_changes(harness)
    assert (await _deliver(harness, payment_event))["status"] == "failed"
    # The apply had changed the payment before failing: all of it was rolled back.
    assert await _status_changes(harness) == before
    assert await _payment_statuses(harness) == []
    (row,) = await _rows(harness)
    assert (row.status.value, row.attempts) == ("failed", 1)
    assert "injected failure" in (row.last_error or "")
    assert row.next_attempt_at is not None
    delay = (row.next_attempt_at - utcnow()).total_seconds()
    interval = harness.settings.webhooks.retry_interval_seconds
    assert interval - 5 < delay <= interval

    assert await harness.payments.inbox.process_due() == []  # not due yet
    broken_apply.clear()
    await _make_due(harness)
    (result,) = await harness.payments.inbox.process_due()
    assert (result.status, result.id) == ("processed", row.id)
    assert await harness.payments.inbox.process_due() == []
    assert await _payment_statuses(harness) == ["succeeded"]
    (row,) = await _rows(harness)
    assert (row.status.value, row.attempts, row.next_attempt_at) == ("processed", 2, None)
    assert row.last_error is None
    payment_changes = [change for change in await _status_changes(harness) if change[0] == "payment"]
    assert payment_changes == [("payment", None, "pending"), ("payment", "pending", "succeeded")]
    assert (await _deliver(harness, payment_event))["status"] == "duplicate"
    assert (await _deliver(harness, checkout_event))["status"] in ("processed", "ignored")


async def test_an_apply_whose_writes_break_a_constraint_is_stored_failed_with_nothing_applied(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database refuses the apply's rows at the end of the apply (its flush): the transaction
    is rolled back whole, and the event is still stored and committed as ``failed``."""
    payment_event, _ = await _one_off_events(harness)
    before = await _status_changes(harness)
    original = EventApplier.apply

    async def overdraws(self: EventApplier, event: ProviderEvent, *located: Any) -> Any:
        outcome = await original(self, event, *located)
        payment = (await self.session.scalars(sa.select(Payment))).one()
        payment.refunded_amount = payment.amount + 1  # refunded_amount <= amount is a CHECK
        return outcome

    monkeypatch.setattr(EventApplier, "apply", overdraws)
    assert (await _deliver(harness, payment_event))["status"] == "failed"
    (row,) = await _rows(harness)
    assert (row.status.value, row.attempts) == ("failed", 1)
    assert "refunded_amount" in (row.last_error or "") or "constraint" in (row.last_error or "").lower()
    assert await _status_changes(harness) == before
    assert await _payment_statuses(harness) == []

    monkeypatch.setattr(EventApplier, "apply", original)
    await _make_due(harness)
    (result,) = await harness.payments.inbox.process_due()
    assert (result.status, result.id) == ("processed", row.id)
    assert await _payment_statuses(harness) == ["succeeded"]


async def test_a_deadlock_in_the_one_transaction_apply_is_rolled_back_whole_and_run_again(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """InnoDB rolls a deadlock victim back whole, the stored event with it: the delivery is then
    stored and applied in two steps, and the event is applied once, at its first counted attempt."""
    payment_event, _ = await _one_off_events(harness)
    original = EventApplier.apply
    calls: list[str] = []

    async def deadlocks_once(self: EventApplier, event: ProviderEvent, *located: Any) -> Any:
        calls.append(event.id)
        outcome = await original(self, event, *located)
        if len(calls) == 1:
            deadlock = Exception(1213, "Deadlock found when trying to get lock; try restarting transaction")
            raise OperationalError("UPDATE cashier_payments ...", {}, deadlock)
        return outcome

    monkeypatch.setattr(EventApplier, "apply", deadlocks_once)
    assert (await _deliver(harness, payment_event))["status"] == "processed"
    assert len(calls) == 2
    (row,) = await _rows(harness)
    assert (row.status.value, row.attempts, row.last_error, row.next_attempt_at) == (
        "processed",
        1,
        None,
        None,
    )
    assert await _payment_statuses(harness) == ["succeeded"]
    payment_changes = [change for change in await _status_changes(harness) if change[0] == "payment"]
    assert payment_changes == [("payment", None, "pending"), ("payment", "pending", "succeeded")]
    assert (await _deliver(harness, payment_event))["status"] == "duplicate"


async def test_backoff_doubles_and_stops_after_max_attempts_for_an_admin_to_retry(
    engine: Any, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings_for(
        database_url,
        database={"url": database_url, "create_tables": False},
        webhooks={"retry_loop": False, "retry_interval_seconds": 10, "max_attempts": 3},
    )
    async with _harness(settings) as harness:
        original = EventApplier.apply
        broken = True

        async def apply(self: EventApplier, event: ProviderEvent, *located: Any) -> Any:
            if broken:
                raise RuntimeError("the ledger is read-only")
            return await original(self, event, *located)

        monkeypatch.setattr(EventApplier, "apply", apply)
        payment_event, _ = await _one_off_events(harness)
        await _deliver(harness, payment_event)
        delays = []
        for _ in range(2):
            (row,) = await _rows(harness)
            assert row.next_attempt_at is not None
            delays.append(round((row.next_attempt_at - utcnow()).total_seconds()))
            await _make_due(harness)
            (result,) = await harness.payments.inbox.process_due()
            assert result.status == "failed"
        (row,) = await _rows(harness)
        assert delays == [10, 20]
        assert (row.status.value, row.attempts, row.next_attempt_at) == ("failed", 3, None)
        await _make_due(harness)
        assert await harness.payments.inbox.process_due() == []  # given up: only an admin retries now

        admin = harness.auth("ops", admin=True)
        listed = await harness.client.get("/billing/admin/webhook-events?status=failed", headers=admin)
        assert listed.status_code == 200
        (item,) = listed.json()["items"]
        assert (item["id"], item["attempts"], item["next_attempt_at"]) == (str(row.id), 3, None)
        assert "the ledger is read-only" in item["last_error"]

        again = await harness.client.post(f"/billing/admin/webhook-events/{row.id}/retry", headers=admin)
        assert again.status_code == 200
        assert again.json()["outcome"] == "failed"
        assert again.json()["event"]["attempts"] == 4

        broken = False
        fixed = await harness.client.post(f"/billing/admin/webhook-events/{row.id}/retry", headers=admin)
        assert fixed.status_code == 200, fixed.text
        assert (fixed.json()["outcome"], fixed.json()["event"]["status"]) == ("processed", "processed")
        assert await _payment_statuses(harness) == ["succeeded"]
        done = await harness.client.post(f"/billing/admin/webhook-events/{row.id}/retry", headers=admin)
        assert done.status_code == 409
        assert done.headers["content-type"].startswith("application/problem+json")


async def test_a_delivery_whose_process_died_mid_apply_leaves_nothing_and_its_redelivery_applies_it_once(
    engine: Any, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A new event is stored and applied in one transaction: dying before its commit stores
    nothing and answers nothing, so the provider delivers it again, and that delivery applies it."""
    settings = settings_for(
        database_url,
        database={"url": database_url, "create_tables": False},
        webhooks={"retry_loop": False},
    )
    async with _harness(settings) as harness:
        payment_event, _ = await _one_off_events(harness)
        before = await _status_changes(harness)
        original = EventApplier.apply

        async def dies(self: EventApplier, event: ProviderEvent, *located: Any) -> Any:
            await original(self, event, *located)
            await self.session.flush()  # the rows are written, the transaction is open
            raise SystemExit("killed while applying")  # not an Exception: nothing records it

        monkeypatch.setattr(EventApplier, "apply", dies)
        headers, body = payment_event
        with pytest.raises(SystemExit):
            await harness.payments.inbox.receive("fake", headers, body)
        monkeypatch.setattr(EventApplier, "apply", original)
        assert await _rows(harness) == []
        assert await _status_changes(harness) == before
        assert await _payment_statuses(harness) == []

    # "Restart", and the provider's redelivery of the unanswered event.
    async with _harness(settings) as harness:
        assert (await _deliver(harness, payment_event))["status"] == "processed"
        assert (await _deliver(harness, payment_event))["status"] == "duplicate"
        assert await _payment_statuses(harness) == ["succeeded"]
        (row,) = await _rows(harness)
        assert (row.status.value, row.attempts, row.next_attempt_at) == ("processed", 1, None)
        payment_changes = [change for change in await _status_changes(harness) if change[0] == "payment"]
        assert payment_changes == [("payment", None, "pending"), ("payment", "pending", "succeeded")]


async def test_an_event_that_needs_a_re_read_is_stored_first_and_applied_once_after_a_restart(
    engine: Any, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An event whose apply re-reads the object from the provider is committed before that call
    (no row lock across the network), with a lease: a process dying mid-apply leaves it pending,
    and the retry loop of the next process applies it once the lease has run out."""
    settings = settings_for(
        database_url,
        database={"url": database_url, "create_tables": False},
        webhooks={"retry_loop": False, "retry_interval_seconds": 1, "poll_interval_seconds": 0.05},
    )
    original_verify = FakeProvider.verify_webhook
    fetched: list[str] = []

    async def verify_asking_for_a_re_read(self: FakeProvider, headers: Any, body: bytes) -> ProviderEvent:
        return replace(await original_verify(self, headers, body), refetch=True)

    original_fetch = FakeProvider.fetch

    async def counted_fetch(self: FakeProvider, object_kind: Any, provider_id: str) -> Any:
        fetched.append(provider_id)
        return await original_fetch(self, object_kind, provider_id)

    monkeypatch.setattr(FakeProvider, "verify_webhook", verify_asking_for_a_re_read)
    monkeypatch.setattr(FakeProvider, "fetch", counted_fetch)
    async with _harness(settings) as harness:
        payment_event, _ = await _one_off_events(harness)
        original = EventApplier.apply

        async def dies(self: EventApplier, event: ProviderEvent, *located: Any) -> Any:
            await original(self, event, *located)
            raise SystemExit("killed while applying")  # not an Exception: nothing records it

        monkeypatch.setattr(EventApplier, "apply", dies)
        headers, body = payment_event
        with pytest.raises(SystemExit):
            await harness.payments.inbox.receive("fake", headers, body)
        monkeypatch.setattr(EventApplier, "apply", original)
        assert len(fetched) == 1
        (row,) = await _rows(harness)
        assert (row.status.value, row.attempts) == ("pending", 0)
        assert row.next_attempt_at is not None  # the lease of the attempt that died
        assert await _payment_statuses(harness) == []

    # "Restart": a new app whose lifespan runs the retry loop picks the event up once the
    # lease of the dead attempt has run out. (Its retry parses the stored body, which asks for
    # no re-read: the restarted in-process fake has forgotten the payment.)
    restarted = settings.model_copy(
        update={"webhooks": settings.webhooks.model_copy(update={"retry_loop": True})}
    )
    async with _harness(restarted) as harness:
        with anyio.fail_after(10):
            while (await _rows(harness))[0].status.value != "processed":  # noqa: ASYNC110 - polls the database
                await anyio.sleep(0.05)
        assert await _payment_statuses(harness) == ["succeeded"]
        (row,) = await _rows(harness)
        assert row.attempts == 1
        payment_changes = [change for change in await _status_changes(harness) if change[0] == "payment"]
        assert payment_changes == [("payment", None, "pending"), ("payment", "pending", "succeeded")]


async def test_concurrent_claimers_apply_every_due_event_exactly_once(
    harness: Harness, broken_apply: list[str]
) -> None:
    events = await _one_off_events(harness, count=6)
    for delivery in events:
        assert (await _deliver(harness, delivery))["status"] == "failed"
    broken_apply.clear()
    await _make_due(harness)
    results: list[Any] = []

    async def claimer() -> None:
        results.extend(await harness.payments.inbox.process_due(limit=100))

    async with anyio.create_task_group() as group:
        for _ in range(4):
            group.start_soon(claimer)
    assert len(results) == len(events)
    assert len({result.id for result in results}) == len(events)
    assert {result.status for result in results} <= {"processed", "ignored", "duplicate"}
    assert await _payment_statuses(harness) == ["succeeded"] * 6
    changes = await _status_changes(harness)
    assert changes.count(("payment", "pending", "succeeded")) == 6
    assert {row.status.value for row in await _rows(harness)} <= {"processed", "ignored"}


async def test_hooks_run_once_per_change_and_a_failing_hook_loses_nothing(harness: Harness) -> None:
    seen: list[str] = []

    @harness.payments.on("payment.succeeded")
    async def record(event: Any) -> None:
        seen.append(event.entity_id)

    @harness.payments.on("payment.succeeded")
    async def explode(event: Any) -> None:
        raise RuntimeError("the host's mailer is down")

    payment_event, checkout_event = await _one_off_events(harness)
    for delivery in (payment_event, payment_event, checkout_event, payment_event):
        await _deliver(harness, delivery)
    assert len(seen) == 1
    assert await _payment_statuses(harness) == ["succeeded"]
    assert {row.status.value for row in await _rows(harness)} <= {"processed", "ignored"}

    replayed = await harness.payments.inbox.replay(since=utcnow() - timedelta(hours=1))
    assert len(replayed) == 2
    assert len(seen) == 1  # nothing changed, so nothing to tell the host
    first, _ = await _rows(harness)
    assert first.status.value == "processed"


async def test_replay_is_safe_on_applied_events_and_refuses_naive_times(harness: Harness) -> None:
    from fastapi_cashier.errors import ValidationError

    for delivery in await _one_off_events(harness, count=2):
        await _deliver(harness, delivery)
    before = (await _rows(harness), await _status_changes(harness))
    progress: list[int] = []
    results = await harness.payments.inbox.replay(
        since=utcnow() - timedelta(minutes=5), provider="fake", on_progress=progress.append
    )
    assert progress == [1, 2, 3, 4]
    assert {result.status for result in results} <= {"ignored", "processed"}
    after = (await _rows(harness), await _status_changes(harness))
    assert [row.status for row in after[0]] == [row.status for row in before[0]]
    assert after[1] == before[1]
    assert await harness.payments.inbox.replay(since=utcnow() + timedelta(minutes=1)) == []
    assert await harness.payments.inbox.replay(since=utcnow(), provider="nope") == []
    with pytest.raises(ValidationError):
        await harness.payments.inbox.replay(since=utcnow().replace(tzinfo=None))


async def test_admin_webhook_listing_filters_pages_and_needs_the_admin_role(harness: Harness) -> None:
    for delivery in await _one_off_events(harness, count=3):
        await _deliver(harness, delivery)
    admin = harness.auth("ops", admin=True)
    everything = await harness.client.get("/billing/admin/webhook-events?limit=100", headers=admin)
    assert everything.status_code == 200
    items = everything.json()["items"]
    assert len(items) == 6
    assert [item["received_at"] for item in items] == sorted(
        (item["received_at"] for item in items), reverse=True
    )
    by_type = await harness.client.get("/billing/admin/webhook-events?type=payment.succeeded", headers=admin)
    assert {item["type"] for item in by_type.json()["items"]} == {"payment.succeeded"}
    assert len(by_type.json()["items"]) == 3
    none = await harness.client.get("/billing/admin/webhook-events?provider=stripe", headers=admin)
    assert none.json() == {"items": [], "next_cursor": None}
    failed = await harness.client.get("/billing/admin/webhook-events?status=failed", headers=admin)
    assert failed.json()["items"] == []

    pages: list[str] = []
    cursor = None
    while True:
        query = "limit=4" + (f"&cursor={cursor}" if cursor else "")
        page = (await harness.client.get(f"/billing/admin/webhook-events?{query}", headers=admin)).json()
        pages.extend(item["id"] for item in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == [item["id"] for item in items]

    one = await harness.client.get(f"/billing/admin/webhook-events/{items[0]['id']}", headers=admin)
    assert one.json() == items[0]
    assert json.loads(json.dumps(one.json()))["status"] in ("processed", "ignored")

    customer = harness.auth("alice")
    assert (await harness.client.get("/billing/admin/webhook-events", headers=customer)).status_code == 403
    retry = f"/billing/admin/webhook-events/{items[0]['id']}/retry"
    assert (await harness.client.post(retry, headers=customer)).status_code == 403
    unknown = "/billing/admin/webhook-events/00000000-0000-0000-0000-000000000000/retry"
    missing = await harness.client.post(unknown, headers=admin)
    assert missing.status_code == 404
    assert missing.json()["code"] == "not_found"
    bad = await harness.client.get("/billing/admin/webhook-events?status=lost", headers=admin)
    assert bad.status_code == 422


async def test_a_rotated_fake_secret_is_accepted_while_listed(engine: Any, database_url: str) -> None:
    from fastapi_cashier.providers.fake import FakeProvider

    settings = settings_for(
        database_url,
        database={"url": database_url, "create_tables": False},
        fake={"webhook_secret": "whsec_new_secret", "previous_webhook_secrets": "whsec_old_one,whsec_older"},
    )
    async with _harness(settings) as harness:
        payment_event, _ = await _one_off_events(harness)
        _, body = payment_event
        for secret, expected in (("whsec_older", 200), ("whsec_new_secret", 200), ("whsec_gone", 400)):
            headers = FakeProvider(webhook_secret=secret).sign(body)
            response = await harness.client.post("/billing/webhooks/fake", content=body, headers=headers)
            assert response.status_code == expected, (secret, response.text)


# --------------------------------------------------------------------------- helpers


class _harness:
    """A Harness for given settings, as an async context manager."""

    def __init__(self, settings: Any) -> None:
        self.settings = settings

    async def __aenter__(self) -> Harness:
        import contextlib

        import httpx

        self._stack = contextlib.AsyncExitStack()
        payments = PaymentsRouter(self.settings)
        app = FastAPI()
        app.include_router(payments, prefix="/billing")
        await self._stack.enter_async_context(app.router.lifespan_context(app))
        client = await self._stack.enter_async_context(
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")
        )
        return Harness(app=app, payments=payments, client=client, settings=self.settings)

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()


async def test_racing_events_for_one_new_payment_create_one_row_linked_to_its_intent(
    harness: Harness,
) -> None:
    payment_event, checkout_event = await _one_off_events(harness)
    statuses: list[str] = []

    async def deliver(delivery: Delivery) -> None:
        statuses.append((await _deliver(harness, delivery))["status"])

    async with anyio.create_task_group() as group:
        for _ in range(10):
            group.start_soon(deliver, checkout_event)
            group.start_soon(deliver, payment_event)
    assert statuses.count("duplicate") == 18
    payments = (await harness.client.get("/billing/payments", headers=harness.auth())).json()["items"]
    assert [payment["status"] for payment in payments] == ["succeeded"]
    async with harness.payments.session_factory() as session:
        rows = (await session.scalars(sa.select(CheckoutSession))).all()
    assert [(row.status.value, str(row.payment_id)) for row in rows] == [("complete", payments[0]["id"])]


async def test_refetch_events_apply_what_the_provider_reports_now(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dataclasses import replace

    from fastapi_cashier.errors import ProviderConnectionError
    from fastapi_cashier.providers.base import PaymentSnapshot
    from fastapi_cashier.statuses import PaymentStatus

    payment_event, _ = await _one_off_events(harness)
    fake = harness.fake
    verify, parse, fetch = fake.verify_webhook, fake.parse_webhook, fake.fetch

    def stale(event: ProviderEvent) -> ProviderEvent:
        # A payload that no longer tells the truth: only the re-read state may be applied.
        assert isinstance(event.snapshot, PaymentSnapshot)
        return replace(event, refetch=True, snapshot=replace(event.snapshot, status=PaymentStatus.FAILED))

    async def stale_verified(headers: Any, body: bytes) -> ProviderEvent:
        return stale(await verify(headers, body))

    async def stale_parsed(body: bytes) -> ProviderEvent:
        return stale(await parse(body))

    monkeypatch.setattr(fake, "verify_webhook", stale_verified)
    monkeypatch.setattr(fake, "parse_webhook", stale_parsed)
    fetched: list[str] = []

    async def flaky_fetch(kind: Any, provider_id: str) -> Any:
        fetched.append(kind)
        if len(fetched) == 1:
            raise ProviderConnectionError("connection reset", provider="fake")
        return await fetch(kind, provider_id)

    monkeypatch.setattr(fake, "fetch", flaky_fetch)
    assert (await _deliver(harness, payment_event))["status"] == "failed"
    (row,) = await _rows(harness)
    assert "connection reset" in (row.last_error or "")
    assert await _payment_statuses(harness) == []
    await _make_due(harness)
    (result,) = await harness.payments.inbox.process_due()
    assert result.status == "processed"
    assert fetched == ["payment", "payment"]
    assert await _payment_statuses(harness) == ["succeeded"]


async def _subscription_checkout_events(harness: Harness) -> list[tuple[str, Delivery]]:
    """The signed events of a paid subscription checkout, not delivered yet, with their types."""
    from .test_subscriptions import URLS, create_plan

    plan = await create_plan(harness)
    harness.fake.auto_deliver = False
    created = await harness.client.post(
        "/billing/checkout-sessions", json={"plan_id": plan["id"], **URLS}, headers=harness.auth()
    )
    assert created.status_code == 201, created.text
    provider_session_id = created.json()["url"].rsplit("/", 1)[1]
    paid = await harness.client.post(
        f"/billing/fake/checkout/{provider_session_id}", data={"outcome": "succeeded"}
    )
    assert paid.status_code == 303
    events = list(harness.fake.sent_events)
    harness.fake.sent_events.clear()
    return [(json.loads(body)["type"], (headers, body)) for headers, body in events]


async def test_a_first_invoice_that_overtakes_its_subscription_waits_for_it(harness: Harness) -> None:
    events = await _subscription_checkout_events(harness)
    types = [event_type for event_type, _ in events]
    assert "invoice.paid" in types, types
    # The invoice arrives first: the subscription it names is not recorded yet.
    overtaking = sorted(events, key=lambda event: event[0] != "invoice.paid")
    answers = [(kind, (await _deliver(harness, delivery))["status"]) for kind, delivery in overtaking]
    assert answers[0] == ("invoice.paid", "failed")
    assert {status for _, status in answers[1:]} == {"processed"}, answers
    (waiting,) = [row for row in await _rows(harness) if row.status.value == "failed"]
    assert "not recorded here yet" in (waiting.last_error or "")
    assert waiting.attempts == 1
    assert waiting.next_attempt_at is not None
    listed = await harness.client.get("/billing/invoices", headers=harness.auth())
    assert listed.json()["items"] == []

    await _make_due(harness)
    (retried,) = await harness.payments.inbox.process_due()
    assert (retried.event_id, retried.status) == (waiting.event_id, "processed")
    subscriptions = await harness.client.get("/billing/subscriptions", headers=harness.auth())
    (subscription,) = subscriptions.json()["items"]
    listed = await harness.client.get("/billing/invoices", headers=harness.auth())
    assert [(i["status"], i["total"], i["subscription_id"]) for i in listed.json()["items"]] == [
        ("paid", 1000, subscription["id"])
    ]
    assert {row.status.value for row in await _rows(harness)} == {"processed"}


async def test_an_orphan_event_older_than_the_window_is_recorded_without_waiting(
    engine: Any, database_url: str
) -> None:
    settings = settings_for(database_url, webhooks={"retry_loop": False, "orphan_retry_seconds": 0})
    async with _harness(settings) as harness:
        events = dict(await _subscription_checkout_events(harness))
        result = await _deliver(harness, events["invoice.paid"])
        # No time to wait: the invoice is kept for its customer, without its subscription.
        assert result["status"] == "processed"
        (row,) = await _rows(harness)
        assert row.next_attempt_at is None
        listed = await harness.client.get("/billing/invoices", headers=harness.auth())
        assert [(i["total"], i["subscription_id"]) for i in listed.json()["items"]] == [(1000, None)]


async def test_a_payment_first_reported_refunded_is_recorded_as_succeeded(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dataclasses import replace

    from fastapi_cashier.providers.base import PaymentSnapshot
    from fastapi_cashier.statuses import PaymentStatus

    payment_event, checkout_event = await _one_off_events(harness)
    fake = harness.fake
    verify = fake.verify_webhook

    async def refunded(headers: Any, body: bytes) -> ProviderEvent:
        # The success event is late; the payment is re-read after a refund was made.
        event = await verify(headers, body)
        if not isinstance(event.snapshot, PaymentSnapshot):
            return event
        return replace(event, snapshot=replace(event.snapshot, status=PaymentStatus.REFUNDED))

    monkeypatch.setattr(fake, "verify_webhook", refunded)
    assert (await _deliver(harness, payment_event))["status"] == "processed"
    assert await _payment_statuses(harness) == ["succeeded"]
    assert ("payment", "pending", "succeeded") in await _status_changes(harness)
    assert (await _deliver(harness, checkout_event))["status"] == "processed"
    assert await _payment_statuses(harness) == ["succeeded"]


async def test_a_paid_invoice_records_the_payment_whose_own_event_never_came(harness: Harness) -> None:
    events = await _subscription_checkout_events(harness)
    for kind, delivery in events:
        if kind != "payment.succeeded":
            assert (await _deliver(harness, delivery))["status"] == "processed", kind
    listed = (await harness.client.get("/billing/payments", headers=harness.auth())).json()["items"]
    assert [(p["status"], p["amount"], p["currency"]) for p in listed] == [("succeeded", 1000, "EUR")]
    (invoice,) = (await harness.client.get("/billing/invoices", headers=harness.auth())).json()["items"]
    assert invoice["status"] == "paid"
    async with harness.payments.session_factory() as session:
        reasons = (
            await session.scalars(sa.select(StatusChange.reason).where(StatusChange.entity_type == "payment"))
        ).all()
    assert any((reason or "").startswith("recorded from its paid invoice ") for reason in reasons), reasons
    # The payment's own event, late, finds that row: still one payment.
    (payment_event,) = [delivery for kind, delivery in events if kind == "payment.succeeded"]
    await _deliver(harness, payment_event)
    again = (await harness.client.get("/billing/payments", headers=harness.auth())).json()["items"]
    assert [(p["id"], p["status"]) for p in again] == [(listed[0]["id"], "succeeded")]
