"""Stripe's error classes translated, in one place, into the library's error tree.

* ``CardError`` with the code ``authentication_required``: ``AuthenticationRequiredError``;
  any other ``CardError``: ``PaymentDeclinedError`` (``details["decline_code"]`` when given).
* ``RateLimitError``: ``ProviderRateLimitError`` (retriable).
* ``IdempotencyError`` (a key reused with other parameters) and ``InvalidRequestError``:
  ``InvalidProviderRequestError``.
* ``APIConnectionError``, and ``APIError`` with a 5xx or 409 status: ``ProviderConnectionError``
  (retriable: the SDK already retried with the same idempotency key).
* ``AuthenticationError`` and ``PermissionError``: ``ProviderError`` with a message about the key.
* Anything else from the SDK: ``ProviderError``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Final

from ...errors import (
    AuthenticationRequiredError,
    InvalidProviderRequestError,
    PaymentDeclinedError,
    ProviderConnectionError,
    ProviderError,
    ProviderRateLimitError,
)
from ._sdk import load_stripe

__all__ = ["PROVIDER_NAME", "stripe_errors", "translate_error"]

PROVIDER_NAME: Final = "stripe"

_AUTHENTICATION_REQUIRED: Final = "authentication_required"


@contextmanager
def stripe_errors(operation: str) -> Iterator[None]:
    """Re-raise any Stripe SDK error inside the block as the library's error.

    Args:
        operation: What was being done, for the message (``"create a refund"``).

    Raises:
        ProviderError: A subclass chosen by :func:`translate_error`, chained to the SDK error.
    """
    stripe = load_stripe()
    try:
        yield
    except stripe.StripeError as exc:
        raise translate_error(exc, operation=operation) from exc


def translate_error(exc: Any, *, operation: str) -> ProviderError:
    """The library's error for a ``stripe.StripeError`` raised while doing ``operation``."""
    stripe = load_stripe()
    message = getattr(exc, "user_message", None) or str(exc) or type(exc).__name__
    code: str | None = getattr(exc, "code", None)
    status: int | None = getattr(exc, "http_status", None)
    details: dict[str, Any] = {"http_status": status, "request_id": getattr(exc, "request_id", None)}
    param = getattr(exc, "param", None)
    if param:
        details["param"] = param
    details = {key: value for key, value in details.items() if value is not None}
    text = f"Stripe could not {operation}: {message}"

    if isinstance(exc, stripe.CardError):
        decline_code = _decline_code(exc)
        if code == _AUTHENTICATION_REQUIRED or decline_code == _AUTHENTICATION_REQUIRED:
            return AuthenticationRequiredError(
                text, provider=PROVIDER_NAME, provider_code=_AUTHENTICATION_REQUIRED, details=details
            )
        if decline_code:
            details["decline_code"] = decline_code
        return PaymentDeclinedError(text, provider=PROVIDER_NAME, provider_code=code, details=details)
    if isinstance(exc, stripe.RateLimitError):
        return ProviderRateLimitError(text, provider=PROVIDER_NAME, provider_code=code, details=details)
    if isinstance(exc, stripe.IdempotencyError):
        return InvalidProviderRequestError(
            f"Stripe could not {operation}: the idempotency key was already used with other "
            f"parameters ({message})",
            provider=PROVIDER_NAME,
            provider_code="idempotency_error",
            details=details,
        )
    if isinstance(exc, stripe.InvalidRequestError):
        return InvalidProviderRequestError(text, provider=PROVIDER_NAME, provider_code=code, details=details)
    if isinstance(exc, stripe.APIConnectionError):
        return ProviderConnectionError(text, provider=PROVIDER_NAME, provider_code=code, details=details)
    if isinstance(exc, stripe.AuthenticationError):
        return ProviderError(
            f"Stripe refused the API key while trying to {operation}: check PAYMENTS_STRIPE__API_KEY "
            "(a secret key sk_... or a restricted key rk_... of the right mode)",
            provider=PROVIDER_NAME,
            provider_code=code or "authentication_error",
            details=details,
        )
    if isinstance(exc, stripe.PermissionError):
        return ProviderError(
            f"the Stripe API key may not {operation}: give the restricted key that permission, "
            f"or use a secret key ({message})",
            provider=PROVIDER_NAME,
            provider_code=code or "permission_error",
            details=details,
        )
    if status is None or status >= 500 or status == 409:
        # Stripe's own faults and lock conflicts: the same idempotent call may succeed later.
        return ProviderConnectionError(text, provider=PROVIDER_NAME, provider_code=code, details=details)
    return ProviderError(text, provider=PROVIDER_NAME, provider_code=code, details=details)


def _decline_code(exc: Any) -> str | None:
    error = getattr(exc, "error", None)
    value = getattr(error, "decline_code", None) if error is not None else None
    return value if isinstance(value, str) else None
