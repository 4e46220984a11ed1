""":class:`StripeProvider`: the PaymentProvider protocol over the official ``stripe`` SDK."""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import httpx

from ...clock import utcnow
from ...errors import ConfigurationError
from ..base import Capability, ObjectKind, ProviderEvent, Snapshot
from ._base import refused, unix_time
from ._catalog import CatalogMixin
from ._events import parse_event
from ._invoices import invoice_snapshot, invoice_subscription
from ._objects import (
    charge_payment_snapshot,
    checkout_snapshot,
    object_id,
    payment_snapshot,
    refund_snapshot,
    subscription_snapshot,
)
from ._payments import PaymentsMixin
from ._sdk import STRIPE_API_VERSION, build_client, load_stripe, new_http_client, tls_context
from ._signature import verify_signature
from ._subscriptions import SubscriptionsMixin

if TYPE_CHECKING:
    from stripe.params import InvoicePaymentListParams

    from ...settings import StripeSettings

__all__ = ["STRIPE_CAPABILITIES", "StripeProvider"]

#: What the Stripe adapter offers by default: everything but a completion step (and the
#: library-kept cancel at period end: Stripe has its own).
STRIPE_CAPABILITIES = frozenset(Capability) - {
    Capability.CHECKOUT_COMPLETION,
    Capability.CANCELS_AT_PERIOD_END_LOCALLY,
}

logger = logging.getLogger("fastapi_cashier.providers.stripe")


class StripeProvider(PaymentsMixin, SubscriptionsMixin, CatalogMixin):
    """Stripe through one ``stripe.StripeClient`` and its async methods.

    Args:
        api_key: A secret key (``sk_...``) or a restricted key (``rk_...``) with the permissions
            the adapter uses. It lives on this provider's client only, never in ``stripe.api_key``.
        webhook_secrets: Every accepted webhook endpoint secret (``whsec_...``); several while one
            is being rotated. At least one is required.
        tolerance_seconds: How far a signature's timestamp may be from now.
        api_version: The ``Stripe-Version`` of every request; :data:`STRIPE_API_VERSION` by default.
        base_addresses: Overrides of the SDK's base URLs (``{"api": "http://127.0.0.1:8420"}``),
            for test servers.
        http_client: An ``httpx.AsyncClient`` to send requests with (proxies, timeouts, a mock
            transport). The caller closes it; without one the provider makes and owns its own.
        max_network_retries: Retries of connection errors, 409s and 5xx by the SDK, each with the
            same idempotency key.
        capabilities: The capabilities to offer; by default all but ``checkout_completion`` (a
            paid Stripe Checkout Session needs no completion step). A host may switch some
            off (``pause``, say): their methods are then refused, and so are the API requests.
        clock: The current time (aware UTC), for signature tolerance and checkout expiry.
        automatic_tax: Let Stripe Tax compute the tax of checkouts; invoices then record the
            tax Stripe reports instead of the library's own.

    Raises:
        ConfigurationError: No API key, no webhook secret, a negative tolerance.
        MissingDependencyError: The ``stripe`` package is not installed.
    """

    def __init__(
        self,
        *,
        api_key: str,
        webhook_secrets: Sequence[str],
        tolerance_seconds: int = 300,
        api_version: str = STRIPE_API_VERSION,
        base_addresses: Mapping[str, str] | None = None,
        http_client: httpx.AsyncClient | None = None,
        max_network_retries: int = 2,
        capabilities: Iterable[Capability] | None = None,
        clock: Callable[[], datetime] | None = None,
        automatic_tax: bool = False,
    ) -> None:
        if not api_key:
            raise ConfigurationError("the Stripe provider needs an API key (PAYMENTS_STRIPE__API_KEY)")
        secrets = tuple(webhook_secrets)
        if not secrets or not all(secrets):
            raise ConfigurationError(
                "the Stripe provider needs at least one non-empty webhook secret "
                "(PAYMENTS_STRIPE__WEBHOOK_SECRETS, the whsec_... of the webhook endpoint)"
            )
        if tolerance_seconds < 0:
            raise ConfigurationError("tolerance_seconds of the Stripe provider cannot be negative")
        self.capabilities = STRIPE_CAPABILITIES if capabilities is None else frozenset(capabilities)
        # With Stripe Tax, Stripe computes the tax and the library records what it reports.
        self.automatic_tax = self.computes_tax = automatic_tax
        self._tax_rate_ids: dict[str, str] = {}
        self.api_version = api_version
        self.tolerance_seconds = tolerance_seconds
        self._secrets = secrets
        self._clock = clock or utcnow
        self._tls: ssl.SSLContext | None = None
        if http_client is None:
            self._tls = tls_context()
            http_client = new_http_client(self._tls)
        self._http_client = http_client
        self._client = build_client(
            api_key,
            api_version=api_version,
            base_addresses=base_addresses,
            http_client=lambda: self._http_client,
            max_network_retries=max_network_retries,
        )

    @classmethod
    def from_settings(
        cls,
        settings: StripeSettings,
        *,
        tolerance_seconds: int,
        base_addresses: Mapping[str, str] | None = None,
        http_client: httpx.AsyncClient | None = None,
    ) -> StripeProvider:
        """Build the provider from ``PaymentsSettings.stripe`` and the webhook tolerance."""
        if base_addresses is None and settings.api_base is not None:
            base_addresses = {"api": str(settings.api_base).rstrip("/")}
        return cls(
            api_key=settings.api_key.get_secret_value(),
            webhook_secrets=[secret.get_secret_value() for secret in settings.webhook_secrets],
            tolerance_seconds=tolerance_seconds,
            api_version=settings.api_version or STRIPE_API_VERSION,
            base_addresses=base_addresses,
            http_client=http_client,
            automatic_tax=settings.automatic_tax,
        )

    async def aclose(self) -> None:
        """Close the connections of the HTTP client the provider created (one passed in is the
        caller's to close). The provider stays usable: a later call opens new connections."""
        if self._tls is not None:
            closing, self._http_client = self._http_client, new_http_client(self._tls)
            await closing.aclose()

    # ----------------------------------------------------------------------- reading objects

    async def fetch(self, object_kind: ObjectKind, provider_id: str) -> Snapshot:
        """The current state of a Checkout Session, payment, refund, subscription or invoice.

        A payment is a PaymentIntent (``pi_...``; a bare Charge ``ch_...`` is read too), with its
        latest charge expanded for refunds and the card, and, when it paid an invoice, that
        invoice and its subscription. An invoice comes with all its lines.

        Raises:
            InvalidProviderRequestError: Unknown id, or a kind without a snapshot (customers).
            ProviderError: Stripe failed.
        """
        operation = f"read {object_kind} {provider_id}"
        with self._calling(operation):
            if object_kind == "checkout_session":
                return checkout_snapshot(
                    self._json(await self._client.v1.checkout.sessions.retrieve_async(provider_id))
                )
            if object_kind == "payment":
                return await self._payment(provider_id)
            if object_kind == "refund":
                return refund_snapshot(self._json(await self._client.v1.refunds.retrieve_async(provider_id)))
            if object_kind == "subscription":
                return subscription_snapshot(
                    self._json(await self._client.v1.subscriptions.retrieve_async(provider_id))
                )
            if object_kind == "invoice":
                return await self._invoice(provider_id)
        raise refused(f"the Stripe provider cannot fetch {object_kind} objects", object_kind=object_kind)

    async def _payment(self, provider_id: str) -> Snapshot:
        if provider_id.startswith("ch_"):
            return charge_payment_snapshot(
                self._json(await self._client.v1.charges.retrieve_async(provider_id))
            )
        intent = self._json(
            await self._client.v1.payment_intents.retrieve_async(provider_id, {"expand": ["latest_charge"]})
        )
        invoice: dict[str, Any] | None = None
        legacy_invoice = object_id(intent.get("invoice"))
        if legacy_invoice is not None:
            # API versions before 2025 name the invoice on the PaymentIntent.
            invoice = self._json(await self._client.v1.invoices.retrieve_async(legacy_invoice))
        elif "checkout_session_id" not in (intent.get("metadata") or {}):
            # Not a one-off checkout payment: it may have paid a subscription's invoice.
            invoice = await self._invoice_paid_by(provider_id)
        if invoice is not None:
            return payment_snapshot(
                intent,
                provider_invoice_id=object_id(invoice),
                provider_subscription_id=invoice_subscription(invoice),
            )
        return payment_snapshot(intent)

    async def _invoice_paid_by(self, payment_intent_id: str) -> dict[str, Any] | None:
        """The invoice a PaymentIntent paid, through Stripe's invoice payments; ``None`` if none."""
        payments = await self._invoice_payments(
            {
                "payment": {"type": "payment_intent", "payment_intent": payment_intent_id},
                "limit": 1,
                "expand": ["data.invoice"],
            }
        )
        for payment in payments:
            invoice = payment.get("invoice")
            if isinstance(invoice, dict):
                return invoice
        return None

    async def _invoice_payments(self, params: InvoicePaymentListParams) -> list[dict[str, Any]]:
        try:
            page = await self._client.v1.invoice_payments.list_async(params)
        except load_stripe().StripeError as exc:
            # Servers without the endpoint (test doubles) answer 404.
            if exc.http_status == 404:
                logger.debug("no invoice payments endpoint: %s", exc)
                return []
            raise
        return [self._json(payment) for payment in page.data]

    async def _invoice(self, provider_id: str) -> Snapshot:
        invoice = self._json(await self._client.v1.invoices.retrieve_async(provider_id))
        if "payments" not in invoice and not invoice.get("payment_intent"):
            # Current API versions list an invoice's payments separately.
            payments = await self._invoice_payments({"invoice": provider_id, "limit": 10})
            invoice["payments"] = {"object": "list", "data": payments}
        lines_list = invoice.get("lines") or {}
        lines = list(lines_list.get("data") or [])
        while lines_list.get("has_more") and lines:
            page = await self._client.v1.invoices.line_items.list_async(
                provider_id, {"limit": 100, "starting_after": lines[-1]["id"]}
            )
            lines_list = {"has_more": page.has_more}
            lines.extend(self._json(line) for line in page.data)
        return invoice_snapshot(invoice, lines=lines)

    # ----------------------------------------------------------------------- webhooks

    async def verify_webhook(self, headers: Mapping[str, str], body: bytes) -> ProviderEvent:
        """Check the ``Stripe-Signature`` of a delivery against every configured secret, then
        normalise it.

        Raises:
            SignatureVerificationError: Missing or malformed header, no signature matching a
                configured secret and this exact body, or a timestamp outside the tolerance.
            WebhookError: The signature is valid but the body is not JSON or has no event id.
                A body with an id that is not an event the adapter reads comes back with its
                ``ignored_reason`` set, to be stored and recorded as ignored.
        """
        verify_signature(
            headers,
            body,
            self._secrets,
            now=unix_time(self._clock()),
            tolerance_seconds=self.tolerance_seconds,
        )
        return parse_event(body)

    async def parse_webhook(self, body: bytes) -> ProviderEvent:
        """Normalise a stored delivery that passed :meth:`verify_webhook` when it arrived."""
        return parse_event(body)
