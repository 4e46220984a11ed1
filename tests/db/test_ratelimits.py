"""The database-backed fixed-window rate limit counter, on every configured database."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import anyio
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from fastapi_cashier import PaymentsSettings
from fastapi_cashier.billing.ratelimits import RateLimitResult, window_start
from fastapi_cashier.billing.service import PaymentsService
from fastapi_cashier.db import models as m
from fastapi_cashier.errors import ValidationError

pytestmark = pytest.mark.anyio

MINUTE = timedelta(minutes=1)
NOON = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


def service(session: AsyncSession) -> PaymentsService:
    return PaymentsService(session, settings=PaymentsSettings(environment="test"), providers={})


async def hit(
    session_factory: async_sessionmaker[AsyncSession],
    customer_id: uuid.UUID,
    *,
    now: datetime,
    limit: int = 5,
    scope: str = "requests_per_minute",
    window: timedelta = MINUTE,
) -> RateLimitResult:
    async with session_factory() as session:
        result = await service(session).rate_limits.hit(
            customer_id, scope=scope, limit=limit, window=window, now=now
        )
        await session.commit()
    return result


async def test_concurrent_hits_each_get_a_distinct_count(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    customer_id = uuid.uuid4()
    results: list[RateLimitResult] = []

    async def one() -> None:
        results.append(await hit(session_factory, customer_id, now=NOON + timedelta(seconds=10), limit=10))

    async with anyio.create_task_group() as group:
        for _ in range(30):
            group.start_soon(one)

    assert sorted(result.count for result in results) == list(range(1, 31))
    assert sum(result.allowed for result in results) == 10
    refused = [result for result in results if not result.allowed]
    assert {result.retry_after_seconds for result in refused} == {50}
    assert {result.reset_at for result in results} == {NOON + MINUTE}
    async with session_factory() as session:
        rows = (await session.execute(sa.select(m.RateLimitCounter))).scalars().all()
    assert len(rows) == 1
    assert rows[0].count == 30
    assert rows[0].window_start == NOON


async def test_a_new_window_starts_from_one(session_factory: async_sessionmaker[AsyncSession]) -> None:
    customer_id = uuid.uuid4()
    first = await hit(session_factory, customer_id, now=NOON + timedelta(seconds=59), limit=1)
    second = await hit(
        session_factory, customer_id, now=NOON + timedelta(seconds=59, microseconds=500), limit=1
    )
    third = await hit(session_factory, customer_id, now=NOON + MINUTE, limit=1)
    assert (first.count, first.allowed, first.retry_after_seconds) == (1, True, 0)
    # Half a second left in the window: Retry-After rounds up to a whole second.
    assert (second.count, second.allowed, second.retry_after_seconds) == (2, False, 1)
    assert (third.count, third.allowed, third.reset_at) == (1, True, NOON + 2 * MINUTE)


async def test_customers_and_scopes_are_counted_apart(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    alice, bob = uuid.uuid4(), uuid.uuid4()
    await hit(session_factory, alice, now=NOON)
    await hit(session_factory, alice, now=NOON)
    assert (await hit(session_factory, bob, now=NOON)).count == 1
    assert (await hit(session_factory, alice, now=NOON, scope="exports")).count == 1
    assert (await hit(session_factory, alice, now=NOON)).count == 3


async def test_hour_windows_are_aligned_to_the_hour(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    customer_id = uuid.uuid4()
    hour = timedelta(hours=1)
    late = NOON + timedelta(minutes=59, seconds=30)
    for expected in (1, 2):
        result = await hit(session_factory, customer_id, now=late, limit=1, window=hour, scope="h")
        assert result.count == expected
    assert result.retry_after_seconds == 30
    assert result.reset_at == NOON + hour
    assert window_start(datetime(2026, 3, 1, 14, 30, tzinfo=UTC), hour) == datetime(
        2026, 3, 1, 14, tzinfo=UTC
    )


async def test_a_zero_limit_refuses_every_hit(session_factory: async_sessionmaker[AsyncSession]) -> None:
    result = await hit(session_factory, uuid.uuid4(), now=NOON, limit=0)
    assert (result.allowed, result.count, result.retry_after_seconds) == (False, 1, 60)


async def test_purge_deletes_windows_that_started_before_the_cutoff(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    customer_id = uuid.uuid4()
    for minutes in range(3):
        await hit(session_factory, customer_id, now=NOON + minutes * MINUTE)
    async with session_factory() as session:
        deleted = await service(session).rate_limits.purge(NOON + 2 * MINUTE)
        await session.commit()
    assert deleted == 2
    assert (await hit(session_factory, customer_id, now=NOON + 2 * MINUTE)).count == 2
    assert (await hit(session_factory, customer_id, now=NOON)).count == 1


async def test_bad_arguments_are_refused(session: AsyncSession) -> None:
    limits = service(session).rate_limits
    customer_id = uuid.uuid4()
    cases = [
        ({"scope": "", "limit": 1, "window": MINUTE, "now": NOON}, "scope"),
        ({"scope": "x" * 41, "limit": 1, "window": MINUTE, "now": NOON}, "scope"),
        ({"scope": "s", "limit": -1, "window": MINUTE, "now": NOON}, "limit"),
        ({"scope": "s", "limit": True, "window": MINUTE, "now": NOON}, "limit"),
        ({"scope": "s", "limit": 1, "window": timedelta(milliseconds=10), "now": NOON}, "window"),
        ({"scope": "s", "limit": 1, "window": MINUTE, "now": datetime(2026, 1, 1)}, "now"),
    ]
    for kwargs, field in cases:
        with pytest.raises(ValidationError) as caught:
            await limits.hit(customer_id, **kwargs)  # type: ignore[arg-type]
        assert caught.value.field == field
