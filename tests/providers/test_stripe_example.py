"""The example app switched from the fake provider to Stripe by its environment alone.

``examples/minimal_app.py`` is loaded with ``PAYMENTS_*`` variables naming a Stripe key, a webhook
secret and, since Stripe itself is out of reach, a localstripe address. localstripe then signs
and delivers a real ``payment_intent.succeeded`` to the example's webhook endpoint.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import httpx
import pytest

from fastapi_cashier.api.auth import create_token
from fastapi_cashier.providers.stripe import StripeProvider
from fastapi_cashier.settings import AuthSettings

from .contract import SECRET
from .servers import DeliveryRecorder, serve
from .test_stripe_localstripe import VISA, configure_webhook, pay, wait_for

pytestmark = pytest.mark.anyio

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "minimal_app.py"
JWT_SECRET = "example-app-test-jwt-secret-long-enough-for-hs256"


def load_example(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


async def test_the_example_app_runs_on_stripe_by_configuration_alone(
    own_provider: StripeProvider, own_localstripe: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {
        "PAYMENTS_STRIPE__API_KEY": "sk_test_example",
        "PAYMENTS_STRIPE__WEBHOOK_SECRETS": f"whsec_retired,{SECRET}",
        "PAYMENTS_STRIPE__API_BASE": own_localstripe,
        "PAYMENTS_DEFAULT_PROVIDER": "stripe",
        "PAYMENTS_AUTH__JWT_SECRET": JWT_SECRET,
        "PAYMENTS_DATABASE__URL": f"sqlite+aiosqlite:///{tmp_path / 'example.db'}",
        "PAYMENTS_WEBHOOKS__RETRY_LOOP": "false",
    }.items():
        monkeypatch.setenv(name, value)
    example = load_example("minimal_app_on_stripe")
    monkeypatch.delitem(sys.modules, "minimal_app_on_stripe")
    stripe = example.payments.providers["stripe"]
    assert isinstance(stripe, StripeProvider)
    assert sorted(example.payments.providers) == ["manual", "stripe"]

    recorder = DeliveryRecorder(example.app, "/billing/webhooks/stripe")
    with serve(recorder) as url:
        endpoint = f"{url}/billing/webhooks/stripe"
        await configure_webhook(own_localstripe, "example", endpoint, SECRET, ["payment_intent.succeeded"])
        intent_id = await pay(own_provider, VISA, 2500)
        await wait_for(lambda: len(recorder.deliveries) >= 1)
        admin = create_token(AuthSettings(jwt_secret=JWT_SECRET), "ops", roles=["admin"])
        alice = create_token(AuthSettings(jwt_secret=JWT_SECRET), "alice", email="alice@example.com")
        async with httpx.AsyncClient(base_url=url) as client:
            hello = await client.get("/hello", headers={"Authorization": f"Bearer {alice}"})
            listed = await client.get(
                "/billing/admin/webhook-events",
                params={"provider": "stripe"},
                headers={"Authorization": f"Bearer {admin}"},
            )
    assert [delivery.status for delivery in recorder.deliveries] == [200]
    assert hello.status_code == 200, hello.text
    assert hello.json() == {"message": "Hello, alice@example.com!"}
    assert listed.status_code == 200, listed.text
    (stored,) = listed.json()["items"]
    # Verified with the configured secret, re-read from the configured API address (the
    # payment is not one of this app's, so it is ignored with the reason).
    assert (stored["type"], stored["object_provider_id"]) == ("payment.succeeded", intent_id)
    assert stored["status"] == "ignored", stored
    assert "no local checkout session or payment" in stored["ignored_reason"]
    assert stored["last_error"] is None
