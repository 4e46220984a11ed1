"""An app with the PaymentsRouter mounted at /billing, on every configured database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from fastapi_cashier import PaymentsRouter, PaymentsSettings
from fastapi_cashier.api.auth import create_token
from fastapi_cashier.providers.fake import FakeProvider

JWT_SECRET = "test-jwt-secret-that-is-long-enough-for-hs256"
WEBHOOK_SECRET = "whsec_test_fake"


@dataclass
class Harness:
    """The app, its router, an HTTP client, and tokens for a few principals."""

    app: FastAPI
    payments: PaymentsRouter
    client: httpx.AsyncClient
    settings: PaymentsSettings

    @property
    def fake(self) -> FakeProvider:
        provider = self.payments.providers["fake"]
        assert isinstance(provider, FakeProvider)
        return provider

    def token(self, subject: str, *, admin: bool = False, email: str | None = None) -> str:
        return create_token(self.settings.auth, subject, email=email, roles=["admin"] if admin else [])

    def auth(self, subject: str = "alice", *, admin: bool = False, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(subject, admin=admin)}", **extra}

    async def pay_one_off(
        self,
        subject: str = "alice",
        *,
        amount: int = 2500,
        currency: str = "EUR",
        outcome: str = "succeeded",
        **body: Any,
    ) -> dict[str, Any]:
        """Create a checkout session and submit the fake page; the payment as the API shows it."""
        created = await self.client.post(
            "/billing/checkout-sessions",
            json={
                "amount": amount,
                "currency": currency,
                "description": "Concert ticket",
                "success_url": "https://shop.example/ok",
                "cancel_url": "https://shop.example/cancel",
                **body,
            },
            headers=self.auth(subject),
        )
        assert created.status_code == 201, created.text
        session = created.json()
        provider_session_id = session["url"].rsplit("/", 1)[1]
        submitted = await self.client.post(
            f"/billing/fake/checkout/{provider_session_id}", data={"outcome": outcome}
        )
        assert submitted.status_code == 303, submitted.text
        detail = await self.client.get(
            f"/billing/checkout-sessions/{session['id']}", headers=self.auth(subject)
        )
        return {"session": detail.json(), "redirect": submitted.headers["location"]}


TEST_SHOP_ORIGINS = (
    "https://shop.example",
    "https://shop.test",
    "https://app.example",
    "https://a.example",
    "https://host.example",
)


def settings_for(database_url: str, **overrides: Any) -> PaymentsSettings:
    values: dict[str, Any] = {
        "environment": "test",
        "database": {"url": database_url, "create_tables": True},
        "auth": {"jwt_secret": JWT_SECRET},
        "fake": {"webhook_secret": WEBHOOK_SECRET},
        "default_provider": "fake",
        # The background retry loop has tests of its own; elsewhere it would only add noise.
        "webhooks": {"retry_loop": False},
        # Faults are retried at once: tests measure behaviour, not waiting.
        "provider_calls": {"backoff_seconds": 0},
        # The shops the tests send payers back to (the app itself, http://testserver, always is).
        "allowed_redirect_origins": list(TEST_SHOP_ORIGINS),
    }
    values.update(overrides)
    return PaymentsSettings(**values)


@pytest.fixture
async def harness(engine: Any, database_url: str) -> AsyncIterator[Harness]:
    """The router mounted at /billing; ``engine`` (from the root conftest) clears rows afterwards."""
    # The root conftest created the tables once per run: start-up need not check them again.
    settings = settings_for(database_url, database={"url": database_url, "create_tables": False})
    payments = PaymentsRouter(settings)
    app = FastAPI()
    app.include_router(payments, prefix="/billing")
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield Harness(app=app, payments=payments, client=client, settings=settings)
