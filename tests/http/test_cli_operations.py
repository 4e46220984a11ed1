"""``fastapi-cashier catalog sync`` and ``reconcile`` on the host's own router (``--app``)."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import types
import uuid
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from fastapi import FastAPI

from fastapi_cashier import PaymentsRouter
from fastapi_cashier.cli import main
from fastapi_cashier.db.model_repositories import SubscriptionRepository

from .conftest import Harness, settings_for
from .test_cli_webhooks import _env
from .test_subscriptions import create_plan, subscribe


@contextlib.asynccontextmanager
async def _served(payments: PaymentsRouter) -> Any:
    app = FastAPI()
    app.include_router(payments, prefix="/billing")
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield Harness(app=app, payments=payments, client=client, settings=payments.settings)


@pytest.fixture
def host_router(fresh_database_url: str, monkeypatch: pytest.MonkeyPatch) -> PaymentsRouter:
    """The host's router, importable as ``cashier_host_app:payments`` (its fake keeps its state)."""
    payments = PaymentsRouter(settings_for(fresh_database_url))
    module = types.ModuleType("cashier_host_app")
    module.payments = payments  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "cashier_host_app", module)
    return payments


def test_catalog_sync_creates_prices_once(host_router: PaymentsRouter, fresh_database_url: str) -> None:
    async def setup() -> None:
        async with _served(host_router) as harness:
            for _ in range(3):
                await create_plan(harness)

    asyncio.run(setup())
    runner = CliRunner()
    args = ["catalog", "sync", "--provider", "fake", "--app", "cashier_host_app:payments"]
    first = runner.invoke(main, args, env=_env(fresh_database_url))
    assert first.exit_code == 0, first.output
    assert first.output.strip().splitlines()[-1] == "3 prices created, 0 unchanged, 0 archived"
    again = runner.invoke(main, args, env=_env(fresh_database_url))
    assert again.output.strip().splitlines()[-1] == "0 prices created, 3 unchanged, 0 archived"
    assert len(host_router.providers["fake"].prices) == 3  # type: ignore[attr-defined]
    unknown = runner.invoke(main, ["catalog", "sync", "--provider", "nope"], env=_env(fresh_database_url))
    assert unknown.exit_code == 1
    assert "provider 'nope' is not enabled" in unknown.output


def test_reconcile_reports_then_fixes_drift(host_router: PaymentsRouter, fresh_database_url: str) -> None:
    async def setup() -> None:
        async with _served(host_router) as harness:
            plan = await create_plan(harness)
            subscription = await subscribe(harness, plan["id"], quantity=2)
            harness.fake.auto_deliver = False
            async with harness.payments.service() as svc:
                row = await SubscriptionRepository(session=svc.session).get_or_none(
                    uuid.UUID(subscription["id"])
                )
            assert row is not None
            assert row.provider_subscription_id is not None
            harness.fake.subscriptions[row.provider_subscription_id].quantity = 7

    asyncio.run(setup())
    runner = CliRunner()
    base = ["reconcile", "--provider", "fake", "--app", "cashier_host_app:payments"]
    report = runner.invoke(main, base, env=_env(fresh_database_url))
    assert report.exit_code == 1
    assert "quantity local=2 provider=7 [not fixed]" in report.output
    assert report.output.strip().splitlines()[-1].endswith("1 drifted, 0 fixed")
    fixed = runner.invoke(main, [*base, "--fix"], env=_env(fresh_database_url))
    assert fixed.exit_code == 0, fixed.output
    assert "quantity local=2 provider=7 [fixed]" in fixed.output
    clean = runner.invoke(main, [*base, "--all"], env=_env(fresh_database_url))
    assert clean.exit_code == 0
    assert clean.output.strip().splitlines()[-1].endswith("0 drifted, 0 fixed")
