"""A refund or usage report whose answer was lost, retried after a restart: once at Lemon Squeezy.

Lemon Squeezy keeps no id of a refund or of a usage record, so the adapter cannot look one up. The
first attempt below is applied by the in-process server and its answer lost; with retries off,
the fault reaches the caller and leaves the row unconfirmed. The retry then runs in a new
process: a new adapter instance and a new router on the same database, which know nothing of the
first attempt but what the database and Lemon Squeezy say. Runs on every database.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from fastapi_cashier import PaymentsRouter
from fastapi_cashier.db.models import Refund, UsageRecord
from fastapi_cashier.providers.lemonsqueezy import LemonSqueezyProvider
from fastapi_cashier.statuses import RefundStatus

from ..http.conftest import Harness, settings_for
from .lemonsqueezy_server import LemonSqueezyServer
from .test_lemonsqueezy_router import ROTATED_SECRET, SECRET, LemonHost, metered_subscription, seeded_server

pytestmark = [pytest.mark.anyio, pytest.mark.db]


@asynccontextmanager
async def process(
    server: LemonSqueezyServer, database_url: str, *, attempts: int
) -> AsyncIterator[LemonHost]:
    """One app process: its own adapter (and connection pool) and router, on the shared database."""
    async with httpx.AsyncClient(transport=server.transport()) as api:
        provider = LemonSqueezyProvider(
            api_key=server.api_key,
            store_id=str(server.store_id),
            webhook_secrets=[SECRET, ROTATED_SECRET],
            api_base="https://ls.test/v1",
            http_client=api,
        )
        settings = settings_for(
            database_url,
            database={"url": database_url, "create_tables": False},
            fake=None,
            default_provider=None,
            provider_calls={"backoff_seconds": 0, "max_attempts": attempts},
        )
        payments = PaymentsRouter(settings, providers=[provider])
        app = FastAPI()
        app.include_router(payments, prefix="/billing")
        app_transport = httpx.ASGITransport(app=app)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=app_transport, base_url="http://testserver") as client,
            httpx.AsyncClient(transport=httpx.ASGITransport(app=server.app)) as page,
        ):

            async def deliver(headers: dict[str, str], body: bytes) -> None:
                answer = await client.post("/billing/webhooks/lemonsqueezy", content=body, headers=headers)
                assert answer.status_code == 200, answer.text

            server.deliver = deliver
            harness = Harness(app=app, payments=payments, client=client, settings=settings)
            yield LemonHost(harness, server, page)


async def paid_order(lemon: LemonHost, amount: int) -> dict[str, Any]:
    session = await lemon.checkout(amount=amount, currency="EUR", description="Ticket")
    await lemon.pay(session["url"])
    await lemon.server.flush()
    (payment,) = (await lemon.get("/payments"))["items"]
    return dict(payment)


async def refunds_of(lemon: LemonHost) -> list[Refund]:
    async with lemon.harness.payments.service() as svc:
        return list(await svc.session.scalars(sa.select(Refund).order_by(Refund.created_at)))


async def resume(lemon: LemonHost) -> int:
    async with lemon.harness.payments.service() as svc:
        return await svc.refunds.resume_pending(older_than=timedelta(0))


@pytest.mark.parametrize("webhook_first", [True, False], ids=["webhook-before-retry", "webhook-after-retry"])
async def test_a_refund_whose_answer_was_lost_is_not_made_again_by_a_new_process(
    engine: Any, database_url: str, webhook_first: bool
) -> None:
    server = seeded_server()
    async with process(server, database_url, attempts=1) as first:
        payment = await paid_order(first, 2500)
        order_id = int(payment["provider_payment_id"].removeprefix("orders/"))
        refund_path = f"/v1/orders/{order_id}/refund"
        server.lose_answers.add(("POST", refund_path))

        lost = await first.post(f"/admin/payments/{payment['id']}/refunds", {"amount": 1000}, admin=True)

        assert lost.status_code == 503, lost.text
        assert server.orders[order_id]["refunded_amount"] == 1000
        (pending,) = await refunds_of(first)
        assert (pending.status, pending.provider_fault) == (RefundStatus.PENDING, True)

    # A restart: a new adapter, a new router; Lemon Squeezy's order_refunded may come first.
    async with process(server, database_url, attempts=3) as second:
        if webhook_first:
            await server.flush()
        assert await resume(second) == 1
        await server.flush()

        assert server.requests.count(("POST", refund_path)) == 1
        assert server.orders[order_id]["refunded_amount"] == 1000
        (refund,) = await refunds_of(second)
        assert (refund.id, refund.status, refund.amount) == (pending.id, RefundStatus.SUCCEEDED, 1000)
        after = await second.get(f"/payments/{payment['id']}")
        assert (after["refunded_amount"], after["status"]) == (1000, "partially_refunded")

        # The rest is refunded once more, normally.
        rest = await second.post(f"/admin/payments/{payment['id']}/refunds", {}, admin=True)
        assert rest.status_code == 201, rest.text
        await server.flush()
        assert server.orders[order_id]["refunded_amount"] == 2500
        assert server.requests.count(("POST", refund_path)) == 2
        assert [r.amount for r in await refunds_of(second)] == [1000, 1500]


async def test_a_refund_that_never_arrived_is_sent_once_by_a_new_process(
    engine: Any, database_url: str
) -> None:
    server = seeded_server()
    async with process(server, database_url, attempts=1) as first:
        payment = await paid_order(first, 2500)
        order_id = int(payment["provider_payment_id"].removeprefix("orders/"))
        refund_path = f"/v1/orders/{order_id}/refund"
        server.refuse_connections.add(("POST", refund_path))

        refused = await first.post(f"/admin/payments/{payment['id']}/refunds", {"amount": 700}, admin=True)

        assert refused.status_code == 503, refused.text
        assert server.orders[order_id]["refunded_amount"] == 0

    async with process(server, database_url, attempts=3) as second:
        assert await resume(second) == 1
        await server.flush()

        assert server.requests.count(("POST", refund_path)) == 1
        assert server.orders[order_id]["refunded_amount"] == 700
        (refund,) = await refunds_of(second)
        assert (refund.status, refund.amount) == (RefundStatus.SUCCEEDED, 700)
        assert (await second.get(f"/payments/{payment['id']}"))["refunded_amount"] == 700


async def usage_rows(lemon: LemonHost) -> list[UsageRecord]:
    async with lemon.harness.payments.service() as svc:
        return list(await svc.session.scalars(sa.select(UsageRecord)))


@pytest.mark.parametrize("arrived", [True, False], ids=["answer-lost", "never-arrived"])
async def test_a_usage_report_whose_first_attempt_failed_counts_once_when_repeated_by_a_new_process(
    engine: Any, database_url: str, arrived: bool
) -> None:
    server = seeded_server()
    async with process(server, database_url, attempts=1) as first:
        usage_path = f"{await metered_subscription(first)}/usage"
        faults = server.lose_answers if arrived else server.refuse_connections
        faults.add(("POST", "/v1/usage-records"))

        failed = await first.post(usage_path, {"quantity": 7, "idempotency_key": "batch-7"})

        assert failed.status_code == 503, failed.text
        assert len(server.usage_records) == (1 if arrived else 0)
        (row,) = await usage_rows(first)
        assert (row.reported_at, row.provider_fault) == (None, True)

    async with process(server, database_url, attempts=3) as second:
        repeated = await second.post(usage_path, {"quantity": 7, "idempotency_key": "batch-7"})
        again = await second.post(usage_path, {"quantity": 7, "idempotency_key": "batch-7"})

        assert repeated.status_code == 200, repeated.text
        assert repeated.json()["duplicate"] is True
        assert again.status_code == 200, again.text
        assert [record["quantity"] for record in server.usage_records.values()] == [7]
        # A refused connection never reaches the server: one request arrived either way.
        assert server.requests.count(("POST", "/v1/usage-records")) == 1
        (row,) = await usage_rows(second)
        assert row.reported_at is not None
        assert row.provider_fault is False

        # Later usage is counted as usual, and the renewal bills both once.
        later = await second.post(usage_path, {"quantity": 3, "idempotency_key": "batch-8"})
        assert later.status_code == 201, later.text
        (provider_id,) = server.subscriptions
        invoice_id = await server.renew(provider_id)
        assert server.invoices[invoice_id]["total"] == 10 * 5


@pytest.mark.parametrize("arrived", [True, False], ids=["answer-lost", "never-arrived"])
async def test_an_unconfirmed_usage_report_nobody_repeats_is_sent_once_by_the_background_step(
    engine: Any, database_url: str, arrived: bool
) -> None:
    server = seeded_server()
    async with process(server, database_url, attempts=1) as first:
        usage_path = f"{await metered_subscription(first)}/usage"
        faults = server.lose_answers if arrived else server.refuse_connections
        faults.add(("POST", "/v1/usage-records"))
        failed = await first.post(usage_path, {"quantity": 4, "idempotency_key": "batch-4"})
        assert failed.status_code == 503, failed.text

    async with process(server, database_url, attempts=3) as second:
        async with second.harness.payments.service() as svc:
            # Not yet due: a report younger than the wait is left to its own caller.
            assert await svc.subscriptions.resume_unreported_usage(older_than=timedelta(hours=1)) == 0
        async with second.harness.payments.service() as svc:
            assert await svc.subscriptions.resume_unreported_usage(older_than=timedelta(0)) == 1
        async with second.harness.payments.service() as svc:
            assert await svc.subscriptions.resume_unreported_usage(older_than=timedelta(0)) == 0
        assert [record["quantity"] for record in server.usage_records.values()] == [4]
        assert server.requests.count(("POST", "/v1/usage-records")) == 1
        (row,) = await usage_rows(second)
        assert (row.reported_at is not None, row.provider_fault) == (True, False)
