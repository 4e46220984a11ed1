"""``examples/minimal_app.py`` on PayPal by PAYMENTS_* variables alone, against the sandbox on 127.0.0.1.

The sandbox runs under uvicorn on loopback, as PayPal's API would be reached: over the network,
by the adapter's own client. Its deliveries are posted to the example's webhook endpoint; their
cert URL is on the configured ``api_base`` host, so the adapter asks that server's
verify-webhook-signature API about them, as it would ask PayPal.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from urllib.parse import urlsplit

import httpx
import pytest

from fastapi_cashier.api.auth import create_token

from ..http.test_demo import EXAMPLE, JWT_SECRET, running, sqlite_url
from .paypal_sandbox import PayPalSandbox
from .servers import serve


@pytest.fixture
def sandbox() -> Iterator[PayPalSandbox]:
    sandbox = PayPalSandbox()
    with serve(sandbox.app) as url:
        sandbox.state.base_url = url
        yield sandbox


def load_example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sandbox: PayPalSandbox) -> ModuleType:
    monkeypatch.chdir(tmp_path)
    for name, value in {
        "PAYMENTS_AUTH__JWT_SECRET": JWT_SECRET,
        "PAYMENTS_DATABASE__URL": sqlite_url(tmp_path, "example.db"),
        "PAYMENTS_DEFAULT_PROVIDER": "paypal",
        "PAYMENTS_PAYPAL__CLIENT_ID": sandbox.state.client_id,
        "PAYMENTS_PAYPAL__CLIENT_SECRET": sandbox.state.client_secret,
        "PAYMENTS_PAYPAL__WEBHOOK_ID": sandbox.webhook_id,
        "PAYMENTS_PAYPAL__MODE": "sandbox",
        "PAYMENTS_PAYPAL__API_BASE": sandbox.base_url,
    }.items():
        monkeypatch.setenv(name, value)
    spec = importlib.util.spec_from_file_location("minimal_app", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    return example


@pytest.mark.anyio
async def test_the_example_takes_a_paypal_payment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, sandbox: PayPalSandbox
) -> None:
    example = load_example(tmp_path, monkeypatch, sandbox)
    assert set(example.payments.providers) == {"manual", "paypal"}
    token = create_token(example.payments.settings.auth, "alice", email="alice@example.com")
    headers = {"Authorization": f"Bearer {token}"}
    caplog.set_level(logging.INFO, logger="minimal_app")
    async with running(example.app) as client, httpx.AsyncClient() as payer:
        created = await client.post(
            "/billing/checkout-sessions",
            json={
                "amount": 1200,
                "currency": "EUR",
                "success_url": "http://testserver/ok",
                "cancel_url": "http://testserver/cancel",
            },
            headers=headers,
        )
        assert created.status_code == 201, created.text
        session = created.json()
        assert session["provider"] == "paypal"
        page = await payer.get(session["url"])
        assert page.status_code == 200
        action = page.text.split('<form method="post" action="', 1)[1].split('"', 1)[0]
        approved = await payer.post(f"{sandbox.base_url}{action}", data={"action": "approve"})
        back = urlsplit(approved.headers["location"])
        assert back.path == f"/billing/paypal/return/{session['id']}"
        returned = await client.get(f"{back.path}?{back.query}")
        assert returned.status_code == 303, returned.text
        assert returned.headers["location"] == "http://testserver/ok"
        for delivery_headers, body in list(sandbox.sent_events):
            delivered = await client.post("/billing/webhooks/paypal", content=body, headers=delivery_headers)
            assert delivered.status_code == 200, delivered.text
        # A changed event (another id, so it is not a duplicate) is refused by the postback.
        headers_last, body_last = sandbox.sent_events[-1]
        forged = await client.post(
            "/billing/webhooks/paypal", content=body_last.replace(b'"WH-', b'"WH-X', 1), headers=headers_last
        )
        assert forged.status_code == 400, forged.text
    messages = [record.getMessage() for record in caplog.records if record.name == "minimal_app"]
    assert len(messages) == 1
    assert messages[0].endswith("succeeded: 1200 EUR")
