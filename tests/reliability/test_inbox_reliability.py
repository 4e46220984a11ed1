"""The webhook inbox under stress, on every configured database, through HTTP.

* Parallel deliveries of one event apply it once.
* 2,000 events for 100 subscriptions, shuffled, 30 % delivered twice, by concurrent senders, end
  every subscription exactly like its twin, which got the same events in order from the same
  inbox.
* A server process killed while applying a new event (stored and applied in one transaction)
  leaves nothing and answers nothing; the provider's redelivery to the next process applies it once.
* An apply that fails in a server process leaves the event stored as ``failed`` (the apply's
  transaction rolled back whole, the event stored on its own and its failure committed); the next
  process's retry loop applies it once.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from fastapi_cashier import PaymentsRouter
from fastapi_cashier.db import create_engine, create_session_factory, create_tables
from fastapi_cashier.db import models as m
from fastapi_cashier.settings import DatabaseSettings
from fastapi_cashier.statuses import SubscriptionStatus

from .. import databases
from ..http.conftest import settings_for
from . import scenario
from .app import DIE_ON_EVENT_ENV, FAIL_ON_EVENT_ENV, WorkerPid
from .server import AppServer, app_environment

pytestmark = pytest.mark.anyio

OBJECTS = 100
EVENTS_PER_OBJECT = 20
DUPLICATE_RATIO = 0.3
SENDERS = 24
IN_ORDER_STREAMS = 16


@contextlib.asynccontextmanager
async def running_app(database_url: str) -> AsyncIterator[tuple[PaymentsRouter, httpx.AsyncClient]]:
    """The router mounted at /billing in an in-process app (lifespan run), and a client for it."""
    settings = settings_for(
        database_url,
        database={"url": database_url, "create_tables": False, "pool_size": 8, "max_overflow": 8},
    )
    payments = PaymentsRouter(settings)
    app = FastAPI()
    app.include_router(payments, prefix="/billing")
    app.add_middleware(WorkerPid)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://testserver", timeout=120
        ) as client:
            yield payments, client


async def _audit(
    session_factory: async_sessionmaker[AsyncSession], entity_type: str
) -> list[tuple[str | None, str, str | None]]:
    async with session_factory() as session:
        rows = (
            await session.scalars(sa.select(m.StatusChange).where(m.StatusChange.entity_type == entity_type))
        ).all()
    changes = [(row.from_status, row.to_status, row.provider_event_id) for row in rows]
    return sorted(changes, key=lambda change: tuple(part or "" for part in change))


# --------------------------------------------------------------------------- parallel duplicates


@pytest.mark.parametrize("kind", ["subscription_move", "renewal_payment"])
async def test_fifty_parallel_deliveries_of_one_event_apply_it_once(
    engine: AsyncEngine, database_url: str, kind: str
) -> None:
    session_factory = create_session_factory(engine)
    catalog = await scenario.seed_catalog(session_factory)
    object_id = f"sub_parallel_{kind}"
    (subscription_id,) = (await scenario.seed_subscriptions(session_factory, catalog, [object_id])).values()
    if kind == "subscription_move":
        state = scenario.State(SubscriptionStatus.PAST_DUE, 3, 1, 1, False, None)
        event = scenario.subscription_event(
            "evt_parallel_move", object_id, state, index=0, seq=0, plan_ids=catalog.plan_ids
        )
    else:
        event = scenario.payment_event("evt_parallel_payment", "pay_parallel", object_id)

    async with running_app(database_url) as (_payments, client):
        answers: list[scenario.Answer] = []

        async def deliver() -> None:
            answers.append(await scenario.post_event(client, event))

        async with anyio.create_task_group() as group:
            for _ in range(50):
                group.start_soon(deliver)

    assert [answer.http_status for answer in answers] == [200] * 50
    assert sorted(str(answer.status) for answer in answers) == ["duplicate"] * 49 + ["processed"]
    async with session_factory() as session:
        (stored,) = (await session.scalars(sa.select(m.WebhookEvent))).all()
        subscription = await session.get_one(m.Subscription, subscription_id)
        payments = (await session.scalars(sa.select(m.Payment))).all()
    assert (stored.event_id, stored.status.value, stored.attempts) == (event.event_id, "processed", 1)
    if kind == "subscription_move":
        assert (subscription.status, subscription.quantity, subscription.plan_id) == (
            SubscriptionStatus.PAST_DUE,
            3,
            catalog.plan_ids[1],
        )
        assert await _audit(session_factory, "subscription") == [("active", "past_due", event.event_id)]
        assert payments == []
    else:
        assert [(p.provider_payment_id, p.status.value, p.subscription_id) for p in payments] == [
            ("pay_parallel", "succeeded", subscription_id)
        ]
        assert await _audit(session_factory, "payment") == [
            (None, "pending", event.event_id),
            ("pending", "succeeded", event.event_id),
        ]
        assert subscription.status is SubscriptionStatus.ACTIVE


# --------------------------------------------------------------------------- shuffled timelines


async def test_shuffled_duplicated_concurrent_events_end_like_in_order_delivery(
    engine: AsyncEngine, database_url: str
) -> None:
    """Each subscription ends like its twin, which got the same timeline in order.

    The shuffled deliveries go through HTTP to the endpoint, ``SENDERS`` at a time. At the same
    time the twins get their events through the same inbox, each timeline in order and one event
    after the other's answer (``IN_ORDER_STREAMS`` timelines at a time), so both kinds of
    delivery interleave in the database.
    """
    rng = random.Random(5)
    plan = scenario.make_scenario(5, objects=OBJECTS, events_per_object=EVENTS_PER_OBJECT)
    session_factory = create_session_factory(engine)
    catalog = await scenario.seed_catalog(session_factory)
    await scenario.seed_subscriptions(
        session_factory, catalog, plan.object_ids() + plan.object_ids(twin=True)
    )
    shuffled = plan.events(catalog.plan_ids)
    in_order = plan.events(catalog.plan_ids, twin=True)
    deliveries = scenario.shuffled_with_duplicates(
        (event for timeline in shuffled for event in timeline), duplicate_ratio=DUPLICATE_RATIO, rng=rng
    )
    in_order_answers: list[scenario.Answer] = []
    shuffled_answers: list[scenario.Answer] = []

    async with running_app(database_url) as (payments, client):
        started = time.monotonic()
        async with anyio.create_task_group() as group:
            group.start_soon(
                scenario.deliver_concurrently,
                scenario.over_http(client),
                deliveries,
                shuffled_answers,
                SENDERS,
            )
            group.start_soon(
                scenario.deliver_in_order,
                scenario.to_inbox(payments.inbox),
                in_order,
                in_order_answers,
                IN_ORDER_STREAMS,
            )
        ended = time.monotonic()
        # Nothing was left pending or failed for a retry loop (off in this app) to pick up.
        leftovers = await payments.inbox.process_due()

    assert leftovers == []
    figures = await scenario.verify(
        session_factory,
        plan,
        catalog,
        shuffled=shuffled,
        shuffled_answers=shuffled_answers,
        in_order=in_order,
        in_order_answers=in_order_answers,
    )
    assert figures.deliveries == OBJECTS * EVENTS_PER_OBJECT * (1 + DUPLICATE_RATIO)
    assert figures.distinct_events == OBJECTS * EVENTS_PER_OBJECT
    print(f"\n[{databases.kind_of(database_url)}] {figures.summary()} delivered in {ended - started:.1f}s")


# --------------------------------------------------------------------------- killed or failing mid-apply


async def _seed_one_subscription(session_factory: async_sessionmaker[AsyncSession], object_id: str) -> Any:
    catalog = await scenario.seed_catalog(session_factory)
    (subscription_id,) = (await scenario.seed_subscriptions(session_factory, catalog, [object_id])).values()
    return subscription_id


async def _applied_once(
    session_factory: async_sessionmaker[AsyncSession],
    event: scenario.Event,
    payment_id: str,
    subscription_id: Any,
) -> None:
    """The event is stored once, processed at its first successful attempt, and applied once."""
    assert await _payments(session_factory) == [(payment_id, "succeeded", subscription_id)]
    assert await _audit(session_factory, "payment") == [
        (None, "pending", event.event_id),
        ("pending", "succeeded", event.event_id),
    ]


async def test_a_server_killed_while_applying_leaves_nothing_and_the_redelivery_applies_it_once(
    fresh_database_url: str, tmp_path: Path
) -> None:
    """A new event is stored and applied in one transaction. The doomed server dies inside the
    apply, after its rows were written and before the commit: nothing is stored, nothing of the
    apply is left, and the delivery gets no answer, so the provider sends it again. The next
    server applies that redelivery once: one payment, one audit trail, and a third delivery is
    a duplicate.
    """
    url = fresh_database_url
    engine = create_engine(DatabaseSettings(url=url))
    try:
        await create_tables(engine)
        session_factory = create_session_factory(engine)
        subscription_id = await _seed_one_subscription(session_factory, "sub_doomed")
        event = scenario.payment_event("evt_doomed", "pay_doomed", "sub_doomed")
        log = tmp_path / "server.log"

        doomed_env = app_environment(url, WEBHOOKS__RETRY_LOOP="false")
        doomed_env[DIE_ON_EVENT_ENV] = event.event_id
        async with AppServer(doomed_env, log) as server:
            async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as client:
                with pytest.raises(httpx.TransportError):
                    await scenario.post_event(client, event)
            assert await server.wait_exit() == 1

        assert await _stored(session_factory) == []
        assert await _payments(session_factory) == []
        assert await _audit(session_factory, "payment") == []

        restarted_env = app_environment(url, WEBHOOKS__POLL_INTERVAL_SECONDS="0.1")
        async with (
            AppServer(restarted_env, log) as server,
            httpx.AsyncClient(base_url=server.base_url, timeout=30) as client,
        ):
            redelivered = await scenario.post_event(client, event)
            again = await scenario.post_event(client, event)

        assert (redelivered.http_status, redelivered.status) == (200, "processed")
        assert (again.http_status, again.status) == (200, "duplicate")
        stored = await _stored(session_factory)
        assert [(row.event_id, row.status.value, row.attempts) for row in stored] == [
            (event.event_id, "processed", 1)
        ]
        await _applied_once(session_factory, event, "pay_doomed", subscription_id)
    finally:
        await engine.dispose()


async def test_an_apply_failing_in_a_server_stores_the_event_failed_and_the_next_server_applies_it_once(
    fresh_database_url: str, tmp_path: Path
) -> None:
    """The apply fails after writing its rows: its transaction is rolled back whole, then the event
    is stored on its own and its failure committed: ``failed`` (attempt 1, next attempt after
    ``retry_interval_seconds``, 1 s), answered 200. A redelivery to that server retries it and
    fails again. A server without the fault then applies it from its retry loop, once; a last
    redelivery is a duplicate.
    """
    url = fresh_database_url
    engine = create_engine(DatabaseSettings(url=url))
    try:
        await create_tables(engine)
        session_factory = create_session_factory(engine)
        subscription_id = await _seed_one_subscription(session_factory, "sub_failing")
        event = scenario.payment_event("evt_failing", "pay_failing", "sub_failing")
        log = tmp_path / "server.log"

        failing_env = app_environment(url, WEBHOOKS__RETRY_LOOP="false", WEBHOOKS__RETRY_INTERVAL_SECONDS="1")
        failing_env[FAIL_ON_EVENT_ENV] = event.event_id
        async with (
            AppServer(failing_env, log) as server,
            httpx.AsyncClient(base_url=server.base_url, timeout=30) as client,
        ):
            first = await scenario.post_event(client, event)
            stored = await _stored(session_factory)
            second = await scenario.post_event(client, event)

        assert (first.http_status, first.status) == (200, "failed")
        assert [(row.event_id, row.status.value, row.attempts) for row in stored] == [
            (event.event_id, "failed", 1)
        ]
        assert stored[0].next_attempt_at is not None
        assert "injected failure" in (stored[0].last_error or "")
        assert (second.http_status, second.status) == (200, "failed")
        stored = await _stored(session_factory)
        assert [(row.status.value, row.attempts) for row in stored] == [("failed", 2)]
        assert await _payments(session_factory) == []
        assert await _audit(session_factory, "payment") == []

        restarted_env = app_environment(
            url, WEBHOOKS__RETRY_INTERVAL_SECONDS="1", WEBHOOKS__POLL_INTERVAL_SECONDS="0.1"
        )
        async with AppServer(restarted_env, log) as server:
            with anyio.fail_after(60):
                while (await _stored(session_factory))[0].status.value == "failed":  # noqa: ASYNC110
                    await anyio.sleep(0.1)
            async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as client:
                again = await scenario.post_event(client, event)

        assert (again.http_status, again.status) == (200, "duplicate")
        stored = await _stored(session_factory)
        assert [(row.event_id, row.status.value, row.attempts, row.last_error) for row in stored] == [
            (event.event_id, "processed", 3, None)
        ]
        await _applied_once(session_factory, event, "pay_failing", subscription_id)
    finally:
        await engine.dispose()


async def _stored(session_factory: async_sessionmaker[AsyncSession]) -> list[m.WebhookEvent]:
    async with session_factory() as session:
        return list((await session.scalars(sa.select(m.WebhookEvent))).all())


async def _payments(session_factory: async_sessionmaker[AsyncSession]) -> list[tuple[Any, ...]]:
    async with session_factory() as session:
        rows = (await session.scalars(sa.select(m.Payment))).all()
    return [(row.provider_payment_id, row.status.value, row.subscription_id) for row in rows]
