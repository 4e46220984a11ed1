"""``Stripe-Signature`` verification on the raw body, against every configured secret.

Stripe signs each delivery as ``t=<unix time>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>``;
while a secret is being rolled in the Dashboard one delivery carries a ``v1`` for each of the
endpoint's secrets, and other schemes (``v0``, test mode's legacy one) are ignored. Verification
fails closed: no header, a malformed one, no ``v1`` matching a configured secret, or a timestamp
outside the tolerance are all refused.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

from ...errors import SignatureVerificationError
from .. import signing

__all__ = ["SIGNATURE_HEADER", "verify_signature"]

SIGNATURE_HEADER: Final = "Stripe-Signature"
"""The header carrying ``t=<unix>,v1=<hex>[,v1=<hex>...]``."""


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
    timestamp = signing.verify(headers, body, secrets, header=SIGNATURE_HEADER)
    signing.check_timestamp(timestamp, now=now, tolerance_seconds=tolerance_seconds, header=SIGNATURE_HEADER)
    return timestamp
