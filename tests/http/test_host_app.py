"""What a host app meets first: in-memory SQLite under ``TestClient``, a missing database driver,
decimal amounts, no default provider, and problem documents on the host's own routes."""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fastapi import Depends, FastAPI, HTTPException

from fastapi_cashier import PaymentsRouter, PaymentsSettings, install_problem_handlers
from fastapi_cashier.api.auth import create_token
from fastapi_cashier.cli import main
from fastapi_cashier.db.models import Customer
from fastapi_cashier.errors import MissingDependencyError

from .conftest import JWT_SECRET, WEBHOOK_SECRET

pytestmark = pytest.mark.anyio

MEMORY_URL = "sqlite+aiosqlite:///:memory:"


@pytest.fixture(autouse=True)
def _no_payments_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith("PAYMENTS_"):
            monkeypatch.delenv(name)


def make_settings(url: str = MEMORY_URL, **values: Any) -> PaymentsSettings:
    values.setdefault("auth", {"jwt_secret": JWT_SECRET})
    return PaymentsSettings(_env_file=None, environment="test", database={"url": url}, **values)  # type: ignore[call-arg]


def starlette_client(app: FastAPI) -> Any:
    """Starlette's ``TestClient``; importing it warns about its httpx backend, which is not ours."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient
    return TestClient(app)


def bearer(settings: PaymentsSettings, subject: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {create_token(settings.auth, subject)}"}


# ------------------------------------------------------------------ in-memory SQLite


def test_in_memory_sqlite_under_testclient_runs_a_whole_payment() -> None:
    # The background loop polls all the time, so it competes with the requests for the database.
    settings = make_settings(
        fake={"webhook_secret": WEBHOOK_SECRET},
        default_provider="fake",
        webhooks={"poll_interval_seconds": 0.01},
    )
    payments = PaymentsRouter(settings)
    app = FastAPI()
    app.include_router(payments, prefix="/billing")
    with starlette_client(app) as client:
        for round_ in range(5):
            me = client.get("/billing/me", headers=bearer(settings, f"buyer-{round_}"))
            assert me.status_code == 200, me.text
            created = client.post(
                "/billing/checkout-sessions",
                json={
                    "amount": 2500 + round_,
                    "currency": "EUR",
                    "description": "Concert ticket",
                    "success_url": "http://testserver/ok",
                    "cancel_url": "http://testserver/cancel",
                },
                headers=bearer(settings, f"buyer-{round_}"),
            )
            assert created.status_code == 201, created.text
            paid = client.post(
                created.json()["url"].removeprefix("http://testserver"),
                data={"outcome": "succeeded"},
                follow_redirects=False,
            )
            assert paid.status_code == 303, paid.text
            listed = client.get("/billing/payments", headers=bearer(settings, f"buyer-{round_}")).json()
            assert [(p["status"], p["amount"]) for p in listed["items"]] == [("succeeded", 2500 + round_)]
        everything = client.get("/billing/admin/payments", headers=_admin(settings)).json()
        assert sorted(p["amount"] for p in everything["items"]) == [2500, 2501, 2502, 2503, 2504]


def _admin(settings: PaymentsSettings) -> dict[str, str]:
    token = create_token(settings.auth, "ops", roles=[settings.auth.admin_role])
    return {"Authorization": f"Bearer {token}"}


def test_in_memory_sqlite_serves_every_kind_of_request_without_waiting_on_itself() -> None:
    """Idempotency keys, subscriptions, entitlements, credits and refunds each open sessions of
    their own; on the one shared connection none may wait for another of the same request."""
    settings = make_settings(
        fake={"webhook_secret": WEBHOOK_SECRET},
        default_provider="fake",
        webhooks={"poll_interval_seconds": 0.01},
    )
    payments = PaymentsRouter(settings)
    app = FastAPI()
    app.include_router(payments, prefix="/billing")
    install_problem_handlers(app)

    counted = payments.rate_limit()

    @app.get("/api", dependencies=[Depends(payments.require_feature("api_access"))])
    async def api(customer: Customer = Depends(counted)) -> dict[str, str]:
        return {"customer": customer.external_id}

    @app.post("/images")
    async def images(balance: int = Depends(payments.consume_credits(3))) -> dict[str, int]:
        return {"balance": balance}

    alice, admin = bearer(settings, "alice"), _admin(settings)
    urls = {"success_url": "http://testserver/ok", "cancel_url": "http://testserver/cancel"}
    with starlette_client(app) as client:
        product = client.post("/billing/admin/products", json={"name": "Team"}, headers=admin).json()
        plan = client.post(
            "/billing/admin/plans",
            json={
                "product_id": product["id"],
                "name": "Team",
                "pricing_model": "per_unit",
                "unit_amount": 900,
                "currency": "EUR",
                "interval": "month",
                "features": {"api_access": True, "requests_per_minute": 5, "credits_per_period": 10},
            },
            headers=admin,
        ).json()
        body = {"plan_id": plan["id"], "quantity": 2, **urls}
        keyed = {**alice, "Idempotency-Key": "team-1"}
        created = client.post("/billing/checkout-sessions", json=body, headers=keyed)
        replayed = client.post("/billing/checkout-sessions", json=body, headers=keyed)
        assert created.status_code == replayed.status_code == 201
        assert replayed.headers["idempotent-replayed"] == "true"
        assert replayed.json()["id"] == created.json()["id"]
        client.post(created.json()["url"], data={"outcome": "succeeded"}, follow_redirects=False)
        [subscription] = client.get("/billing/subscriptions", headers=alice).json()["items"]
        assert (subscription["status"], subscription["quantity"]) == ("active", 2)
        changed = client.patch(
            f"/billing/subscriptions/{subscription['id']}", json={"quantity": 3}, headers=alice
        )
        assert changed.json()["quantity"] == 3
        assert [client.get("/api", headers=alice).status_code for _ in range(7)] == [200] * 5 + [429] * 2
        assert [client.post("/images", headers=alice).status_code for _ in range(4)] == [200, 200, 200, 402]
        assert client.get("/billing/credits", headers=alice).json()["balance"] == 1

        one_off = client.post(
            "/billing/checkout-sessions",
            json={"amount": 1000, "currency": "EUR", "description": "Poster", "reference": "poster", **urls},
            headers=alice,
        )
        client.post(one_off.json()["url"], data={"outcome": "succeeded"}, follow_redirects=False)
        [poster] = client.get("/billing/payments", params={"reference": "poster"}, headers=alice).json()[
            "items"
        ]
        refund = client.post(
            f"/billing/admin/payments/{poster['id']}/refunds",
            json={"amount": 400},
            headers={**admin, "Idempotency-Key": "refund-1"},
        )
        assert refund.status_code == 201, refund.text
        [refunded] = client.get("/billing/payments", params={"reference": "poster"}, headers=alice).json()[
            "items"
        ]
        assert (refunded["status"], refunded["refunded_amount"]) == ("partially_refunded", 400)


def test_in_memory_sqlite_is_one_database_for_the_whole_router() -> None:
    settings = make_settings()
    payments = PaymentsRouter(settings)
    app = FastAPI()
    app.include_router(payments, prefix="/billing")
    with starlette_client(app) as client:
        assert (
            client.patch("/billing/me", json={"name": "Ada"}, headers=bearer(settings, "ada")).status_code
            == 200
        )
        assert client.get("/billing/me", headers=bearer(settings, "ada")).json()["name"] == "Ada"
    # A second router on the same URL is another, empty, database.
    other = PaymentsRouter(make_settings())
    second = FastAPI()
    second.include_router(other, prefix="/billing")
    with starlette_client(second) as client:
        assert client.get("/billing/me", headers=bearer(settings, "ada")).json()["name"] is None


# ------------------------------------------------------------------ missing drivers


@pytest.fixture
def without_modules(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Make ``import <name>`` fail for the given modules, as when the extra is not installed."""

    def hide(*names: str) -> None:
        for name in names:
            monkeypatch.setitem(sys.modules, name, None)

    return hide


@pytest.mark.parametrize(
    ("url", "hidden", "extra"),
    [
        ("postgresql+asyncpg://billing@127.0.0.1:5432/billing", ("asyncpg",), "postgres"),
        ("mysql+aiomysql://root@127.0.0.1:3306/billing", ("aiomysql",), "mysql"),
        ("mysql+aiomysql://root@127.0.0.1:3306/billing", ("pymysql",), "mysql"),
        ("mariadb+aiomysql://root@127.0.0.1:3306/billing", ("aiomysql",), "mysql"),
    ],
)
async def test_a_missing_driver_names_the_extra_at_start_up(
    without_modules: Any, url: str, hidden: tuple[str, ...], extra: str
) -> None:
    without_modules(*hidden)
    payments = PaymentsRouter(make_settings(url))
    with pytest.raises(MissingDependencyError) as raised:
        await payments.startup()
    assert f"pip install 'fastapi-cashier[{extra}]'" in raised.value.message
    # aiomysql imports pymysql: hiding either makes the driver unusable.
    assert raised.value.details["extra"] == extra
    assert raised.value.details["package"] in ("asyncpg", "aiomysql", "pymysql")
    app = FastAPI()
    app.include_router(payments, prefix="/billing")
    with pytest.raises(MissingDependencyError):
        async with app.router.lifespan_context(app):
            pass


@pytest.mark.parametrize(
    "args",
    [
        ["db", "upgrade", "--url", "postgresql+asyncpg://billing@127.0.0.1:5432/billing"],
        ["db", "current", "--url", "postgresql+asyncpg://billing@127.0.0.1:5432/billing"],
        ["db", "downgrade", "base", "--url", "postgresql+asyncpg://billing@127.0.0.1:5432/billing"],
        ["webhooks", "list"],
        ["reconcile", "--provider", "manual"],
        ["demo", "--database-url", "postgresql+asyncpg://billing@127.0.0.1:5432/billing"],
    ],
)
def test_the_cli_names_the_extra_instead_of_a_traceback(without_modules: Any, args: list[str]) -> None:
    without_modules("asyncpg")
    env = {
        "PAYMENTS_DATABASE__URL": "postgresql+asyncpg://billing@127.0.0.1:5432/billing",
        "PAYMENTS_AUTH__JWT_SECRET": JWT_SECRET,
    }
    result = CliRunner().invoke(main, args, env=env)
    assert result.exit_code == 1, result.output
    assert "pip install 'fastapi-cashier[postgres]'" in result.output
    assert "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit)


# ------------------------------------------------------------------ helpful 422s


def test_without_a_default_provider_checkout_names_the_setting_and_the_providers() -> None:
    settings = make_settings(fake={"webhook_secret": WEBHOOK_SECRET})
    app = FastAPI()
    app.include_router(PaymentsRouter(settings), prefix="/billing")
    with starlette_client(app) as client:
        answer = client.post(
            "/billing/checkout-sessions",
            json={
                "amount": 2500,
                "currency": "EUR",
                "description": "Concert ticket",
                "success_url": "http://testserver/ok",
                "cancel_url": "http://testserver/cancel",
            },
            headers=bearer(settings, "alice"),
        )
    assert answer.status_code == 422
    problem = answer.json()
    assert problem["code"] == "validation_error"
    assert "PAYMENTS_DEFAULT_PROVIDER" in problem["detail"]
    assert "enabled: fake, manual" in problem["detail"]
    assert problem["errors"][0]["field"] == "provider"


def test_a_decimal_checkout_amount_is_explained_in_the_currency_of_the_request() -> None:
    settings = make_settings(fake={"webhook_secret": WEBHOOK_SECRET}, default_provider="fake")
    app = FastAPI()
    app.include_router(PaymentsRouter(settings), prefix="/billing")
    body = {"description": "x", "success_url": "https://a.example/", "cancel_url": "https://a.example/"}
    with starlette_client(app) as client:
        euros = client.post(
            "/billing/checkout-sessions",
            json={"amount": 19.99, "currency": "EUR", **body},
            headers=bearer(settings, "alice"),
        )
        dinars = client.post(
            "/billing/checkout-sessions",
            json={"amount": "1.5", "currency": "KWD", **body},
            headers=bearer(settings, "alice"),
        )
    assert euros.status_code == dinars.status_code == 422
    assert euros.json()["errors"][0]["message"] == (
        "amounts are integers in minor units of the currency: 19.99 EUR is 1999"
    )
    assert dinars.json()["errors"][0]["message"] == (
        "amounts are integers in minor units of the currency: 1.5 KWD is 1500"
    )


# ------------------------------------------------------------------ problems on host routes


def host_app(*, problems: bool) -> tuple[FastAPI, PaymentsSettings]:
    settings = make_settings()
    payments = PaymentsRouter(settings)
    app = FastAPI()
    app.include_router(payments, prefix="/billing")
    if problems:
        install_problem_handlers(app)

    @app.get("/hello")
    async def hello(customer: Customer = Depends(payments.current_customer)) -> dict[str, str]:
        return {"hello": customer.external_id}

    @app.get("/api/data", dependencies=[Depends(payments.require_feature("api_access"))])
    async def data() -> dict[str, str]:
        return {"data": "yes"}

    @app.get("/teapot")
    async def teapot() -> None:
        raise HTTPException(status_code=418, detail="short and stout")

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        return {"item_id": item_id}

    return app, settings


def test_install_problem_handlers_answers_host_routes_with_problems() -> None:
    app, settings = host_app(problems=True)
    with starlette_client(app) as client:
        anonymous = client.get("/hello")
        unsubscribed = client.get("/api/data", headers=bearer(settings, "alice"))
        teapot = client.get("/teapot")
        invalid = client.get("/items/seven")
        fine = client.get("/hello", headers=bearer(settings, "alice"))
    assert fine.json() == {"hello": "alice"}
    for answer, status, code in [
        (anonymous, 401, "authentication_required"),
        (unsubscribed, 402, "subscription_required"),
        (teapot, 418, "http_error"),
        (invalid, 422, "validation_error"),
    ]:
        assert answer.status_code == status
        assert answer.headers["content-type"] == "application/problem+json"
        problem = answer.json()
        assert (problem["status"], problem["code"]) == (status, code)
        assert problem["instance"] == answer.request.url.path
    assert anonymous.headers["www-authenticate"] == "Bearer"
    assert teapot.json()["detail"] == "short and stout"
    assert invalid.json()["errors"][0]["field"] == "item_id"


def test_without_the_handlers_host_routes_keep_fastapis_format() -> None:
    app, settings = host_app(problems=False)
    with starlette_client(app) as client:
        unsubscribed = client.get("/api/data", headers=bearer(settings, "alice"))
    assert unsubscribed.status_code == 402
    assert unsubscribed.headers["content-type"] == "application/json"
    assert set(unsubscribed.json()) == {"detail"}


def test_the_memory_url_detection(tmp_path: Path) -> None:
    from sqlalchemy.engine import make_url

    from fastapi_cashier.db.engine import is_sqlite_memory

    assert is_sqlite_memory(make_url(MEMORY_URL))
    assert is_sqlite_memory(make_url("sqlite+aiosqlite://"))
    assert is_sqlite_memory(make_url("sqlite+aiosqlite:///file:shop?mode=memory&uri=true"))
    assert not is_sqlite_memory(make_url(f"sqlite+aiosqlite:///{tmp_path / 'shop.db'}"))
    assert not is_sqlite_memory(make_url("postgresql+asyncpg://localhost/memory"))
