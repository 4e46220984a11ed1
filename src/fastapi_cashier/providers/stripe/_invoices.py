"""Stripe invoices (webhook payloads and API responses alike) normalised into snapshots.

Fields Stripe moved in 2025 are read from the current place first and the older one second: the
invoice's subscription is ``parent.subscription_details.subscription`` (before: ``subscription``)
and its payment is in ``payments`` (before: ``payment_intent``); a line's proration flag is
``parent.subscription_item_details.proration`` (before: ``proration``) and its unit price
``pricing.unit_amount_decimal`` (before: ``price.unit_amount``).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from ...statuses import InvoiceStatus
from ..base import InvoiceSnapshot
from ._objects import (
    MalformedObjectError,
    as_mapping,
    from_unix,
    list_data,
    money_field,
    object_id,
    optional_text,
    required_int,
    required_text,
)

__all__ = [
    "invoice_payment_intent",
    "invoice_snapshot",
    "invoice_subscription",
    "invoice_subscription_metadata",
]


_INVOICE_STATUSES: Final = {status.value: status for status in InvoiceStatus}


def invoice_subscription(invoice: Mapping[str, Any]) -> str | None:
    """The subscription an invoice bills, in the current or the older place."""
    details = as_mapping(as_mapping(invoice.get("parent")).get("subscription_details"))
    return object_id(details.get("subscription")) or object_id(invoice.get("subscription"))


def invoice_subscription_metadata(invoice: Mapping[str, Any]) -> Mapping[str, Any]:
    """The subscription's metadata as copied onto the invoice (current API versions)."""
    details = as_mapping(as_mapping(invoice.get("parent")).get("subscription_details"))
    return as_mapping(details.get("metadata"))


def invoice_payment_intent(invoice: Mapping[str, Any]) -> str | None:
    """The PaymentIntent that paid (or is paying) an invoice, from ``payments`` when expanded."""
    payments = list_data(invoice.get("payments"))
    payments.sort(key=lambda payment: payment.get("status") != "paid")
    for payment in payments:
        intent = object_id(as_mapping(payment.get("payment")).get("payment_intent"))
        if intent is not None:
            return intent
    return object_id(invoice.get("payment_intent"))


def _unit_amount(line: Mapping[str, Any], amount: int, quantity: int) -> int:
    pricing = as_mapping(line.get("pricing"))
    decimal_text = pricing.get("unit_amount_decimal")
    if isinstance(decimal_text, str | int):
        try:
            value = Decimal(decimal_text)
        except InvalidOperation as exc:
            raise MalformedObjectError(f"unit_amount_decimal {decimal_text!r} is not a number") from exc
        if value == value.to_integral_value():
            return int(value)
    price = as_mapping(line.get("price")) or as_mapping(line.get("plan"))
    for key in ("unit_amount", "amount"):
        found = price.get(key)
        if isinstance(found, int) and not isinstance(found, bool):
            return found
    # A sub-cent unit price: the line's exact amount spread over its units, rounded down.
    return amount // quantity if quantity else amount


def _invoice_line(line: Mapping[str, Any]) -> dict[str, Any]:
    amount = required_int(line, "amount")
    quantity = line.get("quantity")
    units = quantity if isinstance(quantity, int) and not isinstance(quantity, bool) else 1
    details = as_mapping(as_mapping(line.get("parent")).get("subscription_item_details"))
    proration = details.get("proration", line.get("proration", False))
    period = as_mapping(line.get("period"))
    price = as_mapping(line.get("price")) or as_mapping(line.get("plan"))
    return {
        "description": optional_text(line, "description") or "",
        "quantity": units,
        "unit_amount": _unit_amount(line, amount, units),
        "amount": amount,
        "proration": bool(proration),
        "period_start": from_unix(period.get("start")),
        "period_end": from_unix(period.get("end")),
        "plan_id": optional_text(as_mapping(price.get("metadata")), "plan_id"),
    }


def invoice_snapshot(
    invoice: Mapping[str, Any], *, lines: list[Mapping[str, Any]] | None = None
) -> InvoiceSnapshot:
    """An Invoice, with ``lines`` (all of them, when the caller listed them) or its embedded ones.

    The billed period is the span of the lines' periods (an invoice's own ``period_*`` is the
    period *before* a renewal); without lines, the invoice's own fields.
    """
    raw = invoice.get("status") or "draft"
    if raw not in _INVOICE_STATUSES:
        raise MalformedObjectError(f"unknown invoice status {raw!r}")
    parsed = [
        _invoice_line(line) for line in (lines if lines is not None else list_data(invoice.get("lines")))
    ]
    starts = [line["period_start"] for line in parsed if line["period_start"] is not None]
    ends = [line["period_end"] for line in parsed if line["period_end"] is not None]
    return InvoiceSnapshot(
        provider_invoice_id=required_text(invoice, "id"),
        status=_INVOICE_STATUSES[raw],
        total=money_field(invoice, "total"),
        amount_paid=required_int(invoice, "amount_paid", 0),
        provider_subscription_id=invoice_subscription(invoice),
        provider_payment_id=invoice_payment_intent(invoice),
        period_start=min(starts) if starts else from_unix(invoice.get("period_start")),
        period_end=max(ends) if ends else from_unix(invoice.get("period_end")),
        lines=tuple(parsed),
        tax=_invoice_tax(invoice),
    )


def _invoice_tax(invoice: Mapping[str, Any]) -> int | None:
    """The tax Stripe computed: ``total_taxes`` (current API versions) or ``tax`` (older ones)."""
    taxes = invoice.get("total_taxes")
    if isinstance(taxes, list) and taxes:
        return sum(int(entry.get("amount") or 0) for entry in taxes if isinstance(entry, Mapping))
    tax = invoice.get("tax")
    return tax if isinstance(tax, int) and not isinstance(tax, bool) else None
