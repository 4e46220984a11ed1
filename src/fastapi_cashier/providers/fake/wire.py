"""The fake provider's wire format: event bodies, the ``Fake-Signature`` header, and parsing.

The body is ``{"id": "evt_...", "type": "<canonical type>", "created": <unix>,
"data": {"object": {...}}}`` in compact JSON, signed in the ``Fake-Signature`` header as
``t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>``. A delivery may carry several ``v1``
signatures (one per secret during a rotation); other schemes are ignored.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final

from ...errors import WebhookError
from ...money import Money
from ...statuses import CheckoutSessionStatus, InvoiceStatus, PaymentStatus, RefundStatus, SubscriptionStatus
from .. import signing
from ..base import (
    LOCAL_ID_KEYS,
    CheckoutSnapshot,
    EventType,
    InvoiceSnapshot,
    ObjectKind,
    PaymentSnapshot,
    ProviderEvent,
    RefundSnapshot,
    Snapshot,
    SubscriptionSnapshot,
)

__all__ = [
    "LOCAL_ID_KEYS",
    "SIGNATURE_HEADER",
    "check_timestamp",
    "encode_event",
    "parse_event",
    "parse_snapshot",
    "sign_headers",
    "verify_signature",
]

SIGNATURE_HEADER: Final = "Fake-Signature"
"""The header carrying ``t=<unix>,v1=<hex>``."""


_PROVIDER: Final = "fake"
_OBJECT_KINDS: Final = frozenset(
    {"checkout_session", "payment", "refund", "subscription", "invoice", "customer"}
)
_KNOWN_TYPES: Final = frozenset(event_type.value for event_type in EventType)


# --------------------------------------------------------------------------- writing


def encode_event(event_id: str, event_type: EventType, created: int, obj: Mapping[str, Any]) -> bytes:
    """The compact JSON body of one event about ``obj`` (a record's ``to_object()``)."""
    payload = {"id": event_id, "type": event_type.value, "created": created, "data": {"object": obj}}
    return json.dumps(payload, separators=(",", ":")).encode()


def sign_headers(secret: str, body: bytes, timestamp: int) -> dict[str, str]:
    """``Fake-Signature`` and ``Content-Type`` headers of a delivery of ``body`` signed at ``timestamp``."""
    return {
        SIGNATURE_HEADER: signing.sign(secret, body, timestamp),
        "Content-Type": "application/json",
    }


# --------------------------------------------------------------------------- verifying


def verify_signature(headers: Mapping[str, str], body: bytes, secrets: Sequence[str]) -> int:
    """Check that a ``v1`` signature of the ``Fake-Signature`` header matches ``body`` and a secret.

    Returns:
        The signed unix timestamp, for :func:`check_timestamp`.

    Raises:
        SignatureVerificationError: The header is missing, repeated or malformed, or no ``v1``
            signature matches any of ``secrets``.
    """
    return signing.verify(headers, body, secrets, header=SIGNATURE_HEADER)


def check_timestamp(timestamp: int, *, now: int, tolerance_seconds: int) -> None:
    """Refuse a signature made more than ``tolerance_seconds`` before or after ``now`` (unix time).

    Raises:
        SignatureVerificationError: The timestamp is outside the tolerance.
    """
    signing.check_timestamp(timestamp, now=now, tolerance_seconds=tolerance_seconds, header=SIGNATURE_HEADER)


# --------------------------------------------------------------------------- parsing


def parse_event(body: bytes) -> ProviderEvent:
    """Normalise a verified body into a :class:`ProviderEvent`.

    Raises:
        WebhookError: The body is not JSON, not a fake event, or its object is malformed.
    """
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise WebhookError("the body of the fake webhook is not valid JSON") from exc
    data = payload.get("data") if isinstance(payload, dict) else None
    obj = data.get("object") if isinstance(data, dict) else None
    if (
        not isinstance(obj, dict)
        or not isinstance(payload.get("id"), str)
        or not isinstance(payload.get("type"), str)
        or not _is_int(payload.get("created"))
        or not isinstance(obj.get("id"), str)
        or obj.get("object") not in _OBJECT_KINDS
    ):
        raise WebhookError(
            'the body is not a fake event: expected {"id": str, "type": str, "created": int, '
            '"data": {"object": {"object": <kind>, "id": str, ...}}}'
        )
    kind: ObjectKind = obj["object"]
    metadata = obj.get("metadata")
    local_ids = (
        {key: value for key, value in metadata.items() if key in LOCAL_ID_KEYS and isinstance(value, str)}
        if isinstance(metadata, dict)
        else {}
    )
    try:
        occurred_at = datetime.fromtimestamp(payload["created"], UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise WebhookError("the fake event's created time is out of range") from exc
    return ProviderEvent(
        provider=_PROVIDER,
        id=payload["id"],
        type=payload["type"],
        occurred_at=occurred_at,
        object_kind=kind,
        object_id=obj["id"],
        snapshot=parse_snapshot(kind, obj) if payload["type"] in _KNOWN_TYPES else None,
        local_ids=local_ids,
        raw=payload,
    )


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _text(obj: Mapping[str, Any], key: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str):
        raise TypeError(f"{key!r} must be a string")
    return value


def _optional_text(obj: Mapping[str, Any], key: str) -> str | None:
    value = obj.get(key)
    if value is not None and not isinstance(value, str):
        raise TypeError(f"{key!r} must be a string or null")
    return value


def _int(obj: Mapping[str, Any], key: str) -> int:
    value = obj.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{key!r} must be an integer")
    return value


def _flag(obj: Mapping[str, Any], key: str) -> bool:
    value = obj.get(key, False)
    if not isinstance(value, bool):
        raise TypeError(f"{key!r} must be a boolean")
    return value


def _time(obj: Mapping[str, Any], key: str) -> datetime | None:
    """A unix time field as an aware UTC datetime; ``None`` when null or absent."""
    value = obj.get(key)
    if value is None:
        return None
    if not _is_int(value):
        raise TypeError(f"{key!r} must be a unix time or null")
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError) as exc:
        raise ValueError(f"{key!r} is out of range") from exc


def _money(obj: Mapping[str, Any], key: str = "amount") -> Money:
    if not _is_int(obj.get(key)):
        raise TypeError(f"{key!r} must be an integer of minor units")
    return Money(obj[key], _text(obj, "currency"))


def _subscription(obj: Mapping[str, Any]) -> SubscriptionSnapshot:
    return SubscriptionSnapshot(
        provider_subscription_id=obj["id"],
        status=SubscriptionStatus(obj["status"]),
        quantity=_int(obj, "quantity"),
        provider_price_id=_optional_text(obj, "price"),
        provider_customer_id=_optional_text(obj, "customer"),
        current_period_start=_time(obj, "current_period_start"),
        current_period_end=_time(obj, "current_period_end"),
        trial_start=_time(obj, "trial_start"),
        trial_end=_time(obj, "trial_end"),
        cancel_at_period_end=_flag(obj, "cancel_at_period_end"),
        canceled_at=_time(obj, "canceled_at"),
        ended_at=_time(obj, "ended_at"),
        paused=_flag(obj, "paused"),
    )


def _invoice_line(line: object) -> dict[str, Any]:
    if not isinstance(line, dict):
        raise TypeError("each of 'lines' must be an object")
    return {
        "description": _text(line, "description"),
        "quantity": _int(line, "quantity"),
        "unit_amount": _int(line, "unit_amount"),
        "amount": _int(line, "amount"),
        "proration": _flag(line, "proration"),
        "period_start": _time(line, "period_start"),
        "period_end": _time(line, "period_end"),
        "plan_id": _optional_text(line, "plan_id"),
    }


def _invoice(obj: Mapping[str, Any]) -> InvoiceSnapshot:
    lines = obj.get("lines")
    if not isinstance(lines, list):
        raise TypeError("'lines' must be a list")
    return InvoiceSnapshot(
        provider_invoice_id=obj["id"],
        status=InvoiceStatus(obj["status"]),
        total=_money(obj, "total"),
        amount_paid=_int(obj, "amount_paid"),
        provider_subscription_id=_optional_text(obj, "subscription"),
        provider_payment_id=_optional_text(obj, "payment"),
        period_start=_time(obj, "period_start"),
        period_end=_time(obj, "period_end"),
        lines=tuple(_invoice_line(line) for line in lines),
        tax=_int(obj, "tax") if obj.get("tax") is not None else None,
    )


def parse_snapshot(kind: ObjectKind, obj: Mapping[str, Any]) -> Snapshot | None:
    """Normalise an event object; ``None`` for kinds the fake does not describe (customers).

    Raises:
        WebhookError: A field is missing or has the wrong type.
    """
    try:
        if kind == "payment":
            refunded = obj.get("refunded_amount", 0)
            if not _is_int(refunded):
                raise TypeError("'refunded_amount' must be an integer")
            return PaymentSnapshot(
                provider_payment_id=obj["id"],
                status=PaymentStatus(obj["status"]),
                amount=_money(obj),
                refunded_amount=refunded,
                provider_session_id=_optional_text(obj, "checkout_session"),
                provider_customer_id=_optional_text(obj, "customer"),
                provider_invoice_id=_optional_text(obj, "invoice"),
                provider_subscription_id=_optional_text(obj, "subscription"),
                payment_method_summary=_optional_text(obj, "payment_method_summary"),
                failure_code=_optional_text(obj, "failure_code"),
                failure_message=_optional_text(obj, "failure_message"),
                description=_optional_text(obj, "description"),
            )
        if kind == "checkout_session":
            return CheckoutSnapshot(
                provider_session_id=obj["id"],
                status=CheckoutSessionStatus(obj["status"]),
                provider_payment_id=_optional_text(obj, "payment"),
                provider_subscription_id=_optional_text(obj, "subscription"),
                provider_customer_id=_optional_text(obj, "customer"),
            )
        if kind == "refund":
            return RefundSnapshot(
                provider_refund_id=obj["id"],
                provider_payment_id=_text(obj, "payment"),
                status=RefundStatus(obj["status"]),
                amount=_money(obj),
                reason=_optional_text(obj, "reason"),
                failure_message=_optional_text(obj, "failure_message"),
            )
        if kind == "subscription":
            return _subscription(obj)
        if kind == "invoice":
            return _invoice(obj)
    except (KeyError, TypeError, ValueError) as exc:
        raise WebhookError(f"the fake {kind} object is malformed: {exc}") from exc
    return None
