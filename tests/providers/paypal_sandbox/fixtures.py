"""The PayPal tests' shared fixtures and builders, registered by ``tests/providers/conftest.py``.

The fixture names say PayPal (``paypal_sandbox``, ``paypal_client``, ``paypal_host``) so they
never shadow the generic ``client`` or ``sandbox`` fixtures of other test packages.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from fastapi_cashier import PaymentsRouter
from fastapi_cashier.clock import Clock
from fastapi_cashier.providers.paypal import PayPalProvider
from fastapi_cashier.providers.paypal._client import PayPalClient

from ...http.conftest import Harness, settings_for
from ...http.test_subscriptions import URLS
from . import PayPalSandbox

__all__ = [
    "PayPalHost",
    "paypal_client",
    "paypal_host",
    "paypal_sandbox",
    "sandbox_client",
    "sandbox_provider",
]


def sandbox_client(sandbox: PayPalSandbox) -> PayPalClient:
    """The adapter's HTTP client, talking to ``sandbox``."""
    return PayPalClient(
        client_id=sandbox.state.client_id,
        client_secret=sandbox.state.client_secret,
        api_base=sandbox.base_url,
        transport=sandbox.transport,
    )


def sandbox_provider(sandbox: PayPalSandbox, *, clock: Clock | None = None, **options: Any) -> PayPalProvider:
    """A PayPal provider on ``sandbox``, trusting its certificate host and CA, on its clock."""
    return PayPalProvider(
        client_id=sandbox.state.client_id,
        client_secret=sandbox.state.client_secret,
        webhook_id=sandbox.webhook_id,
        api_base=sandbox.base_url,
        transport=sandbox.transport,
        cert_hosts={sandbox.cert_host},
        trusted_roots=[sandbox.ca],
        clock=clock or (lambda: sandbox.state.now),
        **options,
    )


@pytest.fixture
def paypal_sandbox() -> PayPalSandbox:
    """A fresh in-process PayPal sandbox."""
    return PayPalSandbox()


@pytest.fixture
async def paypal_client(paypal_sandbox: PayPalSandbox) -> AsyncIterator[PayPalClient]:
    """The adapter's client on :func:`paypal_sandbox`, closed after the test."""
    client = sandbox_client(paypal_sandbox)
    yield client
    await client.aclose()


@dataclass
class PayPalHost:
    """A host app with the payments router on PayPal (the sandbox), on the test's database."""

    harness: Harness
    sandbox: PayPalSandbox
    provider: PayPalProvider

    @property
    def client(self) -> httpx.AsyncClient:
        return self.harness.client

    async def deliver(self, headers: dict[str, str], body: bytes) -> httpx.Response:
        return await self.client.post("/billing/webhooks/paypal", content=body, headers=headers)

    async def deliver_all(self, events: list[tuple[dict[str, str], bytes]]) -> None:
        for headers, body in events:
            response = await self.deliver(headers, body)
            assert response.status_code == 200, response.text

    async def click(self, url: str, action: str = "approve") -> httpx.Response:
        """The payer on PayPal's page (the sandbox's)."""
        http = self.provider.client.http
        page = await http.get(url)
        assert page.status_code == 200
        form_action = page.text.split('<form method="post" action="', 1)[1].split('"', 1)[0]
        return await http.post(form_action, data={"action": action})

    async def checkout(self, amount: int = 4359, currency: str = "EUR") -> dict[str, Any]:
        created = await self.client.post(
            "/billing/checkout-sessions",
            json={
                "amount": amount,
                "currency": currency,
                "description": "Booking 42",
                "provider": "paypal",
                **URLS,
            },
            headers=self.harness.auth("alice"),
        )
        assert created.status_code == 201, created.text
        session: dict[str, Any] = created.json()
        assert session["url"].startswith(self.sandbox.base_url)
        return session

    async def payments(self) -> list[dict[str, Any]]:
        listed = await self.client.get("/billing/payments", headers=self.harness.auth("alice"))
        assert listed.status_code == 200, listed.text
        items: list[dict[str, Any]] = listed.json()["items"]
        return items


@pytest.fixture
async def paypal_host(engine: Any, database_url: str) -> AsyncIterator[PayPalHost]:
    """:class:`PayPalHost` through the router's lifespan; its shutdown closes the PayPal pool."""
    sandbox = PayPalSandbox()
    provider = sandbox_provider(sandbox)
    settings = settings_for(
        database_url, database={"url": database_url, "create_tables": False}, default_provider="paypal"
    )
    payments = PaymentsRouter(settings, providers=[provider])
    app = FastAPI()
    app.include_router(payments, prefix="/billing")
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            harness = Harness(app=app, payments=payments, client=client, settings=settings)
            yield PayPalHost(harness, sandbox, provider)
    assert provider.client.is_closed  # the router's shutdown closed the pool
