"""Canonical statuses and the status machines that say which moves between them are allowed.

Every provider maps its own statuses onto these. A move the machine does not allow is refused
when it comes from the API and recorded-and-ignored when it comes from a webhook.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Generic, TypeVar

from .errors import InvalidTransitionError

__all__ = [
    "CHECKOUT_SESSION_MACHINE",
    "INVOICE_MACHINE",
    "PAYMENT_MACHINE",
    "REFUND_MACHINE",
    "SUBSCRIPTION_MACHINE",
    "BillingInterval",
    "ChangeCause",
    "CheckoutSessionStatus",
    "CreditTransactionKind",
    "InvoiceStatus",
    "ManualPaymentMethod",
    "PaymentStatus",
    "PricingModel",
    "ProrationBehavior",
    "RefundStatus",
    "StatusMachine",
    "SubscriptionStatus",
    "TaxIdStatus",
    "WebhookEventStatus",
]


class PaymentStatus(StrEnum):
    PENDING = "pending"
    REQUIRES_ACTION = "requires_action"
    PROCESSING = "processing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"
    REFUNDED = "refunded"
    PARTIALLY_REFUNDED = "partially_refunded"


class SubscriptionStatus(StrEnum):
    INCOMPLETE = "incomplete"
    TRIALING = "trialing"
    ACTIVE = "active"
    PAST_DUE = "past_due"
    PAUSED = "paused"
    CANCELED = "canceled"
    EXPIRED = "expired"


class InvoiceStatus(StrEnum):
    DRAFT = "draft"
    OPEN = "open"
    PAID = "paid"
    VOID = "void"
    UNCOLLECTIBLE = "uncollectible"


class CheckoutSessionStatus(StrEnum):
    OPEN = "open"
    COMPLETE = "complete"
    EXPIRED = "expired"


class RefundStatus(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"


class WebhookEventStatus(StrEnum):
    PENDING = "pending"
    PROCESSED = "processed"
    FAILED = "failed"
    IGNORED = "ignored"


class ChangeCause(StrEnum):
    API = "api"
    WEBHOOK = "webhook"
    ADMIN = "admin"
    SYSTEM = "system"


class PricingModel(StrEnum):
    FLAT = "flat"
    PER_UNIT = "per_unit"
    TIERED_GRADUATED = "tiered_graduated"
    TIERED_VOLUME = "tiered_volume"
    METERED = "metered"
    FREE = "free"


class BillingInterval(StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    YEAR = "year"
    ONE_TIME = "one_time"


class CreditTransactionKind(StrEnum):
    GRANT = "grant"
    CONSUME = "consume"
    EXPIRE = "expire"
    REFUND = "refund"
    ADJUST = "adjust"


class ManualPaymentMethod(StrEnum):
    CASH = "cash"
    CHECK = "check"
    BANK_TRANSFER = "bank_transfer"


class TaxIdStatus(StrEnum):
    UNVERIFIED = "unverified"
    VALID = "valid"
    INVALID = "invalid"


class ProrationBehavior(StrEnum):
    CREATE_PRORATIONS = "create_prorations"
    NONE = "none"
    ALWAYS_INVOICE = "always_invoice"


S = TypeVar("S", bound=StrEnum)


class StatusMachine(Generic[S]):
    """The allowed moves between the statuses of one kind of object.

    Args:
        entity: What the statuses belong to (``"payment"``), used in error messages.
        transitions: For each status, the statuses it may move to. Every member of the enum must
            be a key; a status with no moves is terminal.
    """

    def __init__(self, entity: str, transitions: Mapping[S, frozenset[S]]) -> None:
        self.entity = entity
        self._transitions = dict(transitions)
        statuses = set(self._transitions)
        targets = set().union(*self._transitions.values())
        missing = targets - statuses
        if missing:
            raise ValueError(f"{entity} machine moves to undeclared statuses: {sorted(missing)}")

    @property
    def statuses(self) -> frozenset[S]:
        """Every status the machine knows."""
        return frozenset(self._transitions)

    @property
    def terminal(self) -> frozenset[S]:
        """Statuses from which nothing moves."""
        return frozenset(status for status, targets in self._transitions.items() if not targets)

    def targets(self, current: S) -> frozenset[S]:
        """The statuses ``current`` may move to."""
        return self._transitions[current]

    def can(self, current: S, new: S) -> bool:
        """True when ``current -> new`` is an allowed move. Staying put is not a move."""
        return new in self._transitions[current]

    def require(self, current: S, new: S) -> None:
        """Raise :class:`InvalidTransitionError` unless ``current -> new`` is allowed."""
        if not self.can(current, new):
            allowed = ", ".join(sorted(self._transitions[current])) or "nothing (terminal)"
            raise InvalidTransitionError(
                f"a {self.entity} cannot move from {current.value!r} to {new.value!r}; "
                f"from {current.value!r} it may move to {allowed}",
                details={"entity": self.entity, "from": current.value, "to": new.value},
            )


_P = PaymentStatus
PAYMENT_MACHINE: StatusMachine[PaymentStatus] = StatusMachine(
    "payment",
    {
        _P.PENDING: frozenset({_P.REQUIRES_ACTION, _P.PROCESSING, _P.SUCCEEDED, _P.FAILED, _P.CANCELED}),
        _P.REQUIRES_ACTION: frozenset({_P.PENDING, _P.PROCESSING, _P.SUCCEEDED, _P.FAILED, _P.CANCELED}),
        _P.PROCESSING: frozenset({_P.REQUIRES_ACTION, _P.SUCCEEDED, _P.FAILED}),
        # A declined attempt may be retried on the same provider payment (a new card, say).
        _P.FAILED: frozenset({_P.PENDING, _P.REQUIRES_ACTION, _P.PROCESSING, _P.SUCCEEDED, _P.CANCELED}),
        _P.SUCCEEDED: frozenset({_P.PARTIALLY_REFUNDED, _P.REFUNDED}),
        _P.PARTIALLY_REFUNDED: frozenset({_P.REFUNDED}),
        _P.REFUNDED: frozenset(),
        _P.CANCELED: frozenset(),
    },
)

_R = RefundStatus
REFUND_MACHINE: StatusMachine[RefundStatus] = StatusMachine(
    "refund",
    {
        _R.PENDING: frozenset({_R.SUCCEEDED, _R.FAILED, _R.CANCELED}),
        _R.SUCCEEDED: frozenset(),
        _R.FAILED: frozenset(),
        _R.CANCELED: frozenset(),
    },
)

_S = SubscriptionStatus
SUBSCRIPTION_MACHINE: StatusMachine[SubscriptionStatus] = StatusMachine(
    "subscription",
    {
        _S.INCOMPLETE: frozenset({_S.TRIALING, _S.ACTIVE, _S.CANCELED, _S.EXPIRED}),
        _S.TRIALING: frozenset({_S.ACTIVE, _S.PAST_DUE, _S.PAUSED, _S.CANCELED, _S.EXPIRED}),
        _S.ACTIVE: frozenset({_S.PAST_DUE, _S.PAUSED, _S.CANCELED, _S.EXPIRED}),
        _S.PAST_DUE: frozenset({_S.ACTIVE, _S.PAUSED, _S.CANCELED, _S.EXPIRED}),
        _S.PAUSED: frozenset({_S.ACTIVE, _S.TRIALING, _S.CANCELED, _S.EXPIRED}),
        # Some providers report "canceled" first and "expired" when the paid period runs out.
        _S.CANCELED: frozenset({_S.EXPIRED}),
        _S.EXPIRED: frozenset(),
    },
)

_I = InvoiceStatus
INVOICE_MACHINE: StatusMachine[InvoiceStatus] = StatusMachine(
    "invoice",
    {
        _I.DRAFT: frozenset({_I.OPEN, _I.PAID, _I.VOID}),
        _I.OPEN: frozenset({_I.PAID, _I.VOID, _I.UNCOLLECTIBLE}),
        _I.UNCOLLECTIBLE: frozenset({_I.PAID, _I.VOID}),
        _I.PAID: frozenset(),
        _I.VOID: frozenset(),
    },
)

_C = CheckoutSessionStatus
CHECKOUT_SESSION_MACHINE: StatusMachine[CheckoutSessionStatus] = StatusMachine(
    "checkout session",
    {
        _C.OPEN: frozenset({_C.COMPLETE, _C.EXPIRED}),
        _C.COMPLETE: frozenset(),
        _C.EXPIRED: frozenset(),
    },
)
