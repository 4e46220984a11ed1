"""Stripe objects (as JSON: webhook payloads and API responses alike) normalised into snapshots.

Every reader takes the plain JSON mapping, so a webhook's ``data.object`` and a re-fetched object
go through the same code. Fields Stripe moved between API versions are read from the current
place first and the older one second:

* a subscription's current period lives on its items (``items.data[0].current_period_*``) since
  2025; before, on the subscription;
* a PaymentIntent no longer names the invoice it pays (the adapter asks Stripe's invoice
  payments instead; see ``provider``); older versions have ``invoice``.

Invoices are read in ``_invoices``.

Amounts are Stripe's integer minor units; currencies come back upper-cased by
:class:`~fastapi_cashier.money.Money`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

from ...errors import ValidationError
from ...money import Money
from ...statuses import CheckoutSessionStatus, PaymentStatus, RefundStatus, SubscriptionStatus
from ..base import LOCAL_ID_KEYS, CheckoutSnapshot, PaymentSnapshot, RefundSnapshot, SubscriptionSnapshot

__all__ = [
    "LOCAL_ID_KEYS",
    "MalformedObjectError",
    "as_mapping",
    "charge_payment_snapshot",
    "checkout_snapshot",
    "from_unix",
    "item_price",
    "list_data",
    "local_ids",
    "money_field",
    "object_id",
    "optional_text",
    "payment_snapshot",
    "refund_snapshot",
    "refund_status",
    "required_int",
    "required_text",
    "subscription_item",
    "subscription_snapshot",
]


class MalformedObjectError(ValueError):
    """A Stripe object lacks a field the adapter needs, or has one of the wrong type."""


# --------------------------------------------------------------------------- field readers


def object_id(value: object) -> str | None:
    """The id of an expandable field: the string itself, or the expanded object's ``id``."""
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        found = value.get("id")
        return found if isinstance(found, str) else None
    return None


def as_mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def list_data(value: object) -> list[Mapping[str, Any]]:
    """The objects of a Stripe list (``{"object": "list", "data": [...]}``)."""
    data = as_mapping(value).get("data")
    if not isinstance(data, list):
        return []
    return [item for item in data if isinstance(item, Mapping)]


def required_text(obj: Mapping[str, Any], key: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value:
        raise MalformedObjectError(f"{key!r} must be a non-empty string")
    return value


def optional_text(obj: Mapping[str, Any], key: str) -> str | None:
    value = obj.get(key)
    return value if isinstance(value, str) and value else None


def required_int(obj: Mapping[str, Any], key: str, default: int | None = None) -> int:
    value = obj.get(key)
    if value is None and default is not None:
        return default
    if not isinstance(value, int) or isinstance(value, bool):
        raise MalformedObjectError(f"{key!r} must be an integer")
    return value


def from_unix(value: object) -> datetime | None:
    """A unix time as an aware UTC datetime; ``None`` when null or absent."""
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise MalformedObjectError(f"a unix time must be an integer, got {type(value).__name__}")
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise MalformedObjectError(f"unix time {value} is out of range") from exc


def money_field(obj: Mapping[str, Any], key: str) -> Money:
    try:
        return Money(required_int(obj, key), required_text(obj, "currency"))
    except ValidationError as exc:
        raise MalformedObjectError(str(exc)) from exc


def local_ids(obj: Mapping[str, Any], *extra_metadata: object) -> dict[str, str]:
    """Local ids the adapter stored in an object's metadata (and, for a Checkout Session, in
    ``client_reference_id``); ``extra_metadata`` are further metadata mappings read after it."""
    found: dict[str, str] = {}
    for metadata in (*extra_metadata, obj.get("metadata")):
        for key, value in as_mapping(metadata).items():
            if key in LOCAL_ID_KEYS and isinstance(value, str) and value:
                found[key] = value
    reference = obj.get("client_reference_id")
    if obj.get("object") == "checkout.session" and isinstance(reference, str) and reference:
        found.setdefault("checkout_session_id", reference)
    return found


# --------------------------------------------------------------------------- payments


_INTENT_STATUSES: Final = {
    "requires_confirmation": PaymentStatus.PENDING,
    "requires_action": PaymentStatus.REQUIRES_ACTION,
    "processing": PaymentStatus.PROCESSING,
    # Authorised, waiting for a capture: not money yet.
    "requires_capture": PaymentStatus.PROCESSING,
    "canceled": PaymentStatus.CANCELED,
    "succeeded": PaymentStatus.SUCCEEDED,
}


def _refunded_status(status: PaymentStatus, amount: int, refunded: int) -> PaymentStatus:
    if status is not PaymentStatus.SUCCEEDED or refunded <= 0:
        return status
    return PaymentStatus.REFUNDED if refunded >= amount else PaymentStatus.PARTIALLY_REFUNDED


def _method_summary(charge: Mapping[str, Any]) -> str | None:
    """``"visa •••• 4242"`` from a charge's ``payment_method_details``."""
    details = as_mapping(charge.get("payment_method_details"))
    kind = details.get("type")
    if not isinstance(kind, str):
        return None
    method = as_mapping(details.get(kind))
    brand = method.get("brand") if isinstance(method.get("brand"), str) else kind
    last4 = method.get("last4")
    return f"{brand} •••• {last4}" if isinstance(last4, str) else str(brand)


def payment_snapshot(
    intent: Mapping[str, Any],
    *,
    provider_invoice_id: str | None = None,
    provider_subscription_id: str | None = None,
) -> PaymentSnapshot:
    """A PaymentIntent as a payment.

    ``requires_payment_method`` is ``failed`` after an attempt (``last_payment_error``) and
    ``pending`` before one. A succeeded intent whose ``latest_charge`` is expanded reports the
    charge's refunds as ``partially_refunded`` / ``refunded``.
    """
    amount = money_field(intent, "amount")
    raw_status = required_text(intent, "status")
    error = as_mapping(intent.get("last_payment_error"))
    if raw_status == "requires_payment_method":
        status = PaymentStatus.FAILED if error else PaymentStatus.PENDING
    elif raw_status in _INTENT_STATUSES:
        status = _INTENT_STATUSES[raw_status]
    else:
        raise MalformedObjectError(f"unknown PaymentIntent status {raw_status!r}")
    charge = as_mapping(intent.get("latest_charge"))
    refunded = required_int(charge, "amount_refunded", 0) if charge else 0
    failure_code = optional_text(error, "decline_code") or optional_text(error, "code")
    return PaymentSnapshot(
        provider_payment_id=required_text(intent, "id"),
        status=_refunded_status(status, amount.amount, refunded),
        amount=amount,
        refunded_amount=refunded,
        provider_customer_id=object_id(intent.get("customer")),
        provider_invoice_id=provider_invoice_id or object_id(intent.get("invoice")),
        provider_subscription_id=provider_subscription_id,
        payment_method_summary=_method_summary(charge) if charge else None,
        failure_code=failure_code if status is PaymentStatus.FAILED else None,
        failure_message=optional_text(error, "message") if status is PaymentStatus.FAILED else None,
        description=optional_text(intent, "description"),
    )


_CHARGE_STATUSES: Final = {
    "pending": PaymentStatus.PROCESSING,
    "failed": PaymentStatus.FAILED,
    "succeeded": PaymentStatus.SUCCEEDED,
}


def charge_payment_snapshot(charge: Mapping[str, Any]) -> PaymentSnapshot:
    """A Charge (``charge.refunded`` events) as the payment of its PaymentIntent."""
    amount = money_field(charge, "amount")
    refunded = required_int(charge, "amount_refunded", 0)
    status = _CHARGE_STATUSES.get(required_text(charge, "status"), PaymentStatus.PENDING)
    return PaymentSnapshot(
        provider_payment_id=object_id(charge.get("payment_intent")) or required_text(charge, "id"),
        status=_refunded_status(status, amount.amount, refunded),
        amount=amount,
        refunded_amount=refunded,
        provider_customer_id=object_id(charge.get("customer")),
        payment_method_summary=_method_summary(charge),
        failure_code=optional_text(charge, "failure_code"),
        failure_message=optional_text(charge, "failure_message"),
        description=optional_text(charge, "description"),
    )


_REFUND_STATUSES: Final = {
    "pending": RefundStatus.PENDING,
    "requires_action": RefundStatus.PENDING,
    "succeeded": RefundStatus.SUCCEEDED,
    "failed": RefundStatus.FAILED,
    "canceled": RefundStatus.CANCELED,
}


def refund_status(raw: object) -> RefundStatus:
    """Stripe's refund status as a canonical one (``requires_action`` is still pending)."""
    if not isinstance(raw, str) or raw not in _REFUND_STATUSES:
        raise MalformedObjectError(f"unknown refund status {raw!r}")
    return _REFUND_STATUSES[raw]


def refund_snapshot(refund: Mapping[str, Any]) -> RefundSnapshot:
    """A Refund; its payment is the PaymentIntent, or the Charge for a charge without one."""
    payment = object_id(refund.get("payment_intent")) or object_id(refund.get("charge"))
    if payment is None:
        raise MalformedObjectError("a refund names neither a payment_intent nor a charge")
    metadata = as_mapping(refund.get("metadata"))
    reason = optional_text(metadata, "reason") or optional_text(refund, "reason")
    return RefundSnapshot(
        provider_refund_id=required_text(refund, "id"),
        provider_payment_id=payment,
        status=refund_status(refund.get("status")),
        amount=money_field(refund, "amount"),
        reason=reason,
        failure_message=optional_text(refund, "failure_reason"),
    )


# --------------------------------------------------------------------------- checkout


_SETTLED_PAYMENT_STATUSES: Final = frozenset({"paid", "no_payment_required"})


def checkout_snapshot(session: Mapping[str, Any], *, event_type: str | None = None) -> CheckoutSnapshot:
    """A Checkout Session.

    Older API versions send no ``status``: the session's state then follows from the event that
    carries it (``checkout.session.completed`` / ``.expired``), or else from ``payment_status``
    (a paid session, or one that needed no payment, is complete; any other is open).
    """
    raw = session.get("status") or _checkout_status_without_field(session, event_type)
    try:
        status = CheckoutSessionStatus(raw)
    except ValueError as exc:
        raise MalformedObjectError(f"unknown Checkout Session status {raw!r}") from exc
    return CheckoutSnapshot(
        provider_session_id=required_text(session, "id"),
        status=status,
        provider_payment_id=object_id(session.get("payment_intent")),
        provider_subscription_id=object_id(session.get("subscription")),
        provider_customer_id=object_id(session.get("customer")),
    )


def _checkout_status_without_field(session: Mapping[str, Any], event_type: str | None) -> str:
    if event_type == "checkout.session.completed":
        return "complete"
    if event_type == "checkout.session.expired":
        return "expired"
    return "complete" if session.get("payment_status") in _SETTLED_PAYMENT_STATUSES else "open"


# --------------------------------------------------------------------------- subscriptions


_SUBSCRIPTION_STATUSES: Final = {
    "incomplete": SubscriptionStatus.INCOMPLETE,
    "incomplete_expired": SubscriptionStatus.EXPIRED,
    "trialing": SubscriptionStatus.TRIALING,
    "active": SubscriptionStatus.ACTIVE,
    "past_due": SubscriptionStatus.PAST_DUE,
    # Retries exhausted, the subscription kept open: still owed.
    "unpaid": SubscriptionStatus.PAST_DUE,
    "paused": SubscriptionStatus.PAUSED,
    "canceled": SubscriptionStatus.CANCELED,
}

_COLLECTING: Final = frozenset(
    {SubscriptionStatus.ACTIVE, SubscriptionStatus.TRIALING, SubscriptionStatus.PAST_DUE}
)


def subscription_item(subscription: Mapping[str, Any]) -> Mapping[str, Any]:
    """The subscription's first item (the library gives each subscription one); ``{}`` if none."""
    items = list_data(subscription.get("items"))
    return items[0] if items else {}


def item_price(item: Mapping[str, Any]) -> Mapping[str, Any]:
    """The price of a subscription item; a legacy plan when the item has no price."""
    return as_mapping(item.get("price")) or as_mapping(item.get("plan"))


def subscription_snapshot(subscription: Mapping[str, Any]) -> SubscriptionSnapshot:
    """A Subscription. Paused collection (``pause_collection``) reads as ``paused``; a cancel
    scheduled with ``cancel_at`` reads as ``cancel_at_period_end``."""
    raw = required_text(subscription, "status")
    if raw not in _SUBSCRIPTION_STATUSES:
        raise MalformedObjectError(f"unknown subscription status {raw!r}")
    status = _SUBSCRIPTION_STATUSES[raw]
    collection_paused = bool(subscription.get("pause_collection"))
    if collection_paused and status in _COLLECTING:
        status = SubscriptionStatus.PAUSED
    item = subscription_item(subscription)
    quantity = item.get("quantity", subscription.get("quantity"))
    ended = status in (SubscriptionStatus.CANCELED, SubscriptionStatus.EXPIRED)
    return SubscriptionSnapshot(
        provider_subscription_id=required_text(subscription, "id"),
        status=status,
        quantity=quantity if isinstance(quantity, int) and not isinstance(quantity, bool) else 1,
        provider_price_id=object_id(item_price(item)),
        provider_customer_id=object_id(subscription.get("customer")),
        current_period_start=from_unix(
            item.get("current_period_start", subscription.get("current_period_start"))
        ),
        current_period_end=from_unix(item.get("current_period_end", subscription.get("current_period_end"))),
        trial_start=from_unix(subscription.get("trial_start")),
        trial_end=from_unix(subscription.get("trial_end")),
        cancel_at_period_end=not ended
        and (bool(subscription.get("cancel_at_period_end")) or subscription.get("cancel_at") is not None),
        canceled_at=from_unix(subscription.get("canceled_at")),
        ended_at=from_unix(subscription.get("ended_at")),
        paused=collection_paused or status is SubscriptionStatus.PAUSED,
    )
