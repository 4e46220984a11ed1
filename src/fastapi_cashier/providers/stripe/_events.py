"""Stripe events normalised into :class:`~fastapi_cashier.providers.base.ProviderEvent`.

Stripe type -> canonical type (``*``: ``refetch=True``, the inbox re-reads the object first):

* ``checkout.session.completed`` -> ``checkout.completed``;
  ``checkout.session.expired`` -> ``checkout.expired``.
* ``payment_intent.created`` / ``.requires_action`` / ``.processing`` / ``.succeeded`` /
  ``.payment_failed`` / ``.canceled`` -> ``payment.pending`` / ``payment.requires_action`` /
  ``payment.processing`` / ``payment.succeeded`` / ``payment.failed`` / ``payment.canceled`` (*).
* ``charge.refunded`` -> ``refund.succeeded`` about the charge's PaymentIntent (*): it confirms
  the payment's refunded total; each refund comes with its own ``refund.*`` event.
* ``refund.created`` / ``.updated`` / ``.failed`` and ``charge.refund.updated`` ->
  ``refund.succeeded`` or ``refund.failed`` by the refund's status (*).
* ``invoice.paid`` and ``invoice.payment_succeeded`` -> ``invoice.paid``;
  ``invoice.payment_failed`` -> ``invoice.payment_failed`` (*).
* ``customer.subscription.created`` -> ``subscription.created``;
  ``customer.subscription.updated`` / ``.paused`` / ``.resumed`` / ``.pending_update_applied`` /
  ``.pending_update_expired`` -> ``subscription.updated``;
  ``customer.subscription.deleted`` -> ``subscription.canceled`` (*).

Re-read events are those whose order of arrival need not be their order of occurrence. A refund
event whose refund is still pending, and every other event type, is normalised with
``snapshot=None`` under Stripe's own type name: the inbox records it as ignored. Such an event's
object may have no id (``invoice.upcoming``, ``balance.available``, older
``customer.discount.*``); it is stored all the same, with an empty object id. A signed body
with an event id that is not a snapshot event the adapter can read (no ``type``, a thin
``v2.core.event``, a handled object missing a field) is stored too and recorded as ignored,
with the reason (:attr:`ProviderEvent.ignored_reason`); only a body that is not JSON or has no
id is refused.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, cast

from ...clock import utcnow
from ...errors import WebhookError
from ..base import EventType, ObjectKind, ProviderEvent, Snapshot
from ._errors import PROVIDER_NAME
from ._invoices import invoice_snapshot, invoice_subscription_metadata
from ._objects import (
    MalformedObjectError,
    charge_payment_snapshot,
    checkout_snapshot,
    local_ids,
    object_id,
    payment_snapshot,
    refund_snapshot,
    refund_status,
    subscription_snapshot,
)

__all__ = ["OBJECT_KINDS", "parse_event"]

OBJECT_KINDS: Final[Mapping[str, ObjectKind]] = {
    "checkout.session": "checkout_session",
    "payment_intent": "payment",
    "charge": "payment",
    "refund": "refund",
    "subscription": "subscription",
    "invoice": "invoice",
    "customer": "customer",
}
"""The library's object kind of each Stripe object type it models."""

_E = EventType

_FIXED_TYPES: Final[Mapping[str, tuple[EventType, bool]]] = {
    "checkout.session.completed": (_E.CHECKOUT_COMPLETED, False),
    "checkout.session.expired": (_E.CHECKOUT_EXPIRED, False),
    "payment_intent.created": (_E.PAYMENT_PENDING, True),
    "payment_intent.requires_action": (_E.PAYMENT_REQUIRES_ACTION, True),
    "payment_intent.processing": (_E.PAYMENT_PROCESSING, True),
    "payment_intent.succeeded": (_E.PAYMENT_SUCCEEDED, True),
    "payment_intent.payment_failed": (_E.PAYMENT_FAILED, True),
    "payment_intent.canceled": (_E.PAYMENT_CANCELED, True),
    "charge.refunded": (_E.REFUND_SUCCEEDED, True),
    "invoice.paid": (_E.INVOICE_PAID, True),
    "invoice.payment_succeeded": (_E.INVOICE_PAID, True),
    "invoice.payment_failed": (_E.INVOICE_PAYMENT_FAILED, True),
    "customer.subscription.created": (_E.SUBSCRIPTION_CREATED, True),
    "customer.subscription.updated": (_E.SUBSCRIPTION_UPDATED, True),
    "customer.subscription.paused": (_E.SUBSCRIPTION_UPDATED, True),
    "customer.subscription.resumed": (_E.SUBSCRIPTION_UPDATED, True),
    "customer.subscription.pending_update_applied": (_E.SUBSCRIPTION_UPDATED, True),
    "customer.subscription.pending_update_expired": (_E.SUBSCRIPTION_UPDATED, True),
    "customer.subscription.deleted": (_E.SUBSCRIPTION_CANCELED, True),
}

_REFUND_TYPES: Final = frozenset(
    {"refund.created", "refund.updated", "refund.failed", "charge.refund.updated"}
)


@dataclass(frozen=True, slots=True)
class _Mapped:
    type: str
    kind: ObjectKind
    object_id: str
    snapshot: Snapshot | None
    refetch: bool


def parse_event(body: bytes) -> ProviderEvent:
    """Normalise a (verified) Stripe event body.

    A body that is a JSON object with an event ``id`` but not a snapshot event the adapter can
    read (no ``type`` or ``created``, a thin event, an object of a handled event without a field
    the adapter needs) is normalised with its ``ignored_reason`` set: the inbox stores it once and
    records it as ignored with that reason. Refusing it would only make Stripe retry it for days.

    Raises:
        WebhookError: Not JSON, or no event ``id`` to store it under (a string of 1 to 255
            characters).
    """
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise WebhookError("the body of the Stripe webhook is not valid JSON") from exc
    event_id = payload.get("id") if isinstance(payload, dict) else None
    if not isinstance(event_id, str) or not 1 <= len(event_id) <= _MAX_ID:
        raise WebhookError(
            f'the body is not a Stripe event: it has no "id" string of 1 to {_MAX_ID} characters'
        )
    try:
        return _snapshot_event(payload)
    except WebhookError as exc:
        return _unreadable_event(payload, event_id, exc.message)


#: The longest event, object id and type the inbox stores (its columns' lengths).
_MAX_ID: Final = 255
_MAX_TYPE: Final = 100
_MAX_KIND: Final = 40


def _unreadable_event(payload: Mapping[str, Any], event_id: str, reason: str) -> ProviderEvent:
    """A signed delivery the adapter cannot read, kept with what can be told of it."""
    stripe_type = payload.get("type")
    data = payload.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    obj = obj if isinstance(obj, dict) else {}
    stripe_object = obj.get("object") if isinstance(obj.get("object"), str) else payload.get("object")
    kind = OBJECT_KINDS.get(stripe_object, stripe_object) if isinstance(stripe_object, str) else "unknown"
    object_id = obj.get("id")
    return ProviderEvent(
        provider=PROVIDER_NAME,
        id=event_id,
        type=stripe_type[:_MAX_TYPE] if isinstance(stripe_type, str) and stripe_type else "unknown",
        occurred_at=_created(payload.get("created")) or utcnow(),
        object_kind=cast("ObjectKind", kind[:_MAX_KIND]),
        object_id=object_id if isinstance(object_id, str) and len(object_id) <= _MAX_ID else "",
        snapshot=None,
        raw=payload,
        ignored_reason=reason,
    )


def _created(value: object) -> datetime | None:
    """The event's time from unix seconds or (thin events) an ISO 8601 string; ``None`` if unusable."""
    try:
        if isinstance(value, int) and not isinstance(value, bool):
            return datetime.fromtimestamp(value, UTC)
        if isinstance(value, str):
            parsed = datetime.fromisoformat(value)
            return parsed.astimezone(UTC) if parsed.tzinfo is not None else None
    except (OverflowError, OSError, ValueError):
        return None
    return None


def _snapshot_event(payload: Mapping[str, Any]) -> ProviderEvent:
    """Normalise a snapshot event; ``WebhookError`` says why a body is not one the adapter reads."""
    if isinstance(payload, dict) and payload.get("object") == "v2.core.event":
        raise WebhookError(
            "this is a thin Stripe event; point a snapshot-payload event destination at this endpoint"
        )
    data = payload.get("data") if isinstance(payload, dict) else None
    obj = data.get("object") if isinstance(data, dict) else None
    created = payload.get("created") if isinstance(payload, dict) else None
    if (
        not isinstance(obj, dict)
        or not isinstance(payload.get("id"), str)
        or not isinstance(payload.get("type"), str)
        or not isinstance(created, int)
        or isinstance(created, bool)
        or not isinstance(obj.get("object"), str)
        or not isinstance(obj.get("id", ""), str)
    ):
        raise WebhookError(
            'the body is not a Stripe event: expected {"id": str, "type": str, "created": int, '
            '"data": {"object": {"object": str, ...}}}'
        )
    try:
        occurred_at = datetime.fromtimestamp(created, UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise WebhookError("the Stripe event's created time is out of range") from exc
    stripe_type: str = payload["type"]
    try:
        mapped = _map(stripe_type, obj)
    except MalformedObjectError as exc:
        raise WebhookError(
            f"the {obj['object']} of Stripe event {payload['id']} is malformed: {exc}"
        ) from exc
    extra_metadata = (invoice_subscription_metadata(obj),) if obj["object"] == "invoice" else ()
    return ProviderEvent(
        provider=PROVIDER_NAME,
        id=payload["id"],
        type=mapped.type,
        occurred_at=occurred_at,
        object_kind=mapped.kind,
        object_id=mapped.object_id,
        snapshot=mapped.snapshot,
        local_ids=local_ids(obj, *extra_metadata),
        raw=payload,
        refetch=mapped.refetch and mapped.snapshot is not None,
    )


def _map(stripe_type: str, obj: Mapping[str, Any]) -> _Mapped:
    stripe_object: str = obj["object"]
    # Objects the library does not model keep Stripe's name as their kind (recorded, never applied).
    kind = OBJECT_KINDS.get(stripe_object, cast("ObjectKind", stripe_object))
    # Some objects have no id of their own (an upcoming invoice, the balance, an older discount).
    ignored = _Mapped(stripe_type, kind, obj.get("id", ""), None, False)
    if stripe_type in _REFUND_TYPES and stripe_object == "refund":
        if "id" not in obj:
            raise MalformedObjectError(f"a {stripe_type} event's refund has no id")
        status = refund_status(obj.get("status"))
        canonical = {
            "succeeded": _E.REFUND_SUCCEEDED,
            "failed": _E.REFUND_FAILED,
            "canceled": _E.REFUND_FAILED,
        }
        if status.value not in canonical:
            return ignored
        return _Mapped(canonical[status.value].value, "refund", obj["id"], refund_snapshot(obj), True)
    fixed = _FIXED_TYPES.get(stripe_type)
    if fixed is None:
        return ignored
    event_type, refetch = fixed
    snapshot: Snapshot
    if "id" not in obj:
        raise MalformedObjectError(f"a {stripe_type} event's object has no id")
    if stripe_object == "checkout.session":
        snapshot = checkout_snapshot(obj, event_type=stripe_type)
    elif stripe_object == "payment_intent":
        snapshot = payment_snapshot(obj)
    elif stripe_object == "charge":
        snapshot = charge_payment_snapshot(obj)
        # The payment is the PaymentIntent; a charge without one can only be read as it is.
        intent = object_id(obj.get("payment_intent"))
        return _Mapped(event_type.value, "payment", intent or obj["id"], snapshot, intent is not None)
    elif stripe_object == "invoice":
        snapshot = invoice_snapshot(obj)
    elif stripe_object == "subscription":
        snapshot = subscription_snapshot(obj)
    else:
        return ignored
    return _Mapped(event_type.value, kind, obj["id"], snapshot, refetch)
