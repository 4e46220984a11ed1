"""Stripe events -> ProviderEvent: canonical types, object kinds, re-reads, snapshots, local ids.

Payloads follow the object shapes of Stripe's API reference, in the current version's shape and,
where Stripe moved a field, in the older one that still reaches endpoints created long ago.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest

from fastapi_cashier.errors import WebhookError
from fastapi_cashier.money import Money
from fastapi_cashier.providers.base import (
    CheckoutSnapshot,
    InvoiceSnapshot,
    PaymentSnapshot,
    ProviderEvent,
    RefundSnapshot,
    SubscriptionSnapshot,
)
from fastapi_cashier.providers.stripe._events import parse_event
from fastapi_cashier.statuses import (
    CheckoutSessionStatus,
    InvoiceStatus,
    PaymentStatus,
    RefundStatus,
    SubscriptionStatus,
)

T0 = 1_900_000_000
LOCAL = {
    "checkout_session_id": "6f1c5e1e-0000-4000-8000-000000000001",
    "customer_id": "c-1",
    "plan_id": "p-1",
}


def at(unix: int) -> datetime:
    return datetime.fromtimestamp(unix, UTC)


def event(event_type: str, obj: dict[str, Any], *, created: int = T0) -> ProviderEvent:
    body = {"id": "evt_1", "object": "event", "type": event_type, "created": created, "data": {"object": obj}}
    return parse_event(json.dumps(body).encode())


def intent(status: str = "succeeded", **fields: Any) -> dict[str, Any]:
    return {
        "id": "pi_1",
        "object": "payment_intent",
        "amount": 2500,
        "currency": "eur",
        "status": status,
        "customer": "cus_1",
        "latest_charge": "ch_1",
        "last_payment_error": None,
        "metadata": dict(LOCAL),
        "description": "Concert ticket",
        **fields,
    }


def charge(**fields: Any) -> dict[str, Any]:
    return {
        "id": "ch_1",
        "object": "charge",
        "amount": 2500,
        "amount_refunded": 0,
        "currency": "eur",
        "status": "succeeded",
        "payment_intent": "pi_1",
        "customer": "cus_1",
        "payment_method_details": {"type": "card", "card": {"brand": "visa", "last4": "4242"}},
        **fields,
    }


def refund(status: str = "succeeded", **fields: Any) -> dict[str, Any]:
    return {
        "id": "re_1",
        "object": "refund",
        "amount": 700,
        "currency": "eur",
        "status": status,
        "payment_intent": "pi_1",
        "charge": "ch_1",
        "reason": None,
        "metadata": {"refund_id": "r-1"},
        **fields,
    }


def subscription(status: str = "active", **fields: Any) -> dict[str, Any]:
    return {
        "id": "sub_1",
        "object": "subscription",
        "status": status,
        "customer": "cus_1",
        "cancel_at_period_end": False,
        "cancel_at": None,
        "canceled_at": None,
        "ended_at": None,
        "pause_collection": None,
        "trial_start": None,
        "trial_end": None,
        "metadata": dict(LOCAL),
        "items": {
            "object": "list",
            "data": [
                {
                    "id": "si_1",
                    "object": "subscription_item",
                    "price": {"id": "price_pro", "object": "price", "recurring": {"usage_type": "licensed"}},
                    "quantity": 3,
                    "current_period_start": T0,
                    "current_period_end": T0 + 30 * 86400,
                }
            ],
        },
        **fields,
    }


def invoice(**fields: Any) -> dict[str, Any]:
    return {
        "id": "in_1",
        "object": "invoice",
        "status": "paid",
        "currency": "eur",
        "total": 4500,
        "amount_paid": 4500,
        "customer": "cus_1",
        "period_start": T0 - 30 * 86400,
        "period_end": T0,
        "parent": {
            "type": "subscription_details",
            "subscription_details": {"subscription": "sub_1", "metadata": dict(LOCAL)},
        },
        "lines": {
            "object": "list",
            "has_more": False,
            "data": [
                {
                    "id": "il_1",
                    "object": "line_item",
                    "amount": 4500,
                    "currency": "eur",
                    "description": "3 x Pro",
                    "quantity": 3,
                    "period": {"start": T0, "end": T0 + 30 * 86400},
                    "pricing": {
                        "type": "price_details",
                        "price_details": {"price": "price_pro", "product": "prod_1"},
                        "unit_amount_decimal": "1500",
                    },
                    "parent": {
                        "type": "subscription_item_details",
                        "subscription_item_details": {"proration": False, "subscription": "sub_1"},
                    },
                }
            ],
        },
        **fields,
    }


def checkout_session(status: str = "complete", **fields: Any) -> dict[str, Any]:
    return {
        "id": "cs_1",
        "object": "checkout.session",
        "mode": "payment",
        "status": status,
        "customer": "cus_1",
        "payment_intent": "pi_1",
        "subscription": None,
        "client_reference_id": LOCAL["checkout_session_id"],
        "metadata": {"customer_id": "c-1"},
        **fields,
    }


# --------------------------------------------------------------------------- the mapping table


@pytest.mark.parametrize(
    ("stripe_type", "obj", "canonical", "kind", "object_id", "refetch", "snapshot_type"),
    [
        (
            "checkout.session.completed",
            checkout_session(),
            "checkout.completed",
            "checkout_session",
            "cs_1",
            False,
            CheckoutSnapshot,
        ),
        (
            "checkout.session.expired",
            checkout_session("expired"),
            "checkout.expired",
            "checkout_session",
            "cs_1",
            False,
            CheckoutSnapshot,
        ),
        (
            "payment_intent.created",
            intent("requires_payment_method"),
            "payment.pending",
            "payment",
            "pi_1",
            True,
            PaymentSnapshot,
        ),
        (
            "payment_intent.requires_action",
            intent("requires_action"),
            "payment.requires_action",
            "payment",
            "pi_1",
            True,
            PaymentSnapshot,
        ),
        (
            "payment_intent.processing",
            intent("processing"),
            "payment.processing",
            "payment",
            "pi_1",
            True,
            PaymentSnapshot,
        ),
        ("payment_intent.succeeded", intent(), "payment.succeeded", "payment", "pi_1", True, PaymentSnapshot),
        (
            "payment_intent.payment_failed",
            intent("requires_payment_method"),
            "payment.failed",
            "payment",
            "pi_1",
            True,
            PaymentSnapshot,
        ),
        (
            "payment_intent.canceled",
            intent("canceled"),
            "payment.canceled",
            "payment",
            "pi_1",
            True,
            PaymentSnapshot,
        ),
        (
            "charge.refunded",
            charge(amount_refunded=700),
            "refund.succeeded",
            "payment",
            "pi_1",
            True,
            PaymentSnapshot,
        ),
        ("refund.created", refund(), "refund.succeeded", "refund", "re_1", True, RefundSnapshot),
        ("refund.updated", refund(), "refund.succeeded", "refund", "re_1", True, RefundSnapshot),
        (
            "charge.refund.updated",
            refund("canceled"),
            "refund.failed",
            "refund",
            "re_1",
            True,
            RefundSnapshot,
        ),
        ("refund.failed", refund("failed"), "refund.failed", "refund", "re_1", True, RefundSnapshot),
        ("invoice.paid", invoice(), "invoice.paid", "invoice", "in_1", True, InvoiceSnapshot),
        ("invoice.payment_succeeded", invoice(), "invoice.paid", "invoice", "in_1", True, InvoiceSnapshot),
        (
            "invoice.payment_failed",
            invoice(status="open"),
            "invoice.payment_failed",
            "invoice",
            "in_1",
            True,
            InvoiceSnapshot,
        ),
        (
            "customer.subscription.created",
            subscription(),
            "subscription.created",
            "subscription",
            "sub_1",
            True,
            SubscriptionSnapshot,
        ),
        (
            "customer.subscription.updated",
            subscription(),
            "subscription.updated",
            "subscription",
            "sub_1",
            True,
            SubscriptionSnapshot,
        ),
        (
            "customer.subscription.paused",
            subscription("paused"),
            "subscription.updated",
            "subscription",
            "sub_1",
            True,
            SubscriptionSnapshot,
        ),
        (
            "customer.subscription.resumed",
            subscription(),
            "subscription.updated",
            "subscription",
            "sub_1",
            True,
            SubscriptionSnapshot,
        ),
        (
            "customer.subscription.deleted",
            subscription("canceled"),
            "subscription.canceled",
            "subscription",
            "sub_1",
            True,
            SubscriptionSnapshot,
        ),
    ],
)
def test_stripe_events_map_to_canonical_ones(
    stripe_type: str,
    obj: dict[str, Any],
    canonical: str,
    kind: str,
    object_id: str,
    refetch: bool,
    snapshot_type: type,
) -> None:
    parsed = event(stripe_type, obj, created=T0 + 5)

    assert parsed.provider == "stripe"
    assert (parsed.id, parsed.type, parsed.object_kind, parsed.object_id) == (
        "evt_1",
        canonical,
        kind,
        object_id,
    )
    assert parsed.refetch is refetch
    assert isinstance(parsed.snapshot, snapshot_type)
    assert parsed.occurred_at == at(T0 + 5)
    assert parsed.raw["type"] == stripe_type


@pytest.mark.parametrize(
    ("stripe_type", "obj", "kind"),
    [
        (
            "customer.created",
            {"id": "cus_1", "object": "customer", "metadata": {"customer_id": "c-1"}},
            "customer",
        ),
        ("product.created", {"id": "prod_1", "object": "product", "name": "Pro"}, "product"),
        ("charge.succeeded", charge(), "payment"),
        ("invoice.finalized", invoice(status="open"), "invoice"),
        ("customer.subscription.trial_will_end", subscription("trialing"), "subscription"),
        ("refund.created", refund("pending"), "refund"),
        ("refund.updated", refund("requires_action"), "refund"),
    ],
)
def test_other_events_are_recorded_without_a_snapshot(
    stripe_type: str, obj: dict[str, Any], kind: str
) -> None:
    parsed = event(stripe_type, obj)

    assert parsed.type == stripe_type
    assert parsed.object_kind == kind
    assert parsed.object_id == obj["id"]
    assert parsed.snapshot is None
    assert parsed.refetch is False


# --------------------------------------------------------------------------- payments and refunds


@pytest.mark.parametrize(
    ("fields", "status", "failure"),
    [
        ({"status": "requires_payment_method"}, PaymentStatus.PENDING, None),
        ({"status": "requires_confirmation"}, PaymentStatus.PENDING, None),
        (
            {
                "status": "requires_payment_method",
                "last_payment_error": {
                    "code": "card_declined",
                    "decline_code": "insufficient_funds",
                    "message": "Your card has insufficient funds.",
                },
            },
            PaymentStatus.FAILED,
            ("insufficient_funds", "Your card has insufficient funds."),
        ),
        ({"status": "requires_action"}, PaymentStatus.REQUIRES_ACTION, None),
        ({"status": "requires_capture"}, PaymentStatus.PROCESSING, None),
        ({"status": "canceled"}, PaymentStatus.CANCELED, None),
        (
            {"status": "succeeded", "latest_charge": charge(amount_refunded=1000)},
            PaymentStatus.PARTIALLY_REFUNDED,
            None,
        ),
        (
            {"status": "succeeded", "latest_charge": charge(amount_refunded=2500)},
            PaymentStatus.REFUNDED,
            None,
        ),
    ],
)
def test_payment_intent_statuses(
    fields: dict[str, Any], status: PaymentStatus, failure: tuple[str, str] | None
) -> None:
    snapshot = event("payment_intent.succeeded", intent(**fields)).snapshot

    assert isinstance(snapshot, PaymentSnapshot)
    assert snapshot.status is status
    assert (snapshot.failure_code, snapshot.failure_message) == (failure or (None, None))


def test_a_payment_intent_snapshot_carries_amount_customer_and_card() -> None:
    snapshot = event("payment_intent.succeeded", intent(latest_charge=charge())).snapshot

    assert snapshot == PaymentSnapshot(
        provider_payment_id="pi_1",
        status=PaymentStatus.SUCCEEDED,
        amount=Money(2500, "EUR"),
        provider_customer_id="cus_1",
        payment_method_summary="visa •••• 4242",
        description="Concert ticket",
    )


def test_a_charge_without_a_payment_intent_is_read_as_it_is() -> None:
    parsed = event("charge.refunded", charge(payment_intent=None, amount_refunded=2500))

    assert (parsed.object_kind, parsed.object_id, parsed.refetch) == ("payment", "ch_1", False)
    assert isinstance(parsed.snapshot, PaymentSnapshot)
    assert (parsed.snapshot.status, parsed.snapshot.refunded_amount) == (PaymentStatus.REFUNDED, 2500)


def test_a_refund_snapshot() -> None:
    parsed = event("refund.failed", refund("failed", failure_reason="expired_or_canceled_card"))

    assert parsed.snapshot == RefundSnapshot(
        provider_refund_id="re_1",
        provider_payment_id="pi_1",
        status=RefundStatus.FAILED,
        amount=Money(700, "EUR"),
        failure_message="expired_or_canceled_card",
    )
    assert parsed.local_ids == {"refund_id": "r-1"}


def test_a_refund_reason_kept_in_metadata_wins() -> None:
    snapshot = event("refund.created", refund(metadata={"reason": "damaged on arrival"})).snapshot

    assert isinstance(snapshot, RefundSnapshot)
    assert snapshot.reason == "damaged on arrival"


# --------------------------------------------------------------------------- subscriptions


def test_the_current_period_is_read_from_the_subscription_item() -> None:
    snapshot = event("customer.subscription.updated", subscription()).snapshot

    assert snapshot == SubscriptionSnapshot(
        provider_subscription_id="sub_1",
        status=SubscriptionStatus.ACTIVE,
        quantity=3,
        provider_price_id="price_pro",
        provider_customer_id="cus_1",
        current_period_start=at(T0),
        current_period_end=at(T0 + 30 * 86400),
    )


def test_older_api_versions_keep_the_period_and_a_plan_on_the_subscription() -> None:
    legacy = subscription(current_period_start=T0 - 10, current_period_end=T0 + 99, quantity=2)
    legacy["items"]["data"][0] = {
        "id": "si_1",
        "object": "subscription_item",
        "plan": {"id": "plan_gold"},
        "quantity": 2,
    }

    snapshot = event("customer.subscription.updated", legacy).snapshot

    assert isinstance(snapshot, SubscriptionSnapshot)
    assert (snapshot.current_period_start, snapshot.current_period_end) == (at(T0 - 10), at(T0 + 99))
    assert (snapshot.provider_price_id, snapshot.quantity) == ("plan_gold", 2)


@pytest.mark.parametrize(
    ("fields", "status", "paused", "cancel_at_period_end"),
    [
        ({"pause_collection": {"behavior": "void"}}, SubscriptionStatus.PAUSED, True, False),
        ({"status": "paused"}, SubscriptionStatus.PAUSED, True, False),
        (
            {"status": "trialing", "trial_start": T0, "trial_end": T0 + 86400},
            SubscriptionStatus.TRIALING,
            False,
            False,
        ),
        ({"status": "past_due"}, SubscriptionStatus.PAST_DUE, False, False),
        ({"status": "unpaid"}, SubscriptionStatus.PAST_DUE, False, False),
        ({"status": "incomplete"}, SubscriptionStatus.INCOMPLETE, False, False),
        ({"status": "incomplete_expired"}, SubscriptionStatus.EXPIRED, False, False),
        (
            {"cancel_at_period_end": True, "cancel_at": T0 + 30 * 86400},
            SubscriptionStatus.ACTIVE,
            False,
            True,
        ),
        ({"cancel_at": T0 + 5 * 86400}, SubscriptionStatus.ACTIVE, False, True),
        (
            {"status": "canceled", "canceled_at": T0, "ended_at": T0},
            SubscriptionStatus.CANCELED,
            False,
            False,
        ),
    ],
)
def test_subscription_statuses(
    fields: dict[str, Any], status: SubscriptionStatus, paused: bool, cancel_at_period_end: bool
) -> None:
    snapshot = event("customer.subscription.updated", subscription(**fields)).snapshot

    assert isinstance(snapshot, SubscriptionSnapshot)
    assert (snapshot.status, snapshot.paused, snapshot.cancel_at_period_end) == (
        status,
        paused,
        cancel_at_period_end,
    )


def test_a_metered_item_without_a_quantity_counts_as_one() -> None:
    metered = subscription()
    metered["items"]["data"][0]["quantity"] = None

    snapshot = event("customer.subscription.created", metered).snapshot

    assert isinstance(snapshot, SubscriptionSnapshot)
    assert snapshot.quantity == 1


# --------------------------------------------------------------------------- invoices


def test_an_invoice_in_the_current_shape() -> None:
    parsed = event("invoice.paid", invoice())

    assert parsed.snapshot == InvoiceSnapshot(
        provider_invoice_id="in_1",
        status=InvoiceStatus.PAID,
        total=Money(4500, "EUR"),
        amount_paid=4500,
        provider_subscription_id="sub_1",
        period_start=at(T0),
        period_end=at(T0 + 30 * 86400),
        lines=(
            {
                "description": "3 x Pro",
                "quantity": 3,
                "unit_amount": 1500,
                "amount": 4500,
                "proration": False,
                "period_start": at(T0),
                "period_end": at(T0 + 30 * 86400),
                "plan_id": None,
            },
        ),
    )
    # The subscription's metadata, copied onto the invoice, names the local rows.
    assert parsed.local_ids == LOCAL


def test_an_invoice_in_the_older_shape() -> None:
    legacy = invoice(parent=None, subscription="sub_old", payment_intent="pi_9")
    legacy["lines"]["data"][0] = {
        "id": "il_1",
        "object": "line_item",
        "amount": -500,
        "currency": "eur",
        "description": "Unused time on Pro",
        "quantity": 1,
        "proration": True,
        "period": {"start": T0, "end": T0 + 86400},
        "price": {"id": "price_pro", "unit_amount": -500, "metadata": {"plan_id": "p-1"}},
    }

    snapshot = event("invoice.payment_failed", legacy).snapshot

    assert isinstance(snapshot, InvoiceSnapshot)
    assert (snapshot.provider_subscription_id, snapshot.provider_payment_id) == ("sub_old", "pi_9")
    assert snapshot.lines[0]["proration"] is True
    assert (snapshot.lines[0]["unit_amount"], snapshot.lines[0]["plan_id"]) == (-500, "p-1")


def test_an_invoice_line_with_a_sub_cent_unit_price_keeps_its_exact_amount() -> None:
    fractional = invoice()
    line = fractional["lines"]["data"][0]
    line["pricing"]["unit_amount_decimal"] = "0.25"
    line.update(quantity=1000, amount=250)

    snapshot = event("invoice.paid", fractional).snapshot

    assert isinstance(snapshot, InvoiceSnapshot)
    assert (snapshot.lines[0]["amount"], snapshot.lines[0]["unit_amount"]) == (250, 0)


# --------------------------------------------------------------------------- local ids


def test_a_checkout_session_names_its_local_row_by_client_reference_id() -> None:
    parsed = event("checkout.session.completed", checkout_session())

    assert parsed.local_ids == {"checkout_session_id": LOCAL["checkout_session_id"], "customer_id": "c-1"}
    assert parsed.snapshot == CheckoutSnapshot(
        provider_session_id="cs_1",
        status=CheckoutSessionStatus.COMPLETE,
        provider_payment_id="pi_1",
        provider_customer_id="cus_1",
    )


def test_only_the_adapters_own_metadata_keys_become_local_ids() -> None:
    parsed = event(
        "payment_intent.succeeded", intent(metadata={"order": "A-1", "reference": "booking-7", "n": 1})
    )

    assert parsed.local_ids == {"reference": "booking-7"}


# --------------------------------------------------------------------------- refused bodies


def raw(event_type: str, obj: dict[str, Any], **fields: Any) -> bytes:
    body = {"id": "evt_1", "type": event_type, "created": T0, "data": {"object": obj}, **fields}
    return json.dumps(body).encode()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "not valid JSON"),
        (b"[]", "not a Stripe event"),
        (json.dumps({"type": "x", "created": T0, "data": {}}).encode(), 'no "id"'),
        (json.dumps({"id": "", "type": "x"}).encode(), 'no "id"'),
        (json.dumps({"id": 7, "type": "x"}).encode(), 'no "id"'),
        (json.dumps({"id": "e" * 256, "type": "x"}).encode(), 'no "id"'),
    ],
)
def test_bodies_without_an_event_id_are_refused(body: bytes, message: str) -> None:
    with pytest.raises(WebhookError, match=message):
        parse_event(body)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (json.dumps({"id": "evt_1", "type": "x", "created": T0, "data": {}}).encode(), "not a Stripe event"),
        (json.dumps({"id": "evt_1", "object": "event", "data": {}}).encode(), "not a Stripe event"),
        (raw("x", {"id": "a", "object": "b"}, created="yesterday"), "not a Stripe event"),
        (raw("v1.billing.meter.error_report_triggered", {}, object="v2.core.event"), "thin Stripe event"),
        (raw("payment_intent.succeeded", intent("teleported")), "unknown PaymentIntent status"),
        (raw("invoice.paid", invoice(total=None)), "'total' must be an integer"),
        (raw("invoice.paid", invoice(currency="xyz")), "malformed"),
    ],
)
def test_signed_bodies_with_an_id_that_are_not_usable_events_are_kept_as_ignored(
    body: bytes, message: str
) -> None:
    parsed = parse_event(body)

    assert parsed.id == "evt_1"
    assert parsed.snapshot is None
    assert parsed.refetch is False
    assert parsed.ignored_reason is not None
    assert re.search(message, parsed.ignored_reason), parsed.ignored_reason
    assert parsed.occurred_at.tzinfo is not None
    assert parsed.raw == json.loads(body)


def test_an_unreadable_event_keeps_what_can_be_told_of_it() -> None:
    no_type = parse_event(
        json.dumps({"id": "evt_2", "data": {"object": {"id": "rdr_1", "object": "terminal.reader"}}}).encode()
    )
    thin = parse_event(
        json.dumps(
            {"id": "evt_3", "object": "v2.core.event", "type": "v1.x", "created": "2022-02-15T00:27:45.330Z"}
        ).encode()
    )

    assert (no_type.type, no_type.object_kind, no_type.object_id) == ("unknown", "terminal.reader", "rdr_1")
    assert (thin.type, thin.object_kind, thin.object_id) == ("v1.x", "v2.core.event", "")
    assert thin.occurred_at == datetime(2022, 2, 15, 0, 27, 45, 330000, tzinfo=UTC)


@pytest.mark.parametrize(
    ("event_type", "payment_status", "expected"),
    [
        ("checkout.session.completed", "paid", CheckoutSessionStatus.COMPLETE),
        ("checkout.session.completed", "no_payment_required", CheckoutSessionStatus.COMPLETE),
        # Completed with a payment method that settles later: the session is done all the same.
        ("checkout.session.completed", "unpaid", CheckoutSessionStatus.COMPLETE),
        ("checkout.session.expired", "unpaid", CheckoutSessionStatus.EXPIRED),
    ],
)
def test_a_checkout_session_of_an_older_api_version_without_status_follows_its_event(
    event_type: str, payment_status: str, expected: CheckoutSessionStatus
) -> None:
    session = checkout_session(payment_status=payment_status)
    del session["status"]

    snapshot = event(event_type, session).snapshot

    assert isinstance(snapshot, CheckoutSnapshot)
    assert snapshot.status is expected


@pytest.mark.parametrize("stripe_object", ["balance", "discount", "invoice"])
def test_an_unmapped_event_whose_object_has_no_id_is_recorded_as_ignored(stripe_object: str) -> None:
    parsed = event(f"{stripe_object}.upcoming", {"object": stripe_object, "amount": 1})

    assert parsed.snapshot is None
    assert parsed.type == f"{stripe_object}.upcoming"
    assert parsed.object_id == ""


def test_a_handled_event_whose_object_has_no_id_is_kept_as_ignored() -> None:
    session = checkout_session()
    del session["id"]

    parsed = event("checkout.session.completed", session)

    assert parsed.snapshot is None
    assert parsed.ignored_reason is not None
    assert "has no id" in parsed.ignored_reason
