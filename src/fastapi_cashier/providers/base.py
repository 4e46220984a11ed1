"""The provider protocol: what every payment provider adapter implements.

An adapter turns the library's requests into one provider's API calls and the provider's webhook
deliveries into normalised :class:`ProviderEvent` objects. It never touches the database: the
billing layer writes the intent row first, passes its id (``idempotency_key``) to the adapter, and
applies the normalised events.

Shapes were chosen so that Stripe (Checkout Sessions, PaymentIntents, Refunds, Subscriptions,
Billing Portal), PayPal (Orders v2 with capture, Captures refund, Billing Subscriptions v1) and
Lemon Squeezy (checkouts with custom data, orders, subscriptions) all fit:

* every request carries the local id and an idempotency key derived from it, which Stripe takes
  as ``Idempotency-Key``, PayPal as ``PayPal-Request-Id`` and Lemon Squeezy keeps in custom data;
* every event carries the local ids the adapter put into the provider object's metadata
  (``local_ids``), so an event for an object the API is still creating finds its intent row.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, Final, Literal, NoReturn, Protocol, cast, runtime_checkable

from fastapi import APIRouter
from fastapi.routing import APIRoute

from ..clock import utcnow
from ..errors import ConfigurationError, UnsupportedCapabilityError, WebhookError
from ..money import Money
from ..statuses import (
    BillingInterval,
    CheckoutSessionStatus,
    InvoiceStatus,
    PaymentStatus,
    PricingModel,
    ProrationBehavior,
    RefundStatus,
    SubscriptionStatus,
)
from ..tax.amounts import TaxLine, split_tax

__all__ = [
    "CAPABILITY_PARTS",
    "LOCAL_ID_KEYS",
    "Capability",
    "CatalogProvider",
    "CheckoutCompleter",
    "CheckoutProvider",
    "CheckoutRequest",
    "CheckoutResult",
    "CheckoutSnapshot",
    "CustomerRef",
    "EventType",
    "InvoiceSnapshot",
    "LookupKind",
    "LookupResult",
    "ObjectKind",
    "ObjectLookup",
    "PauseProvider",
    "PaymentProvider",
    "PaymentSnapshot",
    "PlanRef",
    "PortalProvider",
    "PortalRequest",
    "PortalResult",
    "ProviderEvent",
    "ProviderHost",
    "RefundProvider",
    "RefundRequest",
    "RefundResult",
    "RefundSnapshot",
    "RouteContributor",
    "Snapshot",
    "SubscriptionChange",
    "SubscriptionProvider",
    "SubscriptionResult",
    "SubscriptionSnapshot",
    "TaxRateRef",
    "TierRef",
    "UsageProvider",
    "UsageReport",
    "UsageSnapshot",
    "WebhookReceiver",
    "cancels_at_period_end_locally",
    "check_adapter",
    "computes_tax",
    "parse_or_ignore",
    "require_capability",
    "require_proration",
    "unsupported",
]


class Capability(StrEnum):
    """What a provider can do. Asking for a missing capability is a 422 problem, never a crash.

    Each capability with methods of its own names an optional part of the protocol
    (:data:`CAPABILITY_PARTS`); the others refine one (``partial_refunds`` refines ``refunds``).
    """

    CHECKOUT = "checkout"
    CHECKOUT_COMPLETION = "checkout_completion"
    ONE_OFF_PAYMENT = "one_off_payment"
    REFUNDS = "refunds"
    PARTIAL_REFUNDS = "partial_refunds"
    SUBSCRIPTIONS = "subscriptions"
    PLAN_CHANGE = "plan_change"
    CANCEL_NOW = "cancel_now"
    CANCEL_AT_PERIOD_END = "cancel_at_period_end"
    #: The provider has no cancel at period end (PayPal): the library records
    #: ``cancel_at_period_end`` itself and, when the period has ended, cancels now at the
    #: provider from its background loop; resuming before then only clears the flag.
    CANCELS_AT_PERIOD_END_LOCALLY = "cancels_at_period_end_locally"
    PAUSE = "pause"
    METERED_USAGE = "metered_usage"
    PORTAL = "portal"
    CATALOG_SYNC = "catalog_sync"
    WEBHOOKS = "webhooks"


class EventType(StrEnum):
    """Canonical event types. Provider adapters map their own event names onto these."""

    CHECKOUT_APPROVED = "checkout.approved"
    CHECKOUT_COMPLETED = "checkout.completed"
    CHECKOUT_EXPIRED = "checkout.expired"
    PAYMENT_PENDING = "payment.pending"
    PAYMENT_REQUIRES_ACTION = "payment.requires_action"
    PAYMENT_PROCESSING = "payment.processing"
    PAYMENT_SUCCEEDED = "payment.succeeded"
    PAYMENT_FAILED = "payment.failed"
    PAYMENT_CANCELED = "payment.canceled"
    REFUND_SUCCEEDED = "refund.succeeded"
    REFUND_FAILED = "refund.failed"
    SUBSCRIPTION_CREATED = "subscription.created"
    SUBSCRIPTION_UPDATED = "subscription.updated"
    SUBSCRIPTION_CANCELED = "subscription.canceled"
    SUBSCRIPTION_EXPIRED = "subscription.expired"
    INVOICE_PAID = "invoice.paid"
    INVOICE_PAYMENT_FAILED = "invoice.payment_failed"


ObjectKind = Literal["checkout_session", "payment", "refund", "subscription", "invoice", "customer"]


def require_capability(provider: PaymentProvider, capability: Capability) -> None:
    """Raise :class:`UnsupportedCapabilityError` unless ``provider`` declares ``capability``."""
    if capability not in provider.capabilities:
        unsupported(provider, capability)


def computes_tax(provider: PaymentProvider) -> bool:
    """Whether ``provider`` computes the tax itself (a merchant of record such as Lemon Squeezy).

    An adapter says so with a class attribute ``computes_tax = True`` (optional: adapters
    without it compute none). The library then records the tax each invoice reports in
    :attr:`InvoiceSnapshot.tax` instead of computing it from the billing profile.
    """
    return getattr(provider, "computes_tax", False) is True


def cancels_at_period_end_locally(capabilities: Iterable[Capability]) -> bool:
    """Whether the library itself keeps ``cancel_at_period_end`` for a provider with ``capabilities``.

    True when it declares :attr:`Capability.CANCELS_AT_PERIOD_END_LOCALLY` and not the provider's
    own :attr:`Capability.CANCEL_AT_PERIOD_END` (a provider's own mode always wins). The
    provider's snapshots then never carry the flag: the local row is the authority for it.
    """
    declared = frozenset(capabilities)
    local = Capability.CANCELS_AT_PERIOD_END_LOCALLY in declared
    return local and Capability.CANCEL_AT_PERIOD_END not in declared


def unsupported(provider: PaymentProvider, what: Capability | str) -> NoReturn:
    """Refuse an operation the provider cannot do (for adapters' unsupported methods)."""
    name = what.value if isinstance(what, Capability) else what
    raise UnsupportedCapabilityError(
        f"provider {provider.name!r} does not support {name}",
        field="provider",
        details={"provider": provider.name, "capability": name},
    )


# --------------------------------------------------------------------------- requests / results


@dataclass(frozen=True, slots=True)
class CustomerRef:
    """The customer a call is for, with the provider's customer id when one is stored."""

    id: uuid.UUID
    external_id: str
    email: str | None = None
    name: str | None = None
    provider_customer_id: str | None = None
    #: The customer's VAT number from its billing profile (an adapter may pass it on).
    tax_id: str | None = None


@dataclass(frozen=True, slots=True)
class TierRef:
    """One price tier: ``up_to`` units inclusive (``None``: no upper bound)."""

    up_to: int | None
    unit_amount: int
    flat_amount: int = 0


@dataclass(frozen=True, slots=True)
class PlanRef:
    """A plan as a provider needs it; ``provider_price_id`` is set once the catalog is synced.

    ``unit_amount`` carries the currency; ``tiers`` are set for the tiered and (optionally)
    metered pricing models, in ascending order with an open last tier.
    """

    id: uuid.UUID
    name: str
    unit_amount: Money
    interval: BillingInterval
    interval_count: int = 1
    trial_days: int = 0
    pricing_model: PricingModel = PricingModel.FLAT
    tiers: tuple[TierRef, ...] = ()
    product_name: str | None = None
    provider_price_id: str | None = None


@dataclass(frozen=True, slots=True)
class TaxRateRef:
    """The VAT the library decided for a customer's subscription, for the provider to charge.

    The library decides the rate (:func:`fastapi_cashier.tax.decide_tax`); a provider that
    charges tax it did not compute (the fake, Stripe with tax rates, PayPal's ``plan.taxes``) adds
    it to each invoice so that what it charges equals the local invoice's gross, to the minor
    unit. A merchant of record (:func:`computes_tax`) ignores it.

    Attributes:
        rate: The rate in percent (``Decimal("19")``, ``Decimal("5.5")``); ``0`` for a reverse
            charge, an export or an exemption.
        inclusive: The prices already include it (``tax.prices_include_tax``): the charge is the
            price. Otherwise the provider adds the tax to the price.
        country: The member state whose VAT it is; ``None`` when no VAT is due.
        treatment: Why (a :class:`~fastapi_cashier.tax.TaxTreatment` value), for display.
    """

    rate: Decimal
    inclusive: bool
    country: str | None = None
    treatment: str = "domestic"

    def split(self, amount: int) -> TaxLine:
        """Net, tax and gross of a price of ``amount`` minor units (half to even, as the library)."""
        return split_tax(amount, self.rate, prices_include_tax=self.inclusive)


@dataclass(frozen=True, slots=True)
class CheckoutRequest:
    """Start a hosted checkout.

    Attributes:
        session_id: The local intent row's id; adapters store it in the provider object's
            metadata so events can find the row.
        idempotency_key: Derived from ``session_id``; the same request retried gets the same
            provider object.
        mode: ``"payment"`` for ``amount``; ``"subscription"`` for ``plan`` x ``quantity``.
        amount: What a one-off payment charges, tax included (the library adds it first).
        tax: The VAT of a subscription's invoices (``None`` when tax is off); the provider adds
            it to the plan's prices. A one-off ``amount`` carries its tax already.
        return_base_url: The absolute URL the router is mounted at, for providers whose hosted
            pages the router itself serves (the fake provider).
    """

    session_id: uuid.UUID
    idempotency_key: str
    mode: Literal["payment", "subscription"]
    customer: CustomerRef
    success_url: str
    cancel_url: str
    expires_at: datetime
    amount: Money | None = None
    description: str | None = None
    plan: PlanRef | None = None
    quantity: int = 1
    reference: str | None = None
    return_base_url: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    tax: TaxRateRef | None = None


@dataclass(frozen=True, slots=True)
class CheckoutResult:
    """A created checkout: where to send the payer."""

    provider_session_id: str
    url: str
    expires_at: datetime | None = None
    provider_customer_id: str | None = None


@dataclass(frozen=True, slots=True)
class RefundRequest:
    """Refund ``amount`` of a provider payment. ``refund_id`` is the local refund row.

    The last three fields are the library's own ledger of the payment, for an adapter whose
    provider keeps no id of a refund (Lemon Squeezy): it tells whether an earlier attempt whose
    answer was lost reached the provider by comparing the provider's refunded total with them.

    Attributes:
        refunded_before: The payment's refunds recorded as succeeded, not counting this one
            (``None``: unknown, the caller keeps no ledger).
        pending_before: The payment's other refunds still waiting for the provider's answer.
        resent: An earlier attempt of this refund may have reached the provider.
    """

    refund_id: uuid.UUID
    idempotency_key: str
    provider_payment_id: str
    amount: Money
    reason: str | None = None
    # Context, not the refund's identity: left out of equality, so a provider that compares
    # requests under one idempotency key (the fake) sees a resend as the same request.
    refunded_before: int | None = field(default=None, compare=False)
    pending_before: int = field(default=0, compare=False)
    resent: bool = field(default=False, compare=False)


@dataclass(frozen=True, slots=True)
class RefundResult:
    """What the provider said about a refund request.

    ``provider_refund_id`` is ``None`` where the provider refunds without a refund object of its
    own (Lemon Squeezy refunds an order).
    """

    provider_refund_id: str | None
    status: RefundStatus
    failure_message: str | None = None


@dataclass(frozen=True, slots=True)
class SubscriptionChange:
    """Change a subscription's plan or quantity; ``tax`` is the new plan's VAT (see :class:`TaxRateRef`)."""

    subscription_id: uuid.UUID
    idempotency_key: str
    provider_subscription_id: str
    plan: PlanRef | None = None
    quantity: int | None = None
    proration: ProrationBehavior = ProrationBehavior.CREATE_PRORATIONS
    tax: TaxRateRef | None = None


@dataclass(frozen=True, slots=True)
class SubscriptionResult:
    """The provider's view of a subscription after a change.

    ``approval_url`` is set when the subscriber must approve the change at the provider first
    (PayPal ``revise``): the snapshot is then the subscription as it still is, and the local change
    stays pending until the provider confirms it with an event.
    """

    snapshot: SubscriptionSnapshot
    approval_url: str | None = None


@dataclass(frozen=True, slots=True)
class UsageReport:
    """Metered usage for a subscription, counted once per ``idempotency_key``.

    As for :class:`RefundRequest`, the last three fields are the library's ledger of the
    subscription's usage, for an adapter whose provider keeps no id of a usage record.

    Attributes:
        reported_before: The subscription's usage confirmed as reported, not counting this
            report (``None``: unknown).
        unreported_before: The subscription's other usage not confirmed yet (in flight, or left
            by a fault).
        resent: An earlier attempt of this report may have reached the provider.
    """

    subscription_id: uuid.UUID
    provider_subscription_id: str
    quantity: int
    idempotency_key: str
    recorded_at: datetime
    # Context, not the report's identity (as in RefundRequest).
    reported_before: int | None = field(default=None, compare=False)
    unreported_before: int = field(default=0, compare=False)
    resent: bool = field(default=False, compare=False)


@dataclass(frozen=True, slots=True)
class PortalRequest:
    """Open the provider's self-service portal for a customer."""

    customer: CustomerRef
    return_url: str
    return_base_url: str | None = None
    provider_subscription_id: str | None = None


@dataclass(frozen=True, slots=True)
class PortalResult:
    """Where to send the customer."""

    url: str


# --------------------------------------------------------------------------- normalised events


@dataclass(frozen=True, slots=True)
class CheckoutSnapshot:
    """A checkout session as the provider reports it."""

    provider_session_id: str
    status: CheckoutSessionStatus
    url: str | None = None
    expires_at: datetime | None = None
    provider_payment_id: str | None = None
    provider_subscription_id: str | None = None
    provider_customer_id: str | None = None


@dataclass(frozen=True, slots=True)
class PaymentSnapshot:
    """A payment as the provider reports it."""

    provider_payment_id: str
    status: PaymentStatus
    amount: Money
    refunded_amount: int = 0
    provider_session_id: str | None = None
    provider_customer_id: str | None = None
    provider_invoice_id: str | None = None
    provider_subscription_id: str | None = None
    payment_method_summary: str | None = None
    failure_code: str | None = None
    failure_message: str | None = None
    description: str | None = None


@dataclass(frozen=True, slots=True)
class RefundSnapshot:
    """A refund as the provider reports it; ``provider_refund_id`` may be absent (as in RefundResult)."""

    provider_refund_id: str | None
    provider_payment_id: str
    status: RefundStatus
    amount: Money
    reason: str | None = None
    failure_message: str | None = None


@dataclass(frozen=True, slots=True)
class SubscriptionSnapshot:
    """A subscription as the provider reports it."""

    provider_subscription_id: str
    status: SubscriptionStatus
    quantity: int = 1
    provider_price_id: str | None = None
    provider_customer_id: str | None = None
    current_period_start: datetime | None = None
    current_period_end: datetime | None = None
    trial_start: datetime | None = None
    trial_end: datetime | None = None
    cancel_at_period_end: bool = False
    canceled_at: datetime | None = None
    ended_at: datetime | None = None
    paused: bool = False


@dataclass(frozen=True, slots=True)
class InvoiceSnapshot:
    """An invoice as the provider reports it."""

    provider_invoice_id: str
    status: InvoiceStatus
    total: Money
    amount_paid: int = 0
    provider_subscription_id: str | None = None
    provider_payment_id: str | None = None
    period_start: datetime | None = None
    period_end: datetime | None = None
    lines: tuple[Mapping[str, Any], ...] = ()
    #: The tax in ``total`` as a provider that computes tax (:func:`computes_tax`) reports it.
    tax: int | None = None
    #: That provider's tax rate in percent (a decimal string such as ``"19"``), when it says.
    tax_rate: str | None = None


@dataclass(frozen=True, slots=True)
class UsageSnapshot:
    """A usage record the provider holds, found by its idempotency key (:class:`ObjectLookup`)."""

    provider_usage_id: str
    quantity: int


Snapshot = CheckoutSnapshot | PaymentSnapshot | RefundSnapshot | SubscriptionSnapshot | InvoiceSnapshot
LookupResult = CheckoutSnapshot | RefundSnapshot | UsageSnapshot


LOCAL_ID_KEYS: Final = (
    "checkout_session_id",
    "customer_id",
    "refund_id",
    "subscription_id",
    "plan_id",
    "reference",
)
"""Metadata keys an adapter writes on provider objects; events report them as ``ProviderEvent.local_ids``."""


@dataclass(frozen=True, slots=True)
class ProviderEvent:
    """A verified webhook delivery, normalised.

    Attributes:
        id: The provider's event id (or one the adapter derives where the provider has none);
            unique per provider, the inbox's deduplication key.
        type: The canonical :class:`EventType` value.
        occurred_at: When the provider says the change happened; the ordering guard's clock.
        object_kind: What the event is about.
        object_id: The provider's id of that object.
        snapshot: The object's normalised state, or ``None`` for events the library only records.
        local_ids: Local ids the adapter found in the provider object's metadata
            (``checkout_session_id``, ``refund_id``, ``customer_id``, ``subscription_id``, ...).
        raw: The parsed payload, as received.
        refetch: The payload may be stale or out of order: the inbox re-reads the object with
            :meth:`PaymentProvider.fetch` before applying and applies that state instead.
        ignored_reason: Set by an adapter for a validly signed delivery it cannot read as an
            event it handles (a body missing fields, a thin event, an object it cannot parse):
            the inbox stores it once and records it as ignored with this reason, applying
            nothing, instead of refusing it (the provider would retry it for days).
    """

    provider: str
    id: str
    type: str
    occurred_at: datetime
    object_kind: ObjectKind
    object_id: str
    snapshot: Snapshot | None
    local_ids: Mapping[str, str] = field(default_factory=dict)
    raw: Mapping[str, Any] = field(default_factory=dict)
    refetch: bool = False
    ignored_reason: str | None = None


# --------------------------------------------------------------------------- the protocol
#
# A small required core (:class:`PaymentProvider`) and one optional part per capability. An
# adapter implements the parts of the capabilities it declares and nothing else; the library
# checks the declaration (:func:`require_capability`) before it writes anything, and
# :func:`check_adapter` checks at start-up that every declared capability has its methods.


@runtime_checkable
class PaymentProvider(Protocol):
    """The core every provider adapter implements.

    Vendor errors are caught inside the adapter and re-raised as
    :class:`~fastapi_cashier.errors.ProviderError` subclasses, with ``retriable`` set for faults
    a retry may cure.

    Attributes:
        name: Stable name used in URLs (``/webhooks/{name}``), settings and database rows.
        capabilities: What the adapter can do; each capability names the optional part it
            implements (see :data:`CAPABILITY_PARTS`).
        idempotency_keys: Whether the provider honours the idempotency keys of creating calls
            (the same key answers the same object). Where it does not, the retry wrapper settles
            an ambiguous fault by :meth:`ObjectLookup.lookup` before resending, and the adapter
            must implement :class:`ObjectLookup`.
        proration_behaviors: The proration behaviours a plan or quantity change may ask for.
    """

    name: str
    capabilities: frozenset[Capability]
    idempotency_keys: bool
    proration_behaviors: frozenset[ProrationBehavior]

    async def create_customer(self, customer: CustomerRef, *, idempotency_key: str) -> str | None:
        """Create the customer at the provider; its id, or ``None`` where the provider has no
        customer object (PayPal). Nothing in the library depends on an id existing."""
        ...


@runtime_checkable
class WebhookReceiver(Protocol):
    """:attr:`Capability.WEBHOOKS`: signed deliveries, and re-reading the objects they name."""

    async def verify_webhook(self, headers: Mapping[str, str], body: bytes) -> ProviderEvent:
        """Verify a delivery on its raw bytes and normalise it.

        Async, since a provider's check may fetch a certificate or call an API (PayPal).

        Raises:
            SignatureVerificationError: missing, wrong, stale or for another body. Fails closed.
        """
        ...

    async def parse_webhook(self, body: bytes) -> ProviderEvent:
        """Normalise a body that was verified when it arrived and stored by the inbox.

        Used to retry or replay stored events, when the signature's timestamp is long past.
        Never call it on a body that did not pass :meth:`verify_webhook`.

        Raises:
            WebhookError: the body is not an event of this provider.
        """
        ...

    async def fetch(self, object_kind: ObjectKind, provider_id: str) -> Snapshot:
        """Re-read an object from the provider (handlers trust this over a payload)."""
        ...


@runtime_checkable
class ObjectLookup(Protocol):
    """Finding an object by the local id the adapter stored on it.

    Required of adapters whose provider ignores idempotency keys (``idempotency_keys=False``):
    after an ambiguous fault of a creating call the retry wrapper looks first, and resends only
    when nothing was created.
    """

    async def lookup(self, object_kind: LookupKind, local_id: str) -> LookupResult | None:
        """The object created for ``local_id`` (the checkout session id, the refund id, the usage
        report's idempotency key), or ``None`` when the provider has none."""
        ...


@runtime_checkable
class CheckoutProvider(Protocol):
    """:attr:`Capability.CHECKOUT`: hosted checkouts."""

    async def create_checkout(self, request: CheckoutRequest) -> CheckoutResult:
        """Create a hosted checkout for a one-off payment or a subscription."""
        ...


@runtime_checkable
class CheckoutCompleter(Protocol):
    """:attr:`Capability.CHECKOUT_COMPLETION`: a checkout the payer approved must still be
    completed by the server (PayPal: capture the order).

    The adapter reports the approval as a canonical ``checkout.approved`` event; the library then
    calls :meth:`complete_checkout` outside any transaction, once per checkout, whichever path (the
    payer's return or the webhook) arrives first.
    """

    async def complete_checkout(self, provider_session_id: str, *, idempotency_key: str) -> CheckoutSnapshot:
        """Complete an approved checkout; the checkout as it now is."""
        ...


@runtime_checkable
class RefundProvider(Protocol):
    """:attr:`Capability.REFUNDS` (and :attr:`Capability.PARTIAL_REFUNDS`)."""

    async def refund(self, request: RefundRequest) -> RefundResult:
        """Refund all or part of a payment."""
        ...


@runtime_checkable
class SubscriptionProvider(Protocol):
    """:attr:`Capability.SUBSCRIPTIONS`; plan changes are :attr:`Capability.PLAN_CHANGE` and the
    cancel modes :attr:`Capability.CANCEL_NOW` and :attr:`Capability.CANCEL_AT_PERIOD_END` (or
    :attr:`Capability.CANCELS_AT_PERIOD_END_LOCALLY`, where the library keeps the flag itself)."""

    async def update_subscription(self, change: SubscriptionChange) -> SubscriptionResult:
        """Change a subscription's plan or quantity (with a proration the adapter declared)."""
        ...

    async def cancel_subscription(
        self, provider_subscription_id: str, *, at_period_end: bool, idempotency_key: str
    ) -> SubscriptionResult:
        """Cancel now, or at the end of the current period (each only when declared)."""
        ...

    async def resume_subscription(
        self, provider_subscription_id: str, *, idempotency_key: str
    ) -> SubscriptionResult:
        """Undo a cancel-at-period-end, or resume a paused subscription."""
        ...


@runtime_checkable
class PauseProvider(Protocol):
    """:attr:`Capability.PAUSE`: pausing collection (resumed by ``resume_subscription``)."""

    async def pause_subscription(
        self, provider_subscription_id: str, *, idempotency_key: str
    ) -> SubscriptionResult:
        """Pause collection."""
        ...


@runtime_checkable
class UsageProvider(Protocol):
    """:attr:`Capability.METERED_USAGE`."""

    async def report_usage(self, report: UsageReport) -> None:
        """Report metered usage, counted once per ``report.idempotency_key``."""
        ...


@runtime_checkable
class PortalProvider(Protocol):
    """:attr:`Capability.PORTAL`."""

    async def create_portal_session(self, request: PortalRequest) -> PortalResult:
        """A URL of the provider's customer portal."""
        ...


@runtime_checkable
class CatalogProvider(Protocol):
    """:attr:`Capability.CATALOG_SYNC`."""

    async def sync_catalog(self, plans: list[PlanRef]) -> Mapping[uuid.UUID, str]:
        """Create or update the plans at the provider; returns plan id -> provider price id."""
        ...


@dataclass(frozen=True, slots=True)
class ProviderHost:
    """What the router offers an adapter that contributes routes (:class:`RouteContributor`).

    Attributes:
        receive: Delivers a webhook to the inbox, through the same code path (signature check
            included) as ``POST /webhooks/{name}``.
        complete_checkout: Completes an approved checkout by its local id, exactly once per
            checkout (for a return route of a :class:`CheckoutCompleter`).
        finish_checkout: Completes it as ``complete_checkout`` does and answers where to send the
            payer: the checkout's ``success_url``, or, when the provider declined the completion
            (the payment is then recorded ``failed``), its ``cancel_url`` with
            ``checkout=declined`` added to the query.
        admin: A FastAPI dependency admitting only admins.
        route_class: The route class that answers errors as problems.
        problem_responses: Builds the OpenAPI ``responses`` of the given problem statuses.
    """

    receive: Callable[[Mapping[str, str], bytes], Awaitable[Any]]
    complete_checkout: Callable[[uuid.UUID], Awaitable[Any]]
    admin: Callable[..., Any]
    route_class: type[APIRoute]
    problem_responses: Callable[..., dict[int | str, dict[str, Any]]]
    finish_checkout: Callable[[uuid.UUID], Awaitable[str]]


@runtime_checkable
class RouteContributor(Protocol):
    """An adapter with routes of its own (hosted pages, a return route), served under the
    router's prefix at ``/{name}/...``."""

    def routes(self, host: ProviderHost) -> APIRouter:
        """The adapter's routes, without a prefix (the router adds ``/{name}``)."""
        ...


LookupKind = Literal["checkout_session", "refund", "usage_record"]

#: The optional part each capability needs; a capability not listed needs no method of its own.
CAPABILITY_PARTS: Final[Mapping[Capability, type]] = {
    Capability.WEBHOOKS: WebhookReceiver,
    Capability.CHECKOUT: CheckoutProvider,
    Capability.CHECKOUT_COMPLETION: CheckoutCompleter,
    Capability.REFUNDS: RefundProvider,
    Capability.SUBSCRIPTIONS: SubscriptionProvider,
    Capability.PAUSE: PauseProvider,
    Capability.METERED_USAGE: UsageProvider,
    Capability.PORTAL: PortalProvider,
    Capability.CATALOG_SYNC: CatalogProvider,
}

#: Capabilities that only refine another one.
_REFINES: Final[Mapping[Capability, Capability]] = {
    Capability.ONE_OFF_PAYMENT: Capability.CHECKOUT,
    Capability.CHECKOUT_COMPLETION: Capability.CHECKOUT,
    Capability.PARTIAL_REFUNDS: Capability.REFUNDS,
    Capability.PLAN_CHANGE: Capability.SUBSCRIPTIONS,
    Capability.CANCEL_NOW: Capability.SUBSCRIPTIONS,
    Capability.CANCEL_AT_PERIOD_END: Capability.SUBSCRIPTIONS,
    # The library cancels at the period end by cancelling now at the provider.
    Capability.CANCELS_AT_PERIOD_END_LOCALLY: Capability.CANCEL_NOW,
    Capability.PAUSE: Capability.SUBSCRIPTIONS,
    Capability.METERED_USAGE: Capability.SUBSCRIPTIONS,
}


def parse_or_ignore(
    provider: str,
    body: bytes,
    parse: Callable[[bytes], ProviderEvent],
    describe: Callable[[dict[str, Any]], tuple[str | None, object, object, object]],
) -> ProviderEvent:
    """Normalise a verified delivery with ``parse``; keep a JSON object it cannot read as an event
    with its ``ignored_reason``, for the inbox to store once and record as ignored.

    Args:
        provider: The adapter's name.
        body: The raw, verified body.
        parse: The adapter's parser; it raises ``WebhookError`` for what it cannot read.
        describe: What can be told of such an object: its event id (``None``: refuse it), event
            type, object kind and object id (anything unusable is replaced).

    Raises:
        WebhookError: ``parse``'s error, for a body that is not a JSON object or has no usable id.
    """
    try:
        return parse(body)
    except WebhookError as exc:
        try:
            payload = json.loads(body)
        except (ValueError, RecursionError):
            raise exc from None
        if not isinstance(payload, dict):
            raise
        event_id, event_type, kind, object_id = describe(payload)
        if event_id is None or not 0 < len(event_id) <= 255:
            raise
        reason = exc.message
    return ProviderEvent(
        provider=provider,
        id=event_id,
        type=event_type[:100] if isinstance(event_type, str) and event_type else "unknown",
        occurred_at=utcnow(),
        object_kind=cast("ObjectKind", kind[:40] if isinstance(kind, str) and kind else "unknown"),
        object_id=str(object_id) if isinstance(object_id, str | int) and len(str(object_id)) <= 255 else "",
        snapshot=None,
        raw=payload,
        ignored_reason=reason[:500],
    )


def check_adapter(provider: object) -> None:
    """Check an adapter against the protocol: the core, and a part for each declared capability.

    Raises:
        ConfigurationError: naming what is missing.
    """
    if not isinstance(provider, PaymentProvider):
        raise ConfigurationError(
            f"{provider!r} does not implement the PaymentProvider protocol "
            "(name, capabilities, idempotency_keys, proration_behaviors, create_customer)"
        )
    problems: list[str] = []
    for capability in sorted(provider.capabilities):
        part = CAPABILITY_PARTS.get(capability)
        if part is not None and not isinstance(provider, part):
            problems.append(f"{capability.value} needs the methods of {part.__name__}")
        base = _REFINES.get(capability)
        if base is not None and base not in provider.capabilities:
            problems.append(f"{capability.value} needs {base.value}")
    if not provider.idempotency_keys and not isinstance(provider, ObjectLookup):
        problems.append("a provider without idempotency keys needs ObjectLookup.lookup")
    if Capability.PLAN_CHANGE in provider.capabilities and not provider.proration_behaviors:
        problems.append("plan_change needs at least one declared proration behaviour")
    if problems:
        raise ConfigurationError(f"provider {provider.name!r}: " + "; ".join(problems))


def require_proration(provider: PaymentProvider, proration: ProrationBehavior) -> None:
    """Refuse a proration behaviour the provider did not declare (a 422 problem)."""
    if proration not in provider.proration_behaviors:
        supported = ", ".join(sorted(p.value for p in provider.proration_behaviors)) or "none"
        raise UnsupportedCapabilityError(
            f"provider {provider.name!r} does not support proration {proration.value!r}; "
            f"it supports {supported}",
            field="proration",
            details={"provider": provider.name, "proration": proration.value},
        )
