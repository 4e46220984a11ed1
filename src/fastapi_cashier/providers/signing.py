"""Timestamped HMAC signatures: ``t=<unix time>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>``.

Stripe signs its webhooks this way (``Stripe-Signature``), and so does the fake provider
(``Fake-Signature``), so that the fake exercises the same failure modes. A header may carry several
``v1`` signatures (one per secret while a secret is being rolled); other schemes are ignored.
Every check fails closed with :class:`~fastapi_cashier.errors.SignatureVerificationError` naming
the header.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from typing import Final

from ..errors import SignatureVerificationError

__all__ = ["check_timestamp", "header_value", "sign", "verify"]

_MAX_TIMESTAMP_DIGITS: Final = 12
_MAX_HEADER_LENGTH: Final = 8192


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The header value signing ``body`` at ``timestamp`` with ``secret``."""
    return f"t={timestamp},v1={_hex_digest(secret, timestamp, body)}"


def header_value(headers: Mapping[str, str], name: str) -> str:
    """The one value of header ``name`` (any case).

    Raises:
        SignatureVerificationError: The header is missing, sent twice with different values, or
            longer than 8 KiB.
    """
    values = {value for key, value in headers.items() if key.lower() == name.lower()}
    if not values:
        raise SignatureVerificationError(f"the {name} header is missing")
    if len(values) > 1:
        raise SignatureVerificationError(f"several different {name} headers were sent")
    value = values.pop()
    if len(value) > _MAX_HEADER_LENGTH:
        raise SignatureVerificationError(f"the {name} header is too long")
    return value


def verify(headers: Mapping[str, str], body: bytes, secrets: Sequence[str], *, header: str) -> int:
    """Check that a ``v1`` signature in header ``header`` matches ``body`` under one of ``secrets``.

    Returns:
        The signed unix timestamp, for :func:`check_timestamp`.

    Raises:
        SignatureVerificationError: No secrets; a body that is not bytes; the header missing,
            repeated or malformed; no ``v1`` signature matching ``body`` and a secret.
    """
    if not secrets:
        raise SignatureVerificationError(f"no secret for the {header} header is configured; all is refused")
    if not isinstance(body, bytes | bytearray):
        raise SignatureVerificationError("the webhook body must be the raw bytes as received")
    timestamp, signatures = _parse(header_value(headers, header), header)
    expected = [_hex_digest(secret, timestamp, bytes(body)).encode("ascii") for secret in secrets]
    if not any(hmac.compare_digest(want, got) for want in expected for got in signatures):
        raise SignatureVerificationError(
            f"no v1 signature in the {header} header matches this body and a configured secret"
        )
    return timestamp


def check_timestamp(timestamp: int, *, now: int, tolerance_seconds: int, header: str) -> None:
    """Refuse a signature made more than ``tolerance_seconds`` before or after ``now`` (unix time).

    Raises:
        SignatureVerificationError: The timestamp is outside the tolerance.
    """
    age = now - timestamp
    if abs(age) > tolerance_seconds:
        raise SignatureVerificationError(
            f"the {header} timestamp is {abs(age)} seconds "
            f"{'old' if age > 0 else 'in the future'}; at most {tolerance_seconds} are tolerated",
            details={"tolerance_seconds": tolerance_seconds},
        )


def _hex_digest(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def _parse(value: str, header: str) -> tuple[int, list[bytes]]:
    """``t=<unix>,v1=<hex>[,v1=<hex>...]`` -> (timestamp, v1 signatures)."""
    timestamps: list[str] = []
    signatures: list[bytes] = []
    for item in value.split(","):
        scheme, sep, data = item.strip().partition("=")
        if not sep or not scheme or not data:
            raise SignatureVerificationError(f"the {header} header is malformed")
        if scheme == "t":
            timestamps.append(data)
        elif scheme == "v1":
            signatures.append(data.encode("utf-8", "replace"))
    if len(timestamps) != 1:
        raise SignatureVerificationError(f"the {header} header needs exactly one t=<unix time>")
    stamp = timestamps[0]
    if not (stamp.isascii() and stamp.isdigit()) or len(stamp) > _MAX_TIMESTAMP_DIGITS:
        raise SignatureVerificationError(f"the {header} timestamp is not a unix time")
    if not signatures:
        raise SignatureVerificationError(f"the {header} header has no v1 signature")
    return int(stamp), signatures
