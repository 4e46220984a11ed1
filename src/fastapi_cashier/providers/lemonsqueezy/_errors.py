"""Lemon Squeezy's error answers translated, in one place, into the library's error tree.

Lemon Squeezy answers a refused request with a JSON:API error document,
``{"errors": [{"status": "422", "title": ..., "detail": ..., "source": {"pointer": ...}}]}``:

* 429: ``ProviderRateLimitError`` (retriable), with the ``Retry-After`` hint as
  ``details["retry_after_seconds"]``;
* 5xx, and a fault on the way (connection refused or reset, timeout): ``ProviderConnectionError``
  (retriable; for a creating call the adapter looks the object up before sending it again);
* 401: ``ProviderError`` naming ``PAYMENTS_LEMONSQUEEZY__API_KEY``; 403: ``ProviderError`` about the
  key's store;
* any other 4xx: ``InvalidProviderRequestError`` with each error's ``detail`` and ``pointer``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Final

import httpx

from ...errors import (
    InvalidProviderRequestError,
    ProviderConnectionError,
    ProviderError,
    ProviderRateLimitError,
)

__all__ = ["PROVIDER_NAME", "error_from_response", "error_from_transport"]

PROVIDER_NAME: Final = "lemonsqueezy"

_MAX_RETRY_AFTER_SECONDS: Final = 3600
_MAX_MESSAGE_ERRORS: Final = 3


def error_from_transport(exc: httpx.TransportError, *, operation: str) -> ProviderConnectionError:
    """The library's error for a request that got no answer (refused, reset, timed out)."""
    return ProviderConnectionError(
        f"Lemon Squeezy could not be reached to {operation}: {type(exc).__name__}",
        provider=PROVIDER_NAME,
        details={"fault": type(exc).__name__},
    )


def error_from_response(response: httpx.Response, *, operation: str) -> ProviderError:
    """The library's error for a non-2xx answer of the Lemon Squeezy API."""
    status = response.status_code
    errors = _errors(response)
    summary = "; ".join(_describe(error) for error in errors[:_MAX_MESSAGE_ERRORS]) or response.reason_phrase
    details: dict[str, Any] = {"http_status": status}
    pointers = [pointer for error in errors if (pointer := _pointer(error))]
    if pointers:
        details["pointers"] = pointers
    code = _first_code(errors)
    text = f"Lemon Squeezy could not {operation}: {summary}"

    if status == httpx.codes.TOO_MANY_REQUESTS:
        retry_after = _retry_after(response.headers)
        if retry_after is not None:
            details["retry_after_seconds"] = retry_after
        return ProviderRateLimitError(text, provider=PROVIDER_NAME, provider_code=code, details=details)
    if status >= httpx.codes.INTERNAL_SERVER_ERROR:
        return ProviderConnectionError(text, provider=PROVIDER_NAME, provider_code=code, details=details)
    if status == httpx.codes.UNAUTHORIZED:
        return ProviderError(
            f"Lemon Squeezy refused the API key while trying to {operation}: check "
            "PAYMENTS_LEMONSQUEEZY__API_KEY (a key of the right mode, test or live)",
            provider=PROVIDER_NAME,
            provider_code=code or "unauthenticated",
            details=details,
        )
    if status == httpx.codes.FORBIDDEN:
        return ProviderError(
            f"the Lemon Squeezy API key may not {operation}: is the object in the store "
            f"PAYMENTS_LEMONSQUEEZY__STORE_ID names? ({summary})",
            provider=PROVIDER_NAME,
            provider_code=code or "forbidden",
            details=details,
        )
    return InvalidProviderRequestError(text, provider=PROVIDER_NAME, provider_code=code, details=details)


def _errors(response: httpx.Response) -> list[Mapping[str, Any]]:
    try:
        document = response.json()
    except ValueError:
        return []
    errors = document.get("errors") if isinstance(document, dict) else None
    if not isinstance(errors, list):
        return []
    return [error for error in errors if isinstance(error, dict)]


def _describe(error: Mapping[str, Any]) -> str:
    text = str(error.get("detail") or error.get("title") or "error")
    pointer = _pointer(error)
    return f"{text} ({pointer})" if pointer else text


def _pointer(error: Mapping[str, Any]) -> str | None:
    source = error.get("source")
    pointer = source.get("pointer") if isinstance(source, dict) else None
    return pointer if isinstance(pointer, str) and pointer else None


def _first_code(errors: list[Mapping[str, Any]]) -> str | None:
    for error in errors:
        code = error.get("code")
        if isinstance(code, str | int) and not isinstance(code, bool) and str(code):
            return str(code)
    return None


def _retry_after(headers: httpx.Headers) -> int | None:
    """Whole seconds of a ``Retry-After: <seconds>`` hint; ``None`` when absent or unreadable."""
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    if not math.isfinite(seconds) or seconds < 0:
        return None
    return min(math.ceil(seconds), _MAX_RETRY_AFTER_SECONDS)
