"""One request, one unit of work: the transactions and connections a request costs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
import pytest
import sqlalchemy as sa
from fastapi import Depends

from fastapi_cashier import PaymentsRouter
from fastapi_cashier.billing.events import EventApplier
from fastapi_cashier.billing.service import PaymentsService
from fastapi_cashier.db.models import Customer, Payment, WebhookEvent
from fastapi_cashier.errors import ValidationError
from fastapi_cashier.providers.base import ProviderEvent

from .conftest import Harness

pytestmark = pytest.mark.anyio


@dataclass
class Traffic:
    """What the engine saw: transactions begun, commits, rollbacks and every statement sent."""

    begins: int = 0
    commits: int = 0
    rollbacks: int = 0
    statements: list[str] = field(default_factory=list)


@contextmanager
def traffic(payments: PaymentsRouter) -> Iterator[Traffic]:
    seen = Traffic()
    engine = payments.engine.sync_engine

    def on_begin(_connection: Any) -> None:
        seen.begins += 1

    def on_commit(_connection: Any) -> None:
        seen.commits += 1

    def on_rollback(_connection: Any) -> None:
        seen.rollbacks += 1

    def on_statement(*args: Any) -> None:
        seen.statements.append(args[2])

    sa.event.listen(engine, "begin", on_begin)
    sa.event.listen(engine, "commit", on_commit)
    sa.event.listen(engine, "rollback", on_rollback)
    sa.event.listen(engine, "before_cursor_execute", on_statement)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "begin", on_begin)
        sa.event.remove(engine, "commit", on_commit)
        sa.event.remove(engine, "rollback", on_rollback)
        sa.event.remove(engine, "before_cursor_execute", on_statement)


async def test_listing_payments_is_one_read_transaction(harness: Harness) -> None:
    await harness.pay_one_off("alice", amount=1200)
    await harness.pay_one_off("alice", amount=3400)
    with traffic(harness.payments) as seen:
        listed = await harness.client.get("/billing/payments?limit=50", headers=harness.auth("alice"))
    assert listed.status_code == 200, listed.text
    assert sorted(item["amount"] for item in listed.json()["items"]) == [1200, 3400]
    # The customer lookup and the listing share one transaction, which commits nothing.
    assert (seen.begins, seen.commits) == (1, 0)
    assert not any("IMMEDIATE" in statement for statement in seen.statements)


async def test_a_known_customer_is_read_without_a_commit(harness: Harness) -> None:
    first = await harness.client.get("/billing/me", headers=harness.auth("bob"))
    assert first.status_code == 200, first.text
    with traffic(harness.payments) as seen:
        again = await harness.client.get("/billing/me", headers=harness.auth("bob"))
    assert again.json() == first.json()
    assert (seen.begins, seen.commits) == (1, 0)


async def test_a_new_customer_is_committed_once(harness: Harness) -> None:
    with traffic(harness.payments) as seen:
        me = await harness.client.get("/billing/me", headers=harness.auth("carol"))
    assert me.status_code == 200, me.text
    assert seen.commits == 1
    async with harness.payments.read_service() as svc:
        stored = await svc.customers.find("carol")
    assert stored is not None
    assert str(stored.id) == me.json()["id"]


async def test_a_writing_request_takes_the_sqlite_write_lock(harness: Harness) -> None:
    await harness.client.get("/billing/me", headers=harness.auth("dave"))
    with traffic(harness.payments) as seen:
        changed = await harness.client.patch(
            "/billing/me", json={"name": "Dave"}, headers=harness.auth("dave")
        )
    assert changed.status_code == 200, changed.text
    assert changed.json()["name"] == "Dave"
    assert seen.commits == 1
    if harness.payments.engine.dialect.name == "sqlite":
        assert "BEGIN IMMEDIATE" in seen.statements


async def test_a_host_route_writing_under_load_never_waits_for_a_second_connection(
    harness: Harness,
) -> None:
    """A host route holding the request's read connection opens a write unit of work: the
    read connection goes back to the pool first, so 40 concurrent requests (more than the pool
    holds) all finish."""
    payments = harness.payments

    @harness.app.get("/host/rename")
    async def rename(
        customer: Customer = Depends(payments.current_customer),
        svc: PaymentsService = Depends(payments.request_service),
    ) -> dict[str, Any]:
        async with payments.service() as writer:
            fresh = await writer.customers.get(customer.id)
            await writer.customers.update(fresh, name="renamed")
        reread = await svc.customers.get(customer.id)
        return {"name": reread.name}

    for subject in ("erin", "frank"):
        await harness.client.get("/billing/me", headers=harness.auth(subject))
    answers: list[dict[str, Any]] = []

    async def call(subject: str) -> None:
        response = await harness.client.get("/host/rename", headers=harness.auth(subject))
        assert response.status_code == 200, response.text
        answers.append(response.json())

    with anyio.fail_after(120):
        async with anyio.create_task_group() as group:
            for index in range(40):
                group.start_soon(call, ("erin", "frank")[index % 2])
    assert answers == [{"name": "renamed"}] * 40


async def test_a_duplicate_delivery_is_decided_by_its_insert_in_one_transaction(harness: Harness) -> None:
    harness.fake.auto_deliver = False
    await harness.pay_one_off("grace")
    headers, body = harness.fake.sent_events[0]
    with traffic(harness.payments) as first:
        stored = await harness.client.post("/billing/webhooks/fake", content=body, headers=headers)
    assert stored.json()["status"] == "processed"
    # (``INSERT IGNORE INTO`` on MariaDB; on PostgreSQL the INSERT stands in a CTE.)
    inserts = [s for s in first.statements if "INSERT" in s and "INTO cashier_webhook_events" in s]
    assert len(inserts) == 1
    with traffic(harness.payments) as again:
        duplicate = await harness.client.post("/billing/webhooks/fake", content=body, headers=headers)
    assert duplicate.json() == {**stored.json(), "status": "duplicate"}
    # One transaction: the insert that finds the stored row (on MariaDB, then the read of its
    # status). No savepoint, no failed statement, nothing committed.
    assert (again.begins, again.commits) == (1, 0)
    assert not any("SAVEPOINT" in statement.upper() for statement in again.statements)
    dialect = harness.payments.engine.dialect.name
    if dialect == "postgresql":
        # The INSERT and the read of the stored row are one statement (a CTE).
        assert len(again.statements) == 1
    elif dialect == "sqlite":
        # The transaction's BEGIN, then one upsert that returns the stored row.
        assert [s.split()[0].upper() for s in again.statements] == ["BEGIN", "INSERT"]
        assert "RETURNING" in again.statements[1].upper()
    else:
        assert [s.split()[0].upper() for s in again.statements] == ["INSERT", "SELECT"]
    async with harness.payments.read_service() as svc:
        rows = await svc.session.scalars(
            sa.select(WebhookEvent).where(WebhookEvent.event_id == json.loads(body)["id"])
        )
        assert [(row.status.value, row.attempts) for row in rows] == [("processed", 1)]


async def test_a_new_event_is_stored_and_applied_in_one_transaction_with_one_commit(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    harness.fake.auto_deliver = False
    await harness.pay_one_off("ivan")
    await harness.pay_one_off("judy")
    applied, failing = harness.fake.sent_events[0], harness.fake.sent_events[2]
    payment_id = json.loads(applied[1])["data"]["object"]["id"]
    with traffic(harness.payments) as seen:
        stored = await harness.client.post("/billing/webhooks/fake", content=applied[1], headers=applied[0])
    assert stored.json()["status"] == "processed"
    # The INSERT, the lookups, the apply's writes, then the event's status: one commit.
    assert (seen.begins, seen.commits, seen.rollbacks) == (1, 1, 0)
    savepoints = [s.split()[0].upper() for s in seen.statements if "SAVEPOINT" in s.upper()]
    if harness.payments.engine.dialect.name in ("sqlite", "postgresql"):
        # No savepoint: the payment's INSERT cannot fail on its unique key (ON CONFLICT DO NOTHING).
        assert savepoints == []
    else:
        # MariaDB: the payment's INSERT in a savepoint of its own; nothing around the apply.
        assert savepoints == ["SAVEPOINT", "RELEASE"]

    original = EventApplier.apply
    applies: list[str] = []

    async def breaks(self: EventApplier, event: ProviderEvent, *located: Any) -> Any:
        applies.append(event.id)
        await original(self, event, *located)
        raise RuntimeError("the ledger is read-only")

    monkeypatch.setattr(EventApplier, "apply", breaks)
    with traffic(harness.payments) as seen:
        failed = await harness.client.post("/billing/webhooks/fake", content=failing[1], headers=failing[0])
    assert failed.status_code == 200, failed.text
    assert failed.json()["status"] == "failed"
    # The one transaction is rolled back whole; then the event is stored and committed, attempted
    # again in a transaction that is rolled back too, and its failure committed.
    assert (seen.begins, seen.commits, seen.rollbacks) == (4, 2, 2)
    assert applies == [json.loads(failing[1])["id"]] * 2
    async with harness.payments.read_service() as svc:
        rows = (await svc.session.scalars(sa.select(WebhookEvent).order_by(WebhookEvent.received_at))).all()
        payments = (await svc.session.scalars(sa.select(Payment))).all()
    assert [(row.status.value, row.attempts, row.next_attempt_at is None) for row in rows] == [
        ("processed", 1, True),
        ("failed", 1, False),
    ]
    assert "the ledger is read-only" in (rows[1].last_error or "")
    # Only the first event's payment was applied; the second one's left nothing.
    assert [(p.provider_payment_id, p.status.value) for p in payments if p.provider_payment_id] == [
        (payment_id, "succeeded")
    ]


async def test_an_event_id_longer_than_its_column_is_refused_not_truncated(harness: Harness) -> None:
    harness.fake.auto_deliver = False
    await harness.pay_one_off("heidi")
    _, body = harness.fake.sent_events[0]
    event = json.loads(body)
    event["id"] = "evt_" + "x" * 300
    long_body = json.dumps(event).encode()
    response = await harness.client.post(
        "/billing/webhooks/fake", content=long_body, headers=harness.fake.sign(long_body)
    )
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "validation_error"
    async with harness.payments.read_service() as svc:
        assert list(await svc.session.scalars(sa.select(WebhookEvent))) == []


async def test_a_write_in_a_read_session_is_rolled_back_with_it(harness: Harness) -> None:
    """A read session never commits: leaving it rolls back even a write sent through it."""
    await harness.client.get("/billing/me", headers=harness.auth("hank"))
    async with harness.payments.read_service() as svc:
        customer = await svc.customers.find("hank")
        assert customer is not None
        await svc.session.execute(
            sa.update(Customer).where(Customer.id == customer.id).values(name="kept by mistake")
        )
    async with harness.payments.read_service() as svc:
        again = await svc.customers.find("hank")
    assert again is not None
    assert again.name is None


async def test_concurrent_first_requests_of_a_subject_store_one_customer(harness: Harness) -> None:
    answers: list[dict[str, Any]] = []

    async def first_request() -> None:
        response = await harness.client.get("/billing/me", headers=harness.auth("ivy"))
        assert response.status_code == 200, response.text
        answers.append(response.json())

    with anyio.fail_after(120):
        async with anyio.create_task_group() as group:
            for _ in range(10):
                group.start_soon(first_request)
    assert len({answer["id"] for answer in answers}) == 1
    assert len(answers) == 10
    async with harness.payments.read_service() as svc:
        stored = await svc.session.scalar(
            sa.select(sa.func.count()).select_from(Customer).where(Customer.external_id == "ivy")
        )
    assert stored == 1


async def test_a_new_subject_costs_one_insert_and_no_savepoint(harness: Harness) -> None:
    with traffic(harness.payments) as seen:
        me = await harness.client.get("/billing/me", headers=harness.auth("jade"))
    assert me.status_code == 200, me.text
    assert me.json()["external_id"] == "jade"
    inserts = [statement for statement in seen.statements if statement.lstrip().upper().startswith("INSERT")]
    assert len(inserts) == 1
    assert not any("SAVEPOINT" in statement.upper() for statement in seen.statements)
    assert seen.commits == 1
    # The stored row is not read back: the one SELECT is the lookup that found nothing.
    selects = [statement for statement in seen.statements if statement.lstrip().upper().startswith("SELECT")]
    assert len(selects) == 1
    assert seen.statements.index(selects[0]) < seen.statements.index(inserts[0])
    # What the first request answered is the row as stored, as a later request reads it.
    again = await harness.client.get("/billing/me", headers=harness.auth("jade"))
    assert again.json() == me.json()


async def test_create_if_missing_stores_a_subject_once(harness: Harness) -> None:
    async with harness.payments.service() as svc:
        assert await svc.customers.create_if_missing("kim", email="kim@example.com") is True
    async with harness.payments.service() as svc:
        assert await svc.customers.create_if_missing("kim", email="other@example.com") is False
    async with harness.payments.read_service() as svc:
        stored = await svc.customers.find("kim")
    assert stored is not None
    assert stored.email == "kim@example.com"
    assert stored.metadata_ == {}


async def test_store_if_missing_answers_the_row_as_stored(harness: Harness) -> None:
    async with harness.payments.service() as svc:
        made = await svc.customers.store_if_missing("lena", email="lena@example.com")
    assert made is not None
    async with harness.payments.service() as svc:
        assert await svc.customers.store_if_missing("lena", email="other@example.com") is None
    async with harness.payments.read_service() as svc:
        stored = await svc.customers.find("lena")
    assert stored is not None
    columns = ("id", "external_id", "email", "name", "metadata_", "created_at", "updated_at")
    assert [getattr(made, name) for name in columns] == [getattr(stored, name) for name in columns]
    # Held by another session without a statement; a change to it flushes as an UPDATE.
    async with harness.payments.service() as svc:
        with traffic(harness.payments) as seen:
            svc.session.add(made)
        assert seen.statements == []
        made.name = "Lena"
        await svc.session.flush()
    async with harness.payments.read_service() as svc:
        renamed = await svc.customers.find("lena")
    assert renamed is not None
    assert renamed.name == "Lena"
    with pytest.raises(ValidationError):
        async with harness.payments.service() as svc:
            await svc.customers.store_if_missing("")


def _about_an_unknown_payment(body: bytes) -> bytes:
    """A new event like ``body`` (a payment event) about a payment and checkout never seen here."""
    event = json.loads(body)
    event["id"] = "evt_unknown_" + event["id"]
    payment = event["data"]["object"]
    payment["id"] = "pay_never_seen"
    payment["checkout_session"] = "cs_never_seen"
    payment["metadata"] = {"checkout_session_id": "00000000-0000-4000-8000-000000000000"}
    return json.dumps(event).encode()


async def test_an_event_about_nothing_known_costs_its_lookups_and_its_update_only(harness: Harness) -> None:
    harness.fake.auto_deliver = False
    await harness.pay_one_off("kim")
    _, body = harness.fake.sent_events[0]
    assert json.loads(body)["type"] == "payment.succeeded"
    unknown = _about_an_unknown_payment(body)
    with traffic(harness.payments) as seen:
        response = await harness.client.post(
            "/billing/webhooks/fake", content=unknown, headers=harness.fake.sign(unknown)
        )
    assert response.json()["status"] == "ignored", response.text
    # The INSERT, the checkout and payment lookups, the event's UPDATE; no savepoint: the apply
    # writes nothing.
    assert (seen.begins, seen.commits) == (1, 1)
    assert not any("SAVEPOINT" in statement.upper() for statement in seen.statements)
    verbs = [s.split()[0].upper() for s in seen.statements if not s.upper().startswith("BEGIN")]
    if harness.payments.engine.dialect.name == "postgresql":
        verbs[0] = "INSERT"  # the store-once INSERT stands in a CTE there
    assert verbs == ["INSERT", "SELECT", "SELECT", "UPDATE"]
    async with harness.payments.read_service() as svc:
        row = await svc.session.scalar(
            sa.select(WebhookEvent).where(WebhookEvent.event_id == json.loads(unknown)["id"])
        )
    assert row is not None
    assert (row.status.value, row.attempts, row.ignored_reason) == (
        "ignored",
        1,
        "no local checkout session or payment matches this payment",
    )


async def test_a_failed_lookup_keeps_the_event_failed_through_the_two_step_path(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    harness.fake.auto_deliver = False
    await harness.pay_one_off("liam")
    headers, body = harness.fake.sent_events[0]

    async def unreadable(self: EventApplier, event: ProviderEvent) -> Any:
        raise RuntimeError("the checkout table is unreadable")

    monkeypatch.setattr(EventApplier, "locate", unreadable)
    failed = await harness.client.post("/billing/webhooks/fake", content=body, headers=headers)
    assert failed.status_code == 200, failed.text
    assert failed.json()["status"] == "failed"
    async with harness.payments.read_service() as svc:
        rows = (await svc.session.scalars(sa.select(WebhookEvent))).all()
        payments = (await svc.session.scalars(sa.select(Payment))).all()
    assert [(row.status.value, row.attempts, row.next_attempt_at is not None) for row in rows] == [
        ("failed", 1, True)
    ]
    assert "the checkout table is unreadable" in (rows[0].last_error or "")
    assert list(payments) == []  # the event created nothing


async def test_a_checkout_event_confirming_what_is_recorded_writes_only_its_own_status(
    harness: Harness,
) -> None:
    harness.fake.auto_deliver = False
    await harness.pay_one_off("mia")
    (paid_headers, paid), (completed_headers, completed) = harness.fake.sent_events
    assert [json.loads(paid)["type"], json.loads(completed)["type"]] == [
        "payment.succeeded",
        "checkout.completed",
    ]
    first = await harness.client.post("/billing/webhooks/fake", content=paid, headers=paid_headers)
    assert first.json()["status"] == "processed"  # the payment's success completed the checkout
    with traffic(harness.payments) as seen:
        second = await harness.client.post(
            "/billing/webhooks/fake", content=completed, headers=completed_headers
        )
    assert second.json()["status"] == "processed", second.text
    assert not any("SAVEPOINT" in statement.upper() for statement in seen.statements)
    verbs = [s.split()[0].upper() for s in seen.statements if not s.upper().startswith("BEGIN")]
    if harness.payments.engine.dialect.name == "postgresql":
        verbs[0] = "INSERT"  # the store-once INSERT stands in a CTE there
    # The event is inserted as processed: its lookup is all that follows.
    assert verbs == ["INSERT", "SELECT"]
    async with harness.payments.read_service() as svc:
        rows = (await svc.session.scalars(sa.select(WebhookEvent).order_by(WebhookEvent.received_at))).all()
    assert [(row.type, row.status.value, row.attempts) for row in rows] == [
        ("payment.succeeded", "processed", 1),
        ("checkout.completed", "processed", 1),
    ]
    assert all(row.processed_at == row.received_at and row.next_attempt_at is None for row in rows)
