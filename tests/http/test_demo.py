"""The demo shop, the ``demo`` and ``token`` commands, and ``examples/minimal_app.py``."""

from __future__ import annotations

import importlib.util
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import jwt
import pytest
import sqlalchemy as sa
import uvicorn
from click.testing import CliRunner
from fastapi import FastAPI

from fastapi_cashier import PaymentsRouter
from fastapi_cashier.api.auth import create_token
from fastapi_cashier.billing import ratelimits
from fastapi_cashier.cli import main
from fastapi_cashier.db.models import Product
from fastapi_cashier.demo import DEMO_CUSTOMER, create_demo_app

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "minimal_app.py"
JWT_SECRET = "cli-test-secret-that-is-long-enough-for-hs256"


def sqlite_url(tmp_path: Path, name: str = "demo.db") -> str:
    return f"sqlite+aiosqlite:///{tmp_path / name}"


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """The app inside its lifespan, with a client that does not follow redirects."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client


async def buy_ticket(client: httpx.AsyncClient, outcome: str) -> str:
    """Buy through the shop and the fake checkout page; where the checkout sends the buyer back."""
    bought = await client.post("/demo/buy")
    assert bought.status_code == 303
    checkout_url = bought.headers["location"]
    submitted = await client.post(checkout_url, data={"outcome": outcome})
    assert submitted.status_code == 303
    return submitted.headers["location"]


# ------------------------------------------------------------------------------- the demo shop


@pytest.mark.anyio
async def test_buying_a_ticket_goes_through_the_fake_checkout_and_lists_the_payment(tmp_path: Path) -> None:
    app, _payments, settings = create_demo_app(database_url=sqlite_url(tmp_path))
    async with running(app) as client:
        home = await client.get("/")
        assert home.status_code == 200
        assert home.headers["content-type"].startswith("text/html")
        assert '<form method="post" action="http://testserver/demo/buy">' in home.text
        assert 'id="buy"' in home.text
        assert "Buy a concert ticket (€25.00)" in home.text

        bought = await client.post("/demo/buy")
        assert bought.status_code == 303
        checkout_url = bought.headers["location"]
        assert checkout_url.startswith("http://testserver/billing/fake/checkout/")

        page = await client.get(checkout_url)
        assert page.status_code == 200
        assert 'id="pay"' in page.text
        assert "25.00 EUR" in page.text
        assert "Concert ticket" in page.text

        submitted = await client.post(checkout_url, data={"outcome": "succeeded"})
        assert submitted.status_code == 303
        assert submitted.headers["location"] == "http://testserver/demo/success"

        success = await client.get("/demo/success")
        assert success.status_code == 200
        rows = re.findall(r'<tr class="payment" data-status="([a-z_]+)">(.*?)</tr>', success.text)
        assert len(rows) == 1
        status, cells = rows[0]
        assert status == "succeeded"
        assert "25.00 EUR" in cells
        assert "ticket-1" in cells

        # The pages act for the same customer the printed customer token names.
        token = create_token(settings.auth, DEMO_CUSTOMER)
        listing = await client.get("/billing/payments", headers={"Authorization": f"Bearer {token}"})
        assert listing.status_code == 200
        [payment] = listing.json()["items"]
        assert (payment["status"], payment["amount"], payment["currency"]) == ("succeeded", 2500, "EUR")
        assert payment["reference"] == "ticket-1"


@pytest.mark.anyio
async def test_a_declined_checkout_returns_to_the_cancel_page_with_the_failed_payment(tmp_path: Path) -> None:
    app, _payments, _settings = create_demo_app(database_url=sqlite_url(tmp_path))
    async with running(app) as client:
        assert await buy_ticket(client, "declined") == "http://testserver/demo/cancel"
        cancel = await client.get("/demo/cancel")
        assert cancel.status_code == 200
        assert "Payment not completed" in cancel.text
        assert re.findall(r'data-status="([a-z_]+)"', cancel.text) == ["failed"]


@pytest.mark.anyio
async def test_the_payment_pages_say_so_when_there_is_no_payment_yet(tmp_path: Path) -> None:
    app, _payments, _settings = create_demo_app(database_url=sqlite_url(tmp_path))
    async with running(app) as client:
        page = await client.get("/demo/success")
        assert page.status_code == 200
        assert "No payments yet." in page.text


def test_the_demo_ignores_payments_environment_variables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PAYMENTS_ENVIRONMENT", "production")
    monkeypatch.setenv("PAYMENTS_STRIPE__API_KEY", "sk_test_from_the_environment")
    monkeypatch.setenv("PAYMENTS_AUTH__JWT_SECRET", JWT_SECRET)
    _app, payments, settings = create_demo_app(database_url=sqlite_url(tmp_path))
    assert settings.environment == "development"
    assert settings.stripe is None
    assert settings.auth.jwt_secret is not None
    assert settings.auth.jwt_secret.get_secret_value() != JWT_SECRET
    assert sorted(payments.providers) == ["fake", "manual"]
    assert settings.default_provider == "fake"


def test_the_demo_uses_a_given_jwt_secret_and_generates_one_otherwise(tmp_path: Path) -> None:
    _app, _payments, given = create_demo_app(database_url=sqlite_url(tmp_path), jwt_secret=JWT_SECRET)
    assert given.auth.jwt_secret is not None
    assert given.auth.jwt_secret.get_secret_value() == JWT_SECRET
    secrets = set()
    for _ in range(2):
        _app, _payments, generated = create_demo_app(database_url=sqlite_url(tmp_path))
        assert generated.auth.jwt_secret is not None
        secrets.add(generated.auth.jwt_secret.get_secret_value())
    assert len(secrets) == 2


# ------------------------------------------------------------------------------- the subscription


async def product_names(payments: PaymentsRouter) -> list[str]:
    async with payments.service() as svc:
        return list(await svc.session.scalars(sa.select(Product.name).order_by(Product.name)))


async def subscribe(client: httpx.AsyncClient, seats: int) -> str:
    """Subscribe to Team through the shop's form and the fake checkout page; where the buyer lands."""
    started = await client.post("/demo/subscribe", data={"seats": str(seats)})
    assert started.status_code == 303, started.text
    checkout_url = started.headers["location"]
    assert checkout_url.startswith("http://testserver/billing/fake/checkout/")
    page = await client.get(checkout_url)
    assert page.status_code == 200
    assert "Subscribe" in page.text
    assert "14-day free trial" in page.text
    paid = await client.post(checkout_url, data={"outcome": "succeeded"})
    assert paid.status_code == 303
    return str(paid.headers["location"])


def table_rows(html: str, kind: str) -> list[tuple[str, str, str]]:
    """``(data-status, second data attribute, cells)`` of the account page's rows of ``kind``."""
    pattern = rf'<tr class="{kind}" data-status="([a-z_]+)" data-[a-z]+="(-?\d+)">(.*?)</tr>'
    return re.findall(pattern, html)


@pytest.mark.anyio
async def test_the_catalog_is_seeded_once_even_when_the_demo_restarts_on_the_same_database(
    tmp_path: Path,
) -> None:
    url = sqlite_url(tmp_path)
    for _ in range(2):
        app, payments, _settings = create_demo_app(database_url=url)
        async with running(app) as client:
            assert await product_names(payments) == ["Team workspace"]
            plans = (await client.get("/billing/plans")).json()
        assert [
            (plan["name"], plan["pricing_model"], plan["unit_amount"], plan["currency"], plan["interval"])
            for plan in plans
        ] == [("Hobby", "free", 0, "EUR", "month"), ("Team", "per_unit", 900, "EUR", "month")]
        hobby, team = plans
        assert (hobby["trial_days"], hobby["features"]) == (
            0,
            {"requests_per_minute": 5, "requests_per_hour": 50},
        )
        assert team["trial_days"] == 14
        assert team["features"] == {
            "api_access": True,
            "credits_per_period": 100,
            "requests_per_minute": 20,
            "requests_per_hour": 500,
        }
        assert hobby["product_id"] == team["product_id"]


@pytest.mark.anyio
async def test_the_shop_offers_the_team_plan_with_a_seats_field(tmp_path: Path) -> None:
    app, _payments, _settings = create_demo_app(database_url=sqlite_url(tmp_path))
    async with running(app) as client:
        home = await client.get("/")
        assert '<form method="post" action="http://testserver/demo/subscribe">' in home.text
        assert '<input type="number" id="seats" name="seats" min="1" max="50"' in home.text
        assert "Subscribe to Team" in home.text
        assert "€9.00 per seat / month" in home.text
        for seats in ("0", "51", "many"):
            refused = await client.post("/demo/subscribe", data={"seats": seats})
            assert refused.status_code == 422, seats
        empty = await client.get("/demo/account")
        assert empty.status_code == 200
        assert "No subscriptions yet" in empty.text
        assert "No invoices yet." in empty.text
        assert 'data-balance="0"' in empty.text


@pytest.mark.anyio
async def test_subscribing_with_three_seats_starts_a_trial_listed_on_the_account_page(tmp_path: Path) -> None:
    app, _payments, _settings = create_demo_app(database_url=sqlite_url(tmp_path))
    async with running(app) as client:
        assert await subscribe(client, seats=3) == "http://testserver/demo/account"
        account = await client.get("/demo/account")
        assert account.status_code == 200
        [(status, seats, cells)] = table_rows(account.text, "subscription")
        assert (status, seats) == ("trialing", "3")
        assert "<td>Team</td>" in cells
        [(invoice_status, total, invoice_cells)] = table_rows(account.text, "invoice")
        assert (invoice_status, total) == ("paid", "0")
        assert "INV-000001" in invoice_cells
        assert 'data-balance="100"' in account.text  # the plan's credits_per_period, granted for the trial


@pytest.mark.anyio
async def test_the_api_route_needs_a_subscription_and_counts_requests_per_minute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A minute's window starts on the minute: pin the rate limiter's clock inside one. Near the
    # real time: the router's housekeeping purges windows older than two real days.
    pinned = datetime.now(UTC).replace(second=30, microsecond=0)
    monkeypatch.setattr(ratelimits, "utc_now", lambda: pinned)
    app, _payments, settings = create_demo_app(database_url=sqlite_url(tmp_path))
    headers = {"Authorization": f"Bearer {create_token(settings.auth, DEMO_CUSTOMER)}"}
    async with running(app) as client:
        anonymous = await client.get("/demo/api/data")
        assert anonymous.status_code == 401
        before = await client.get("/demo/api/data", headers=headers)
        assert before.status_code == 402
        assert before.headers["content-type"] == "application/problem+json"
        assert before.json()["code"] == "subscription_required"

        await subscribe(client, seats=3)
        codes = []
        for _ in range(21):
            answer = await client.get("/demo/api/data", headers=headers)
            codes.append(answer.status_code)
        assert codes == [200] * 20 + [429]
        ok = await client.get("/billing/me", headers=headers)
        assert ok.json()["external_id"] == DEMO_CUSTOMER
        refused = answer.json()
        assert refused["code"] == "rate_limited"
        assert answer.headers["retry-after"] == "30"

    monkeypatch.setattr(ratelimits, "utc_now", lambda: pinned + timedelta(seconds=30))
    async with running(app) as client:
        next_minute = await client.get("/demo/api/data", headers=headers)
        assert next_minute.status_code == 200
        assert next_minute.json()["customer"] == DEMO_CUSTOMER


@pytest.mark.anyio
async def test_advancing_the_clock_15_days_ends_the_trial_and_invoices_three_seats(tmp_path: Path) -> None:
    app, _payments, settings = create_demo_app(database_url=sqlite_url(tmp_path))
    async with running(app) as client:
        await subscribe(client, seats=3)
        account = await client.get("/demo/account")
        assert "Advance the clock 15 days" in account.text
        assert '<form method="post" action="http://testserver/demo/clock/advance">' in account.text

        advanced = await client.post("/demo/clock/advance")
        assert advanced.status_code == 303
        assert advanced.headers["location"] == "http://testserver/demo/account"
        account = await client.get("/demo/account")
        [(status, seats, _cells)] = table_rows(account.text, "subscription")
        assert (status, seats) == ("active", "3")
        invoices = table_rows(account.text, "invoice")
        assert [(status, total) for status, total, _cells in invoices] == [("paid", "2700"), ("paid", "0")]
        newest = invoices[0][2]
        assert "INV-000002" in newest
        assert "27.00 EUR" in newest
        assert "3 units at 9.00 EUR each" in newest
        # The trial's credits expired with it; the first paid period granted a new 100.
        assert 'data-balance="100"' in account.text

        # The JSON API agrees with the page.
        headers = {"Authorization": f"Bearer {create_token(settings.auth, DEMO_CUSTOMER)}"}
        listed = (await client.get("/billing/invoices", headers=headers)).json()["items"]
        assert [(invoice["number"], invoice["total"]) for invoice in listed] == [
            ("INV-000002", 2700),
            ("INV-000001", 0),
        ]
        payments = (await client.get("/billing/payments", headers=headers)).json()["items"]
        assert [(payment["status"], payment["amount"]) for payment in payments] == [("succeeded", 2700)]


@pytest.mark.anyio
async def test_the_account_page_opens_the_fake_billing_portal(tmp_path: Path) -> None:
    app, _payments, _settings = create_demo_app(database_url=sqlite_url(tmp_path))
    async with running(app) as client:
        await subscribe(client, seats=2)
        opened = await client.post("/demo/portal")
        assert opened.status_code == 303
        portal_url = opened.headers["location"]
        assert portal_url.startswith("http://testserver/billing/fake/portal/cus_")
        portal = await client.get(portal_url)
        assert portal.status_code == 200
        assert "Your subscriptions" in portal.text
        assert 'href="http://testserver/demo/account"' in portal.text


@pytest.mark.anyio
async def test_after_a_restart_the_portal_button_explains_why_the_fake_provider_forgot_the_customer(
    tmp_path: Path,
) -> None:
    url = sqlite_url(tmp_path)
    app, _payments, _settings = create_demo_app(database_url=url)
    async with running(app) as client:
        await subscribe(client, seats=1)
    app, _payments, _settings = create_demo_app(database_url=url)
    async with running(app) as client:
        forgotten = await client.post("/demo/portal")
        assert forgotten.status_code == 303
        assert forgotten.headers["location"] == "http://testserver/demo/account?notice=portal-forgotten"
        account = await client.get(forgotten.headers["location"])
        assert 'id="notice"' in account.text
        assert "subscribe (or buy) once" in account.text
        # A checkout introduces the customer to the new process's fake provider again.
        await subscribe(client, seats=1)
        reopened = await client.post("/demo/portal")
        assert reopened.headers["location"].startswith("http://testserver/billing/fake/portal/cus_")
        assert (await client.get("/demo/account?notice=unknown")).status_code == 200


# ------------------------------------------------------------------------------- the commands


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    """A runner in an empty directory (no ``.env``), with a JWT secret in the environment."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PAYMENTS_AUTH__JWT_SECRET", JWT_SECRET)
    return CliRunner()


def test_token_prints_a_jwt_signed_with_the_configured_secret(runner: CliRunner) -> None:
    result = runner.invoke(
        main, ["token", "alice", "--email", "alice@example.com", "--expires-in-hours", "2"]
    )
    assert result.exit_code == 0, result.output
    claims = jwt.decode(result.output.strip(), JWT_SECRET, algorithms=["HS256"])
    assert claims["sub"] == "alice"
    assert claims["email"] == "alice@example.com"
    assert "roles" not in claims
    assert claims["exp"] - claims["iat"] == 2 * 3600


def test_token_admin_adds_the_admin_role(runner: CliRunner) -> None:
    result = runner.invoke(main, ["token", "root", "--admin"])
    assert result.exit_code == 0, result.output
    claims = jwt.decode(result.output.strip(), JWT_SECRET, algorithms=["HS256"])
    assert claims["sub"] == "root"
    assert claims["roles"] == ["admin"]
    assert claims["exp"] - claims["iat"] == 12 * 3600


def test_token_without_a_secret_says_what_to_set(runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PAYMENTS_AUTH__JWT_SECRET")
    result = runner.invoke(main, ["token", "alice"])
    assert result.exit_code == 1
    assert "no JWT secret is configured" in result.output
    assert "PAYMENTS_AUTH__JWT_SECRET" in result.output
    assert "Traceback" not in result.output


def test_token_with_a_too_short_secret_is_a_clear_error(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PAYMENTS_AUTH__JWT_SECRET", "short")
    result = runner.invoke(main, ["token", "alice"])
    assert result.exit_code == 1
    assert "HS256 needs at least 32" in result.output


def test_demo_help_shows_the_options(runner: CliRunner) -> None:
    result = runner.invoke(main, ["demo", "--help"])
    assert result.exit_code == 0, result.output
    assert "--host" in result.output
    assert "127.0.0.1" in result.output
    assert "--port" in result.output
    assert "--database-url" in result.output


@pytest.mark.anyio
async def test_demo_prints_working_tokens_and_serves_on_localhost(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[uvicorn.Config] = []
    monkeypatch.setattr(uvicorn.Server, "run", lambda server, *args, **kwargs: started.append(server.config))
    result = runner.invoke(main, ["demo", "--port", "8765", "--database-url", sqlite_url(tmp_path)])
    assert result.exit_code == 0, result.output

    [config] = started
    assert (config.host, config.port) == ("127.0.0.1", 8765)
    assert "Open http://127.0.0.1:8765/" in result.output
    assert "curl -H" in result.output
    for path in ("/billing/me", "/billing/payments", "/billing/plans", "/billing/admin/summary"):
        assert f"http://127.0.0.1:8765{path}" in result.output
    assert "subscribe to the Team plan" in result.output
    assert "http://127.0.0.1:8765/demo/account" in result.output
    assert 'curl -i -H "Authorization: Bearer $CUSTOMER_TOKEN" http://127.0.0.1:8765/demo/api/data' in (
        result.output
    )
    assert "402 subscription_required" in result.output
    assert "429 rate_limited" in result.output
    tokens = dict(re.findall(r"export (CUSTOMER_TOKEN|ADMIN_TOKEN)=(\S+)", result.output))

    app: Any = config.app
    async with running(app) as client:
        me = await client.get("/billing/me", headers={"Authorization": f"Bearer {tokens['CUSTOMER_TOKEN']}"})
        assert me.status_code == 200
        assert me.json()["external_id"] == DEMO_CUSTOMER
        denied = await client.get(
            "/billing/admin/summary", headers={"Authorization": f"Bearer {tokens['CUSTOMER_TOKEN']}"}
        )
        assert denied.status_code == 403
        summary = await client.get(
            "/billing/admin/summary", headers={"Authorization": f"Bearer {tokens['ADMIN_TOKEN']}"}
        )
        assert summary.status_code == 200


# ------------------------------------------------------------------------------- the example


def load_example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """Import ``examples/minimal_app.py`` configured the way its docstring says, on a scratch database."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PAYMENTS_AUTH__JWT_SECRET", JWT_SECRET)
    monkeypatch.setenv("PAYMENTS_FAKE__WEBHOOK_SECRET", "whsec_example")
    monkeypatch.setenv("PAYMENTS_DEFAULT_PROVIDER", "fake")
    monkeypatch.setenv("PAYMENTS_DATABASE__URL", sqlite_url(tmp_path, "example.db"))
    spec = importlib.util.spec_from_file_location("minimal_app", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    return example


@pytest.mark.anyio
async def test_the_minimal_example_app_greets_the_customer_and_runs_its_hook(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    example = load_example(tmp_path, monkeypatch)
    token = create_token(example.payments.settings.auth, "alice", email="alice@example.com")
    headers = {"Authorization": f"Bearer {token}"}
    caplog.set_level(logging.INFO, logger="minimal_app")
    async with running(example.app) as client:
        hello = await client.get("/hello", headers=headers)
        assert hello.status_code == 200
        assert hello.json() == {"message": "Hello, alice@example.com!"}

        created = await client.post(
            "/billing/checkout-sessions",
            json={
                "amount": 1200,
                "currency": "EUR",
                # The host's own origin: allowed with no configuration.
                "success_url": "http://testserver/ok",
                "cancel_url": "http://testserver/cancel",
            },
            headers=headers,
        )
        assert created.status_code == 201, created.text
        paid = await client.post(created.json()["url"], data={"outcome": "succeeded"})
        assert paid.headers["location"] == "http://testserver/ok"

    messages = [record.getMessage() for record in caplog.records if record.name == "minimal_app"]
    assert len(messages) == 1
    assert messages[0].endswith("succeeded: 1200 EUR")


@pytest.mark.anyio
async def test_a_host_route_guarded_by_current_customer_refuses_a_missing_token_with_401(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    example = load_example(tmp_path, monkeypatch)
    async with running(example.app) as client:
        refused = await client.get("/hello")
        forged = await client.get("/hello", headers={"Authorization": "Bearer not-a-jwt"})
    assert refused.status_code == 401
    assert "missing bearer token" in refused.json()["detail"]
    assert forged.status_code == 401
