"""The data model's types and constraints hold on every database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import StatementError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from fastapi_cashier.db import models as m
from fastapi_cashier.db.base_repository import is_integrity_error
from fastapi_cashier.db.model_repositories import (
    CreditAccountRepository,
    CustomerAccountRepository,
    CustomerRepository,
    PaymentRepository,
    PlanRepository,
    ProductRepository,
    WebhookEventRepository,
)
from fastapi_cashier.errors import ConflictError
from fastapi_cashier.statuses import PaymentStatus, WebhookEventStatus

from . import factories

pytestmark = pytest.mark.anyio


async def test_timestamps_are_utc_aware_per_row_and_survive_a_round_trip(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    async with session_factory() as session:
        first = await CustomerRepository(session=session).add(factories.customer())
        second = await CustomerRepository(session=session).add(factories.customer())
        await session.commit()
    assert first.created_at.tzinfo is not None
    assert first.created_at != second.created_at or first.id != second.id

    local = datetime(2026, 3, 1, 12, 30, 15, 123456, tzinfo=timezone(timedelta(hours=2)))
    async with session_factory() as session:
        found = await CustomerRepository(session=session).get(first.id)
        assert found.created_at.utcoffset() == timedelta(0)
        found.created_at = local
        await session.commit()
    async with session_factory() as session:
        again = await CustomerRepository(session=session).get(first.id)
    assert again.created_at == local
    assert again.created_at.tzinfo == UTC
    assert again.created_at.microsecond == 123456


async def test_naive_datetimes_are_refused(session: AsyncSession) -> None:
    session.add(factories.customer(created_at=datetime(2026, 1, 1)))
    with pytest.raises(StatementError, match="naive datetime"):
        await session.flush()


async def test_big_amounts_and_json_round_trip(session_factory: async_sessionmaker[AsyncSession]) -> None:
    big = 9_000_000_000_000_000  # beyond 32 bits, within BIGINT
    async with session_factory() as session:
        customer = await CustomerRepository(session=session).add(
            factories.customer(metadata_={"tier": "gold", "seats": [1, 2]})
        )
        pay = await PaymentRepository(session=session).add(factories.payment(customer.id, amount=big))
        await session.commit()
    async with session_factory() as session:
        loaded = await PaymentRepository(session=session).get(pay.id)
        loaded_customer = await CustomerRepository(session=session).get(customer.id)
    assert loaded.amount == big
    assert loaded.money.amount == big
    assert loaded_customer.metadata_ == {"tier": "gold", "seats": [1, 2]}


async def test_refunded_amount_can_never_exceed_amount(session: AsyncSession) -> None:
    customer = await CustomerRepository(session=session).add(factories.customer())
    payments = PaymentRepository(session=session)
    pay = await payments.add(factories.payment(customer.id, amount=500))
    pay.refunded_amount = 501
    with pytest.raises(ConflictError) as caught:
        await payments.flush()
    assert caught.value.details["constraint_kind"] == "check"
    if session.bind.dialect.name != "sqlite":  # SQLite does not name the failed constraint
        assert caught.value.details["constraint"] == "ck_cashier_payments_refunded_amount_within_amount"


@pytest.mark.parametrize(
    "overrides",
    [{"amount": 0}, {"amount": -5}, {"refunded_amount": -1}],
    ids=["zero-amount", "negative-amount", "negative-refunded"],
)
async def test_payment_amount_checks(session: AsyncSession, overrides: dict[str, int]) -> None:
    customer = await CustomerRepository(session=session).add(factories.customer())
    with pytest.raises(ConflictError):
        await PaymentRepository(session=session).add(factories.payment(customer.id, **overrides))
    # The savepoint kept the outer transaction usable.
    assert await CustomerRepository(session=session).get(customer.id) is customer


async def test_provider_ids_are_unique_per_provider(session: AsyncSession) -> None:
    customer = await CustomerRepository(session=session).add(factories.customer())
    payments = PaymentRepository(session=session)
    await payments.add(factories.payment(customer.id, provider_payment_id="pay_1"))
    with pytest.raises(ConflictError, match="payment already exists"):
        await payments.add(factories.payment(customer.id, provider_payment_id="pay_1"))
    # The same id at another provider is another payment.
    await payments.add(factories.payment(customer.id, provider="manual", provider_payment_id="pay_1"))
    # Unlinked payments (no provider id yet) do not clash with each other.
    await payments.add(factories.payment(customer.id, provider_payment_id=None))
    await payments.add(factories.payment(customer.id, provider_payment_id=None))
    assert await payments.count(m.Payment.customer_id == customer.id) == 4


async def test_customer_external_id_and_provider_accounts_are_unique(session: AsyncSession) -> None:
    customers = CustomerRepository(session=session)
    customer = await customers.add(factories.customer(external_id="host-user-1"))
    with pytest.raises(ConflictError):
        await customers.add(factories.customer(external_id="host-user-1"))
    accounts = CustomerAccountRepository(session=session)
    await accounts.add(
        m.CustomerAccount(customer_id=customer.id, provider="stripe", provider_customer_id="cus_1")
    )
    with pytest.raises(ConflictError):
        await accounts.add(
            m.CustomerAccount(customer_id=customer.id, provider="stripe", provider_customer_id="cus_2")
        )
    assert (await accounts.by_provider_id("stripe", "cus_1")) is not None


async def test_credit_balance_cannot_go_negative(session: AsyncSession) -> None:
    customer = await CustomerRepository(session=session).add(factories.customer())
    with pytest.raises(ConflictError):
        await CreditAccountRepository(session=session).add(
            m.CreditAccount(customer_id=customer.id, balance=-1)
        )


async def test_webhook_event_stores_large_raw_bodies_and_is_unique_per_provider(
    session: AsyncSession,
) -> None:
    events = WebhookEventRepository(session=session)
    body = b'{"pad": "' + b"x" * 900_000 + b'"}'
    stored = await events.add(
        m.WebhookEvent(provider="fake", event_id="evt_1", type="payment.succeeded", raw_body=body)
    )
    assert stored.status is WebhookEventStatus.PENDING
    with pytest.raises(ConflictError):
        await events.add(
            m.WebhookEvent(provider="fake", event_id="evt_1", type="payment.succeeded", raw_body=b"{}")
        )
    await events.add(
        m.WebhookEvent(provider="stripe", event_id="evt_1", type="payment.succeeded", raw_body=b"{}")
    )
    session.expunge_all()
    loaded = await events.by_event_id("fake", "evt_1")
    assert loaded is not None
    assert loaded.raw_body == body


async def test_enum_columns_refuse_unknown_values_at_the_database(session: AsyncSession) -> None:
    customer = await CustomerRepository(session=session).add(factories.customer())
    pay = await PaymentRepository(session=session).add(factories.payment(customer.id))
    table = m.Payment.__table__
    with pytest.raises(sa.exc.DBAPIError) as caught:
        async with session.begin_nested():
            await session.execute(
                sa.text(f"UPDATE {table.name} SET status = 'teleported' WHERE amount = :amount"),  # noqa: S608
                {"amount": pay.amount},
            )
    assert is_integrity_error(caught.value)
    assert pay.status is PaymentStatus.SUCCEEDED


async def test_plans_keep_tiers_and_features_in_order(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    async with session_factory() as session:
        product = await ProductRepository(session=session).add(m.Product(name="API"))
        plan = factories.plan(product.id, pricing_model="tiered_graduated")
        plan.tiers = [
            m.PlanTier(position=1, up_to=None, unit_amount=5),
            m.PlanTier(position=0, up_to=1000, unit_amount=10),
        ]
        plan.features = [
            m.PlanFeature(key="requests_per_minute", limit=20),
            m.PlanFeature(key="api_access", value="true"),
        ]
        await PlanRepository(session=session).add(plan)
        await session.commit()
    async with session_factory() as session:
        loaded = await PlanRepository(session=session).get(plan.id)
        assert [tier.up_to for tier in loaded.tiers] == [1000, None]
        assert [feature.key for feature in loaded.features] == ["api_access", "requests_per_minute"]
        assert [p.id for p in await PlanRepository(session=session).list_active()] == [plan.id]
