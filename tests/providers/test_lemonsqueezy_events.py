"""Lemon Squeezy webhooks: X-Signature checks, the mapping of every event, the deduplication key."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from fastapi_cashier.errors import SignatureVerificationError, WebhookError
from fastapi_cashier.providers.base import (
    CheckoutSnapshot,
    InvoiceSnapshot,
    PaymentSnapshot,
    SubscriptionSnapshot,
)
from fastapi_cashier.providers.lemonsqueezy._events import parse_event
from fastapi_cashier.providers.lemonsqueezy._signature import sign, verify_signature
from fastapi_cashier.statuses import (
    CheckoutSessionStatus,
    InvoiceStatus,
    PaymentStatus,
    SubscriptionStatus,
)

from .lemonsqueezy_payloads import payload_params

SECRET = "ls-webhook-secret"
BODY = b'{"meta":{"event_name":"order_created"},"data":{"type":"orders","id":"1","attributes":{}}}'


# --------------------------------------------------------------------------- signatures


def test_a_body_signed_with_the_secret_passes() -> None:
    verify_signature({"X-Signature": sign(SECRET, BODY)}, BODY, [SECRET])


def test_a_rotated_secret_is_accepted_next_to_the_new_one() -> None:
    verify_signature({"x-signature": sign("old-secret", BODY)}, BODY, [SECRET, "old-secret"])


def test_the_signature_is_hex_hmac_sha256_of_the_raw_body() -> None:
    import hashlib
    import hmac

    assert sign(SECRET, BODY) == hmac.new(SECRET.encode(), BODY, hashlib.sha256).hexdigest()


@pytest.mark.parametrize(
    ("headers", "body", "message"),
    [
        ({}, BODY, "missing"),
        ({"X-Signature": ""}, BODY, "not a hex"),
        ({"X-Signature": "zz" * 32}, BODY, "not a hex"),
        ({"X-Signature": sign(SECRET, BODY)[:40]}, BODY, "not a hex"),
        ({"X-Signature": sign("another-secret", BODY)}, BODY, "does not match"),
        ({"X-Signature": sign(SECRET, BODY)}, BODY.replace(b'"1"', b'"2"'), "does not match"),
    ],
    ids=["missing", "empty", "not-hex", "truncated", "wrong-secret", "tampered-body"],
)
def test_each_bad_signature_is_refused(headers: dict[str, str], body: bytes, message: str) -> None:
    with pytest.raises(SignatureVerificationError, match=message):
        verify_signature(headers, body, [SECRET])


def test_no_configured_secret_refuses_everything() -> None:
    with pytest.raises(SignatureVerificationError, match="WEBHOOK_SECRETS"):
        verify_signature({"X-Signature": sign("", BODY)}, BODY, [])


# --------------------------------------------------------------------------- real payloads


@pytest.mark.parametrize("path", payload_params())
def test_every_real_payload_is_normalised(path: Path) -> None:
    body = path.read_bytes()
    payload = json.loads(body)
    event = parse_event(body)

    assert event.provider == "lemonsqueezy"
    assert event.raw == payload
    assert event.id.startswith(payload["meta"]["event_name"] + ":")
    updated_at = payload["data"]["attributes"].get("updated_at")
    if updated_at:
        assert event.occurred_at.isoformat().startswith(updated_at[:19])
    if payload["data"]["type"] == "license-keys" or not payload["data"]["attributes"]:
        assert event.snapshot is None
    else:
        assert event.snapshot is not None


def _event(name: str, type_: str, id_: str, custom: dict[str, Any] | None = None, **attributes: Any) -> bytes:
    meta: dict[str, Any] = {"event_name": name, "test_mode": True}
    if custom is not None:
        meta["custom_data"] = custom
    attributes.setdefault("updated_at", "2026-01-02T03:04:05.000000Z")
    return json.dumps({"meta": meta, "data": {"type": type_, "id": id_, "attributes": attributes}}).encode()


ORDER = {"currency": "EUR", "total": 1999, "status": "paid", "customer_id": 7}


def test_a_one_off_order_is_a_succeeded_payment_with_the_local_ids() -> None:
    custom = {"checkout_session_id": "c0ffee00-0000-0000-0000-000000000001", "customer_id": "x"}
    event = parse_event(_event("order_created", "orders", "42", custom, **ORDER))

    assert event.type == "checkout.completed"
    assert event.object_kind == "payment"
    assert event.local_ids == custom
    snapshot = event.snapshot
    assert isinstance(snapshot, PaymentSnapshot)
    assert snapshot.provider_payment_id == "orders/42"
    assert snapshot.status is PaymentStatus.SUCCEEDED
    assert (snapshot.amount.amount, snapshot.amount.currency) == (1999, "EUR")


def test_a_subscription_order_completes_its_checkout_and_records_no_payment() -> None:
    custom = {"checkout_session_id": "s-1", "plan_id": "p-1"}
    event = parse_event(_event("order_created", "orders", "43", custom, **ORDER))

    assert event.type == "checkout.completed"
    assert isinstance(event.snapshot, CheckoutSnapshot)
    assert event.snapshot.status is CheckoutSessionStatus.COMPLETE


def test_a_refunded_order_carries_the_total_refunded() -> None:
    event = parse_event(
        _event("order_refunded", "orders", "42", **{**ORDER, "refunded": True, "refunded_amount": 500})
    )

    assert event.type == "refund.succeeded"
    assert isinstance(event.snapshot, PaymentSnapshot)
    assert event.snapshot.status is PaymentStatus.PARTIALLY_REFUNDED
    assert event.snapshot.refunded_amount == 500


SUBSCRIPTION = {
    "status": "active",
    "cancelled": False,
    "pause": None,
    "variant_id": 11,
    "customer_id": 7,
    "renews_at": "2026-02-02T03:04:05.000000Z",
    "ends_at": None,
    "trial_ends_at": None,
    "first_subscription_item": {"id": 5, "quantity": 3},
}


@pytest.mark.parametrize(
    ("name", "changes", "status", "cancel_at_period_end", "paused"),
    [
        ("subscription_created", {}, SubscriptionStatus.ACTIVE, False, False),
        (
            "subscription_cancelled",
            {"status": "cancelled", "cancelled": True, "ends_at": "2026-02-02T03:04:05.000000Z"},
            SubscriptionStatus.ACTIVE,
            True,
            False,
        ),
        (
            "subscription_paused",
            {"status": "paused", "pause": {"mode": "void"}},
            SubscriptionStatus.PAUSED,
            False,
            True,
        ),
        ("subscription_unpaused", {}, SubscriptionStatus.ACTIVE, False, False),
        (
            "subscription_expired",
            {"status": "expired", "cancelled": True},
            SubscriptionStatus.EXPIRED,
            False,
            False,
        ),
        ("subscription_updated", {"status": "past_due"}, SubscriptionStatus.PAST_DUE, False, False),
        (
            "subscription_updated",
            {"status": "on_trial", "trial_ends_at": "2026-01-09T00:00:00Z"},
            SubscriptionStatus.TRIALING,
            False,
            False,
        ),
    ],
)
def test_subscription_events(
    name: str, changes: dict[str, Any], status: SubscriptionStatus, cancel_at_period_end: bool, paused: bool
) -> None:
    event = parse_event(_event(name, "subscriptions", "9", **{**SUBSCRIPTION, **changes}))

    snapshot = event.snapshot
    assert isinstance(snapshot, SubscriptionSnapshot)
    assert snapshot.status is status
    assert snapshot.cancel_at_period_end is cancel_at_period_end
    assert snapshot.paused is paused
    assert snapshot.quantity == 3
    assert snapshot.provider_price_id == "11"
    expected = {
        "subscription_created": "subscription.created",
        "subscription_expired": "subscription.expired",
    }
    assert event.type == expected.get(name, "subscription.updated")


INVOICE = {"status": "paid", "currency": "USD", "total": 999, "subtotal": 999, "subscription_id": 9}


def test_a_subscription_payment_is_a_paid_invoice_naming_its_payment() -> None:
    event = parse_event(_event("subscription_payment_success", "subscription-invoices", "77", **INVOICE))

    snapshot = event.snapshot
    assert event.type == "invoice.paid"
    assert isinstance(snapshot, InvoiceSnapshot)
    assert snapshot.status is InvoiceStatus.PAID
    assert snapshot.amount_paid == 999
    assert snapshot.provider_subscription_id == "9"
    assert snapshot.provider_payment_id == "subscription-invoices/77"


def test_a_failed_subscription_payment_is_an_open_invoice() -> None:
    event = parse_event(
        _event(
            "subscription_payment_failed", "subscription-invoices", "78", **{**INVOICE, "status": "pending"}
        )
    )

    assert event.type == "invoice.payment_failed"
    assert isinstance(event.snapshot, InvoiceSnapshot)
    assert event.snapshot.status is InvoiceStatus.OPEN
    assert event.snapshot.provider_payment_id is None


# --------------------------------------------------------------------------- deduplication


def test_a_redelivery_has_the_same_id_even_with_freshly_signed_urls() -> None:
    first = _event(
        "subscription_updated",
        "subscriptions",
        "9",
        urls={"customer_portal": "https://a?sig=1"},
        **SUBSCRIPTION,
    )
    again = _event(
        "subscription_updated",
        "subscriptions",
        "9",
        urls={"customer_portal": "https://a?sig=2"},
        **SUBSCRIPTION,
    )

    assert parse_event(first).id == parse_event(again).id


def test_two_changes_of_one_object_in_the_same_second_have_different_ids() -> None:
    active = _event("subscription_updated", "subscriptions", "9", **SUBSCRIPTION)
    cancelled = _event("subscription_updated", "subscriptions", "9", **{**SUBSCRIPTION, "cancelled": True})

    assert parse_event(active).id != parse_event(cancelled).id


def test_two_events_about_one_change_have_different_ids() -> None:
    updated = _event("subscription_updated", "subscriptions", "9", **SUBSCRIPTION)
    created = _event("subscription_created", "subscriptions", "9", **SUBSCRIPTION)

    assert parse_event(updated).id != parse_event(created).id


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b'{"meta": {}, "data": {"type": "orders", "id": "1"}}',
        b'{"meta": {"event_name": "x"}}',
    ],
)
def test_a_body_that_is_not_an_event_is_refused(body: bytes) -> None:
    with pytest.raises(WebhookError):
        parse_event(body)


def test_a_malformed_amount_is_refused_not_rounded() -> None:
    with pytest.raises(WebhookError, match="integer"):
        parse_event(_event("order_created", "orders", "1", **{**ORDER, "total": 19.99}))
