"""Lemon Squeezy webhook bodies normalised into :class:`~fastapi_cashier.providers.base.ProviderEvent`.

A body is ``{"meta": {"event_name", "custom_data"?, "test_mode"?, "webhook_id"?}, "data": <resource>}``.

Event name -> canonical type (the resource it carries):

* ``order_created`` (an order) -> ``checkout.completed`` carrying the order as its payment, for a
  paid one-off checkout of the library (``payment.succeeded`` for an order without one; the
  order's status where it is pending or failed); for a subscription's checkout (its custom data
  names a plan) it only completes the checkout session (``checkout.completed``): the money is
  recorded from the subscription invoice that Lemon Squeezy sends with it.
* ``order_refunded`` (an order) -> ``refund.succeeded`` about the order's payment, carrying the
  total ``refunded_amount``.
* ``subscription_created`` -> ``subscription.created``; ``subscription_updated``, ``_cancelled``,
  ``_resumed``, ``_paused``, ``_unpaused``, ``_plan_changed`` -> ``subscription.updated``;
  ``subscription_expired`` -> ``subscription.expired`` (a subscription).
* ``subscription_payment_success`` and ``_recovered`` -> ``invoice.paid``;
  ``subscription_payment_failed`` -> ``invoice.payment_failed`` (a subscription invoice, recorded
  with its payment); ``subscription_payment_refunded`` -> ``refund.succeeded`` about the invoice's
  payment.
* Anything else (``license_key_*``, ``affiliate_activated``, ...), and a body whose resource has
  no attributes, keeps Lemon Squeezy's name and no snapshot: the inbox records it as ignored.

The ordering guard's clock is the resource's own ``updated_at``.

Deduplication: Lemon Squeezy sends no event id. The id of an event is
``<event_name>:<type>/<id>:<updated_at>:<digest>``, where the digest is a SHA-256 of the resource's
attributes without ``urls`` (signed links Lemon Squeezy may sign afresh on each delivery). A
redelivery of one event carries the same object state, so the same id; two real changes of one
object differ in their ``updated_at`` or their state, so in their id, even within one second. Two
different events about one change differ in their name.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, cast

from ...errors import WebhookError
from ...statuses import CheckoutSessionStatus, PaymentStatus
from ..base import CheckoutSnapshot, EventType, ObjectKind, ProviderEvent, Snapshot, parse_or_ignore
from ._errors import PROVIDER_NAME
from ._objects import (
    MalformedResourceError,
    attributes,
    invoice_payment_id,
    invoice_payment_snapshot,
    invoice_snapshot,
    local_ids,
    order_payment_id,
    order_snapshot,
    parse_time,
    subscription_snapshot,
)

__all__ = ["SUBSCRIBED_EVENTS", "event_id", "parse_delivery", "parse_event"]

_E = EventType

_SUBSCRIPTION_EVENTS: Final[Mapping[str, EventType]] = {
    "subscription_created": _E.SUBSCRIPTION_CREATED,
    "subscription_updated": _E.SUBSCRIPTION_UPDATED,
    "subscription_cancelled": _E.SUBSCRIPTION_UPDATED,
    "subscription_resumed": _E.SUBSCRIPTION_UPDATED,
    "subscription_paused": _E.SUBSCRIPTION_UPDATED,
    "subscription_unpaused": _E.SUBSCRIPTION_UPDATED,
    "subscription_plan_changed": _E.SUBSCRIPTION_UPDATED,
    "subscription_expired": _E.SUBSCRIPTION_EXPIRED,
}

_INVOICE_EVENTS: Final[Mapping[str, EventType]] = {
    "subscription_payment_success": _E.INVOICE_PAID,
    "subscription_payment_recovered": _E.INVOICE_PAID,
    "subscription_payment_failed": _E.INVOICE_PAYMENT_FAILED,
}

SUBSCRIBED_EVENTS: Final = (
    "order_created",
    "order_refunded",
    *_SUBSCRIPTION_EVENTS,
    *_INVOICE_EVENTS,
    "subscription_payment_refunded",
)
"""The events a webhook for this adapter subscribes to (``fastapi-cashier lemonsqueezy webhook register``)."""

_MAX_EVENT_ID: Final = 255
_PAYMENT_EVENTS: Final[Mapping[PaymentStatus, EventType]] = {
    PaymentStatus.PENDING: _E.PAYMENT_PENDING,
    PaymentStatus.FAILED: _E.PAYMENT_FAILED,
    PaymentStatus.CANCELED: _E.PAYMENT_CANCELED,
}


@dataclass(frozen=True, slots=True)
class _Mapped:
    type: str
    kind: ObjectKind
    object_id: str
    snapshot: Snapshot | None


def parse_event(body: bytes) -> ProviderEvent:
    """Normalise a (verified) Lemon Squeezy webhook body.

    Raises:
        WebhookError: Not JSON, not a Lemon Squeezy event, or a handled resource without a field
            the adapter needs.
    """
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise WebhookError("the body of the Lemon Squeezy webhook is not valid JSON") from exc
    meta = payload.get("meta") if isinstance(payload, dict) else None
    data = payload.get("data") if isinstance(payload, dict) else None
    name = meta.get("event_name") if isinstance(meta, dict) else None
    if (
        not isinstance(meta, dict)
        or not isinstance(data, dict)
        or not isinstance(name, str)
        or not name
        or not isinstance(data.get("type"), str)
        or not isinstance(data.get("id"), str | int)
    ):
        raise WebhookError(
            'the body is not a Lemon Squeezy event: expected {"meta": {"event_name": str, ...}, '
            '"data": {"type": str, "id": str, "attributes": {...}}}'
        )
    ids = local_ids(meta.get("custom_data"))
    try:
        mapped = _map(name, data, ids)
        updated_at = parse_time(attributes(data).get("updated_at"))
    except MalformedResourceError as exc:
        raise WebhookError(
            f"the {data['type']} {data['id']} of Lemon Squeezy event {name} is malformed: {exc}"
        ) from exc
    return ProviderEvent(
        provider=PROVIDER_NAME,
        id=event_id(name, data),
        type=mapped.type,
        occurred_at=updated_at or _created_or_epoch(data),
        object_kind=mapped.kind,
        object_id=mapped.object_id,
        snapshot=mapped.snapshot,
        local_ids=ids,
        raw=payload,
    )


def parse_delivery(body: bytes) -> ProviderEvent:
    """Normalise a verified delivery; a JSON object that is not an event the adapter can read is
    kept with its ``ignored_reason`` (:func:`~fastapi_cashier.providers.base.parse_or_ignore`),
    deduplicated by the body's digest (a redelivery sends the same bytes).

    Raises:
        WebhookError: The body is not a JSON object.
    """
    return parse_or_ignore(PROVIDER_NAME, body, parse_event, _describe_unreadable)


def _describe_unreadable(payload: dict[str, Any]) -> tuple[str, object, object, object]:
    meta, data = payload.get("meta"), payload.get("data")
    meta = meta if isinstance(meta, dict) else {}
    data = data if isinstance(data, dict) else {}
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
    return f"unreadable:{digest}", meta.get("event_name"), data.get("type"), data.get("id")


def event_id(name: str, resource: Mapping[str, Any]) -> str:
    """The deduplication key of an event (see the module's documentation)."""
    attrs = {key: value for key, value in attributes(resource).items() if key != "urls"}
    digest = hashlib.sha256(
        json.dumps(attrs, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")
    ).hexdigest()
    stamp = attrs.get("updated_at") if isinstance(attrs.get("updated_at"), str) else "-"
    key = f"{name}:{resource['type']}/{resource['id']}:{stamp}:{digest[:32]}"
    if len(key) > _MAX_EVENT_ID:
        return f"{name[:64]}:{hashlib.sha256(key.encode()).hexdigest()}"
    return key


def _created_or_epoch(resource: Mapping[str, Any]) -> datetime:
    created = parse_time(attributes(resource).get("created_at"))
    return created or datetime(1970, 1, 1, tzinfo=UTC)


def _map(name: str, resource: Mapping[str, Any], ids: Mapping[str, str]) -> _Mapped:
    type_, id_ = str(resource["type"]), str(resource["id"])
    if not attributes(resource):
        return _Mapped(name, _kind(type_), id_, None)
    if type_ == "orders" and name == "order_created":
        if "plan_id" in ids and "checkout_session_id" in ids:
            completed = CheckoutSnapshot(
                provider_session_id=ids["checkout_session_id"], status=CheckoutSessionStatus.COMPLETE
            )
            return _Mapped(
                _E.CHECKOUT_COMPLETED.value, "checkout_session", ids["checkout_session_id"], completed
            )
        payment = order_snapshot(resource)
        event_type = _PAYMENT_EVENTS.get(payment.status, _E.PAYMENT_SUCCEEDED)
        if event_type is _E.PAYMENT_SUCCEEDED and "checkout_session_id" in ids:
            # The order is the checkout's completion and its payment at once.
            event_type = _E.CHECKOUT_COMPLETED
        return _Mapped(event_type.value, "payment", order_payment_id(id_), payment)
    if type_ == "orders" and name == "order_refunded":
        return _Mapped(_E.REFUND_SUCCEEDED.value, "payment", order_payment_id(id_), order_snapshot(resource))
    if type_ == "subscriptions" and name in _SUBSCRIPTION_EVENTS:
        snapshot = subscription_snapshot(resource)
        return _Mapped(_SUBSCRIPTION_EVENTS[name].value, "subscription", id_, snapshot)
    if type_ == "subscription-invoices" and name in _INVOICE_EVENTS:
        return _Mapped(_INVOICE_EVENTS[name].value, "invoice", id_, invoice_snapshot(resource))
    if type_ == "subscription-invoices" and name == "subscription_payment_refunded":
        payment = invoice_payment_snapshot(resource)
        return _Mapped(_E.REFUND_SUCCEEDED.value, "payment", invoice_payment_id(id_), payment)
    return _Mapped(name, _kind(type_), id_, None)


def _kind(resource_type: str) -> ObjectKind:
    kinds: Mapping[str, ObjectKind] = {
        "orders": "payment",
        "subscriptions": "subscription",
        "subscription-invoices": "invoice",
        "checkouts": "checkout_session",
        "customers": "customer",
    }
    # Resources the library does not model (license keys, ...) keep Lemon Squeezy's type as their
    # kind: recorded, never applied.
    return kinds.get(resource_type, cast("ObjectKind", resource_type))
