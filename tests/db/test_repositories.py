"""The generic repository, keyset pagination and the concurrency-safe helpers."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import anyio
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from fastapi_cashier.db import models as m
from fastapi_cashier.db.base_repository import decode_cursor, encode_cursor
from fastapi_cashier.db.model_repositories import (
    CreditAccountRepository,
    CustomerRepository,
    PaymentRepository,
    SequenceRepository,
    StatusChangeRepository,
)
from fastapi_cashier.errors import ConflictError, NotFoundError, ValidationError
from fastapi_cashier.statuses import ChangeCause, PaymentStatus

from . import factories

pytestmark = pytest.mark.anyio


async def test_get_raises_not_found_with_the_id(session: AsyncSession) -> None:
    missing = uuid.uuid4()
    with pytest.raises(NotFoundError, match=f"customer {missing} was not found") as caught:
        await CustomerRepository(session=session).get(missing)
    assert caught.value.details == {"id": str(missing)}
    assert await CustomerRepository(session=session).get_or_none(missing) is None


async def test_paginate_walks_every_row_once_newest_first(session: AsyncSession) -> None:
    customer = await CustomerRepository(session=session).add(factories.customer())
    payments = PaymentRepository(session=session)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    created = []
    for index in range(23):
        # Three rows share each timestamp, so the id breaks ties.
        when = start + timedelta(seconds=index // 3)
        created.append(await payments.add(factories.payment(customer.id, created_at=when)))

    seen: list[m.Payment] = []
    cursor = None
    pages = 0
    while True:
        page = await payments.paginate(m.Payment.customer_id == customer.id, limit=5, cursor=cursor)
        seen.extend(page.items)
        pages += 1
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert pages == 5
    # Every row exactly once, newest first; ties are ordered by id as the database compares ids
    # (MariaDB's native UUID type does not sort like the hex string).
    assert sorted(p.id.hex for p in seen) == sorted(p.id.hex for p in created)
    stamps = [p.created_at for p in seen]
    assert stamps == sorted(stamps, reverse=True)


async def test_paginate_refuses_bad_limits_and_cursors(session: AsyncSession) -> None:
    payments = PaymentRepository(session=session)
    for limit in (0, 101):
        with pytest.raises(ValidationError) as caught:
            await payments.paginate(limit=limit)
        assert caught.value.field == "limit"
    for cursor in ("not-a-cursor", "e30", encode_cursor(datetime(2026, 1, 1, tzinfo=UTC), uuid.uuid4())[:-3]):
        with pytest.raises(ValidationError) as caught:
            await payments.paginate(cursor=cursor)
        assert caught.value.field == "cursor"


def test_cursor_round_trip() -> None:
    when = datetime(2026, 5, 4, 3, 2, 1, 999, tzinfo=UTC)
    row = uuid.uuid4()
    assert decode_cursor(encode_cursor(when, row)) == (when, row)


async def test_sequence_is_gap_free_under_concurrency(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    values: list[int] = []

    async def take(fail: bool) -> None:
        async with session_factory() as session:
            value = await SequenceRepository(session=session).next_value("invoice")
            if fail:
                await session.rollback()  # a failed transaction gives its number back
                return
            await session.commit()
            values.append(value)

    async with anyio.create_task_group() as group:
        for index in range(12):
            group.start_soon(take, index % 4 == 3)
    assert sorted(values) == list(range(1, 10))


async def test_concurrent_credit_consumption_never_overdraws(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    async with session_factory() as session:
        customer = await CustomerRepository(session=session).add(factories.customer())
        account = await CreditAccountRepository(session=session).add(
            m.CreditAccount(customer_id=customer.id, balance=10)
        )
        await session.commit()
    outcomes: list[int | None] = []

    async def consume() -> None:
        async with session_factory() as session:
            outcomes.append(await CreditAccountRepository(session=session).consume(account.id, 3))
            await session.commit()

    async with anyio.create_task_group() as group:
        for _ in range(8):
            group.start_soon(consume)
    granted = [balance for balance in outcomes if balance is not None]
    assert len(granted) == 3  # 3 + 3 + 3 of 10; a fourth would go below zero
    assert sorted(granted) == [1, 4, 7]
    async with session_factory() as session:
        assert (await CreditAccountRepository(session=session).get(account.id)).balance == 1


async def test_concurrent_refund_bookkeeping_never_exceeds_the_payment(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    async with session_factory() as session:
        customer = await CustomerRepository(session=session).add(factories.customer())
        pay = await PaymentRepository(session=session).add(factories.payment(customer.id, amount=1000))
        await session.commit()
    accepted: list[bool] = []

    async def refund() -> None:
        async with session_factory() as session:
            accepted.append(await PaymentRepository(session=session).add_refunded(pay.id, 300))
            await session.commit()

    async with anyio.create_task_group() as group:
        for _ in range(10):
            group.start_soon(refund)
    assert accepted.count(True) == 3
    async with session_factory() as session:
        assert (await PaymentRepository(session=session).get(pay.id)).refunded_amount == 900


async def test_status_changes_read_back_in_order(session: AsyncSession) -> None:
    entity = uuid.uuid4()
    changes = StatusChangeRepository(session=session)
    base = datetime(2026, 1, 1, tzinfo=UTC)
    for minute, (old, new) in enumerate(
        [(None, "pending"), ("pending", "succeeded"), ("succeeded", "refunded")]
    ):
        await changes.add(
            m.StatusChange(
                entity_type="payment",
                entity_id=entity,
                from_status=old,
                to_status=new,
                cause=ChangeCause.API,
                created_at=base + timedelta(minutes=minute),
            )
        )
    trail = await changes.for_entity("payment", entity)
    assert [(c.from_status, c.to_status) for c in trail] == [
        (None, "pending"),
        ("pending", "succeeded"),
        ("succeeded", "refunded"),
    ]


async def test_a_checkout_is_found_by_local_id_first_then_by_provider_id(session: AsyncSession) -> None:
    from fastapi_cashier.db.model_repositories import CheckoutSessionRepository

    customer = await CustomerRepository(session=session).add(factories.customer())
    sessions = CheckoutSessionRepository(session=session)

    def checkout(provider: str, provider_session_id: str) -> m.CheckoutSession:
        return m.CheckoutSession(
            customer_id=customer.id,
            provider=provider,
            provider_session_id=provider_session_id,
            mode="payment",
            amount=100,
            currency="EUR",
        )

    local = await sessions.add(checkout("fake", "cs_local"))
    by_provider_id = await sessions.add(checkout("fake", "cs_other"))
    elsewhere = await sessions.add(checkout("stripe", "cs_elsewhere"))
    find = sessions.by_local_or_provider_id
    # Both keys match, different rows: the local id wins, whichever row sorts first.
    assert await find("fake", local.id, "cs_other", for_update=True) is local
    assert await find("fake", by_provider_id.id, "cs_local") is by_provider_id
    # A local id of another provider's session is passed over for the provider id.
    assert await find("fake", elsewhere.id, "cs_other") is by_provider_id
    assert await find("fake", elsewhere.id, None) is None
    # One key alone, or none.
    assert await find("fake", None, "cs_local") is local
    assert await find("fake", local.id, None) is local
    assert await find("fake", uuid.uuid4(), "cs_missing") is None
    assert await find("fake", None, None) is None


def _delivery(event_id: str) -> dict[str, object]:
    from fastapi_cashier.statuses import WebhookEventStatus

    now = datetime.now(UTC)
    return {
        "id": uuid.uuid4(),
        "provider": "fake",
        "event_id": event_id,
        "type": "payment.succeeded",
        "object_kind": "payment",
        "object_provider_id": "pay_1",
        "occurred_at": now,
        "raw_body": b"{}",
        "received_at": now,
        "status": WebhookEventStatus.PENDING,
        "attempts": 0,
        "next_attempt_at": now,
    }


async def test_insert_once_stores_a_delivery_once_and_finds_it_after(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    from fastapi_cashier.db.model_repositories import WebhookEventRepository
    from fastapi_cashier.statuses import WebhookEventStatus

    first = _delivery("evt_once")
    async with session_factory() as session:
        stored = await WebhookEventRepository(session=session).insert_once(first)
        assert stored is not None
        assert stored.inserted
        assert stored.id == first["id"]
        assert stored.status is WebhookEventStatus.PENDING
        await session.commit()
    async with session_factory() as session:
        again = await WebhookEventRepository(session=session).insert_once(_delivery("evt_once"))
        assert again is not None
        assert not again.inserted
        assert again.id == first["id"]
        assert again.status == WebhookEventStatus.PENDING
        await session.rollback()


async def test_insert_once_finds_a_delivery_a_concurrent_transaction_committed_meanwhile(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    """The first delivery's transaction holds the new key; the second waits on it, then finds
    the row committed after its own statement began (PostgreSQL: outside that statement's
    snapshot, so by the separate read)."""
    from fastapi_cashier.db.model_repositories import StoredDelivery, WebhookEventRepository

    first = _delivery("evt_race")
    found: list[StoredDelivery | None] = []
    async with session_factory() as holder:
        assert await WebhookEventRepository(session=holder).insert_once(first) is not None

        async def second_delivery() -> None:
            async with session_factory() as session:
                found.append(await WebhookEventRepository(session=session).insert_once(_delivery("evt_race")))
                await session.rollback()

        async with anyio.create_task_group() as group:
            group.start_soon(second_delivery)
            await anyio.sleep(0.5)  # the second delivery is waiting on the key (or the write lock)
            assert found == []
            await holder.commit()
    [stored] = found
    assert stored is not None
    assert not stored.inserted
    assert stored.id == first["id"]


async def test_add_new_inserts_a_payment_with_its_defaults_and_attaches_it_loaded(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    statements: list[str] = []
    async with session_factory() as session:
        customer = await CustomerRepository(session=session).add(factories.customer())
        payments = PaymentRepository(session=session)
        engine = session.bind.sync_engine  # type: ignore[union-attr]

        def seen(*args: object) -> None:
            statements.append(str(args[2]))

        sa.event.listen(engine, "before_cursor_execute", seen)
        try:
            pay = await payments.add_new(factories.payment(customer.id, status=PaymentStatus.PENDING))
        finally:
            sa.event.remove(engine, "before_cursor_execute", seen)
        # One INSERT, no flush (MariaDB: in a savepoint); the defaults are on the object, loaded.
        if engine.dialect.name in ("sqlite", "postgresql"):
            assert [s.split()[0].upper() for s in statements] == ["INSERT"]
            assert "ON CONFLICT DO NOTHING" in statements[0].upper()
        else:
            assert [s.split()[0].upper() for s in statements] == ["SAVEPOINT", "INSERT", "RELEASE"]
        unloaded = sa.inspect(pay).unloaded
        assert (pay.refunded_amount, pay.metadata_, pay.id is not None, unloaded) == (0, {}, True, set())
        assert pay.created_at.tzinfo is not None
        assert pay.updated_at.tzinfo is not None
        # A persistent row of this session: found in the identity map, changes flush as an UPDATE.
        assert await session.get(m.Payment, pay.id) is pay
        pay.status = PaymentStatus.SUCCEEDED
        await session.flush()
        # A second payment with the same provider id is refused; the transaction stays usable.
        with pytest.raises(ConflictError) as taken:
            await payments.add_new(
                factories.payment(customer.id, provider_payment_id=pay.provider_payment_id)
            )
        assert taken.value.details["constraint_kind"] == "unique"
        # So is one whose amount the data model refuses, before any statement is sent.
        statements.clear()
        sa.event.listen(engine, "before_cursor_execute", seen)
        try:
            for amount in (0, -100):
                with pytest.raises(ConflictError, match="amount must be positive") as refused:
                    await payments.add_new(factories.payment(customer.id, amount=amount))
                assert refused.value.details["constraint_kind"] == "check"
        finally:
            sa.event.remove(engine, "before_cursor_execute", seen)
        assert statements == []
        await session.commit()
    async with session_factory() as session:
        stored = await PaymentRepository(session=session).get(pay.id)
        assert (stored.status, stored.refunded_amount, stored.metadata_) == (PaymentStatus.SUCCEEDED, 0, {})
        assert stored.created_at == pay.created_at
        assert await session.scalar(sa.select(sa.func.count()).select_from(m.Payment)) == 1
