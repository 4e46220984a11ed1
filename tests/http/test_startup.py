"""Start-up: the router refuses unsafe or incomplete configurations, and owns its engine."""

from __future__ import annotations

import os
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pydantic
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import create_async_engine

from fastapi_cashier import ConfigurationError, PaymentsRouter, PaymentsSettings, Principal
from fastapi_cashier.api.auth import create_token
from fastapi_cashier.db import metadata
from fastapi_cashier.providers.base import PaymentProvider
from fastapi_cashier.providers.manual import ManualProvider
from fastapi_cashier.providers.stripe import StripeProvider

from .conftest import JWT_SECRET, WEBHOOK_SECRET, settings_for

pytestmark = pytest.mark.anyio


@pytest.fixture(autouse=True)
def _no_payments_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests build settings from scratch: PAYMENTS_* variables of the shell must not leak in."""
    for name in list(os.environ):
        if name.upper().startswith("PAYMENTS_"):
            monkeypatch.delenv(name)


def make_settings(tmp_path: Path, **values: Any) -> PaymentsSettings:
    """Settings on a SQLite file in ``tmp_path``, ignoring any ``.env`` file."""
    values.setdefault("database", {"url": f"sqlite+aiosqlite:///{tmp_path / 'payments.db'}"})
    return PaymentsSettings(_env_file=None, **values)  # type: ignore[call-arg]


async def host_auth() -> Principal:
    return Principal(subject="host-user", is_admin=True)


class AcmeProvider(ManualProvider):
    """A host's own adapter: the manual provider under another name is a complete PaymentProvider."""

    name = "acme"


@asynccontextmanager
async def running(payments: PaymentsRouter, prefix: str = "/billing") -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    app.include_router(payments, prefix=prefix)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client


# ---------------------------------------------------------------------- refusals


def test_no_authentication_configured_is_refused(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    assert settings.auth.jwt_secret is None
    assert settings.auth.jwt_public_key is None
    with pytest.raises(ConfigurationError, match="no authentication is configured") as raised:
        PaymentsRouter(settings)
    assert "authenticate=" in raised.value.message
    assert "PAYMENTS_AUTH__JWT_SECRET" in raised.value.message


def test_production_with_the_fake_provider_is_refused_by_the_settings(tmp_path: Path) -> None:
    with pytest.raises(pydantic.ValidationError, match="fake provider") as raised:
        make_settings(
            tmp_path,
            environment="production",
            auth={"jwt_secret": JWT_SECRET},
            fake={"webhook_secret": WEBHOOK_SECRET},
        )
    assert "production" in str(raised.value)
    assert WEBHOOK_SECRET not in str(raised.value)


def test_production_with_auth_mode_none_is_refused_by_the_settings(tmp_path: Path) -> None:
    with pytest.raises(pydantic.ValidationError, match=r"auth\.mode='none'") as raised:
        make_settings(tmp_path, environment="production", auth={"mode": "none"})
    assert "production" in str(raised.value)


def test_rs256_without_a_public_key_is_refused(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, auth={"jwt_secret": JWT_SECRET, "jwt_algorithms": ["RS256"]})
    with pytest.raises(ConfigurationError, match="jwt_public_key"):
        PaymentsRouter(settings)


def test_rs256_without_any_key_is_refused(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, auth={"jwt_algorithms": ["RS256"]})
    with pytest.raises(ConfigurationError, match="no authentication is configured"):
        PaymentsRouter(settings)


def test_a_jwt_secret_too_short_for_hs256_is_refused(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, auth={"jwt_secret": "short"})
    with pytest.raises(ConfigurationError, match="HS256 needs at least 32"):
        PaymentsRouter(settings)


def test_a_default_provider_that_was_not_passed_is_refused(tmp_path: Path) -> None:
    # Not a built-in name, so the settings cannot know; the router can.
    settings = make_settings(tmp_path, auth={"jwt_secret": JWT_SECRET}, default_provider="acme")
    with pytest.raises(ConfigurationError, match="default_provider 'acme' is not an enabled provider"):
        PaymentsRouter(settings)


def test_a_builtin_default_provider_that_is_off_is_refused(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, auth={"jwt_secret": JWT_SECRET}, default_provider="stripe")
    with pytest.raises(ConfigurationError, match="default_provider 'stripe' is not an enabled") as raised:
        PaymentsRouter(settings)
    assert "enabled: manual" in raised.value.message
    assert "PAYMENTS_STRIPE__*" in raised.value.message


def test_a_host_adapter_with_a_builtin_name_may_be_the_default(tmp_path: Path) -> None:
    # A host building its own StripeProvider (its own HTTP client, say) leaves the section unset.
    settings = make_settings(tmp_path, auth={"jwt_secret": JWT_SECRET}, default_provider="stripe")
    own = StripeProvider(api_key="sk_test_own", webhook_secrets=["whsec_own"])
    payments = PaymentsRouter(settings, providers=[own])
    assert payments.providers["stripe"] is own


@pytest.mark.parametrize("bad", [object(), "stripe", AcmeProvider], ids=["object", "string", "class"])
def test_a_host_provider_that_does_not_implement_the_protocol_is_refused(tmp_path: Path, bad: Any) -> None:
    settings = make_settings(tmp_path, auth={"jwt_secret": JWT_SECRET})
    with pytest.raises(ConfigurationError, match="does not implement the PaymentProvider protocol"):
        PaymentsRouter(settings, providers=[bad])


def test_two_host_providers_with_the_same_name_are_refused(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, auth={"jwt_secret": JWT_SECRET})
    assert isinstance(AcmeProvider(), PaymentProvider)
    with pytest.raises(ConfigurationError, match="two providers are called 'acme'"):
        PaymentsRouter(settings, providers=[AcmeProvider(), AcmeProvider()])


def test_a_host_provider_named_like_a_builtin_one_is_refused(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, auth={"jwt_secret": JWT_SECRET})
    with pytest.raises(ConfigurationError, match="two providers are called 'manual'"):
        PaymentsRouter(settings, providers=[ManualProvider()])


def test_the_lemonsqueezy_section_alone_enables_its_adapter(tmp_path: Path) -> None:
    from fastapi_cashier.providers.lemonsqueezy import LemonSqueezyProvider

    section = {
        "api_key": "ls_key",
        "store_id": "17",
        "webhook_secrets": "first-secret,second-secret",
        "api_base": "http://127.0.0.1:9/v1",
    }
    payments = PaymentsRouter(make_settings(tmp_path, auth={"jwt_secret": JWT_SECRET}, lemonsqueezy=section))
    provider = payments.providers["lemonsqueezy"]
    assert isinstance(provider, LemonSqueezyProvider)
    assert provider.store_id == "17"
    assert provider.client.api_base == "http://127.0.0.1:9/v1"


def test_the_lemonsqueezy_section_without_a_webhook_secret_is_refused(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path, auth={"jwt_secret": JWT_SECRET}, lemonsqueezy={"api_key": "key", "store_id": "1"}
    )
    with pytest.raises(ConfigurationError, match="PAYMENTS_LEMONSQUEEZY__WEBHOOK_SECRETS"):
        PaymentsRouter(settings)


def test_a_stripe_section_without_a_webhook_secret_is_refused(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, auth={"jwt_secret": JWT_SECRET}, stripe={"api_key": "sk_test_123"})
    with pytest.raises(ConfigurationError, match="webhook secret"):
        PaymentsRouter(settings)


async def test_a_stripe_section_alone_enables_the_stripe_provider(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path,
        auth={"jwt_secret": JWT_SECRET},
        stripe={"api_key": "sk_test_123", "webhook_secrets": "whsec_old,whsec_new"},
    )
    payments = PaymentsRouter(settings)
    provider = payments.providers["stripe"]
    assert isinstance(provider, StripeProvider)
    assert provider.tolerance_seconds == settings.webhooks.tolerance_seconds
    app = FastAPI()
    app.include_router(payments, prefix="/billing")
    async with app.router.lifespan_context(app):
        assert payments.engine is not None
    # Shutting down closed the provider's connections and left it usable.
    assert not provider._http_client.is_closed


async def test_an_unreachable_database_fails_the_lifespan(tmp_path: Path) -> None:
    missing_dir = tmp_path / "does" / "not" / "exist"
    settings = make_settings(
        tmp_path,
        auth={"jwt_secret": JWT_SECRET},
        database={"url": f"sqlite+aiosqlite:///{missing_dir / 'payments.db'}"},
    )
    payments = PaymentsRouter(settings)
    app = FastAPI()
    app.include_router(payments, prefix="/billing")
    with pytest.raises(Exception, match="unable to open database file"):
        async with app.router.lifespan_context(app):
            pass
    with pytest.raises(ConfigurationError, match="has not started"):
        _ = payments.engine
    # aiosqlite stops the worker thread of a failed connection in the background and reports
    # back to the event loop; let it finish while the loop is still open.
    for thread in threading.enumerate():
        if "_connection_worker_thread" in thread.name:
            await anyio.to_thread.run_sync(thread.join, 5)


# ---------------------------------------------------------------------- what does start


async def test_a_host_authenticate_starts_without_any_jwt_settings(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    assert not settings.auth.configured
    payments = PaymentsRouter(settings, authenticate=host_auth)
    async with running(payments) as client:
        me = await client.get("/billing/me")
        assert me.status_code == 200, me.text
        assert me.json()["external_id"] == "host-user"
        summary = await client.get("/billing/admin/summary")
        assert summary.status_code == 200


async def test_a_host_provider_can_be_the_default(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, auth={"jwt_secret": JWT_SECRET}, default_provider="acme")
    payments = PaymentsRouter(settings, providers=[AcmeProvider()])
    assert sorted(payments.providers) == ["acme", "manual"]
    async with running(payments) as client:
        health = await client.get("/billing/health")
        assert health.json()["providers"] == ["acme", "manual"]


async def test_auth_mode_none_makes_every_caller_the_demo_admin(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, environment="development", auth={"mode": "none"})
    payments = PaymentsRouter(settings)
    async with running(payments) as client:
        summary = await client.get("/billing/admin/summary")
        assert summary.status_code == 200, summary.text
        assert summary.json()["payments"] == []
        me = await client.get("/billing/me")
        assert me.status_code == 200
        assert me.json()["external_id"] == "demo"
        assert me.json()["email"] == "demo@example.com"
        customers = await client.get("/billing/admin/customers")
        assert [c["external_id"] for c in customers.json()["items"]] == ["demo"]


async def test_auth_mode_none_still_verifies_a_token_that_is_sent(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, auth={"mode": "none", "jwt_secret": JWT_SECRET})
    payments = PaymentsRouter(settings)
    async with running(payments) as client:
        forged = await client.get("/billing/me", headers={"Authorization": "Bearer not-a-jwt"})
        assert forged.status_code == 401
        assert forged.json()["code"] == "authentication_required"


async def test_health_answers_with_the_providers(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path, auth={"jwt_secret": JWT_SECRET}, fake={"webhook_secret": WEBHOOK_SECRET}
    )
    payments = PaymentsRouter(settings)
    async with running(payments) as client:
        health = await client.get("/billing/health")
        assert health.status_code == 200
        assert health.headers["content-type"].startswith("application/json")
        assert health.json() == {"status": "ok", "database": "ok", "providers": ["fake", "manual"]}


async def test_health_without_the_manual_provider(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, auth={"jwt_secret": JWT_SECRET}, manual={"enabled": False})
    payments = PaymentsRouter(settings)
    assert payments.providers == {}
    async with running(payments) as client:
        health = await client.get("/billing/health")
        assert health.json()["providers"] == []


async def test_the_lifespan_creates_tables_on_a_fresh_sqlite_file_and_disposes_the_engine(
    tmp_path: Path,
) -> None:
    path = tmp_path / "fresh" / "payments.db"
    path.parent.mkdir()
    assert not path.exists()
    settings = make_settings(
        tmp_path, auth={"jwt_secret": JWT_SECRET}, database={"url": f"sqlite+aiosqlite:///{path}"}
    )
    assert settings.should_create_tables
    payments = PaymentsRouter(settings)
    with pytest.raises(ConfigurationError, match="has not started"):
        _ = payments.engine

    async with running(payments) as client:
        assert payments.engine is not None
        assert (await client.get("/billing/health")).status_code == 200
    assert path.exists()

    with pytest.raises(ConfigurationError, match="has not started"):
        _ = payments.engine
    with pytest.raises(ConfigurationError, match="has not started"):
        _ = payments.session_factory

    probe = create_async_engine(f"sqlite+aiosqlite:///{path}")
    try:
        async with probe.connect() as connection:
            tables = await connection.run_sync(lambda sync: set(sa.inspect(sync).get_table_names()))
    finally:
        await probe.dispose()
    assert set(metadata.tables) <= tables


async def test_the_lifespan_creates_tables_on_a_fresh_database(fresh_database_url: str) -> None:
    payments = PaymentsRouter(settings_for(fresh_database_url))
    async with running(payments) as client:
        me = await client.get(
            "/billing/me", headers={"Authorization": f"Bearer {_token(payments, 'first-user')}"}
        )
        assert me.status_code == 200, me.text
        async with payments.engine.connect() as connection:
            tables = await connection.run_sync(lambda sync: set(sa.inspect(sync).get_table_names()))
        assert set(metadata.tables) <= tables
    with pytest.raises(ConfigurationError):
        _ = payments.engine


def _token(payments: PaymentsRouter, subject: str) -> str:
    return create_token(payments.settings.auth, subject)


async def test_create_tables_false_on_a_fresh_database_starts_but_has_no_tables(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    settings = make_settings(
        tmp_path,
        auth={"jwt_secret": JWT_SECRET},
        database={"url": f"sqlite+aiosqlite:///{path}", "create_tables": False},
    )
    payments = PaymentsRouter(settings)
    async with running(payments):
        async with payments.engine.connect() as connection:
            tables = await connection.run_sync(lambda sync: sa.inspect(sync).get_table_names())
        assert tables == []


async def test_the_service_can_be_used_by_host_code_after_start_up(fresh_database_url: str) -> None:
    payments = PaymentsRouter(settings_for(fresh_database_url))
    async with running(payments) as client:
        async with payments.service() as svc:
            created = await svc.customers.get_or_create("host-42", email="h42@example.com", name="Host User")
            customer_id = created.id
        async with payments.service() as svc:
            again = await svc.customers.get(customer_id)
            assert (again.external_id, again.email, again.name) == ("host-42", "h42@example.com", "Host User")
            same = await svc.customers.get_or_create("host-42")
            assert same.id == customer_id

        # The HTTP API sees the customer host code created.
        me = await client.get(
            "/billing/me", headers={"Authorization": f"Bearer {_token(payments, 'host-42')}"}
        )
        assert me.json()["id"] == str(customer_id)
        assert me.json()["name"] == "Host User"


async def test_a_failing_service_block_rolls_back(fresh_database_url: str) -> None:
    payments = PaymentsRouter(settings_for(fresh_database_url))
    async with running(payments):

        async def failing_host_code() -> None:
            async with payments.service() as svc:
                await svc.customers.get_or_create("host-rolled-back")
                raise RuntimeError("host code failed")

        with pytest.raises(RuntimeError, match="host code failed"):
            await failing_host_code()
        async with payments.service() as svc:
            customer = await svc.customers.get_or_create("host-kept")
            assert customer.external_id == "host-kept"
        async with payments.service() as svc:
            rows = await svc.session.execute(sa.text("SELECT external_id FROM cashier_customers"))
            assert [row[0] for row in rows] == ["host-kept"]
