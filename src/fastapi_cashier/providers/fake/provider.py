"""The fake provider: stateful, in-process, no network; for tests, demos, and as the adapter template.

:class:`FakeProvider` keeps customers, checkout sessions, payments, refunds, subscriptions and
invoices in memory and behaves like a real provider where the library depends on it: idempotency
keys are honoured (the same key returns the same object, the same key with other parameters is
refused), a checkout is paid on a hosted page, subscriptions renew when its clock is advanced, and
every change is announced by a signed webhook event. A new adapter is written by copying this
package and its parts (``_hosted``: checkout and refunds; ``_billing``: subscriptions and
invoices; ``state``: records; ``wire``: events): same method names, same error
translation, same event normalisation.

Pages the router serves, and the methods they call::

    GET  /fake/checkout/{id}    render_checkout_page()        Pay | Decline | 3-D Secure
    POST /fake/checkout/{id}    submit_checkout(outcome)
    GET  ...authentication      render_authentication_page()  Complete | Fail authentication
    POST ...authentication      authenticate(succeeded)
    GET  /fake/portal/{cus}     render_portal_page()          change quantity | cancel at period end
    POST /fake/clock/advance    advance(days=, hours=)        (admin only)

Events emitted by one-off payments, in this order (subscriptions: see ``_billing``):

==============================  ===============================================
Pay                             ``payment.succeeded``, ``checkout.completed``
Decline                         ``payment.failed`` (session stays open)
3-D Secure                      ``payment.requires_action``
Authentication completed        ``payment.succeeded``, ``checkout.completed``
Authentication failed           ``payment.failed`` (session stays open)
Session expired                 ``payment.canceled`` (if attempted), ``checkout.expired``
Refund                          ``refund.succeeded``
==============================  ===============================================

Wire format: the body is ``{"id": "evt_...", "type": "<canonical type>", "created": <unix>,
"data": {"object": {...}}}`` in compact JSON, signed in the ``Fake-Signature`` header as
``t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>``.
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

from fastapi import APIRouter

from ...errors import ConfigurationError
from ...statuses import CheckoutSessionStatus, ProrationBehavior
from ..base import (
    Capability,
    CheckoutSnapshot,
    CustomerRef,
    EventType,
    LookupKind,
    LookupResult,
    ObjectKind,
    PlanRef,
    PortalRequest,
    PortalResult,
    ProviderEvent,
    ProviderHost,
    RefundSnapshot,
    Snapshot,
    UsageSnapshot,
    require_capability,
)
from . import _pages as fake_pages
from ._billing import SubscriptionBillingMixin
from ._hosted import CheckoutOutcome, HostedCheckoutMixin
from .state import (
    FakeCheckoutSession,
    FakeCustomer,
    FakeInvoice,
    FakePayment,
    FakeRefund,
    FakeSubscription,
    HostedStep,
    InvoiceLine,
    check_plan,
    new_id,
    refused,
    unix_time,
    utcnow,
)
from .wire import (
    SIGNATURE_HEADER,
    check_timestamp,
    encode_event,
    parse_event,
    parse_snapshot,
    sign_headers,
    verify_signature,
)

if TYPE_CHECKING:
    from ...settings import FakeProviderSettings

__all__ = [
    "SIGNATURE_HEADER",
    "CheckoutOutcome",
    "FakeCheckoutSession",
    "FakeCustomer",
    "FakeInvoice",
    "FakePayment",
    "FakeProvider",
    "FakeRefund",
    "FakeSubscription",
    "HostedStep",
    "InvoiceLine",
]

logger = logging.getLogger("fastapi_cashier.providers.fake")

Deliver = Callable[[Mapping[str, str], bytes], Awaitable[object]]

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class _IdempotentCall:
    method: str
    params: object
    result: object


class FakeProvider(HostedCheckoutMixin, SubscriptionBillingMixin):
    """An in-memory payment provider that signs and delivers its own webhooks.

    Args:
        webhook_secret: The ``Fake-Signature`` secret, or several for rotation: events are
            signed with the first, deliveries signed with any of them are accepted.
        auto_deliver: Deliver each emitted event through :attr:`deliver` as soon as it is emitted.
        tolerance_seconds: How far a signature's timestamp may be from :meth:`now`.
        clock: Returns the current time (aware UTC); tests pass their own to move time.
            :meth:`now` is this clock plus what :meth:`advance` has added.

    Attributes:
        deliver: Set by the router (through :meth:`routes`) to the code path of ``POST /webhooks/fake``.
        sent_events: Every emitted event as ``(headers, body)``, delivered or not.
        calls: ``(method, idempotency_key)`` of each call that really created something
            (``("sync_catalog", price_id)`` for each new price).
        subscriptions, invoices: By provider id.
        prices: Each synced plan (with its ``provider_price_id``) by price id.
    """

    name: str = "fake"
    #: Everything but a server-side completion step (a paid fake checkout is complete) and the
    #: library-kept cancel at period end (the fake has its own; a test may swap one for the other).
    capabilities: frozenset[Capability] = frozenset(Capability) - {
        Capability.CHECKOUT_COMPLETION,
        Capability.CANCELS_AT_PERIOD_END_LOCALLY,
    }
    proration_behaviors: frozenset[ProrationBehavior] = frozenset(ProrationBehavior)

    def __init__(
        self,
        *,
        webhook_secret: str | Sequence[str],
        auto_deliver: bool = True,
        tolerance_seconds: int = 300,
        clock: Callable[[], datetime] | None = None,
        idempotency_keys: bool = True,
    ) -> None:
        secrets_ = (webhook_secret,) if isinstance(webhook_secret, str) else tuple(webhook_secret)
        if not secrets_ or not all(secrets_):
            raise ConfigurationError("the fake provider needs at least one non-empty webhook secret")
        if tolerance_seconds < 0:
            raise ConfigurationError("tolerance_seconds of the fake provider cannot be negative")
        self._secrets = secrets_
        self.auto_deliver = auto_deliver
        self.idempotency_keys = idempotency_keys
        self.tolerance_seconds = tolerance_seconds
        self.clock: Callable[[], datetime] = clock or utcnow
        self._offset = timedelta()
        self.deliver: Deliver | None = None
        self.sent_events: list[tuple[dict[str, str], bytes]] = []
        self.calls: list[tuple[str, str]] = []
        self.customers: dict[str, FakeCustomer] = {}
        self.checkout_sessions: dict[str, FakeCheckoutSession] = {}
        self.payments: dict[str, FakePayment] = {}
        self.refunds: dict[str, FakeRefund] = {}
        self.subscriptions: dict[str, FakeSubscription] = {}
        self.invoices: dict[str, FakeInvoice] = {}
        self.prices: dict[str, PlanRef] = {}
        self._price_ids: dict[tuple[object, ...], str] = {}
        self._declining: set[str] = set()
        self._portal_return_urls: dict[str, str] = {}
        self._idempotency: dict[str, _IdempotentCall] = {}

    @classmethod
    def from_settings(cls, settings: FakeProviderSettings, *, tolerance_seconds: int) -> FakeProvider:
        """Build the provider from ``PaymentsSettings.fake`` and the webhook tolerance."""
        return cls(
            webhook_secret=[
                settings.webhook_secret.get_secret_value(),
                *(secret.get_secret_value() for secret in settings.previous_webhook_secrets),
            ],
            auto_deliver=settings.auto_deliver,
            tolerance_seconds=tolerance_seconds,
        )

    # ----------------------------------------------------------------------- the clock

    def now(self) -> datetime:
        """The provider's time: :attr:`clock` plus what :meth:`advance` has added (aware UTC)."""
        now = self.clock()
        return (now if now.tzinfo is not None else now.replace(tzinfo=UTC)) + self._offset

    async def advance(self, *, days: int = 0, hours: int = 0, seconds: int = 0) -> datetime:
        """Move the provider's clock forward and process, in time order, everything that falls due.

        Open checkout sessions expire, trials end, periods end (renewals, or a roll forward while
        paused) and subscriptions set to cancel expire, each at its own moment: the clock stops
        there, so events, signatures and ``updated`` times carry that moment. Several periods
        of one subscription may pass in one call. Nothing falls due without a call to this.

        Args:
            days: Days to add, at least 0.
            hours: Hours to add, at least 0.
            seconds: Seconds to add, at least 0.

        Returns:
            The new :meth:`now`.

        Raises:
            InvalidProviderRequestError: A negative or non-integer step (the clock never goes
                back), or a time past the year 9999.
        """
        for field, value in (("days", days), ("hours", hours), ("seconds", seconds)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise refused(
                    f"{field} must be an integer of at least 0: the clock never goes back", field=field
                )
        try:
            target = self.now() + timedelta(days=days, hours=hours, seconds=seconds)
        except OverflowError:
            raise refused("the fake clock cannot go past the year 9999", field="days") from None
        while True:
            session = min(
                (s for s in self.checkout_sessions.values() if s.status is CheckoutSessionStatus.OPEN),
                key=lambda s: s.expires_at,
                default=None,
            )
            sub = self._next_due_subscription(target)
            if (
                session is not None
                and session.expires_at <= target
                and (sub is None or session.expires_at <= sub.current_period_end)
            ):
                self._move_clock_to(session.expires_at)
                await self.expire_checkout(session.id)
            elif sub is not None:
                self._move_clock_to(sub.current_period_end)
                await self._emit(self._end_period(sub))
            else:
                break
        self._move_clock_to(target)
        logger.debug("fake clock advanced to %s", target.isoformat())
        return self.now()

    def _move_clock_to(self, moment: datetime) -> None:
        gap = moment - self.now()
        if gap > timedelta():
            self._offset += gap

    # ----------------------------------------------------------------------- protocol

    async def create_customer(self, customer: CustomerRef, *, idempotency_key: str) -> str:
        """Create a customer; returns its ``cus_fake_...`` id (the same one for a repeated key)."""
        replayed = self._replay("create_customer", idempotency_key, customer, str)
        if replayed is not None:
            return replayed
        provider_customer_id = self._add_customer(customer, provider_customer_id=None)
        self._remember("create_customer", idempotency_key, customer, provider_customer_id)
        return provider_customer_id

    async def create_portal_session(self, request: PortalRequest) -> PortalResult:
        """A link to the fake customer portal page served by the router."""
        self._require(Capability.PORTAL)
        customer_id = request.customer.provider_customer_id
        if customer_id is None:
            raise refused("the customer has no fake provider customer id yet", field="customer")
        if request.return_base_url is None:
            raise refused(
                "the fake portal page is served by the router: pass return_base_url (the URL the "
                "router is mounted at, PaymentsRouter.base_url(request))"
            )
        # Adopt a customer the fake forgot (its memory is empty after a restart), as checkout does.
        customer_id = self._add_customer(request.customer, provider_customer_id=customer_id)
        self._portal_return_urls[customer_id] = request.return_url
        return PortalResult(
            url=f"{request.return_base_url.rstrip('/')}/fake/portal/{quote(customer_id, safe='')}"
        )

    async def fetch(self, object_kind: ObjectKind, provider_id: str) -> Snapshot:
        """The current snapshot of a checkout session, payment, refund, subscription or invoice.

        Raises:
            InvalidProviderRequestError: Unknown id, or a kind the fake does not describe (customers).
        """
        stores: dict[str, Mapping[str, Any]] = {
            "checkout_session": self.checkout_sessions,
            "payment": self.payments,
            "refund": self.refunds,
            "subscription": self.subscriptions,
            "invoice": self.invoices,
        }
        if object_kind not in stores:
            raise refused(f"the fake provider cannot fetch {object_kind} objects", object_kind=object_kind)
        snapshot = parse_snapshot(
            object_kind, self._get(stores[object_kind], object_kind, provider_id).to_object()
        )
        assert snapshot is not None  # every kind in stores has a snapshot
        return snapshot

    async def verify_webhook(self, headers: Mapping[str, str], body: bytes) -> ProviderEvent:
        """Check the ``Fake-Signature`` of a delivery on its raw bytes, then normalise it.

        Raises:
            SignatureVerificationError: The header is missing or malformed, no ``v1`` signature
                matches any secret, or the timestamp is outside the tolerance of :meth:`now`.
            WebhookError: The signature is valid but the body is not a fake event.
        """
        timestamp = verify_signature(headers, body, self._secrets)
        check_timestamp(timestamp, now=unix_time(self.now()), tolerance_seconds=self.tolerance_seconds)
        return parse_event(body)

    async def parse_webhook(self, body: bytes) -> ProviderEvent:
        """Normalise a stored, already verified delivery (retries and replays)."""
        return parse_event(body)

    async def lookup(self, object_kind: LookupKind, local_id: str) -> LookupResult | None:
        """The checkout session, refund or usage record created for a local id, if any.

        What the retry wrapper asks when the fake runs with ``idempotency_keys=False``.
        """
        if object_kind == "usage_record":
            for sub in self.subscriptions.values():
                for key, usage in sub.usage.items():
                    if key.split("#", 1)[0] == local_id:
                        return UsageSnapshot(provider_usage_id=f"{sub.id}:{key}", quantity=usage.quantity)
            return None
        if object_kind == "checkout_session":
            for session in self.checkout_sessions.values():
                if session.metadata.get("checkout_session_id") == local_id:
                    return CheckoutSnapshot(
                        provider_session_id=session.id,
                        status=session.status,
                        url=session.url,
                        expires_at=session.expires_at,
                        provider_payment_id=session.payment,
                        provider_subscription_id=session.subscription,
                        provider_customer_id=session.customer,
                    )
            return None
        for refund in self.refunds.values():
            if refund.metadata.get("refund_id") == local_id:
                snapshot = await self.fetch("refund", refund.id)
                assert isinstance(snapshot, RefundSnapshot)
                return snapshot
        return None

    def routes(self, host: ProviderHost) -> APIRouter:
        """The hosted pages and the clock, served under ``{prefix}/fake``; the router's inbox
        becomes the delivery path of every emitted event."""
        from . import _routes as fake_routes

        self.deliver = host.receive
        return fake_routes.build(self, host)

    def sign(self, body: bytes, *, timestamp: int | None = None) -> dict[str, str]:
        """Headers of a valid delivery of ``body``, signed with the first secret.

        Args:
            body: The raw request body.
            timestamp: Unix time to sign at; defaults to :meth:`now`.

        Returns:
            ``Fake-Signature`` and ``Content-Type`` headers.
        """
        signed_at = unix_time(self.now()) if timestamp is None else timestamp
        return sign_headers(self._secrets[0], body, signed_at)

    # ----------------------------------------------------------------------- catalog, portal, controls

    async def sync_catalog(self, plans: list[PlanRef]) -> Mapping[uuid.UUID, str]:
        """Create a ``price_fake_...`` per plan and pricing; returns plan id -> price id.

        A plan synced again with the same pricing (model, amounts, currency, tiers, interval)
        keeps its price id; changed pricing gets a new one, as prices are immutable at Stripe.
        :attr:`prices` keeps each plan by its price id.

        Raises:
            InvalidProviderRequestError: A plan without a valid price.
        """
        self._require(Capability.CATALOG_SYNC)
        synced: dict[uuid.UUID, str] = {}
        for plan in plans:
            check_plan(plan, 1, recurring=False)
            key = (
                plan.id,
                plan.pricing_model,
                plan.unit_amount,
                plan.tiers,
                plan.interval,
                plan.interval_count,
            )
            price_id = self._price_ids.get(key)
            if price_id is None:
                price_id = self._price_ids[key] = new_id("price")
                self.calls.append(("sync_catalog", price_id))
            self.prices[price_id] = dataclasses.replace(plan, provider_price_id=price_id)
            synced[plan.id] = price_id
        return synced

    def decline_payments_for(self, provider_customer_id: str, declined: bool = True) -> None:
        """Make every later subscription charge of a customer fail (``card_declined``), or succeed again.

        Applies to renewals, trial ends and ``always_invoice`` prorations; the hosted checkout page
        is driven by its own buttons.

        Raises:
            InvalidProviderRequestError: No such customer.
        """
        self._get(self.customers, "customer", provider_customer_id)
        if declined:
            self._declining.add(provider_customer_id)
        else:
            self._declining.discard(provider_customer_id)

    def customer_subscriptions(self, provider_customer_id: str) -> list[FakeSubscription]:
        """A customer's subscriptions, oldest first."""
        return [sub for sub in self.subscriptions.values() if sub.customer == provider_customer_id]

    def render_portal_page(self, provider_customer_id: str, *, action_url: Callable[[str, str], str]) -> str:
        """The customer portal: the customer's subscriptions with quantity and cancel forms.

        Args:
            provider_customer_id: Whose portal.
            action_url: ``(subscription id, "quantity" | "cancel")`` -> where that form posts.

        Raises:
            InvalidProviderRequestError: No such customer.
        """
        customer = self._get(self.customers, "customer", provider_customer_id)
        return fake_pages.portal_page(
            customer=customer.email or customer.name or customer.id,
            subscriptions=self.customer_subscriptions(customer.id),
            action_url=action_url,
            return_url=self._portal_return_urls.get(customer.id),
        )

    # ----------------------------------------------------------------------- internals

    def _require(self, capability: Capability) -> None:
        require_capability(self, capability)

    def _get(self, store: Mapping[str, _T], kind: str, provider_id: str) -> _T:
        try:
            return store[provider_id]
        except KeyError:
            raise refused(
                f"no fake {kind} with id {provider_id!r}", code="resource_missing", object_kind=kind
            ) from None

    def _replay(self, method: str, key: str, params: object, result_type: type[_T]) -> _T | None:
        """The stored result of an earlier call with ``key``, if any; refuses a reused key."""
        if not key:
            raise refused(f"{method} needs an idempotency key", field="idempotency_key")
        stored = self._idempotency.get(key)
        if stored is None or not self.idempotency_keys:
            return None
        if stored.method != method or stored.params != params:
            raise refused(
                f"idempotency key {key!r} was already used for another {stored.method} request",
                code="idempotency_key_in_use",
            )
        assert isinstance(stored.result, result_type)
        logger.debug("fake %s replayed for idempotency key %r", method, key)
        return stored.result

    def _remember(self, method: str, key: str, params: object, result: object) -> None:
        self._idempotency[key] = _IdempotentCall(method, params, result)
        self.calls.append((method, key))

    def _add_customer(self, ref: CustomerRef, *, provider_customer_id: str | None) -> str:
        """Store a customer; an unknown given id is adopted, since a restart empties the fake's memory."""
        if provider_customer_id is not None and provider_customer_id in self.customers:
            return provider_customer_id
        customer = FakeCustomer(
            id=provider_customer_id or new_id("cus"),
            created=self.now(),
            local_id=ref.id,
            external_id=ref.external_id,
            email=ref.email,
            name=ref.name,
        )
        self.customers[customer.id] = customer
        return customer.id

    async def _emit(self, events: Sequence[tuple[EventType, dict[str, Any]]]) -> None:
        """Sign, record and (with ``auto_deliver``) deliver events, one after the other.

        Objects are serialised by the caller before the first delivery, so each event shows the
        state of the change that caused it even if a delivery triggers further changes.
        """
        for event_type, obj in events:
            created = unix_time(self.now())
            event_id = new_id("evt")
            body = encode_event(event_id, event_type, created, obj)
            headers = self.sign(body, timestamp=created)
            self.sent_events.append((headers, body))
            logger.debug("fake event %s %s for %s", event_id, event_type.value, obj["id"])
            if self.auto_deliver and self.deliver is not None:
                await self.deliver(dict(headers), body)
