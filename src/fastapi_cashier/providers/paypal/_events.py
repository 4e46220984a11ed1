"""PayPal webhook events normalised into :class:`~fastapi_cashier.providers.base.ProviderEvent`.

PayPal event type -> canonical type (``*``: ``refetch=True``, the inbox re-reads the object first,
since PayPal does not promise the order of deliveries):

* ``CHECKOUT.ORDER.APPROVED`` -> ``checkout.approved`` (the order must now be captured);
  ``CHECKOUT.ORDER.COMPLETED`` -> ``checkout.completed``; ``CHECKOUT.ORDER.VOIDED`` ->
  ``checkout.expired``.
* ``PAYMENT.CAPTURE.COMPLETED`` / ``.PENDING`` / ``.DENIED`` / ``.DECLINED`` ->
  ``payment.succeeded`` / ``payment.processing`` / ``payment.failed`` (*).
* ``PAYMENT.CAPTURE.REFUNDED`` and ``.REVERSED`` (their resource is the refund) ->
  ``refund.succeeded`` (*).
* ``BILLING.SUBSCRIPTION.CREATED`` -> ``subscription.created``; ``.ACTIVATED``, ``.UPDATED``,
  ``.SUSPENDED``, ``.RE-ACTIVATED`` and ``.PAYMENT.FAILED`` -> ``subscription.updated``;
  ``.CANCELLED`` -> ``subscription.canceled``; ``.EXPIRED`` -> ``subscription.expired`` (*).
* ``PAYMENT.SALE.COMPLETED`` of a subscription (``billing_agreement_id``) -> ``invoice.paid``,
  whose payment is recorded with it.

Every other event type is normalised with ``snapshot=None`` under PayPal's own name: the inbox
records it as ignored. The event id is PayPal's ``WH-...`` id, the same on every retry.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final, cast

from ...errors import WebhookError
from ..base import EventType, ObjectKind, ProviderEvent, Snapshot, parse_or_ignore
from ._errors import PROVIDER_NAME
from ._objects import (
    MalformedObjectError,
    checkout_snapshot,
    decode_local_ids,
    parse_time,
    payment_snapshot,
    refund_snapshot,
    sale_invoice_snapshot,
    subscription_snapshot,
)

__all__ = ["parse_delivery", "parse_event"]

_E = EventType

_ORDER_TYPES: Final[Mapping[str, str]] = {
    "CHECKOUT.ORDER.APPROVED": _E.CHECKOUT_APPROVED.value,
    "CHECKOUT.ORDER.COMPLETED": _E.CHECKOUT_COMPLETED.value,
    "CHECKOUT.ORDER.VOIDED": _E.CHECKOUT_EXPIRED.value,
}
_CAPTURE_TYPES: Final[Mapping[str, str]] = {
    "PAYMENT.CAPTURE.COMPLETED": _E.PAYMENT_SUCCEEDED.value,
    "PAYMENT.CAPTURE.PENDING": _E.PAYMENT_PROCESSING.value,
    "PAYMENT.CAPTURE.DENIED": _E.PAYMENT_FAILED.value,
    "PAYMENT.CAPTURE.DECLINED": _E.PAYMENT_FAILED.value,
}
_REFUND_TYPES: Final = frozenset({"PAYMENT.CAPTURE.REFUNDED", "PAYMENT.CAPTURE.REVERSED"})
_SUBSCRIPTION_TYPES: Final[Mapping[str, str]] = {
    "BILLING.SUBSCRIPTION.CREATED": _E.SUBSCRIPTION_CREATED.value,
    "BILLING.SUBSCRIPTION.ACTIVATED": _E.SUBSCRIPTION_UPDATED.value,
    "BILLING.SUBSCRIPTION.RE-ACTIVATED": _E.SUBSCRIPTION_UPDATED.value,
    "BILLING.SUBSCRIPTION.UPDATED": _E.SUBSCRIPTION_UPDATED.value,
    "BILLING.SUBSCRIPTION.SUSPENDED": _E.SUBSCRIPTION_UPDATED.value,
    "BILLING.SUBSCRIPTION.PAYMENT.FAILED": _E.SUBSCRIPTION_UPDATED.value,
    "BILLING.SUBSCRIPTION.CANCELLED": _E.SUBSCRIPTION_CANCELED.value,
    "BILLING.SUBSCRIPTION.EXPIRED": _E.SUBSCRIPTION_EXPIRED.value,
}


def _load(body: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise WebhookError("the body of the PayPal webhook is not valid JSON") from exc
    if (
        not isinstance(payload, dict)
        or not isinstance(payload.get("id"), str)
        or not isinstance(payload.get("event_type"), str)
        or not isinstance(payload.get("resource"), dict)
        or not isinstance(payload.get("create_time"), str)
    ):
        raise WebhookError(
            'the body is not a PayPal event: expected {"id": str, "event_type": str, '
            '"create_time": str, "resource": {...}}'
        )
    return payload


def parse_delivery(body: bytes) -> ProviderEvent:
    """Normalise a verified delivery; a JSON object with an event ``id`` that is not an event the
    adapter can read is kept with its ``ignored_reason``
    (:func:`~fastapi_cashier.providers.base.parse_or_ignore`).

    Raises:
        WebhookError: The body is not a JSON object with an ``id`` of 1 to 255 characters.
    """
    return parse_or_ignore(PROVIDER_NAME, body, parse_event, _describe_unreadable)


def _describe_unreadable(payload: dict[str, Any]) -> tuple[str | None, object, object, object]:
    event_id, resource = payload.get("id"), payload.get("resource")
    resource_id = resource.get("id") if isinstance(resource, dict) else None
    return (
        event_id if isinstance(event_id, str) else None,
        payload.get("event_type"),
        payload.get("resource_type"),
        resource_id,
    )


def parse_event(body: bytes) -> ProviderEvent:
    """Normalise a (verified) PayPal event body.

    Raises:
        WebhookError: Not JSON, not a PayPal event, or a handled event whose resource lacks a
            field the adapter needs.
    """
    payload = _load(body)
    event_type: str = payload["event_type"]
    resource: dict[str, Any] = payload["resource"]
    try:
        occurred_at = _occurred_at(payload, resource)
        kind, object_id, canonical, snapshot, refetch = _map(
            event_type, resource, payload.get("resource_type")
        )
    except MalformedObjectError as exc:
        raise WebhookError(f"the resource of PayPal event {payload['id']} is malformed: {exc}") from exc
    return ProviderEvent(
        provider=PROVIDER_NAME,
        id=payload["id"],
        type=canonical,
        occurred_at=occurred_at,
        object_kind=kind,
        object_id=object_id,
        snapshot=snapshot,
        local_ids=decode_local_ids(_custom_id(resource)),
        raw=payload,
        refetch=refetch and snapshot is not None,
    )


def _custom_id(resource: Mapping[str, Any]) -> object:
    """Where PayPal keeps the merchant's id: a capture's or subscription's ``custom_id``, an order's
    first purchase unit's, a v1 sale's ``custom``."""
    units = resource.get("purchase_units")
    if isinstance(units, list) and units and isinstance(units[0], Mapping):
        return units[0].get("custom_id")
    return resource.get("custom_id") or resource.get("custom")


def _occurred_at(payload: Mapping[str, Any], resource: Mapping[str, Any]) -> datetime:
    # The resource's own update time orders changes of one object; the event's time is the fallback.
    moment = parse_time(resource.get("update_time")) or parse_time(payload.get("create_time"))
    if moment is None:
        raise MalformedObjectError("no time")
    return moment


def _map(
    event_type: str, resource: dict[str, Any], resource_type: object
) -> tuple[ObjectKind, str, str, Snapshot | None, bool]:
    resource_id = str(resource.get("id", ""))
    if event_type in _ORDER_TYPES:
        return "checkout_session", resource_id, _ORDER_TYPES[event_type], checkout_snapshot(resource), False
    if event_type in _CAPTURE_TYPES:
        snapshot = payment_snapshot(resource)
        return "payment", snapshot.provider_payment_id, _CAPTURE_TYPES[event_type], snapshot, True
    if event_type in _REFUND_TYPES:
        refund = refund_snapshot(resource)
        return "refund", resource_id, _E.REFUND_SUCCEEDED.value, refund, True
    if event_type in _SUBSCRIPTION_TYPES:
        sub = subscription_snapshot(resource)
        return "subscription", sub.provider_subscription_id, _SUBSCRIPTION_TYPES[event_type], sub, True
    if event_type == "PAYMENT.SALE.COMPLETED" and resource.get("billing_agreement_id"):
        invoice, _ = sale_invoice_snapshot(resource)
        return "invoice", invoice.provider_invoice_id, _E.INVOICE_PAID.value, invoice, False
    # Objects the library does not model keep PayPal's resource type as their kind (recorded only).
    kind = cast("ObjectKind", str(resource_type or "unknown"))
    return kind, resource_id, event_type, None, False
