"""The library's error tree.

Every error raised on purpose by fastapi-cashier derives from :class:`CashierError` and carries a
stable machine-readable :class:`ErrorCode` next to its human message. The HTTP layer turns each one
into an RFC 9457 problem document whose ``code`` member is that value, so clients can branch on it
without parsing prose.

::

    CashierError
    ├── ConfigurationError              settings that cannot work, unsafe start-up
    │   └── MissingDependencyError      an optional extra is not installed
    ├── ValidationError                 input the domain refuses (422)
    │   ├── UnknownCurrencyError        not an ISO 4217 code
    │   ├── CurrencyMismatchError       arithmetic across currencies
    │   └── UnsupportedCapabilityError  the provider cannot do what was asked
    ├── AuthenticationError             no or bad credentials (401)
    ├── PermissionDeniedError           authenticated but not allowed (403)
    │   ├── SubscriptionRequiredError   no subscription entitles the customer (402)
    │   └── NotEntitledError            the customer's plan lacks a plan or feature (403)
    ├── NotFoundError                   no such object for this principal (404)
    ├── ConflictError                   unique key taken, concurrent change (409)
    │   ├── IdempotencyConflictError    same Idempotency-Key, different request
    │   ├── InvalidTransitionError      the status machine refuses a move
    │   ├── RefundExceedsPaymentError   more refunded than was paid
    │   └── InsufficientCreditsError    fewer credits than requested (402)
    ├── RateLimitExceededError          over the plan's request limit (429)
    ├── ProviderError                   a payment provider failed (502)
    │   ├── ProviderConnectionError     network fault or timeout, retriable
    │   ├── ProviderRateLimitError      throttled by the provider, retriable
    │   ├── InvalidProviderRequestError the provider refused our request
    │   ├── PaymentDeclinedError        the card or account was declined (402)
    │   └── AuthenticationRequiredError the payer must complete 3-D Secure (402)
    └── WebhookError
        ├── SignatureVerificationError  missing, wrong or stale signature (400)
        └── AwaitingObjectError         an event names an object not recorded yet (retried)

``TypeError`` is raised (not a ``CashierError``) where a float reaches money: that is a
programming error in the caller, not bad user input.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

__all__ = [
    "AuthenticationError",
    "AuthenticationRequiredError",
    "AwaitingObjectError",
    "CashierError",
    "ConfigurationError",
    "ConflictError",
    "CurrencyMismatchError",
    "ErrorCode",
    "IdempotencyConflictError",
    "InsufficientCreditsError",
    "InvalidProviderRequestError",
    "InvalidTransitionError",
    "MissingDependencyError",
    "NotEntitledError",
    "NotFoundError",
    "PaymentDeclinedError",
    "PermissionDeniedError",
    "ProviderConnectionError",
    "ProviderError",
    "ProviderRateLimitError",
    "RateLimitExceededError",
    "RefundExceedsPaymentError",
    "SignatureVerificationError",
    "SubscriptionRequiredError",
    "UnknownCurrencyError",
    "UnsupportedCapabilityError",
    "ValidationError",
    "WebhookError",
]


class ErrorCode(StrEnum):
    """Stable machine codes; clients may rely on these strings."""

    INTERNAL_ERROR = "internal_error"
    CONFIGURATION_ERROR = "configuration_error"
    MISSING_DEPENDENCY = "missing_dependency"
    VALIDATION_ERROR = "validation_error"
    UNKNOWN_CURRENCY = "unknown_currency"
    CURRENCY_MISMATCH = "currency_mismatch"
    UNSUPPORTED_CAPABILITY = "unsupported_capability"
    AUTHENTICATION_REQUIRED = "authentication_required"
    PERMISSION_DENIED = "permission_denied"
    SUBSCRIPTION_REQUIRED = "subscription_required"
    NOT_ENTITLED = "not_entitled"
    INSUFFICIENT_CREDITS = "insufficient_credits"
    RATE_LIMITED = "rate_limited"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    IDEMPOTENCY_CONFLICT = "idempotency_conflict"
    INVALID_TRANSITION = "invalid_transition"
    REFUND_EXCEEDS_PAYMENT = "refund_exceeds_payment"
    PROVIDER_ERROR = "provider_error"
    PROVIDER_UNAVAILABLE = "provider_unavailable"
    PROVIDER_RATE_LIMITED = "provider_rate_limited"
    PROVIDER_INVALID_REQUEST = "provider_invalid_request"
    PAYMENT_DECLINED = "payment_declined"
    PAYMENT_AUTHENTICATION_REQUIRED = "payment_authentication_required"
    WEBHOOK_ERROR = "webhook_error"
    AWAITING_OBJECT = "awaiting_object"
    INVALID_SIGNATURE = "invalid_signature"


class CashierError(Exception):
    """Base class of every error the library raises on purpose.

    Args:
        message: A sentence a developer can act on.
        details: Extra machine-readable context (field names, ids); never secrets.
    """

    code: ErrorCode = ErrorCode.INTERNAL_ERROR

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = dict(details or {})

    def __str__(self) -> str:
        return self.message


class ConfigurationError(CashierError):
    """The settings cannot work, or would be unsafe in this environment."""

    code = ErrorCode.CONFIGURATION_ERROR


class MissingDependencyError(ConfigurationError):
    """An optional dependency is needed; the message names the extra to install."""

    code = ErrorCode.MISSING_DEPENDENCY

    def __init__(self, package: str, extra: str) -> None:
        super().__init__(
            f"{package!r} is not installed; install it with: pip install 'fastapi-cashier[{extra}]'",
            details={"package": package, "extra": extra},
        )


class ValidationError(CashierError):
    """Input the domain refuses. ``details["field"]`` names the field when there is one."""

    code = ErrorCode.VALIDATION_ERROR

    def __init__(self, message: str, *, field: str | None = None, details: dict[str, Any] | None = None):
        merged = dict(details or {})
        if field is not None:
            merged["field"] = field
        super().__init__(message, details=merged)
        self.field = field


class UnknownCurrencyError(ValidationError, ValueError):
    """A currency code that is not an active ISO 4217 code."""

    code = ErrorCode.UNKNOWN_CURRENCY


class CurrencyMismatchError(ValidationError, ValueError):
    """Money of two currencies met in one operation."""

    code = ErrorCode.CURRENCY_MISMATCH


class UnsupportedCapabilityError(ValidationError):
    """The chosen provider lacks a capability the request needs."""

    code = ErrorCode.UNSUPPORTED_CAPABILITY


class AuthenticationError(CashierError):
    """Credentials are missing, malformed, expired or signed with the wrong key."""

    code = ErrorCode.AUTHENTICATION_REQUIRED


class PermissionDeniedError(CashierError):
    """The principal is known but may not do this."""

    code = ErrorCode.PERMISSION_DENIED


class SubscriptionRequiredError(PermissionDeniedError):
    """No subscription entitles the customer; ``details["plans"]`` names the plans that would."""

    code = ErrorCode.SUBSCRIPTION_REQUIRED


class NotEntitledError(PermissionDeniedError):
    """The customer is subscribed, but not to a plan or feature the request needs."""

    code = ErrorCode.NOT_ENTITLED


class NotFoundError(CashierError):
    """No such object, or not one the principal may see."""

    code = ErrorCode.NOT_FOUND


class ConflictError(CashierError):
    """A unique key is taken or the object changed underneath the request."""

    code = ErrorCode.CONFLICT


class IdempotencyConflictError(ConflictError):
    """An Idempotency-Key was reused with a different request."""

    code = ErrorCode.IDEMPOTENCY_CONFLICT


class InvalidTransitionError(ConflictError):
    """The status machine does not allow moving from one status to another."""

    code = ErrorCode.INVALID_TRANSITION


class RefundExceedsPaymentError(ConflictError):
    """A refund asks for more than what is left of the payment."""

    code = ErrorCode.REFUND_EXCEEDS_PAYMENT


class InsufficientCreditsError(ConflictError):
    """Fewer credits are left than the request needs; ``details`` has balance and requested."""

    code = ErrorCode.INSUFFICIENT_CREDITS


class RateLimitExceededError(CashierError):
    """The customer is over a request limit of their plan.

    Args:
        message: Names the limit.
        retry_after_seconds: When the window resets.
    """

    code = ErrorCode.RATE_LIMITED

    def __init__(
        self, message: str, *, retry_after_seconds: int, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message, details={**(details or {}), "retry_after_seconds": retry_after_seconds})
        self.retry_after_seconds = retry_after_seconds


class ProviderError(CashierError):
    """A payment provider failed. ``retriable`` says whether the same call may be retried.

    Args:
        message: What went wrong, in the library's words.
        provider: The provider's name.
        retriable: True for faults where the same idempotent call may succeed later.
        provider_code: The provider's own error code, if it gave one.
    """

    code = ErrorCode.PROVIDER_ERROR
    retriable = False

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        provider_code: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        merged = {"provider": provider, **(details or {})}
        if provider_code is not None:
            merged["provider_code"] = provider_code
        super().__init__(message, details=merged)
        self.provider = provider
        self.provider_code = provider_code


class ProviderConnectionError(ProviderError):
    """The provider could not be reached or did not answer in time."""

    code = ErrorCode.PROVIDER_UNAVAILABLE
    retriable = True


class ProviderRateLimitError(ProviderError):
    """The provider throttled the call."""

    code = ErrorCode.PROVIDER_RATE_LIMITED
    retriable = True


class InvalidProviderRequestError(ProviderError):
    """The provider refused the request as invalid."""

    code = ErrorCode.PROVIDER_INVALID_REQUEST


class PaymentDeclinedError(ProviderError):
    """The payment method was declined."""

    code = ErrorCode.PAYMENT_DECLINED


class AuthenticationRequiredError(ProviderError):
    """The payer has to complete a 3-D Secure (or similar) challenge."""

    code = ErrorCode.PAYMENT_AUTHENTICATION_REQUIRED


class WebhookError(CashierError):
    """A webhook delivery could not be accepted."""

    code = ErrorCode.WEBHOOK_ERROR


class SignatureVerificationError(WebhookError):
    """The webhook signature is missing, wrong, for another body, or too old."""

    code = ErrorCode.INVALID_SIGNATURE


class AwaitingObjectError(WebhookError):
    """An event names an object whose creating event has not been applied yet.

    Providers do not deliver in order: a subscription's first invoice or payment can arrive
    before the event that records the subscription. Applying it now would record it without its
    subscription, or not at all, so the attempt fails (nothing is written) and the inbox retries
    it with its backoff while the event is younger than ``webhooks.orphan_retry_seconds``.
    """

    code = ErrorCode.AWAITING_OBJECT
