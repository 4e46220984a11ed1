"""``fastapi-cashier lemonsqueezy ...`` and ``catalog sync`` against a Lemon Squeezy server on 127.0.0.1,
configured by PAYMENTS_* variables alone."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from fastapi_cashier import PaymentsRouter, PaymentsSettings
from fastapi_cashier.cli import main
from fastapi_cashier.providers.lemonsqueezy import SUBSCRIBED_EVENTS

from ..http.conftest import JWT_SECRET
from .lemonsqueezy_server import LemonSqueezyServer, Variant
from .servers import serve

SECRET = "ls-cli-secret"


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LemonSqueezyServer]:
    server = LemonSqueezyServer(currency="EUR", webhook_secret=SECRET)
    server.add_product(
        "Team", [Variant(11, 0, "Team monthly", 1000), Variant(12, 0, "Team yearly", 9000, interval="year")]
    )
    with serve(server.app) as url:
        env = {
            "PAYMENTS_ENVIRONMENT": "test",
            "PAYMENTS_DATABASE__URL": f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}",
            "PAYMENTS_DATABASE__CREATE_TABLES": "true",
            "PAYMENTS_AUTH__JWT_SECRET": JWT_SECRET,
            "PAYMENTS_DEFAULT_PROVIDER": "lemonsqueezy",
            "PAYMENTS_LEMONSQUEEZY__API_KEY": server.api_key,
            "PAYMENTS_LEMONSQUEEZY__STORE_ID": str(server.store_id),
            "PAYMENTS_LEMONSQUEEZY__WEBHOOK_SECRETS": f"{SECRET},older-secret",
            "PAYMENTS_LEMONSQUEEZY__API_BASE": f"{url}/v1",
        }
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        yield server


def cli(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def add_plans(*plans: tuple[str, int, str]) -> None:
    async def work() -> None:
        payments = PaymentsRouter(PaymentsSettings())
        await payments.startup()
        try:
            async with payments.service() as svc:
                product = await svc.catalog.create_product("Team")
                for name, amount, interval in plans:
                    await svc.catalog.create_plan(product.id, name, "flat", amount, "EUR", interval)
                await svc.commit()
        finally:
            await payments.shutdown()

    asyncio.run(work())


def test_webhook_register_creates_the_store_webhook_for_every_mapped_event(store: LemonSqueezyServer) -> None:
    result = cli("lemonsqueezy", "webhook", "register", "https://shop.example/billing/webhooks/lemonsqueezy")

    assert result.exit_code == 0, result.output
    (webhook,) = store.webhooks.values()
    assert webhook["url"] == "https://shop.example/billing/webhooks/lemonsqueezy"
    assert webhook["events"] == list(SUBSCRIBED_EVENTS)
    assert webhook["_secret"] == SECRET
    assert f"for {len(SUBSCRIBED_EVENTS)} events" in result.output


def test_plans_reports_links_differing_prices_and_unmatched_plans_and_changes_nothing(
    store: LemonSqueezyServer,
) -> None:
    add_plans(("Team monthly", 1200, "month"), ("Team yearly", 9000, "year"), ("Team weekly", 300, "week"))
    requests_before = len(store.requests)

    result = cli("lemonsqueezy", "plans")

    assert result.exit_code == 1, result.output
    assert "-> variant 11" in result.output
    assert "-> variant 12" in result.output
    assert "price     Team monthly: plan 1200, variant 11 1000" in result.output
    assert "unmatched Team weekly" in result.output
    assert all(method == "GET" for method, _ in store.requests[requests_before:])


def test_catalog_sync_links_matched_plans_and_names_the_unmatched(store: LemonSqueezyServer) -> None:
    add_plans(("Team monthly", 1000, "month"))
    linked = cli("catalog", "sync", "--provider", "lemonsqueezy")
    assert linked.exit_code == 0, linked.output
    assert "1 prices created" in linked.output

    add_plans(("Team weekly", 300, "week"))
    refused = cli("catalog", "sync", "--provider", "lemonsqueezy")
    assert refused.exit_code != 0
    assert "Team weekly" in refused.output
    assert "PLAN_VARIANTS" in refused.output
    assert {variant.id for variant in store.variants.values()} == {11, 12}
