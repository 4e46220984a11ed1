""":class:`LemonSqueezyProvider`: the PaymentProvider protocol over Lemon Squeezy's JSON:API."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

import httpx

from ...clock import Clock, utcnow
from ...errors import ConfigurationError
from ...statuses import CheckoutSessionStatus
from ..base import (
    Capability,
    CheckoutSnapshot,
    LookupKind,
    LookupResult,
    ObjectKind,
    ProviderEvent,
    Snapshot,
)
from ._base import PauseMode, SentCalls, document, path_id, refused, relationship
from ._catalog import CatalogMixin
from ._client import DEFAULT_API_BASE, LemonSqueezyClient, Resource
from ._events import SUBSCRIBED_EVENTS, parse_delivery
from ._objects import (
    attributes,
    invoice_payment_snapshot,
    invoice_snapshot,
    order_snapshot,
    parse_time,
    subscription_snapshot,
)
from ._payments import PaymentsMixin
from ._signature import verify_signature
from ._subscriptions import SubscriptionsMixin

if TYPE_CHECKING:
    from ...settings import LemonSqueezySettings

__all__ = ["LEMONSQUEEZY_CAPABILITIES", "LemonSqueezyProvider"]

LEMONSQUEEZY_CAPABILITIES = frozenset(
    {
        Capability.WEBHOOKS,
        Capability.CHECKOUT,
        Capability.ONE_OFF_PAYMENT,
        Capability.REFUNDS,
        Capability.PARTIAL_REFUNDS,
        Capability.SUBSCRIPTIONS,
        Capability.CANCEL_AT_PERIOD_END,
        Capability.PLAN_CHANGE,
        Capability.PAUSE,
        Capability.METERED_USAGE,
        Capability.PORTAL,
        Capability.CATALOG_SYNC,
    }
)
"""What Lemon Squeezy can do: no immediate cancel (only at the period end), no checkout completion step;
catalog sync links plans to existing variants (the API cannot create any)."""


class LemonSqueezyProvider(PaymentsMixin, SubscriptionsMixin, CatalogMixin):
    """Lemon Squeezy through the library's own asynchronous JSON:API client.

    A merchant of record (``computes_tax``): it computes and charges the VAT itself, so the
    library adds none to its checkouts and records the tax its invoices report.

    Args:
        api_key: An API key of the store's mode (test or live).
        store_id: The store sales are made in.
        webhook_secrets: Every accepted webhook signing secret; several while one is rotated. At
            least one is required.
        api_base: The API's address; tests point it at an in-process server.
        http_client: An ``httpx.AsyncClient`` to send requests with; the caller closes it. Without
            one the provider makes its own pool, closed by :meth:`aclose` (the router does at
            shut-down).
        one_off_variant_id: The variant one-off payments are sold as, at a custom price.
        plan_variants: Plan id or name -> variant id links that catalog sync uses as given.
        pause_mode: ``void`` or ``free`` (see :class:`~fastapi_cashier.settings.LemonSqueezySettings`).
        capabilities: The capabilities to offer; all that Lemon Squeezy has by default.
        clock: The current time, to tell an expired checkout (tests pass their own).

    Raises:
        ConfigurationError: No API key, no store, no webhook secret.
    """

    #: A merchant of record: the tax of its invoices is its own (see ``computes_tax``).
    computes_tax = True

    def __init__(
        self,
        *,
        api_key: str,
        store_id: str,
        webhook_secrets: Sequence[str],
        api_base: str = DEFAULT_API_BASE,
        http_client: httpx.AsyncClient | None = None,
        one_off_variant_id: str | None = None,
        plan_variants: Mapping[str, str] | None = None,
        pause_mode: PauseMode = "void",
        capabilities: Iterable[Capability] = LEMONSQUEEZY_CAPABILITIES,
        clock: Clock = utcnow,
    ) -> None:
        if not store_id or not store_id.isdigit():
            raise ConfigurationError(
                "the Lemon Squeezy adapter needs the store's id (PAYMENTS_LEMONSQUEEZY__STORE_ID)"
            )
        secrets = [secret for secret in webhook_secrets if secret]
        if not secrets:
            raise ConfigurationError(
                "the Lemon Squeezy adapter needs at least one webhook signing secret "
                "(PAYMENTS_LEMONSQUEEZY__WEBHOOK_SECRETS); deliveries could not be verified"
            )
        self._client = LemonSqueezyClient(api_key=api_key, api_base=api_base, http_client=http_client)
        self.store_id = store_id
        self._webhook_secrets = secrets
        self.one_off_variant_id = one_off_variant_id
        self.plan_variants = dict(plan_variants or {})
        self.pause_mode = pause_mode
        self.capabilities = frozenset(capabilities) & LEMONSQUEEZY_CAPABILITIES
        self._refunds_sent = SentCalls()
        self._store_currency = None
        self._usage_sent = SentCalls()
        self._clock = clock

    @classmethod
    def from_settings(cls, settings: LemonSqueezySettings) -> LemonSqueezyProvider:
        """The provider the ``lemonsqueezy`` settings section describes."""
        return cls(
            api_key=settings.api_key.get_secret_value(),
            store_id=settings.store_id,
            webhook_secrets=[secret.get_secret_value() for secret in settings.webhook_secrets],
            api_base=str(settings.api_base) if settings.api_base is not None else DEFAULT_API_BASE,
            one_off_variant_id=settings.one_off_variant_id,
            plan_variants=settings.plan_variants,
            pause_mode=settings.pause_mode,
        )

    async def lookup(self, object_kind: LookupKind, local_id: str) -> LookupResult | None:
        """What a creating call whose answer was lost made, found by its local id.

        A checkout is found by the session id in its custom data. Refunds and usage records
        carry no id of the library's: this answers ``None`` for them, and the retry itself
        settles (:meth:`refund` and :meth:`report_usage` compare Lemon Squeezy's totals with
        the library's ledger in the request before sending anything again).
        """
        if object_kind == "checkout_session":
            return await self._checkout_by_session(local_id)
        return None

    async def register_webhook(self, url: str, *, secret: str | None = None) -> Resource:
        """Create the store's webhook to ``url`` for every event the adapter maps (:data:`SUBSCRIBED_EVENTS`).

        Args:
            url: The public address of ``POST {prefix}/webhooks/lemonsqueezy``.
            secret: The signing secret; by default the first of ``webhook_secrets``, so deliveries
                verify at once.

        Returns:
            The webhook resource Lemon Squeezy made.
        """
        if not url.startswith(("https://", "http://")):
            raise refused(f"{url!r} is not an http(s) URL", url=url)
        return await self._client.post(
            "webhooks",
            document(
                "webhooks",
                {"url": url, "events": list(SUBSCRIBED_EVENTS), "secret": secret or self._webhook_secrets[0]},
                relationships={"store": relationship("stores", self.store_id)},
            ),
            operation="register the webhook",
        )

    async def aclose(self) -> None:
        """Close the connection pool the provider made (not one it was given)."""
        await self._client.aclose()

    async def fetch(self, object_kind: ObjectKind, provider_id: str) -> Snapshot:
        """The current state of a payment (order or subscription invoice), subscription, invoice or checkout.

        Raises:
            InvalidProviderRequestError: Unknown id, or a kind Lemon Squeezy has no object for.
            ProviderError: Lemon Squeezy failed.
        """
        operation = f"read {object_kind} {provider_id}"
        if object_kind == "payment":
            type_, _, id_ = provider_id.partition("/")
            if type_ == "orders":
                return order_snapshot(await self._client.get(f"orders/{path_id(id_)}", operation=operation))
            if type_ == "subscription-invoices":
                found = await self._client.get(f"subscription-invoices/{path_id(id_)}", operation=operation)
                return invoice_payment_snapshot(found)
        elif object_kind == "subscription":
            return subscription_snapshot(await self._subscription(provider_id, operation))
        elif object_kind == "invoice":
            found = await self._client.get(
                f"subscription-invoices/{path_id(provider_id)}", operation=operation
            )
            return invoice_snapshot(found)
        elif object_kind == "checkout_session":
            found = await self._client.get(f"checkouts/{path_id(provider_id)}", operation=operation)
            expires_at = parse_time(attributes(found).get("expires_at"))
            expired = expires_at is not None and expires_at <= self._clock()
            # A checkout never says it was paid: its order does (order_created).
            status = CheckoutSessionStatus.EXPIRED if expired else CheckoutSessionStatus.OPEN
            return CheckoutSnapshot(provider_session_id=str(found["id"]), status=status)
        raise refused(
            f"the Lemon Squeezy provider cannot fetch {object_kind} {provider_id!r}", object_kind=object_kind
        )

    async def verify_webhook(self, headers: Mapping[str, str], body: bytes) -> ProviderEvent:
        """Check ``X-Signature`` on the raw body against every secret, then normalise the event.

        Raises:
            SignatureVerificationError: Missing, malformed or not matching any secret.
            WebhookError: A verified body that is not a JSON object (one that is, but is no event
                the adapter can read, comes back with its ``ignored_reason`` set).
        """
        verify_signature(headers, body, self._webhook_secrets)
        return parse_delivery(body)

    async def parse_webhook(self, body: bytes) -> ProviderEvent:
        """Normalise a stored body that passed :meth:`verify_webhook` when it arrived."""
        return parse_delivery(body)
