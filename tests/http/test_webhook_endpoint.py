"""POST /webhooks/{provider}: verification on the raw bytes, duplicates, size and unknown providers."""

from __future__ import annotations

import json
from typing import Any

import pytest

from .conftest import Harness

pytestmark = pytest.mark.anyio


async def _events(harness: Harness) -> list[tuple[dict[str, str], bytes]]:
    harness.fake.auto_deliver = False
    await harness.pay_one_off()
    events = list(harness.fake.sent_events)
    assert [json.loads(body)["type"] for _, body in events] == ["payment.succeeded", "checkout.completed"]
    return events


async def test_signed_delivery_is_applied_and_a_duplicate_changes_nothing(harness: Harness) -> None:
    (headers, body), _ = await _events(harness)
    first = await harness.client.post("/billing/webhooks/fake", content=body, headers=headers)
    assert first.status_code == 200
    assert first.json()["status"] == "processed"
    duplicate = await harness.client.post("/billing/webhooks/fake", content=body, headers=headers)
    assert duplicate.status_code == 200
    assert duplicate.json()["status"] == "duplicate"
    payments = (await harness.client.get("/billing/payments", headers=harness.auth())).json()["items"]
    assert [p["status"] for p in payments] == ["succeeded"]


@pytest.mark.parametrize("tamper", ["missing", "wrong-secret", "other-body", "stale"])
async def test_bad_signatures_are_refused_and_nothing_is_applied(harness: Harness, tamper: str) -> None:
    (headers, body), _ = await _events(harness)
    if tamper == "missing":
        headers = {"Content-Type": "application/json"}
    elif tamper == "wrong-secret":
        from fastapi_cashier.providers.fake import FakeProvider

        headers = FakeProvider(webhook_secret="not-the-secret").sign(body)
    elif tamper == "other-body":
        body = body.replace(b"succeeded", b"failed", 1)
    else:
        headers = harness.fake.sign(body, timestamp=1_000_000_000)
    response = await harness.client.post("/billing/webhooks/fake", content=body, headers=headers)
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "invalid_signature"
    assert (await harness.client.get("/billing/payments", headers=harness.auth())).json()["items"] == []


async def test_unknown_and_disabled_providers_are_404(harness: Harness) -> None:
    for name in ("nope", "stripe"):
        response = await harness.client.post(f"/billing/webhooks/{name}", content=b"{}")
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"


async def test_absurd_bodies_are_413(harness: Harness) -> None:
    limit = harness.settings.webhooks.max_body_bytes
    response = await harness.client.post("/billing/webhooks/fake", content=b"x" * (limit + 1))
    assert response.status_code == 413
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_events_out_of_order_end_in_the_same_state(harness: Harness) -> None:
    payment_event, checkout_event = await _events(harness)
    for headers, body in (checkout_event, payment_event):
        response = await harness.client.post("/billing/webhooks/fake", content=body, headers=headers)
        assert response.status_code == 200
    sessions_payment = (await harness.client.get("/billing/payments", headers=harness.auth())).json()["items"]
    assert [p["status"] for p in sessions_payment] == ["succeeded"]


async def test_a_failed_event_is_kept_and_applied_when_the_provider_redelivers_it(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fastapi_cashier.billing.events import EventApplier
    from fastapi_cashier.db.model_repositories import WebhookEventRepository
    from fastapi_cashier.db.models import WebhookEvent

    (headers, body), _ = await _events(harness)
    original = EventApplier.apply

    async def broken(self: EventApplier, event: object, *located: object) -> object:
        raise RuntimeError("database hiccup while applying")

    monkeypatch.setattr(EventApplier, "apply", broken)
    failed = await harness.client.post("/billing/webhooks/fake", content=body, headers=headers)
    assert failed.status_code == 200  # stored durably: the provider need not resend at once
    assert failed.json()["status"] == "failed"
    async with harness.payments.service() as svc:
        stored = await WebhookEventRepository(session=svc.session).first(WebhookEvent.provider == "fake")
        assert stored is not None
        assert (stored.status.value, stored.attempts) == ("failed", 1)
        assert "database hiccup" in (stored.last_error or "")
        assert stored.next_attempt_at is not None
    assert (await harness.client.get("/billing/payments", headers=harness.auth())).json()["items"] == []

    monkeypatch.setattr(EventApplier, "apply", original)
    redelivered = await harness.client.post("/billing/webhooks/fake", content=body, headers=headers)
    assert redelivered.json()["status"] == "processed"
    again = await harness.client.post("/billing/webhooks/fake", content=body, headers=headers)
    assert again.json()["status"] == "duplicate"
    payments = (await harness.client.get("/billing/payments", headers=harness.auth())).json()["items"]
    assert [p["status"] for p in payments] == ["succeeded"]


async def test_parallel_deliveries_of_one_event_apply_it_once(harness: Harness) -> None:
    import anyio

    (headers, body), _ = await _events(harness)
    statuses: list[str] = []

    async def deliver() -> None:
        response = await harness.client.post("/billing/webhooks/fake", content=body, headers=headers)
        assert response.status_code == 200
        statuses.append(response.json()["status"])

    async with anyio.create_task_group() as group:
        for _ in range(20):
            group.start_soon(deliver)

    assert sorted(statuses) == ["duplicate"] * 19 + ["processed"]
    payments = (await harness.client.get("/billing/payments", headers=harness.auth())).json()["items"]
    assert [p["status"] for p in payments] == ["succeeded"]
    trail = await harness.client.get(f"/billing/payments/{payments[0]['id']}/events", headers=harness.auth())
    assert [(e["from_status"], e["to_status"]) for e in trail.json()] == [
        (None, "pending"),
        ("pending", "succeeded"),
    ]


async def test_the_answer_is_the_bytes_fastapi_would_send_for_the_dict(harness: Harness) -> None:
    from fastapi.responses import JSONResponse

    from fastapi_cashier.api.routes.webhooks import answer_body
    from fastapi_cashier.webhooks import DeliveryResult

    for event_id in ("evt_1", 'evt_"quoted"\\', "evt_é✓"):
        for status in ("processed", "ignored", "failed", "duplicate"):
            result = DeliveryResult(event_id, status)  # type: ignore[arg-type]
            expected = JSONResponse({"received": True, "event_id": event_id, "status": status}).body
            assert answer_body(result) == expected
    (headers, body), _ = await _events(harness)
    response = await harness.client.post("/billing/webhooks/fake", content=body, headers=headers)
    event_id = json.loads(body)["id"]
    assert response.content == b'{"received":true,"event_id":"%s","status":"processed"}' % event_id.encode()
    assert response.headers["content-type"] == "application/json"


async def test_a_signature_header_sent_twice_with_different_values_is_refused(harness: Harness) -> None:
    (headers, body), _ = await _events(harness)
    forged = harness.fake.sign(body.replace(b"succeeded", b"failed", 1))
    twice = [*headers.items(), *((k, v) for k, v in forged.items() if k.lower() == "fake-signature")]
    response = await harness.client.post("/billing/webhooks/fake", content=body, headers=twice)
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_signature"
    assert (await harness.client.get("/billing/payments", headers=harness.auth())).json()["items"] == []


async def test_a_duplicate_builds_no_service(harness: Harness) -> None:
    (headers, body), _ = await _events(harness)
    inbox = harness.payments.inbox
    built: list[object] = []
    factory = inbox._service_factory

    def counting(session: Any) -> Any:
        built.append(session)
        return factory(session)

    inbox._service_factory = counting  # type: ignore[method-assign]
    first = await harness.client.post("/billing/webhooks/fake", content=body, headers=headers)
    assert first.json()["status"] == "processed"
    assert len(built) == 1
    again = await harness.client.post("/billing/webhooks/fake", content=body, headers=headers)
    assert again.json()["status"] == "duplicate"
    assert len(built) == 1
