"""PayPal's error answers translated, in one place, into the library's error tree.

PayPal answers a refused call with ``{"name", "message", "debug_id", "details": [{"issue",
"description", "field", ...}]}`` (its token endpoint with OAuth2's ``{"error",
"error_description"}``). The translation:

* 429: ``ProviderRateLimitError`` (retriable; ``Retry-After`` kept as ``retry_after_seconds``).
* 5xx, and 409 (a request with the same ``PayPal-Request-Id`` still in progress):
  ``ProviderConnectionError`` (retriable with the same request id).
* An issue that says the payer's instrument was refused (``INSTRUMENT_DECLINED``,
  ``TRANSACTION_REFUSED``, ...): ``PaymentDeclinedError``; ``PAYER_ACTION_REQUIRED``:
  ``AuthenticationRequiredError``.
* 401 (credentials refused) and 403 (``NOT_AUTHORIZED``): ``ProviderError`` naming the settings.
* Any other 4xx: ``InvalidProviderRequestError``.
* Network faults and timeouts (:func:`connection_error`): ``ProviderConnectionError``.

``debug_id`` (what PayPal's support asks for) is kept in the error's details and logged.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Final

from ...errors import (
    AuthenticationRequiredError,
    InvalidProviderRequestError,
    PaymentDeclinedError,
    ProviderConnectionError,
    ProviderError,
    ProviderRateLimitError,
)

__all__ = ["PROVIDER_NAME", "connection_error", "translate_error"]

PROVIDER_NAME: Final = "paypal"

logger = logging.getLogger("fastapi_cashier")

_DECLINE_ISSUES: Final = frozenset(
    {
        "INSTRUMENT_DECLINED",
        "TRANSACTION_REFUSED",
        "PAYER_CANNOT_PAY",
        "PAYEE_BLOCKED_TRANSACTION",
        "COMPLIANCE_VIOLATION",
        "CARD_EXPIRED",
        "MAX_NUMBER_OF_PAYMENT_ATTEMPTS_EXCEEDED",
        "REDIRECT_PAYER_FOR_ALTERNATE_FUNDING",
        "TRANSACTION_BLOCKED_BY_PAYEE",
    }
)
_ACTION_ISSUES: Final = frozenset({"PAYER_ACTION_REQUIRED"})


def _issues(body: Mapping[str, Any]) -> list[str]:
    details = body.get("details")
    if not isinstance(details, list):
        return []
    return [
        item["issue"] for item in details if isinstance(item, dict) and isinstance(item.get("issue"), str)
    ]


def _retry_after(headers: Mapping[str, str]) -> int | None:
    value = headers.get("retry-after") or headers.get("Retry-After")
    if value is not None and value.strip().isdigit():
        return int(value.strip())
    return None


def translate_error(status: int, body: Any, headers: Mapping[str, str], *, operation: str) -> ProviderError:
    """The library's error for PayPal's answer ``status`` with JSON ``body`` to ``operation``.

    Args:
        status: The HTTP status (4xx or 5xx).
        body: The parsed JSON body, or anything else when PayPal sent no JSON.
        headers: The response headers (``Retry-After``, ``PayPal-Debug-Id``).
        operation: What was being done, for the message (``"capture the order"``).
    """
    error: Mapping[str, Any] = body if isinstance(body, Mapping) else {}
    issues = _issues(error)
    name = error.get("name") or error.get("error")
    debug_id = error.get("debug_id") or headers.get("paypal-debug-id") or headers.get("PayPal-Debug-Id")
    message = error.get("message") or error.get("error_description") or f"HTTP {status}"
    descriptions = [
        item["description"]
        for item in error.get("details") or []
        if isinstance(item, dict) and isinstance(item.get("description"), str)
    ]
    if descriptions:
        message = f"{message} ({'; '.join(descriptions)})"
    details: dict[str, Any] = {"http_status": status}
    if debug_id:
        details["debug_id"] = debug_id
    if issues:
        details["issues"] = issues
    if name:
        details["name"] = name
    retry_after = _retry_after(headers)
    if retry_after is not None:
        details["retry_after_seconds"] = retry_after
    code = issues[0] if issues else (name if isinstance(name, str) else None)
    logger.warning("PayPal refused to %s: HTTP %s %s (debug_id %s)", operation, status, code, debug_id)
    text = f"PayPal could not {operation}: {message}"

    if status == 429:
        return ProviderRateLimitError(text, provider=PROVIDER_NAME, provider_code=code, details=details)
    if status >= 500 or status == 409:
        return ProviderConnectionError(text, provider=PROVIDER_NAME, provider_code=code, details=details)
    if any(issue in _ACTION_ISSUES for issue in issues):
        return AuthenticationRequiredError(text, provider=PROVIDER_NAME, provider_code=code, details=details)
    if any(issue in _DECLINE_ISSUES for issue in issues):
        return PaymentDeclinedError(text, provider=PROVIDER_NAME, provider_code=code, details=details)
    if status == 401:
        return ProviderError(
            f"PayPal refused the credentials while trying to {operation}: check PAYMENTS_PAYPAL__CLIENT_ID "
            f"and PAYMENTS_PAYPAL__CLIENT_SECRET and that PAYMENTS_PAYPAL__MODE matches them ({message})",
            provider=PROVIDER_NAME,
            provider_code=code or "invalid_client",
            details=details,
        )
    if status == 403:
        return ProviderError(
            f"the PayPal app may not {operation}: enable that feature for the REST app ({message})",
            provider=PROVIDER_NAME,
            provider_code=code or "NOT_AUTHORIZED",
            details=details,
        )
    return InvalidProviderRequestError(text, provider=PROVIDER_NAME, provider_code=code, details=details)


def connection_error(exc: Exception, *, operation: str) -> ProviderConnectionError:
    """The retriable error for a network fault or timeout while doing ``operation``."""
    logger.warning("PayPal could not be reached to %s: %s", operation, exc)
    return ProviderConnectionError(
        f"PayPal could not be reached to {operation}: {type(exc).__name__}: {exc}",
        provider=PROVIDER_NAME,
        details={"fault": type(exc).__name__},
    )
