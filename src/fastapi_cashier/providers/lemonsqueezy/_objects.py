"""Lemon Squeezy resources (JSON:API ``{"type", "id", "attributes"}``) read into snapshots.

Ids the library stores, chosen so no two kinds of Lemon Squeezy object can collide in one column:

* a payment is an order or a subscription invoice: ``"orders/<id>"`` or
  ``"subscription-invoices/<id>"`` (the resource's API path, which :meth:`fetch` reads back);
* a subscription is its id; its price is the variant id (the catalog links plans to variants);
* an invoice is the subscription invoice's id; a checkout is the checkout's id.

Amounts are integers in the currency's minor units ("cents" in Lemon Squeezy's words), as the API
sends them; they never pass through a float.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

from ...errors import ProviderError
from ...money import Money
from ...statuses import InvoiceStatus, PaymentStatus, SubscriptionStatus
from ..base import LOCAL_ID_KEYS, InvoiceSnapshot, PaymentSnapshot, SubscriptionSnapshot
from ._errors import PROVIDER_NAME

__all__ = [
    "MalformedResourceError",
    "attributes",
    "integer",
    "invoice_payment_id",
    "invoice_payment_snapshot",
    "invoice_snapshot",
    "local_ids",
    "order_payment_id",
    "order_snapshot",
    "parse_time",
    "subscription_item_id",
    "subscription_snapshot",
]


class MalformedResourceError(ProviderError):
    """A resource lacks a field the adapter needs, or has one of the wrong type."""

    def __init__(self, message: str) -> None:
        super().__init__(
            f"Lemon Squeezy sent a resource the adapter cannot read: {message}", provider=PROVIDER_NAME
        )


def order_payment_id(order_id: str) -> str:
    """The library's payment id of an order."""
    return f"orders/{order_id}"


def invoice_payment_id(invoice_id: str) -> str:
    """The library's payment id of a subscription invoice."""
    return f"subscription-invoices/{invoice_id}"


def attributes(resource: Mapping[str, Any]) -> Mapping[str, Any]:
    """A resource's ``attributes`` (empty when absent)."""
    value = resource.get("attributes")
    return value if isinstance(value, dict) else {}


def integer(attrs: Mapping[str, Any], name: str, *, default: int | None = None) -> int:
    """An integer attribute (amounts, ids, quantities); a float is refused, never rounded."""
    value = attrs.get(name)
    if value is None and default is not None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise MalformedResourceError(f"{name!r} should be an integer, not {value!r}")
    return value


def parse_time(value: Any) -> datetime | None:
    """An ISO 8601 time (``2024-06-19T14:08:14.000000Z``) as an aware datetime; ``None`` for null."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise MalformedResourceError(f"a time should be an ISO 8601 string, not {value!r}")
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise MalformedResourceError(f"{value!r} is not an ISO 8601 time") from exc
    if moment.tzinfo is None:
        raise MalformedResourceError(f"{value!r} has no time zone")
    return moment


def local_ids(custom_data: Any) -> dict[str, str]:
    """The library's ids in ``meta.custom_data`` (the checkout's ``checkout_data.custom``)."""
    if not isinstance(custom_data, dict):
        return {}
    return {
        key: value for key, value in custom_data.items() if key in LOCAL_ID_KEYS and isinstance(value, str)
    }


def _currency(attrs: Mapping[str, Any]) -> str:
    value = attrs.get("currency")
    if not isinstance(value, str) or not value:
        raise MalformedResourceError(f"'currency' should be an ISO 4217 code, not {value!r}")
    return value


_PAYMENT_STATUSES: Final = {
    "pending": PaymentStatus.PENDING,
    "paid": PaymentStatus.SUCCEEDED,
    "failed": PaymentStatus.FAILED,
    "void": PaymentStatus.CANCELED,
    "refunded": PaymentStatus.REFUNDED,
    "partial_refund": PaymentStatus.PARTIALLY_REFUNDED,
}


def _payment_status(attrs: Mapping[str, Any], total: int, refunded: int) -> PaymentStatus:
    status = _PAYMENT_STATUSES.get(str(attrs.get("status")))
    if status is None:
        raise MalformedResourceError(f"unknown payment status {attrs.get('status')!r}")
    if status is PaymentStatus.SUCCEEDED and refunded > 0:
        return PaymentStatus.REFUNDED if refunded >= total else PaymentStatus.PARTIALLY_REFUNDED
    return status


def _card(attrs: Mapping[str, Any]) -> str | None:
    brand, last_four = attrs.get("card_brand"), attrs.get("card_last_four")
    if isinstance(brand, str) and brand and isinstance(last_four, str) and last_four:
        return f"{brand} ending {last_four}"
    return None


def _description(attrs: Mapping[str, Any]) -> str | None:
    item = attrs.get("first_order_item")
    if isinstance(item, dict):
        names = [
            name for name in (item.get("product_name"), item.get("variant_name")) if isinstance(name, str)
        ]
        names = [name for name in names if name and name != "Default"]
        if names:
            return " - ".join(names)
    return None


def order_snapshot(order: Mapping[str, Any]) -> PaymentSnapshot:
    """An order as a payment; ``refunded_amount`` is what Lemon Squeezy has refunded of it in total."""
    attrs = attributes(order)
    total = integer(attrs, "total")
    refunded = integer(attrs, "refunded_amount", default=0)
    customer = attrs.get("customer_id")
    return PaymentSnapshot(
        provider_payment_id=order_payment_id(str(order["id"])),
        status=_payment_status(attrs, total, refunded),
        amount=Money(total, _currency(attrs)),
        refunded_amount=refunded,
        provider_customer_id=str(customer) if customer is not None else None,
        description=_description(attrs),
    )


def invoice_payment_snapshot(invoice: Mapping[str, Any]) -> PaymentSnapshot:
    """A subscription invoice as the payment that settled it."""
    attrs = attributes(invoice)
    total = integer(attrs, "total")
    refunded = integer(attrs, "refunded_amount", default=0)
    status = _payment_status(attrs, total, refunded)
    customer = attrs.get("customer_id")
    return PaymentSnapshot(
        provider_payment_id=invoice_payment_id(str(invoice["id"])),
        status=status,
        amount=Money(total, _currency(attrs)),
        refunded_amount=refunded,
        provider_customer_id=str(customer) if customer is not None else None,
        provider_invoice_id=str(invoice["id"]),
        provider_subscription_id=str(integer(attrs, "subscription_id")),
        payment_method_summary=_card(attrs),
        description="Subscription",
    )


_INVOICE_STATUSES: Final = {
    "pending": InvoiceStatus.OPEN,
    "paid": InvoiceStatus.PAID,
    "void": InvoiceStatus.VOID,
    # A refund is recorded on the invoice's payment; the invoice stays paid.
    "refunded": InvoiceStatus.PAID,
    "partial_refund": InvoiceStatus.PAID,
}


def invoice_snapshot(invoice: Mapping[str, Any]) -> InvoiceSnapshot:
    """A subscription invoice, linked to its subscription and to its payment.

    Lemon Squeezy is the merchant of record: its ``tax`` is the tax charged, recorded as is
    (``InvoiceSnapshot.tax``); the line is the rest of the total (after any discount), so the
    local invoice's net + tax is exactly the total charged, tax-inclusive or not.
    """
    attrs = attributes(invoice)
    status = _INVOICE_STATUSES.get(str(attrs.get("status")))
    if status is None:
        raise MalformedResourceError(f"unknown subscription invoice status {attrs.get('status')!r}")
    total = integer(attrs, "total")
    tax = integer(attrs, "tax", default=0)
    paid = status is InvoiceStatus.PAID
    return InvoiceSnapshot(
        provider_invoice_id=str(invoice["id"]),
        status=status,
        total=Money(total, _currency(attrs)),
        amount_paid=total if paid else 0,
        provider_subscription_id=str(integer(attrs, "subscription_id")),
        provider_payment_id=invoice_payment_id(str(invoice["id"])) if paid else None,
        lines=(
            {
                "description": f"Subscription ({attrs.get('billing_reason') or 'renewal'})",
                "amount": total - tax,
                "tax": tax,
                "discount": integer(attrs, "discount_total", default=0),
            },
        ),
        tax=tax,
    )


_SUBSCRIPTION_STATUSES: Final = {
    "on_trial": SubscriptionStatus.TRIALING,
    "active": SubscriptionStatus.ACTIVE,
    "paused": SubscriptionStatus.PAUSED,
    "past_due": SubscriptionStatus.PAST_DUE,
    # Four retries failed; dunning rules decide whether it expires. No access is owed meanwhile.
    "unpaid": SubscriptionStatus.PAST_DUE,
    "expired": SubscriptionStatus.EXPIRED,
}


def subscription_snapshot(subscription: Mapping[str, Any]) -> SubscriptionSnapshot:
    """A subscription. Lemon Squeezy's ``cancelled`` is a grace period: the subscription stays
    active (or on trial) until ``ends_at``, so it reads as ``cancel_at_period_end``."""
    attrs = attributes(subscription)
    raw_status = str(attrs.get("status"))
    trial_end = parse_time(attrs.get("trial_ends_at"))
    ends_at = parse_time(attrs.get("ends_at"))
    cancelled = bool(attrs.get("cancelled")) or raw_status == "cancelled"
    if raw_status == "cancelled":
        status = SubscriptionStatus.TRIALING if trial_end is not None else SubscriptionStatus.ACTIVE
    elif raw_status == "pause":
        status = SubscriptionStatus.PAUSED
    else:
        found = _SUBSCRIPTION_STATUSES.get(raw_status)
        if found is None:
            raise MalformedResourceError(f"unknown subscription status {raw_status!r}")
        status = found
    item = attrs.get("first_subscription_item")
    quantity = integer(item, "quantity", default=1) if isinstance(item, dict) else 1
    variant = attrs.get("variant_id")
    customer = attrs.get("customer_id")
    expired = status is SubscriptionStatus.EXPIRED
    renews_at = parse_time(attrs.get("renews_at"))
    # Lemon Squeezy reports no period start. A trial's period is the trial, from the
    # subscription's creation; a paid period's start is left to the library, which steps back
    # from its end by the plan's interval (the variant's, which catalog sync matched).
    on_trial = raw_status == "on_trial" and trial_end is not None
    trial_start = parse_time(attrs.get("created_at")) if on_trial else None
    return SubscriptionSnapshot(
        provider_subscription_id=str(subscription["id"]),
        status=status,
        quantity=quantity,
        provider_price_id=str(variant) if variant is not None else None,
        provider_customer_id=str(customer) if customer is not None else None,
        current_period_start=trial_start,
        current_period_end=ends_at if cancelled and ends_at is not None else renews_at,
        trial_start=trial_start,
        trial_end=trial_end,
        cancel_at_period_end=cancelled and not expired,
        ended_at=ends_at if expired else None,
        paused=attrs.get("pause") is not None or status is SubscriptionStatus.PAUSED,
    )


def subscription_item_id(subscription: Mapping[str, Any]) -> str | None:
    """The id of the subscription's (first and only) item, for quantity changes and usage."""
    item = attributes(subscription).get("first_subscription_item")
    if isinstance(item, dict) and item.get("id") is not None:
        return str(item["id"])
    return None
