"""No open redirect: success_url, cancel_url and the portal return_url stay on allowed origins.

Allowed are the origin of the request the router serves (so a same-site host and the demo need
no configuration) and ``allowed_redirect_origins``; anything else is a 422 naming the field.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from fastapi_cashier import PaymentsRouter

from .conftest import Harness, settings_for
from .test_bad_input import assert_domain_refusal

pytestmark = pytest.mark.anyio

ONE_OFF = {"amount": 1000, "currency": "EUR", "description": "Ticket"}
FOREIGN = [
    "https://evil.example/phish",
    "https://shop.example.evil.example/ok",
    "https://shop.example@evil.example/ok",
    "http://shop.example/ok",  # another scheme is another origin
    "https://shop.example:8443/ok",
]


@pytest.mark.parametrize("field", ["success_url", "cancel_url"])
@pytest.mark.parametrize("url", FOREIGN)
async def test_checkout_refuses_a_return_url_on_a_foreign_origin(
    harness: Harness, field: str, url: str
) -> None:
    body = {
        **ONE_OFF,
        "success_url": "https://shop.example/ok",
        "cancel_url": "https://shop.example/no",
        field: url,
    }

    response = await harness.client.post("/billing/checkout-sessions", json=body, headers=harness.auth())

    problem = assert_domain_refusal(response, field)
    assert "allowed_redirect_origins" in problem["detail"]
    assert harness.fake.checkout_sessions == {}


async def test_the_portal_refuses_a_return_url_on_a_foreign_origin(harness: Harness) -> None:
    await harness.pay_one_off()

    refused = await harness.client.post(
        "/billing/portal-sessions", json={"return_url": "https://evil.example/"}, headers=harness.auth()
    )
    allowed = await harness.client.post(
        "/billing/portal-sessions",
        json={"return_url": "https://Shop.Example/account"},
        headers=harness.auth(),
    )

    assert_domain_refusal(refused, "return_url")
    assert allowed.status_code in (200, 201), allowed.text


async def test_the_requests_own_origin_needs_no_configuration(engine: Any, database_url: str) -> None:
    settings = settings_for(database_url, allowed_redirect_origins=[])
    payments = PaymentsRouter(settings)
    app = FastAPI()
    app.include_router(payments, prefix="/billing")
    token = Harness(app=app, payments=payments, client=None, settings=settings).auth()  # type: ignore[arg-type]
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="https://host.example") as client:
            same_site = await client.post(
                "/billing/checkout-sessions",
                json={
                    **ONE_OFF,
                    "success_url": "https://host.example/ok",
                    "cancel_url": "https://host.example/no",
                },
                headers=token,
            )
            other = await client.post(
                "/billing/checkout-sessions",
                json={
                    **ONE_OFF,
                    "success_url": "https://shop.example/ok",
                    "cancel_url": "https://host.example/no",
                },
                headers=token,
            )

    assert same_site.status_code == 201, same_site.text
    assert_domain_refusal(other, "success_url")
