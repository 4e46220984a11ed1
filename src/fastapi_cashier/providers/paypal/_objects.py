"""PayPal objects (webhook resources and API answers alike) normalised into snapshots.

* An Orders v2 order is the checkout (``CheckoutSnapshot``); its capture is the payment
  (``PaymentSnapshot``, keyed by the capture id, which refunds are made on); a Payments v2
  refund is a ``RefundSnapshot`` of the capture named by its ``up`` link.
* A Billing Subscriptions v1 subscription is a ``SubscriptionSnapshot`` whose price id is the
  PayPal plan id; a ``PAYMENT.SALE.COMPLETED`` sale of a subscription is its paid invoice.
* Local ids travel in ``custom_id`` (at most 127 characters) as ``key=value`` pairs joined by
  ``;`` with short keys (:func:`encode_local_ids`); a ``custom_id`` set by someone else yields none.

Amounts are PayPal's decimal strings, converted exactly by :mod:`._amounts`.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

from ...errors import ValidationError
from ...money import Money
from ...statuses import (
    CheckoutSessionStatus,
    InvoiceStatus,
    PaymentStatus,
    RefundStatus,
    SubscriptionStatus,
)
from ..base import CheckoutSnapshot, InvoiceSnapshot, PaymentSnapshot, RefundSnapshot, SubscriptionSnapshot
from ._amounts import from_paypal_amount

__all__ = [
    "MalformedObjectError",
    "capture_of_order",
    "checkout_snapshot",
    "decode_local_ids",
    "encode_local_ids",
    "link",
    "order_id_of_capture",
    "parse_time",
    "payment_snapshot",
    "refund_snapshot",
    "sale_invoice_snapshot",
    "subscription_snapshot",
]

_SHORT_KEYS: Final = {
    "checkout_session_id": "cs",
    "customer_id": "cu",
    "refund_id": "rf",
    "subscription_id": "sub",
    "plan_id": "pl",
}
_LONG_KEYS: Final = {short: long for long, short in _SHORT_KEYS.items()}
MAX_CUSTOM_ID: Final = 127


class MalformedObjectError(ValueError):
    """A PayPal object lacks a field the adapter needs, or has one of the wrong type."""


def encode_local_ids(ids: Mapping[str, str | uuid.UUID]) -> str:
    """Local ids as a ``custom_id``: ``cs=<uuid>;cu=<uuid>`` (keys of :data:`LOCAL_ID_KEYS` only)."""
    parts = [f"{_SHORT_KEYS[key]}={value}" for key, value in ids.items() if key in _SHORT_KEYS]
    encoded = ";".join(parts)
    if len(encoded) > MAX_CUSTOM_ID:
        raise ValueError(f"local ids do not fit PayPal's custom_id ({len(encoded)} > {MAX_CUSTOM_ID})")
    return encoded


def decode_local_ids(custom_id: object) -> dict[str, str]:
    """The local ids in a ``custom_id`` written by :func:`encode_local_ids`; ``{}`` for any other."""
    if not isinstance(custom_id, str) or not custom_id:
        return {}
    found: dict[str, str] = {}
    for part in custom_id.split(";"):
        key, sep, value = part.partition("=")
        if not sep or key not in _LONG_KEYS:
            return {}
        try:
            uuid.UUID(value)
        except ValueError:
            return {}
        found[_LONG_KEYS[key]] = value
    return found


def parse_time(value: object) -> datetime | None:
    """An RFC 3339 time of PayPal (``2026-01-01T10:00:00Z``), or None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise MalformedObjectError(f"{value!r} is not an RFC 3339 time") from None
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def _text(obj: Mapping[str, Any], key: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value:
        raise MalformedObjectError(f"missing {key}")
    return value


def _money(obj: Mapping[str, Any], key: str = "amount") -> Money:
    amount = obj.get(key)
    if not isinstance(amount, Mapping):
        raise MalformedObjectError(f"missing {key}")
    try:
        return from_paypal_amount(amount)
    except ValidationError as exc:
        raise MalformedObjectError(f"{key}: {exc.message}") from None


def link(obj: Mapping[str, Any], rel: str) -> str | None:
    """The ``href`` of the HATEOAS link ``rel``, if the object has it."""
    for item in obj.get("links") or ():
        if isinstance(item, Mapping) and item.get("rel") == rel and isinstance(item.get("href"), str):
            return str(item["href"])
    return None


def _last_segment(url: str | None, parent: str) -> str | None:
    """The id after ``/<parent>/`` in a PayPal API URL."""
    if not url:
        return None
    path = url.split("?", 1)[0].rstrip("/").split("/")
    if len(path) >= 2 and path[-2] == parent:
        return path[-1]
    return None


# ---------------------------------------------------------------------------- orders and captures

_CAPTURE_STATUSES: Final = {
    "COMPLETED": PaymentStatus.SUCCEEDED,
    "PENDING": PaymentStatus.PROCESSING,
    "DECLINED": PaymentStatus.FAILED,
    "FAILED": PaymentStatus.FAILED,
    "PARTIALLY_REFUNDED": PaymentStatus.PARTIALLY_REFUNDED,
    "REFUNDED": PaymentStatus.REFUNDED,
}


def capture_of_order(order: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The first capture of an order's first purchase unit, if it was captured."""
    units = order.get("purchase_units")
    if not isinstance(units, list) or not units or not isinstance(units[0], Mapping):
        return None
    captures = (units[0].get("payments") or {}).get("captures")
    if isinstance(captures, list) and captures and isinstance(captures[0], Mapping):
        return captures[0]
    return None


def _order_refunds(order: Mapping[str, Any] | None, capture_id: str) -> list[Mapping[str, Any]]:
    if order is None:
        return []
    units = order.get("purchase_units") or []
    refunds = (
        (units[0].get("payments") or {}).get("refunds") if units and isinstance(units[0], Mapping) else None
    )
    return [
        refund
        for refund in refunds or []
        if isinstance(refund, Mapping) and _last_segment(link(refund, "up"), "captures") in (capture_id, None)
    ]


def order_id_of_capture(capture: Mapping[str, Any]) -> str | None:
    related = ((capture.get("supplementary_data") or {}).get("related_ids") or {}).get("order_id")
    if isinstance(related, str):
        return related
    return _last_segment(link(capture, "up"), "orders")


def payment_snapshot(
    capture: Mapping[str, Any], *, order: Mapping[str, Any] | None = None
) -> PaymentSnapshot:
    """A capture as the payment; with its ``order``, the refunded total comes from the order's refunds."""
    capture_id = _text(capture, "id")
    status = _CAPTURE_STATUSES.get(str(capture.get("status")))
    if status is None:
        raise MalformedObjectError(f"unknown capture status {capture.get('status')!r}")
    amount = _money(capture)
    refunded = 0
    completed = [r for r in _order_refunds(order, capture_id) if r.get("status") == "COMPLETED"]
    if completed:
        refunded = sum(_money(refund).amount for refund in completed)
    elif status is PaymentStatus.REFUNDED:
        refunded = amount.amount
    reason = (capture.get("status_details") or {}).get("reason")
    failed = status is PaymentStatus.FAILED
    return PaymentSnapshot(
        provider_payment_id=capture_id,
        status=status,
        amount=amount,
        refunded_amount=min(refunded, amount.amount),
        provider_session_id=order_id_of_capture(capture) or (order.get("id") if order else None),
        payment_method_summary="PayPal",
        failure_code=reason if failed and isinstance(reason, str) else None,
        failure_message=f"PayPal capture {str(capture.get('status')).lower()}" if failed else None,
    )


def checkout_snapshot(order: Mapping[str, Any]) -> CheckoutSnapshot:
    """An order as the checkout: complete once captured, expired once voided."""
    order_id = _text(order, "id")
    status = order.get("status")
    capture = capture_of_order(order)
    if status == "COMPLETED" and capture is not None:
        return CheckoutSnapshot(
            order_id, CheckoutSessionStatus.COMPLETE, provider_payment_id=_text(capture, "id")
        )
    if status == "VOIDED":
        return CheckoutSnapshot(order_id, CheckoutSessionStatus.EXPIRED)
    return CheckoutSnapshot(order_id, CheckoutSessionStatus.OPEN)


_REFUND_STATUSES: Final = {
    "COMPLETED": RefundStatus.SUCCEEDED,
    "PENDING": RefundStatus.PENDING,
    "FAILED": RefundStatus.FAILED,
    "CANCELLED": RefundStatus.CANCELED,
}


def refund_snapshot(refund: Mapping[str, Any], *, capture_id: str | None = None) -> RefundSnapshot:
    """A Payments v2 refund; its capture comes from its ``up`` link unless given."""
    status = _REFUND_STATUSES.get(str(refund.get("status")))
    if status is None:
        raise MalformedObjectError(f"unknown refund status {refund.get('status')!r}")
    capture = capture_id or _last_segment(link(refund, "up"), "captures")
    if capture is None:
        raise MalformedObjectError("the refund names no capture")
    note = refund.get("note_to_payer")
    return RefundSnapshot(
        provider_refund_id=_text(refund, "id"),
        provider_payment_id=capture,
        status=status,
        amount=_money(refund),
        reason=note if isinstance(note, str) else None,
    )


# ---------------------------------------------------------------------------- subscriptions

_SUBSCRIPTION_STATUSES: Final = {
    "APPROVAL_PENDING": SubscriptionStatus.INCOMPLETE,
    "APPROVED": SubscriptionStatus.INCOMPLETE,
    "ACTIVE": SubscriptionStatus.ACTIVE,
    "SUSPENDED": SubscriptionStatus.PAUSED,
    "CANCELLED": SubscriptionStatus.CANCELED,
    "EXPIRED": SubscriptionStatus.EXPIRED,
}


def _in_trial(info: Mapping[str, Any]) -> bool:
    """Whether the subscription is in a trial cycle: it has one, and no regular cycle has run yet.

    (Whether PayPal counts a running trial cycle as completed is not documented; this reading
    holds either way.)
    """
    executions = [item for item in info.get("cycle_executions") or () if isinstance(item, Mapping)]
    has_trial = any(item.get("tenure_type") == "TRIAL" for item in executions)
    regular_ran = any(
        item.get("tenure_type") == "REGULAR" and int(item.get("cycles_completed", 0) or 0) > 0
        for item in executions
    )
    return has_trial and not regular_ran


def subscription_snapshot(sub: Mapping[str, Any]) -> SubscriptionSnapshot:
    """A Billing Subscriptions v1 subscription."""
    status = _SUBSCRIPTION_STATUSES.get(str(sub.get("status")))
    if status is None:
        raise MalformedObjectError(f"unknown subscription status {sub.get('status')!r}")
    info = sub.get("billing_info") if isinstance(sub.get("billing_info"), Mapping) else {}
    assert isinstance(info, Mapping)
    next_billing = parse_time(info.get("next_billing_time"))
    last_payment = info.get("last_payment") if isinstance(info.get("last_payment"), Mapping) else None
    period_start = parse_time(last_payment.get("time")) if last_payment else parse_time(sub.get("start_time"))
    trial = status is SubscriptionStatus.ACTIVE and _in_trial(info)
    if trial:
        status = SubscriptionStatus.TRIALING
    elif status is SubscriptionStatus.ACTIVE and int(info.get("failed_payments_count", 0) or 0) > 0:
        outstanding = info.get("outstanding_balance")
        if isinstance(outstanding, Mapping) and _money(info, "outstanding_balance").amount > 0:
            status = SubscriptionStatus.PAST_DUE
    quantity = sub.get("quantity", "1")
    try:
        count = int(quantity)
    except (TypeError, ValueError):
        raise MalformedObjectError(f"quantity {quantity!r} is not a whole number") from None
    ended = (
        parse_time(sub.get("status_update_time"))
        if status
        in {
            SubscriptionStatus.CANCELED,
            SubscriptionStatus.EXPIRED,
        }
        else None
    )
    return SubscriptionSnapshot(
        provider_subscription_id=_text(sub, "id"),
        status=status,
        quantity=count,
        provider_price_id=sub.get("plan_id") if isinstance(sub.get("plan_id"), str) else None,
        current_period_start=period_start,
        current_period_end=next_billing,
        trial_start=parse_time(sub.get("start_time")) if trial else None,
        trial_end=next_billing if trial else None,
        canceled_at=ended if status is SubscriptionStatus.CANCELED else None,
        ended_at=ended,
        paused=status is SubscriptionStatus.PAUSED,
    )


def _added_tax(amount: Mapping[str, Any], currency: str) -> int:
    """The tax PayPal added to a sale's billing amount: ``details.tax`` (0 when it reports none).

    A subscription whose plan carries ``taxes`` with ``inclusive: false`` is billed its price
    plus that tax, and the sale reports ``details: {"subtotal": <price>, "tax": <tax>}``. With
    ``inclusive: true`` (or no taxes) the sale bills the price, which is its subtotal.
    """
    details = amount.get("details")
    if not isinstance(details, Mapping) or details.get("tax") is None:
        return 0
    tax = _money({"amount": {"currency_code": currency, "value": details.get("tax")}})
    total = _money({"amount": {"currency_code": currency, "value": amount.get("total")}})
    if tax.amount < 0 or tax.amount > total.amount:
        raise MalformedObjectError(f"the sale's tax {details.get('tax')!r} does not fit its total")
    return tax.amount


def sale_invoice_snapshot(sale: Mapping[str, Any]) -> tuple[InvoiceSnapshot, PaymentSnapshot]:
    """A subscription's ``PAYMENT.SALE.COMPLETED`` sale as its paid invoice and that invoice's payment."""
    sale_id = _text(sale, "id")
    subscription_id = _text(sale, "billing_agreement_id")
    amount = sale.get("amount")
    if not isinstance(amount, Mapping):
        raise MalformedObjectError("missing amount")
    total = _money({"amount": {"currency_code": amount.get("currency"), "value": amount.get("total")}})
    price = total.amount - _added_tax(amount, total.currency)
    paid = sale.get("state") == "completed"
    invoice = InvoiceSnapshot(
        provider_invoice_id=sale_id,
        status=InvoiceStatus.PAID if paid else InvoiceStatus.OPEN,
        total=total,
        amount_paid=total.amount if paid else 0,
        provider_subscription_id=subscription_id,
        provider_payment_id=sale_id,
        period_start=parse_time(sale.get("create_time")),
        # A sale names no plan, quantity or period: one line of what it billed before the tax
        # PayPal added (the library computes its invoice's tax from it and compares the gross).
        lines=(
            {
                "description": f"PayPal subscription {subscription_id}",
                "quantity": 1,
                "unit_amount": price,
                "amount": price,
                "period_start": parse_time(sale.get("create_time")),
            },
        ),
    )
    payment = PaymentSnapshot(
        provider_payment_id=sale_id,
        status=PaymentStatus.SUCCEEDED if paid else PaymentStatus.PROCESSING,
        amount=total,
        provider_invoice_id=sale_id,
        provider_subscription_id=subscription_id,
        payment_method_summary="PayPal",
    )
    return invoice, payment
