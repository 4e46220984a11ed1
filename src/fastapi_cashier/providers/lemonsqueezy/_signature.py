"""``X-Signature``: the lowercase hex HMAC-SHA256 of the raw request body, keyed by the webhook's secret.

Lemon Squeezy signs each delivery once, with the secret set on the webhook; there is no timestamp
and no key id. The header is compared in constant time against the signature under every
configured secret (several while one is rotated). Every failure is a
:class:`~fastapi_cashier.errors.SignatureVerificationError`: fail closed.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping, Sequence
from typing import Final

from ...errors import SignatureVerificationError
from ..signing import header_value

__all__ = ["SIGNATURE_HEADER", "sign", "verify_signature"]

SIGNATURE_HEADER: Final = "X-Signature"

_HEX_SHA256: Final = re.compile(r"[0-9a-fA-F]{64}")


def sign(secret: str, body: bytes) -> str:
    """The ``X-Signature`` value of ``body`` under ``secret``."""
    return hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def verify_signature(headers: Mapping[str, str], body: bytes, secrets: Sequence[str]) -> None:
    """Check the ``X-Signature`` header of a delivery against ``body`` under one of ``secrets``.

    Raises:
        SignatureVerificationError: No secret configured; the header missing, empty, repeated
            or not 64 hex digits; a body that is not bytes; no secret giving that signature.
    """
    if not secrets:
        raise SignatureVerificationError(
            "no Lemon Squeezy webhook secret is configured (PAYMENTS_LEMONSQUEEZY__WEBHOOK_SECRETS); "
            "every delivery is refused"
        )
    if not isinstance(body, bytes | bytearray):
        raise SignatureVerificationError("the webhook body must be the raw bytes received")
    value = header_value(headers, SIGNATURE_HEADER).strip()
    if not _HEX_SHA256.fullmatch(value):
        raise SignatureVerificationError(f"the {SIGNATURE_HEADER} header is not a hex HMAC-SHA256")
    given = value.lower().encode("ascii")
    matched = False
    for secret in secrets:
        # No early exit: every secret is tried, so timing does not tell which one matched.
        expected = sign(secret, bytes(body)).encode("ascii")
        matched |= hmac.compare_digest(expected, given)
    if not matched:
        raise SignatureVerificationError(
            f"the {SIGNATURE_HEADER} header does not match the body under any configured secret"
        )
