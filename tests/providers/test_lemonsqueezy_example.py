"""The example app switched to Lemon Squeezy by its environment alone.

``examples/minimal_app.py`` is loaded with ``PAYMENTS_LEMONSQUEEZY__*`` variables naming a key, a
store, a webhook secret and, since Lemon Squeezy itself is out of reach, the address of the
in-process Lemon Squeezy server served on 127.0.0.1. A customer buys through the example's own
``POST /billing/checkout-sessions``, pays on the server's hosted page, and the server's signed
``order_created`` reaches the example's webhook endpoint over HTTP.
"""

from __future__ import annotations

import sys
from pathlib import Path

import httpx
import pytest

from fastapi_cashier.api.auth import create_token
from fastapi_cashier.providers.lemonsqueezy import LemonSqueezyProvider
from fastapi_cashier.settings import AuthSettings

from .lemonsqueezy_server import LemonSqueezyServer, Variant
from .servers import serve
from .test_stripe_example import load_example

pytestmark = pytest.mark.anyio

JWT_SECRET = "example-app-test-jwt-secret-long-enough-for-hs256"
SECRET = "ls-example-signing-secret"
# Two servers in threads of this process and a loaded CI machine: more than httpx's 5 s default.
TIMEOUT = 30.0


async def test_the_example_app_runs_on_lemonsqueezy_by_configuration_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = LemonSqueezyServer(currency="EUR", webhook_secret=SECRET)
    store.add_product("Payment", [Variant(21, 0, "Default", 100, is_subscription=False, interval=None)])
    with serve(store.app) as store_url:
        store.base_url = store_url
        for name, value in {
            "PAYMENTS_LEMONSQUEEZY__API_KEY": store.api_key,
            "PAYMENTS_LEMONSQUEEZY__STORE_ID": str(store.store_id),
            "PAYMENTS_LEMONSQUEEZY__WEBHOOK_SECRETS": SECRET,
            "PAYMENTS_LEMONSQUEEZY__API_BASE": f"{store_url}/v1",
            "PAYMENTS_DEFAULT_PROVIDER": "lemonsqueezy",
            "PAYMENTS_AUTH__JWT_SECRET": JWT_SECRET,
            "PAYMENTS_DATABASE__URL": f"sqlite+aiosqlite:///{tmp_path / 'example.db'}",
            "PAYMENTS_WEBHOOKS__RETRY_LOOP": "false",
        }.items():
            monkeypatch.setenv(name, value)
        example = load_example("minimal_app_on_lemonsqueezy")
        monkeypatch.delitem(sys.modules, "minimal_app_on_lemonsqueezy")
        assert isinstance(example.payments.providers["lemonsqueezy"], LemonSqueezyProvider)
        assert sorted(example.payments.providers) == ["lemonsqueezy", "manual"]

        with serve(example.app) as app_url:

            async def deliver(headers: dict[str, str], body: bytes) -> None:
                async with httpx.AsyncClient(timeout=TIMEOUT) as client:
                    answer = await client.post(
                        f"{app_url}/billing/webhooks/lemonsqueezy", content=body, headers=headers
                    )
                assert answer.status_code == 200, answer.text

            store.deliver = deliver
            alice = create_token(AuthSettings(jwt_secret=JWT_SECRET), "alice", email="alice@example.com")
            headers = {"Authorization": f"Bearer {alice}"}
            async with httpx.AsyncClient(base_url=app_url, headers=headers, timeout=TIMEOUT) as client:
                created = await client.post(
                    "/billing/checkout-sessions",
                    json={
                        "amount": 1800,
                        "currency": "EUR",
                        "description": "Concert ticket",
                        "success_url": f"{app_url}/thanks",
                        "cancel_url": f"{app_url}/cart",
                    },
                )
                assert created.status_code == 201, created.text
                session = created.json()
                assert session["url"].startswith(f"{store_url}/checkout/")
                async with httpx.AsyncClient(timeout=TIMEOUT) as buyer:
                    paid = await buyer.post(session["url"], data={"outcome": "paid"})
                assert paid.status_code == 303
                assert await store.flush() == 1
                detail = await client.get(f"/billing/checkout-sessions/{session['id']}")
                payments = await client.get("/billing/payments")
                hello = await client.get("/hello")

    assert detail.json()["status"] == "complete"
    (payment,) = payments.json()["items"]
    assert (payment["status"], payment["amount"], payment["currency"], payment["provider"]) == (
        "succeeded",
        1800,
        "EUR",
        "lemonsqueezy",
    )
    assert hello.json() == {"message": "Hello, alice@example.com!"}
