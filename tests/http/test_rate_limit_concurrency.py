"""50 parallel calls to a route guarded by ``payments.rate_limit()``: only 200 and 429 come out.

With a per-minute and a per-hour limit, a customer's first burst in new windows made MariaDB
report deadlocks on the counters' upserts (500s). The counts must also stay exact: the minute's
limit lets exactly that many through, and the refused calls never reach the hour's counter.
"""

from __future__ import annotations

from datetime import UTC, datetime

import anyio
import pytest
import sqlalchemy as sa

from fastapi_cashier.db.models import RateLimitCounter

from .conftest import Harness
from .test_entitlements import customer_id, freeze_rate_limit_clock, host_route, make_plan, subscribe

pytestmark = pytest.mark.anyio

CALLS = 50
PER_MINUTE = 20
PER_HOUR = 30


async def test_fifty_parallel_calls_answer_only_200_or_429(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The first second of a new hour: both windows' counters are created by this burst.
    freeze_rate_limit_clock(monkeypatch, datetime(2026, 3, 1, 13, 0, 0, tzinfo=UTC))
    plan = await make_plan(harness, "API", requests_per_minute=PER_MINUTE, requests_per_hour=PER_HOUR)
    host_route(harness.app, "/api/search", harness.payments.rate_limit())
    alice = await customer_id(harness)
    await subscribe(harness, alice, plan)
    headers = harness.auth()
    codes: list[int] = []

    async def call() -> None:
        codes.append((await harness.client.get("/api/search", headers=headers)).status_code)

    async with anyio.create_task_group() as group:
        for _ in range(CALLS):
            group.start_soon(call)

    assert sorted(set(codes)) == [200, 429], codes
    assert codes.count(200) == PER_MINUTE
    assert codes.count(429) == CALLS - PER_MINUTE
    async with harness.payments.session_factory() as session:
        rows = (await session.execute(sa.select(RateLimitCounter.scope, RateLimitCounter.count))).all()
    assert sorted(rows) == [("requests_per_hour", PER_MINUTE), ("requests_per_minute", CALLS)]
