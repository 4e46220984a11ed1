"""Every collected Stripe payload, signed as Stripe signs it and delivered through the router.

The payloads are real events from public repositories (``../shared/provider-payloads/stripe/``,
provenance in its ``SOURCES.md``): Stripe's own samples from API versions before 2020, events
recorded from test accounts up to 2025, Connect events. Each is posted byte for byte as stored
(the ``data_only/`` one inside an envelope of the test's own); none may answer 5xx, be refused,
or be left failed. The ``malformed/`` ones (signed, with an event id, but not snapshot events)
are stored once and recorded as ignored with the reason. The folder lives outside the
repository: the tests skip without it.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import stripe

from fastapi_cashier.db.models import WebhookEvent
from fastapi_cashier.statuses import WebhookEventStatus

from ..http.conftest import Harness
from . import test_stripe_router
from .contract import SECRET
from .test_stripe_router import StripeHost

#: The Stripe-only host of ``test_stripe_router`` (a fixture).
host = test_stripe_router.host

PAYLOADS = Path(__file__).resolve().parents[2] / ".." / "shared" / "provider-payloads" / "stripe"
SNAPSHOT_FILES = sorted(path.name for path in PAYLOADS.glob("*.json")) if PAYLOADS.is_dir() else []
DATA_ONLY_FILES = sorted(path.name for path in PAYLOADS.glob("data_only/*.json")) if PAYLOADS.is_dir() else []

needs_payloads = pytest.mark.skipif(not PAYLOADS.is_dir(), reason="../shared/provider-payloads is absent")


def _signed(body: bytes, timestamp: int) -> dict[str, str]:
    header = stripe.WebhookSignature.generate_signature_header(body.decode(), SECRET, timestamp=timestamp)
    return {"Stripe-Signature": header, "Content-Type": "application/json"}


def _deliver(host: StripeHost, body: bytes) -> tuple[int, dict[str, object], list[WebhookEvent]]:
    """POST ``body``; the answer and every event the inbox stored.

    The event's object, and every object of the other collected events (the invoice a payment
    paid, ...), exist at (the stub of) Stripe, as they do for a real delivery: the inbox re-reads
    the objects of events whose order of arrival may differ from their order of occurrence.
    """
    for name in SNAPSHOT_FILES:
        _hold(host, json.loads((PAYLOADS / name).read_bytes()))
    _hold(host, json.loads(body))

    async def work(harness: Harness) -> tuple[int, dict[str, object], list[WebhookEvent]]:
        response = await harness.client.post(
            "/billing/webhooks/stripe", content=body, headers=_signed(body, host.clock.unix)
        )
        async with harness.payments.session_factory() as session:
            stored = list((await session.scalars(sa.select(WebhookEvent))).all())
        return response.status_code, response.json(), stored

    return host.run(work)


def _hold(host: StripeHost, event: dict[str, Any]) -> None:
    obj = event.get("data", {}).get("object", {})
    if isinstance(obj.get("id"), str):
        host.stub.add(obj)


def _assert_stored_and_not_failed(
    status: int, answer: dict[str, object], stored: list[WebhookEvent], event_id: str
) -> None:
    assert status == 200, answer
    assert answer["event_id"] == event_id
    assert answer["status"] in {"processed", "ignored"}, answer
    (row,) = stored
    assert row.event_id == event_id
    assert row.status in {WebhookEventStatus.PROCESSED, WebhookEventStatus.IGNORED}, row.last_error


@needs_payloads
@pytest.mark.parametrize("name", SNAPSHOT_FILES)
def test_every_collected_stripe_event_is_stored_and_not_failed(host: StripeHost, name: str) -> None:
    body = (PAYLOADS / name).read_bytes()
    event_id = json.loads(body)["id"]

    status, answer, stored = _deliver(host, body)

    _assert_stored_and_not_failed(status, answer, stored, event_id)
    assert stored[0].raw_body == body


@needs_payloads
@pytest.mark.parametrize("name", DATA_ONLY_FILES)
def test_a_recorded_data_member_in_an_envelope_is_stored_and_not_failed(host: StripeHost, name: str) -> None:
    data = json.loads((PAYLOADS / "data_only" / name).read_bytes())
    event_id = f"evt_{uuid.uuid4().hex}"
    event = {
        "id": event_id,
        "object": "event",
        "type": "checkout.session.completed",
        "created": host.clock.unix,
    }
    body = json.dumps({**event, "data": data}).encode()

    status, answer, stored = _deliver(host, body)

    _assert_stored_and_not_failed(status, answer, stored, event_id)


@needs_payloads
@pytest.mark.parametrize(
    ("name", "object_type"),
    [
        ("srm__invoice.upcoming.json", "invoice"),
        ("srm__balance.available.json", "balance"),
        ("srm__customer.discount.created.json", "discount"),
    ],
)
def test_events_whose_object_has_no_id_are_recorded_as_ignored(
    host: StripeHost, name: str, object_type: str
) -> None:
    body = (PAYLOADS / name).read_bytes()
    assert "id" not in json.loads(body)["data"]["object"]

    status, answer, stored = _deliver(host, body)

    assert status == 200, answer
    assert answer["status"] == "ignored"
    (row,) = stored
    assert row.status is WebhookEventStatus.IGNORED
    assert row.object_kind == object_type
    assert row.object_provider_id in {None, ""}


MALFORMED_FILES = sorted(path.name for path in PAYLOADS.glob("malformed/*.json")) if PAYLOADS.is_dir() else []


@needs_payloads
@pytest.mark.parametrize("name", MALFORMED_FILES)
def test_the_malformed_payloads_of_stripes_own_tests_are_stored_once_as_ignored(
    host: StripeHost, name: str
) -> None:
    """Signed, with an event id, but not snapshot events (no type or created; a thin event):
    stored once and recorded as ignored with the reason, never refused, never failed."""
    body = (PAYLOADS / "malformed" / name).read_bytes()
    event_id = json.loads(body)["id"]

    status, answer, stored = _deliver(host, body)

    _assert_stored_and_not_failed(status, answer, stored, event_id)
    assert answer["status"] == "ignored"
    (row,) = stored
    assert row.status is WebhookEventStatus.IGNORED
    assert row.raw_body == body
    assert row.last_error is None
    assert row.ignored_reason is not None
    assert "Stripe event" in row.ignored_reason
    # The same delivery again (Stripe retries): stored once, nothing applied.
    again, duplicate, still = _deliver(host, body)
    assert (again, duplicate["status"]) == (200, "duplicate")
    assert [r.id for r in still] == [row.id]


@needs_payloads
@pytest.mark.parametrize("name", MALFORMED_FILES)
def test_malformed_payloads_unsigned_or_badly_signed_are_still_refused(host: StripeHost, name: str) -> None:
    body = (PAYLOADS / "malformed" / name).read_bytes()

    async def work(harness: Harness) -> list[tuple[int, object]]:
        answers = []
        for headers in (
            {"Content-Type": "application/json"},
            _signed(body + b" ", host.clock.unix),
            {**_signed(body, host.clock.unix), "Stripe-Signature": f"t={host.clock.unix},v1={'0' * 64}"},
        ):
            response = await harness.client.post("/billing/webhooks/stripe", content=body, headers=headers)
            answers.append((response.status_code, response.json()["status"]))
        async with harness.payments.session_factory() as session:
            assert (await session.scalars(sa.select(WebhookEvent))).all() == []
        return answers

    assert host.run(work) == [(400, 400)] * 3
