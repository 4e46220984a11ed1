"""``fastapi-cashier catalog sync --provider paypal`` and ``reconcile --provider paypal [--fix]``.

The host's router (importable as ``cashier_paypal_host:payments``) runs on the PayPal sandbox.
The tests are synchronous: the command line runs its own event loop, so each piece of HTTP work
serves the app in an event loop of its own, as one process of the host would.
"""

from __future__ import annotations

import asyncio
import sys
import types
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx
import pytest
from click.testing import CliRunner, Result
from fastapi import FastAPI

from fastapi_cashier import PaymentsRouter
from fastapi_cashier.cli import main
from fastapi_cashier.db.models import Subscription
from fastapi_cashier.providers.paypal import PayPalProvider

from ..http.conftest import Harness, settings_for
from ..http.test_subscriptions import URLS, create_plan
from .paypal_sandbox import PayPalSandbox
from .paypal_sandbox.fixtures import sandbox_provider
from .test_stripe_router import _prepare, _tables_made

T = TypeVar("T")
HOST_MODULE = "cashier_paypal_host"
APP = f"{HOST_MODULE}:payments"


@dataclass
class Host:
    payments: PaymentsRouter
    sandbox: PayPalSandbox
    provider: PayPalProvider

    def run(self, work: Callable[[Harness], Awaitable[T]]) -> T:
        async def serve() -> T:
            app = FastAPI()
            app.include_router(self.payments, prefix="/billing")
            async with app.router.lifespan_context(app):
                transport = httpx.ASGITransport(app=app)
                async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
                    return await work(
                        Harness(
                            app=app, payments=self.payments, client=client, settings=self.payments.settings
                        )
                    )

        return asyncio.run(serve())

    def cli(self, *args: str) -> Result:
        return CliRunner().invoke(main, [*args, "--app", APP], catch_exceptions=False)


@pytest.fixture
def host(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Host]:
    if database_url not in _tables_made:
        asyncio.run(_prepare(database_url, clear=False))
        _tables_made.add(database_url)
    sandbox = PayPalSandbox()
    provider = sandbox_provider(sandbox)
    database = {"url": database_url, "create_tables": False}
    settings = settings_for(database_url, database=database, fake=None, default_provider=None)
    payments = PaymentsRouter(settings, providers=[provider])
    module = types.ModuleType(HOST_MODULE)
    module.payments = payments  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, HOST_MODULE, module)
    try:
        yield Host(payments, sandbox, provider)
    finally:
        asyncio.run(_prepare(database_url, clear=True))


async def click(provider: PayPalProvider, url: str) -> httpx.Response:
    http = provider.client.http
    page = await http.get(url)
    action = page.text.split('<form method="post" action="', 1)[1].split('"', 1)[0]
    return await http.post(action, data={"action": "approve"})


def test_catalog_sync_and_reconcile(host: Host) -> None:
    plan = host.run(
        lambda harness: create_plan(harness, pricing_model="metered", unit_amount=5, currency="USD")
    )
    refused = host.cli("catalog", "sync", "--provider", "paypal")
    assert refused.exit_code != 0
    assert "metered" in refused.output
    assert host.sandbox.state.plans == {}

    async def flat_plan(harness: Harness) -> Any:
        return await create_plan(harness, pricing_model="flat", unit_amount=900, currency="USD", name="Solo")

    host.run(flat_plan)

    async def drop_metered(harness: Harness) -> None:
        admin = harness.auth("root", admin=True)
        answer = await harness.client.patch(
            f"/billing/admin/plans/{plan['id']}", json={"active": False}, headers=admin
        )
        assert answer.status_code == 200, answer.text

    host.run(drop_metered)
    synced = host.cli("catalog", "sync", "--provider", "paypal")
    assert synced.exit_code == 0, synced.output
    [paypal_plan] = host.sandbox.state.plans.values()
    assert paypal_plan["billing_cycles"][0]["pricing_scheme"]["fixed_price"] == {
        "currency_code": "USD",
        "value": "9.00",
    }
    again = host.cli("catalog", "sync", "--provider", "paypal")
    assert again.exit_code == 0, again.output
    assert len(host.sandbox.state.plans) == 1

    async def pay(harness: Harness) -> dict[str, Any]:
        created = await harness.client.post(
            "/billing/checkout-sessions",
            json={"amount": 5000, "currency": "USD", "provider": "paypal", **URLS},
            headers=harness.auth("alice"),
        )
        assert created.status_code == 201, created.text
        back = urlsplit((await click(host.provider, created.json()["url"])).headers["location"])
        assert (await harness.client.get(f"{back.path}?{back.query}")).status_code == 303
        for headers, body in host.sandbox.sent_events:
            assert (
                await harness.client.post("/billing/webhooks/paypal", content=body, headers=headers)
            ).status_code == 200
        listed = await harness.client.get("/billing/payments", headers=harness.auth("alice"))
        [payment] = listed.json()["items"]
        result: dict[str, Any] = payment
        return result

    payment = host.run(pay)
    assert payment["status"] == "succeeded"
    clean = host.cli("reconcile", "--provider", "paypal")
    assert clean.exit_code == 0, clean.output
    assert clean.stdout.splitlines()[-1] == "1 checked, 0 drifted, 0 fixed"

    # Refunded in PayPal's dashboard; the webhook never arrived.
    async def refund_outside(_: Harness) -> None:
        await host.provider.client.post(
            f"/v2/payments/captures/{payment['provider_payment_id']}/refund",
            operation="refund in the dashboard",
            request_id="dashboard-1",
            json={"amount": {"currency_code": "USD", "value": "20.00"}},
        )

    host.run(refund_outside)
    report = host.cli("reconcile", "--provider", "paypal")
    assert report.exit_code == 1, report.output
    assert "drifted" in report.stdout.splitlines()[-1]
    assert "[not fixed]" in report.stdout
    fixed = host.cli("reconcile", "--provider", "paypal", "--fix")
    assert fixed.exit_code == 0, fixed.output
    assert "[fixed]" in fixed.stdout

    async def seen(harness: Harness) -> dict[str, Any]:
        listed = await harness.client.get("/billing/payments", headers=harness.auth("alice"))
        [found] = listed.json()["items"]
        result: dict[str, Any] = found
        return result

    after = host.run(seen)
    assert (after["status"], after["refunded_amount"]) == ("partially_refunded", 2000)
    final = host.cli("reconcile", "--provider", "paypal")
    assert final.exit_code == 0, final.output


def test_subscriptions_cancel_due_cancels_at_paypal_once_the_period_has_ended(host: Host) -> None:
    async def subscribe(harness: Harness) -> dict[str, Any]:
        plan = await create_plan(harness, pricing_model="flat", unit_amount=900, currency="USD", name="Solo")
        admin = harness.auth("root", admin=True)
        synced = await harness.client.post(
            "/billing/admin/catalog/sync", params={"provider": "paypal"}, headers=admin
        )
        assert synced.status_code == 200, synced.text
        alice = harness.auth("alice")
        created = await harness.client.post(
            "/billing/checkout-sessions",
            json={"plan_id": plan["id"], "provider": "paypal", **URLS},
            headers=alice,
        )
        assert created.status_code == 201, created.text
        assert (await click(host.provider, created.json()["url"])).status_code == 303
        for headers, body in host.sandbox.sent_events:
            delivered = await harness.client.post("/billing/webhooks/paypal", content=body, headers=headers)
            assert delivered.status_code == 200, delivered.text
        [sub] = (await harness.client.get("/billing/subscriptions", headers=alice)).json()["items"]
        ending = await harness.client.post(
            f"/billing/subscriptions/{sub['id']}/cancel", json={"at_period_end": True}, headers=alice
        )
        assert ending.status_code == 200, ending.text
        result: dict[str, Any] = ending.json()
        return result

    sub = host.run(subscribe)
    assert (sub["status"], sub["cancel_at_period_end"]) == ("active", True)
    early = host.cli("subscriptions", "cancel-due")
    assert early.exit_code == 0, early.output
    assert early.stdout.splitlines()[-1] == "0 subscriptions cancelled at their period end"

    # The library's clock passes the period end (PayPal's has not billed again yet).
    async def period_ended(harness: Harness) -> None:
        async with harness.payments.service() as svc:
            row = await svc.session.get(Subscription, uuid.UUID(sub["id"]))
            assert row is not None
            row.current_period_end = datetime.now(UTC) - timedelta(minutes=1)

    host.run(period_ended)
    due = host.cli("subscriptions", "cancel-due")
    assert due.exit_code == 0, due.output
    assert due.stdout.splitlines() == [
        f"cancelled {sub['id']}",
        "1 subscriptions cancelled at their period end",
    ]
    again = host.cli("subscriptions", "cancel-due")
    assert again.stdout.splitlines()[-1] == "0 subscriptions cancelled at their period end"
    cancels = [
        path for method, path, _ in host.sandbox.state.calls if method == "POST" and path.endswith("/cancel")
    ]
    assert len(cancels) == 1
    [paypal_sub] = host.sandbox.state.subscriptions.values()
    assert paypal_sub["status"] == "CANCELLED"
