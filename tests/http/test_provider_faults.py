"""Faults on outgoing provider calls: retried with the same idempotency key, never doubled.

The fake provider honours idempotency keys like a real one. A fault injected *after* the fake
acted is a lost response (the provider refunded, the answer never arrived); one injected before
is a request that never arrived. Either way the library must end with exactly one effect at the
provider, a consistent local state, and an audit trail that says what happened.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
import pytest

from fastapi_cashier.errors import ProviderConnectionError, ProviderRateLimitError
from fastapi_cashier.providers.fake import FakeProvider

from .conftest import Harness, settings_for
from .test_webhook_retries import _harness

pytestmark = pytest.mark.anyio

FAULTS: dict[str, Callable[[], Exception]] = {
    "reset": lambda: ProviderConnectionError("connection reset by peer", provider="fake"),
    "5xx": lambda: ProviderConnectionError("the provider answered 503", provider="fake"),
    "429": lambda: ProviderRateLimitError(
        "too many requests", provider="fake", details={"retry_after_seconds": 0}
    ),
}


def flaky(monkeypatch: pytest.MonkeyPatch, fake: FakeProvider, method: str, plan: list[str]) -> list[str]:
    """Make ``fake.<method>`` fail as ``plan`` says, one entry per call, then work.

    ``"lost"`` runs the real call and then raises a timeout (the provider acted; the answer was
    lost); the other kinds raise before the call. Returns the idempotency keys it saw, per call.
    """
    real = getattr(fake, method)
    keys: list[str] = []
    # Consumed call by call: a copy, as a parametrized plan is one list shared by every database's run.
    plan = list(plan)

    async def call(*args: Any, **kwargs: Any) -> Any:
        request = args[0] if args else None
        keys.append(str(kwargs.get("idempotency_key") or getattr(request, "idempotency_key", "")))
        if plan:
            kind = plan.pop(0)
            if kind == "lost":
                await real(*args, **kwargs)
                raise ProviderConnectionError("read timed out", provider="fake")
            raise FAULTS[kind]()
        return await real(*args, **kwargs)

    monkeypatch.setattr(fake, method, call)
    return keys


async def _refund_trail(harness: Harness, payment_id: str) -> list[tuple[str | None, str, str | None]]:
    trail = await harness.client.get(f"/billing/payments/{payment_id}/events", headers=harness.auth())
    return [
        (e["from_status"], e["to_status"], e["reason"]) for e in trail.json() if e["entity_type"] == "refund"
    ]


def _fake_refunds(fake: FakeProvider) -> list[int]:
    return [refund.amount.amount for refund in fake.refunds.values()]


@pytest.mark.parametrize("plan", [["lost", "reset"], ["5xx", "lost"], ["429", "5xx"]])
async def test_a_refund_through_faults_is_made_once_and_the_trail_says_why(
    harness: Harness, monkeypatch: pytest.MonkeyPatch, plan: list[str]
) -> None:
    paid = await harness.pay_one_off(amount=1000)
    payment_id = paid["session"]["payment_id"]
    harness.fake.auto_deliver = False  # the API's answer settles the refund, not a racing webhook
    expected_faults = len(plan)
    keys = flaky(monkeypatch, harness.fake, "refund", plan)
    response = await harness.client.post(
        f"/billing/admin/payments/{payment_id}/refunds",
        json={"amount": 400},
        headers=harness.auth("root", admin=True),
    )
    assert response.status_code == 201, response.text
    assert response.json()["status"] == "succeeded"
    assert len(keys) == expected_faults + 1
    assert len(set(keys)) == 1  # every attempt carried the same key
    assert keys[0] == f"refund-{response.json()['id']}"
    refunds = _fake_refunds(harness.fake)
    assert refunds == [400]  # one refund at the provider
    payment = (await harness.client.get(f"/billing/payments/{payment_id}", headers=harness.auth())).json()
    assert (payment["refunded_amount"], payment["status"]) == (400, "partially_refunded")
    (created, settled) = await _refund_trail(harness, payment_id)
    assert created[:2] == (None, "pending")
    assert settled[:2] == ("pending", "succeeded")
    assert settled[2] is not None
    assert settled[2].startswith(f"after {expected_faults} retried provider fault(s): refund: ")


async def test_a_refund_whose_faults_outlast_the_retries_is_resolved_later_with_the_same_key(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    paid = await harness.pay_one_off(amount=1000)
    payment_id = paid["session"]["payment_id"]
    harness.fake.auto_deliver = False
    attempts = harness.settings.provider_calls.max_attempts
    keys = flaky(monkeypatch, harness.fake, "refund", ["lost"] + ["reset"] * (attempts - 1))
    response = await harness.client.post(
        f"/billing/admin/payments/{payment_id}/refunds",
        json={"amount": 1000},
        headers=harness.auth("root", admin=True),
    )
    assert response.status_code == 503
    assert response.json()["code"] == "provider_unavailable"
    # The provider did refund (the first answer was lost): locally it is pending, reserved.
    assert _fake_refunds(harness.fake) == [1000]
    payment = (await harness.client.get(f"/billing/payments/{payment_id}", headers=harness.auth())).json()
    assert (payment["refunded_amount"], payment["status"]) == (1000, "succeeded")
    again = await harness.client.post(
        f"/billing/admin/payments/{payment_id}/refunds",
        json={"amount": 1},
        headers=harness.auth("root", admin=True),
    )
    assert again.status_code == 409  # nothing left to refund while the first one is unresolved

    async with harness.payments.service() as svc:
        from datetime import timedelta

        assert await svc.refunds.resume_pending(older_than=timedelta(hours=1)) == 0  # too recent
        assert await svc.refunds.resume_pending(older_than=timedelta(0)) == 1
        assert await svc.refunds.resume_pending(older_than=timedelta(0)) == 0  # nothing left
    assert len(set(keys)) == 1
    assert len(keys) == attempts + 1
    assert _fake_refunds(harness.fake) == [1000]  # still only one
    payment = (await harness.client.get(f"/billing/payments/{payment_id}", headers=harness.auth())).json()
    assert (payment["refunded_amount"], payment["status"]) == (1000, "refunded")
    (_, settled) = await _refund_trail(harness, payment_id)
    assert settled[:2] == ("pending", "succeeded")
    assert settled[2] is not None
    assert "answered when asked again with the same idempotency key" in settled[2]
    assert "connection reset by peer" in settled[2]


async def test_a_webhook_racing_a_lost_answer_settles_the_refund_once(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    paid = await harness.pay_one_off(amount=1000)
    payment_id = paid["session"]["payment_id"]
    # The fake delivers refund.succeeded while the API call's answer is being lost.
    flaky(monkeypatch, harness.fake, "refund", ["lost"])
    response = await harness.client.post(
        f"/billing/admin/payments/{payment_id}/refunds", json={}, headers=harness.auth("root", admin=True)
    )
    assert response.status_code == 201, response.text
    assert response.json()["status"] == "succeeded"
    assert _fake_refunds(harness.fake) == [1000]
    trail = await harness.client.get(f"/billing/payments/{payment_id}/events", headers=harness.auth())
    refund_moves = [(e["to_status"], e["cause"]) for e in trail.json() if e["entity_type"] == "refund"]
    assert refund_moves == [("pending", "admin"), ("succeeded", "webhook")]
    payment = (await harness.client.get(f"/billing/payments/{payment_id}", headers=harness.auth())).json()
    assert (payment["refunded_amount"], payment["status"]) == (1000, "refunded")


async def test_the_background_loop_resolves_a_refund_left_pending(
    engine: Any, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings_for(
        database_url,
        database={"url": database_url, "create_tables": False},
        webhooks={"retry_loop": True, "poll_interval_seconds": 0.05},
        provider_calls={"backoff_seconds": 0, "max_attempts": 2, "resume_after_seconds": 0},
    )
    async with _harness(settings) as harness:
        paid = await harness.pay_one_off(amount=700)
        payment_id = paid["session"]["payment_id"]
        flaky(monkeypatch, harness.fake, "refund", ["reset", "reset"])
        response = await harness.client.post(
            f"/billing/admin/payments/{payment_id}/refunds", json={}, headers=harness.auth("root", admin=True)
        )
        assert response.status_code == 503
        with anyio.fail_after(10):
            while True:
                payment = (
                    await harness.client.get(f"/billing/payments/{payment_id}", headers=harness.auth())
                ).json()
                if payment["status"] == "refunded":
                    break
                await anyio.sleep(0.05)
        assert _fake_refunds(harness.fake) == [700]


async def test_checkout_and_subscription_calls_through_faults_act_once(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = flaky(monkeypatch, harness.fake, "create_checkout", ["lost", "5xx"])
    created = await harness.client.post(
        "/billing/checkout-sessions",
        json={
            "amount": 900,
            "currency": "EUR",
            "success_url": "https://a.example/",
            "cancel_url": "https://a.example/",
        },
        headers=harness.auth(),
    )
    assert created.status_code == 201, created.text
    assert created.json()["status"] == "open"
    assert len(keys) == 3
    assert len(set(keys)) == 1
    assert len(harness.fake.checkout_sessions) == 1
    assert created.json()["url"].endswith(next(iter(harness.fake.checkout_sessions)))


async def test_a_refusal_is_not_retried(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    from fastapi_cashier.errors import InvalidProviderRequestError

    paid = await harness.pay_one_off(amount=1000)
    seen: list[int] = []

    async def refuse(*_args: Any, **_kwargs: Any) -> Any:
        seen.append(1)
        raise InvalidProviderRequestError("charge already refunded", provider="fake")

    monkeypatch.setattr(harness.fake, "refund", refuse)
    response = await harness.client.post(
        f"/billing/admin/payments/{paid['session']['payment_id']}/refunds",
        json={},
        headers=harness.auth("root", admin=True),
    )
    assert response.status_code == 502
    assert seen == [1]
