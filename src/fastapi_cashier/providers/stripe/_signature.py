"""``Stripe-Signature`` verification on the raw body, against every configured secret.

Stripe signs each delivery as ``t=<unix time>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>``;
while a secret is being rolled in the Dashboard one delivery carries a ``v1`` for each of the
endpoint's secrets, and other schemes (``v0``, test mode's legacy one) are ignored. Verification
fails closed: no header, a malformed one, no ``v1`` matching a configured secret, or a timestamp
outside the tolerance are all refused.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from typing import Final

from ...errors import SignatureVerificationError

__all__ = ["SIGNATURE_HEADER", "verify_signature"]

SIGNATURE_HEADER: Final = "Stripe-Signature"
"""The header carrying ``t=<unix>,v1=<hex>[,v1=<hex>...]``."""

_MAX_TIMESTAMP_DIGITS: Final = 12
_MAX_HEADER_LENGTH: Final = 8192


def verify_signature(
    headers: Mapping[str, str],
    body: bytes,
    secrets: Sequence[str],
    *,
    now: int,
    tolerance_seconds: int,
) -> int:
    """Check the ``Stripe-Signature`` of a delivery of ``body``.

    Args:
        headers: The request headers (any case).
        body: The raw request body, exactly as received.
        secrets: Every accepted endpoint secret (``whsec_...``): the current one and those being
            rotated out.
        now: The current unix time.
        tolerance_seconds: How far the signed timestamp may be from ``now``, either way.

    Returns:
        The signed unix timestamp.

    Raises:
        SignatureVerificationError: Missing, repeated or malformed header; no ``v1`` signature
            matching ``body`` and a secret; a timestamp outside the tolerance; no secrets.
    """
    if not secrets:
        raise SignatureVerificationError("no Stripe webhook secret is configured; every delivery is refused")
    if not isinstance(body, bytes | bytearray):
        raise SignatureVerificationError("the webhook body must be the raw bytes as received")
    timestamp, signatures = _parse_header(_header(headers))
    signed = str(timestamp).encode("ascii") + b"." + bytes(body)
    expected = [hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest().encode() for secret in secrets]
    if not any(hmac.compare_digest(want, got) for want in expected for got in signatures):
        raise SignatureVerificationError(
            f"no v1 signature in the {SIGNATURE_HEADER} header matches this body and a configured "
            "webhook secret"
        )
    age = now - timestamp
    if abs(age) > tolerance_seconds:
        raise SignatureVerificationError(
            f"the {SIGNATURE_HEADER} timestamp is {abs(age)} seconds "
            f"{'old' if age > 0 else 'in the future'}; at most {tolerance_seconds} are tolerated",
            details={"tolerance_seconds": tolerance_seconds},
        )
    return timestamp


def _header(headers: Mapping[str, str]) -> str:
    values = {value for key, value in headers.items() if key.lower() == SIGNATURE_HEADER.lower()}
    if not values:
        raise SignatureVerificationError(f"the {SIGNATURE_HEADER} header is missing")
    if len(values) > 1:
        raise SignatureVerificationError(f"several different {SIGNATURE_HEADER} headers were sent")
    value = values.pop()
    if len(value) > _MAX_HEADER_LENGTH:
        raise SignatureVerificationError(f"the {SIGNATURE_HEADER} header is too long")
    return value


def _parse_header(value: str) -> tuple[int, list[bytes]]:
    timestamps: list[str] = []
    signatures: list[bytes] = []
    for item in value.split(","):
        scheme, sep, data = item.strip().partition("=")
        if not sep or not scheme or not data:
            raise SignatureVerificationError(f"the {SIGNATURE_HEADER} header is malformed")
        if scheme == "t":
            timestamps.append(data)
        elif scheme == "v1":
            signatures.append(data.encode("utf-8", "replace"))
    if len(timestamps) != 1:
        raise SignatureVerificationError(f"the {SIGNATURE_HEADER} header needs exactly one t=<unix time>")
    stamp = timestamps[0]
    if not (stamp.isascii() and stamp.isdigit()) or len(stamp) > _MAX_TIMESTAMP_DIGITS:
        raise SignatureVerificationError(f"the {SIGNATURE_HEADER} timestamp is not a unix time")
    if not signatures:
        raise SignatureVerificationError(f"the {SIGNATURE_HEADER} header has no v1 signature")
    return int(stamp), signatures
