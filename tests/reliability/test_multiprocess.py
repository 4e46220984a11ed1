"""Four uvicorn workers sharing one PostgreSQL end shuffled, duplicated events like in-order delivery.

The scenario of ``test_inbox_reliability`` over real HTTP on 127.0.0.1: no lock inside one process can
help here, only the database's (the unique ``(provider, event_id)``, the event row's and the
subscription row's ``FOR UPDATE`` and the ordering guard). Every subscription must end in the last
state of its timeline, which is what in-order delivery gives: ``test_inbox_reliability`` checks
that against twins that really get their events in order, so this test spares itself the twins.
"""

from __future__ import annotations

import os
import random
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from fastapi_cashier.db import create_engine, create_session_factory, create_tables
from fastapi_cashier.settings import DatabaseSettings

from .. import databases
from . import scenario
from .server import AppServer, app_environment

pytestmark = [
    pytest.mark.anyio,
    # A database test without the database_url fixture: a server-only run must keep it.
    pytest.mark.db,
    pytest.mark.skipif(
        not os.environ.get(databases.POSTGRES_ENV),
        reason=f"set {databases.POSTGRES_ENV} to run four uvicorn workers against one PostgreSQL",
    ),
]

WORKERS = 4
OBJECTS = 100
EVENTS_PER_OBJECT = 20
DUPLICATE_RATIO = 0.3
SENDERS = 24


@pytest.fixture
def postgres_url(tmp_path: Path) -> Iterator[str]:
    """A scratch PostgreSQL database of this test's own, dropped afterwards."""
    url = databases.create_scratch("postgresql", tmp_path)
    yield url
    databases.drop_scratch(url)


async def test_four_worker_processes_end_every_object_like_in_order_delivery(
    postgres_url: str, tmp_path: Path
) -> None:
    rng = random.Random(11)
    plan = scenario.make_scenario(11, objects=OBJECTS, events_per_object=EVENTS_PER_OBJECT)
    engine = create_engine(DatabaseSettings(url=postgres_url))
    try:
        await create_tables(engine)
        session_factory = create_session_factory(engine)
        catalog = await scenario.seed_catalog(session_factory)
        await scenario.seed_subscriptions(session_factory, catalog, plan.object_ids())
        shuffled = plan.events(catalog.plan_ids)
        deliveries = scenario.shuffled_with_duplicates(
            (event for timeline in shuffled for event in timeline), duplicate_ratio=DUPLICATE_RATIO, rng=rng
        )

        # No retry loop: every event is applied by one of its deliveries, which the answers show.
        env = app_environment(
            postgres_url, DATABASE__POOL_SIZE="4", DATABASE__MAX_OVERFLOW="6", WEBHOOKS__RETRY_LOOP="false"
        )
        # No keep-alive: every delivery is a new connection, which any of the workers may accept.
        limits = httpx.Limits(max_connections=SENDERS, max_keepalive_connections=0)
        shuffled_answers: list[scenario.Answer] = []
        async with AppServer(env, tmp_path / "uvicorn.log", workers=WORKERS) as server:
            async with httpx.AsyncClient(base_url=server.base_url, timeout=120, limits=limits) as client:
                started = time.monotonic()
                await scenario.deliver_concurrently(
                    scenario.over_http(client), deliveries, shuffled_answers, SENDERS
                )
                ended = time.monotonic()
            server_log = server.log(tail=None)

        figures = await scenario.verify(
            session_factory,
            plan,
            catalog,
            shuffled=shuffled,
            shuffled_answers=shuffled_answers,
        )
    finally:
        await engine.dispose()

    by_process = Counter(answer.pid for answer in shuffled_answers)
    print(
        f"\n[postgresql, {WORKERS} uvicorn workers] {figures.summary()} "
        f"deliveries_by_process={sorted(by_process.values())} delivered in {ended - started:.1f}s"
    )
    assert None not in by_process, "every answer names the process that served it"
    assert len(by_process) == WORKERS, f"shuffled deliveries were served by {len(by_process)} processes"
    assert "Traceback" not in server_log, server_log[-4000:]
