""":class:`PayPalProvider`: the provider protocol over PayPal's REST API, with the library's own client."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Final, Literal

import httpx
from cryptography import x509
from fastapi import APIRouter

from ...clock import Clock, utcnow
from ...errors import ConfigurationError, InvalidProviderRequestError, ProviderError
from ...statuses import CheckoutSessionStatus, ProrationBehavior, SubscriptionStatus
from ..base import (
    Capability,
    CheckoutRequest,
    CheckoutResult,
    CheckoutSnapshot,
    CustomerRef,
    ObjectKind,
    PlanRef,
    ProviderEvent,
    ProviderHost,
    RefundRequest,
    RefundResult,
    Snapshot,
    SubscriptionChange,
    SubscriptionResult,
    require_proration,
    unsupported,
)
from ._catalog import sync_plans
from ._client import PayPalClient
from ._errors import PROVIDER_NAME
from ._events import parse_delivery
from ._objects import MalformedObjectError, checkout_snapshot, refund_snapshot
from ._payments import capture_order, create_order, fetch_payment, refund_capture
from ._routes import build_routes
from ._signature import PAYPAL_CERT_HOSTS, CertificateStore, WebhookVerifier
from ._subscriptions import (
    create_subscription,
    fetch_subscription,
    move_subscription,
    patch_subscription_tax,
    revise_subscription,
)

if TYPE_CHECKING:
    from ...settings import PayPalSettings

__all__ = ["PAYPAL_CAPABILITIES", "PayPalProvider"]

logger = logging.getLogger("fastapi_cashier")

PAYPAL_CAPABILITIES: Final = frozenset(
    {
        Capability.CHECKOUT,
        Capability.CHECKOUT_COMPLETION,
        Capability.ONE_OFF_PAYMENT,
        Capability.REFUNDS,
        Capability.PARTIAL_REFUNDS,
        Capability.SUBSCRIPTIONS,
        Capability.PLAN_CHANGE,
        Capability.CANCEL_NOW,
        Capability.CANCELS_AT_PERIOD_END_LOCALLY,
        Capability.PAUSE,
        Capability.CATALOG_SYNC,
        Capability.WEBHOOKS,
    }
)
"""What PayPal can do: no metered usage, no customer portal, and no cancel at period end of its
own (the library keeps that flag and cancels now at PayPal when the period has ended)."""


class PayPalProvider:
    """PayPal: Orders v2 and Payments v2 for one-off payments, Billing Subscriptions v1 and Catalog
    Products v1 for subscriptions, verified webhooks.

    Args:
        client_id: The REST app's client id.
        client_secret: Its secret.
        webhook_id: The id of the webhook listener at ``{prefix}/webhooks/paypal``; deliveries are
            refused while it is unset.
        mode: ``"sandbox"`` or ``"live"``.
        api_base: Another address for the API (a test server); overrides ``mode``.
        tolerance_seconds: How far a transmission time may be from now.
        transport: The httpx transport (tests: the in-process sandbox); default: the network.
        cert_hosts: The hosts a ``PAYPAL-CERT-URL`` may name; PayPal's own unless a test adds its.
            Deliveries naming a cert URL on the ``api_base`` host, when that host is not one of
            these, are checked by that server's verify-webhook-signature API.
        trusted_roots: The roots a signing certificate must chain to; default: ``certifi``'s.
        clock: The current time, for the transmission tolerance and certificate validity.
    """

    name: str = PROVIDER_NAME
    #: PayPal-Request-Id is honoured by every creating call the adapter makes.
    idempotency_keys: bool = True
    #: PayPal has no proration: a revised subscription bills the new price from the next cycle.
    proration_behaviors: frozenset[ProrationBehavior] = frozenset({ProrationBehavior.NONE})

    def __init__(
        self,
        *,
        client_id: str,
        client_secret: str,
        webhook_id: str | None,
        mode: Literal["sandbox", "live"] = "sandbox",
        api_base: str | None = None,
        tolerance_seconds: int = 300,
        transport: httpx.AsyncBaseTransport | None = None,
        cert_hosts: Iterable[str] = PAYPAL_CERT_HOSTS,
        trusted_roots: Iterable[x509.Certificate] | None = None,
        clock: Clock = utcnow,
    ) -> None:
        self.capabilities = PAYPAL_CAPABILITIES
        self.client = PayPalClient(
            client_id=client_id,
            client_secret=client_secret,
            mode=mode,
            api_base=api_base,
            transport=transport,
        )
        self.verifier = WebhookVerifier(
            webhook_id=webhook_id,
            certificates=CertificateStore(
                lambda: self.client.http, allowed_hosts=cert_hosts, trusted_roots=trusted_roots
            ),
            postback=self.client.verify_webhook_signature,
            tolerance_seconds=tolerance_seconds,
            now=clock,
            # A local stand-in for PayPal (api_base) is asked, as PayPal would be, about its own
            # deliveries, unless its host is allowed to serve certificates (then they are checked).
            postback_hosts={httpx.URL(api_base).host} - set(cert_hosts) if api_base else (),
        )

    @classmethod
    def from_settings(cls, settings: PayPalSettings, *, tolerance_seconds: int) -> PayPalProvider:
        """The provider of a ``PaymentsSettings.paypal`` section.

        Raises:
            ConfigurationError: No webhook id: no delivery could ever be verified.
        """
        if not settings.webhook_id:
            raise ConfigurationError(
                "the paypal section needs the id of its webhook listener (PAYMENTS_PAYPAL__WEBHOOK_ID): "
                "without it no PayPal delivery can be verified"
            )
        return cls(
            client_id=settings.client_id,
            client_secret=settings.client_secret.get_secret_value(),
            webhook_id=settings.webhook_id,
            mode=settings.mode,
            api_base=str(settings.api_base) if settings.api_base is not None else None,
            tolerance_seconds=tolerance_seconds,
        )

    async def aclose(self) -> None:
        """Close the connection pool (the router's shutdown calls this)."""
        await self.client.aclose()

    def _require(self, *capabilities: Capability) -> None:
        """Refuse what this provider does not declare (a test may switch a capability off)."""
        for capability in capabilities:
            if capability not in self.capabilities:
                unsupported(self, capability)

    # ------------------------------------------------------------------ core

    async def create_customer(self, customer: CustomerRef, *, idempotency_key: str) -> str | None:
        """PayPal has no customer object: the payer is whoever approves at PayPal."""
        return None

    def routes(self, host: ProviderHost) -> APIRouter:
        """``GET /return/{session_id}``: the payer's return from PayPal, which captures the order."""
        return build_routes(host)

    # ------------------------------------------------------------------ checkout

    async def create_checkout(self, request: CheckoutRequest) -> CheckoutResult:
        """An order to approve (one-off), or a subscription to approve (plan)."""
        self._require(Capability.CHECKOUT)
        self._require(
            Capability.SUBSCRIPTIONS if request.mode == "subscription" else Capability.ONE_OFF_PAYMENT
        )
        if request.mode == "subscription":
            subscription_id, url = await create_subscription(self.client, request)
            return CheckoutResult(provider_session_id=subscription_id, url=url, expires_at=request.expires_at)
        base = request.return_base_url
        return_url = f"{base.rstrip('/')}/paypal/return/{request.session_id}" if base else request.success_url
        order_id, url = await create_order(self.client, request, return_url=return_url)
        return CheckoutResult(provider_session_id=order_id, url=url, expires_at=request.expires_at)

    async def complete_checkout(self, provider_session_id: str, *, idempotency_key: str) -> CheckoutSnapshot:
        """Capture the approved order (the same request id on every path captures it once)."""
        payment = await capture_order(self.client, provider_session_id, request_id=idempotency_key)
        return CheckoutSnapshot(
            provider_session_id=provider_session_id,
            status=CheckoutSessionStatus.COMPLETE,
            provider_payment_id=payment.provider_payment_id,
        )

    # ------------------------------------------------------------------ refunds

    async def refund(self, request: RefundRequest) -> RefundResult:
        """Refund part or all of a capture."""
        self._require(Capability.REFUNDS)
        if Capability.PARTIAL_REFUNDS not in self.capabilities:
            payment = await fetch_payment(self.client, request.provider_payment_id)
            if request.amount.amount != payment.amount.amount - payment.refunded_amount:
                unsupported(self, Capability.PARTIAL_REFUNDS)
        return await refund_capture(self.client, request)

    # ------------------------------------------------------------------ subscriptions

    async def update_subscription(self, change: SubscriptionChange) -> SubscriptionResult:
        """Revise plan and/or quantity; the subscriber approves at the returned URL first.

        The new VAT (``change.tax``) rides along as the revise's plan override. A change of the
        VAT alone (no plan, no quantity: the buyer's terms changed) is a ``PATCH`` of the
        subscription's taxes, which PayPal applies without the subscriber's approval.
        """
        self._require(Capability.SUBSCRIPTIONS, Capability.PLAN_CHANGE)
        require_proration(self, change.proration)
        if change.plan is None and change.quantity is None:
            if change.tax is None:
                snapshot = await fetch_subscription(self.client, change.provider_subscription_id)
            else:
                snapshot = await patch_subscription_tax(
                    self.client,
                    change.provider_subscription_id,
                    change.tax,
                    request_id=change.idempotency_key,
                )
            return SubscriptionResult(snapshot=snapshot)
        plan_id = change.plan.provider_price_id if change.plan is not None else None
        if change.plan is not None and not plan_id:
            raise InvalidProviderRequestError(
                "the plan is not synced to PayPal yet: run the catalog sync first", provider=PROVIDER_NAME
            )
        snapshot, approval = await revise_subscription(
            self.client,
            change.provider_subscription_id,
            plan_id=plan_id,
            quantity=change.quantity,
            return_url=self._after_approval,
            cancel_url=self._after_approval,
            request_id=change.idempotency_key,
            tax=change.tax,
        )
        return SubscriptionResult(snapshot=snapshot, approval_url=approval)

    #: Where PayPal sends the subscriber after approving a revision (PayPal requires one).
    _after_approval = "https://www.paypal.com/myaccount/autopay/"

    async def cancel_subscription(
        self, provider_subscription_id: str, *, at_period_end: bool, idempotency_key: str
    ) -> SubscriptionResult:
        """Cancel now. PayPal has no cancel at period end: the library records it and calls this
        with ``at_period_end=False`` once the period has ended (``cancels_at_period_end_locally``)."""
        self._require(Capability.SUBSCRIPTIONS)
        self._require(Capability.CANCEL_AT_PERIOD_END if at_period_end else Capability.CANCEL_NOW)
        snapshot = await move_subscription(
            self.client, provider_subscription_id, "cancel", reason="cancelled", request_id=idempotency_key
        )
        return SubscriptionResult(snapshot=snapshot)

    async def pause_subscription(
        self, provider_subscription_id: str, *, idempotency_key: str
    ) -> SubscriptionResult:
        """Suspend: PayPal stops billing until it is activated again."""
        self._require(Capability.SUBSCRIPTIONS, Capability.PAUSE)
        snapshot = await move_subscription(
            self.client, provider_subscription_id, "suspend", reason="paused", request_id=idempotency_key
        )
        return SubscriptionResult(snapshot=snapshot)

    async def resume_subscription(
        self, provider_subscription_id: str, *, idempotency_key: str
    ) -> SubscriptionResult:
        """Activate a suspended subscription."""
        self._require(Capability.SUBSCRIPTIONS)
        current = await fetch_subscription(self.client, provider_subscription_id)
        if current.status is not SubscriptionStatus.PAUSED:
            raise InvalidProviderRequestError(
                "only a suspended PayPal subscription can be resumed", provider=PROVIDER_NAME
            )
        snapshot = await move_subscription(
            self.client, provider_subscription_id, "activate", reason="resumed", request_id=idempotency_key
        )
        return SubscriptionResult(snapshot=snapshot)

    # ------------------------------------------------------------------ catalog

    async def sync_catalog(self, plans: list[PlanRef]) -> Mapping[uuid.UUID, str]:
        """A Catalog Product and a Billing Plan per plan (see :mod:`._catalog`)."""
        self._require(Capability.CATALOG_SYNC)
        return await sync_plans(self.client, plans)

    # ------------------------------------------------------------------ webhooks

    async def verify_webhook(self, headers: Mapping[str, str], body: bytes) -> ProviderEvent:
        """Verify the delivery (offline, else PayPal's postback) and normalise it."""
        await self.verifier.verify(headers, body)
        return parse_delivery(body)

    async def parse_webhook(self, body: bytes) -> ProviderEvent:
        """Normalise a stored, verified body."""
        return parse_delivery(body)

    async def fetch(self, object_kind: ObjectKind, provider_id: str) -> Snapshot:
        """Re-read an order or subscription checkout, a capture, a refund or a subscription."""
        if object_kind == "payment":
            return await fetch_payment(self.client, provider_id)
        if object_kind == "subscription":
            return await fetch_subscription(self.client, provider_id)
        try:
            if object_kind == "refund":
                found = await self.client.get(
                    f"/v2/payments/refunds/{provider_id}", operation="read the refund"
                )
                return refund_snapshot(found)
            if object_kind == "checkout_session":
                if provider_id.startswith("I-"):
                    sub = await fetch_subscription(self.client, provider_id)
                    done = sub.status not in (SubscriptionStatus.INCOMPLETE,)
                    return CheckoutSnapshot(
                        provider_id,
                        CheckoutSessionStatus.COMPLETE if done else CheckoutSessionStatus.OPEN,
                        provider_subscription_id=provider_id if done else None,
                    )
                order = await self.client.get(
                    f"/v2/checkout/orders/{provider_id}", operation="read the order"
                )
                return checkout_snapshot(order)
        except MalformedObjectError as exc:
            raise ProviderError(
                f"PayPal answered an object the adapter cannot read: {exc}", provider=PROVIDER_NAME
            ) from exc
        raise InvalidProviderRequestError(
            f"the PayPal adapter cannot re-read a {object_kind}", provider=PROVIDER_NAME
        )
