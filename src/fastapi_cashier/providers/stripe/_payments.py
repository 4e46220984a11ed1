"""Customers, Checkout Sessions, refunds and Billing Portal sessions at Stripe."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Final

from ...statuses import PricingModel
from ...tax.rates import EU_MEMBER_STATES
from ...tax.vies import vat_country
from ..base import (
    Capability,
    CheckoutRequest,
    CheckoutResult,
    CustomerRef,
    PortalRequest,
    PortalResult,
    RefundRequest,
    RefundResult,
)
from ._base import refused, unix_time
from ._objects import object_id, refund_status
from ._tax_rates import TaxRatesMixin

if TYPE_CHECKING:
    from stripe.params import CustomerCreateParams, RefundCreateParams
    from stripe.params.checkout import (
        SessionCreateParams,
        SessionCreateParamsLineItem,
        SessionCreateParamsSubscriptionData,
    )

__all__ = ["PaymentsMixin"]

#: Refund reasons Stripe accepts as ``reason``; any other text is kept in the refund's metadata.
STRIPE_REFUND_REASONS: Final = frozenset({"duplicate", "fraudulent", "requested_by_customer"})

#: Stripe keeps a Checkout Session open between 30 minutes and 24 hours.
_SHORTEST_CHECKOUT: Final = timedelta(minutes=31)
_LATEST_CHECKOUT: Final = timedelta(hours=23)

_METADATA_VALUE_LIMIT: Final = 500


def _metadata(values: dict[str, str]) -> dict[str, str]:
    """Stripe metadata: string values of at most 500 characters, empty ones left out."""
    return {key[:40]: value[:_METADATA_VALUE_LIMIT] for key, value in values.items() if value}


class PaymentsMixin(TaxRatesMixin):
    """``create_customer``, ``create_checkout``, ``refund`` and ``create_portal_session``."""

    _clock: Callable[[], datetime]
    #: Stripe Tax computes the tax of checkouts (``StripeSettings.automatic_tax``).
    automatic_tax: bool

    async def create_customer(self, customer: CustomerRef, *, idempotency_key: str) -> str:
        """Create a Stripe Customer carrying the local ids; returns its ``cus_...`` id.

        The idempotency key makes a repeated call return the same Customer (for 24 hours,
        Stripe's window; the library stores the id long before that).
        """
        params: CustomerCreateParams = {
            "metadata": _metadata({"customer_id": str(customer.id), "external_id": customer.external_id})
        }
        if customer.email:
            params["email"] = customer.email
        if customer.name:
            params["name"] = customer.name
        if customer.tax_id and vat_country(customer.tax_id) in EU_MEMBER_STATES:
            params["tax_id_data"] = [{"type": "eu_vat", "value": customer.tax_id}]
        with self._calling("create a customer"):
            created = await self._client.v1.customers.create_async(
                params, {"idempotency_key": idempotency_key}
            )
        return created.id

    async def create_checkout(self, request: CheckoutRequest) -> CheckoutResult:
        """Create a hosted Checkout Session (``mode=payment`` or ``mode=subscription``).

        The local ids (``request.metadata``, the session id as ``client_reference_id``) are put
        on the session and on the PaymentIntent or Subscription it creates, so every later
        event finds the local rows. A subscription needs the plan's Stripe Price: sync the
        catalog first.

        Raises:
            UnsupportedCapabilityError: A capability this provider has switched off.
            InvalidProviderRequestError: No positive amount, no synced price, or Stripe refused.
        """
        self._require(Capability.CHECKOUT)
        local = {
            **request.metadata,
            "checkout_session_id": str(request.session_id),
            "customer_id": str(request.customer.id),
        }
        if request.reference:
            local["reference"] = request.reference
        metadata = _metadata(local)
        params: SessionCreateParams = {
            "mode": request.mode,
            "success_url": request.success_url,
            "cancel_url": request.cancel_url,
            "client_reference_id": str(request.session_id),
            "metadata": metadata,
            "expires_at": unix_time(self._checkout_expiry(request.expires_at)),
        }
        if self.automatic_tax:
            params["automatic_tax"] = {"enabled": True}
        if request.customer.provider_customer_id:
            params["customer"] = request.customer.provider_customer_id
        elif request.customer.email:
            params["customer_email"] = request.customer.email
        if request.mode == "subscription":
            self._require(Capability.SUBSCRIPTIONS)
            line = self._subscription_line(request)
            if request.tax is not None and not self.automatic_tax:
                # The library's VAT on the item: Stripe adds it to every invoice of the subscription.
                line["tax_rates"] = [await self._tax_rate_id(request.tax)]
            params["line_items"] = [line]
            subscription_data: SessionCreateParamsSubscriptionData = {"metadata": metadata}
            if request.plan is not None and request.plan.trial_days > 0:
                subscription_data["trial_period_days"] = request.plan.trial_days
            params["subscription_data"] = subscription_data
        else:
            self._require(Capability.ONE_OFF_PAYMENT)
            amount = request.amount
            if amount is None or not amount.is_positive:
                raise refused("a payment checkout needs a positive amount", field="amount")
            params["line_items"] = [
                {
                    "quantity": 1,
                    "price_data": {
                        "currency": amount.currency.lower(),
                        "unit_amount": amount.amount,
                        "product_data": {"name": (request.description or "Payment")[:250]},
                    },
                }
            ]
            params["payment_intent_data"] = {"metadata": metadata}
            if request.description:
                params["payment_intent_data"]["description"] = request.description
            if "customer" not in params:
                params["customer_creation"] = "always"
        with self._calling("create a Checkout Session"):
            session = await self._client.v1.checkout.sessions.create_async(
                params, {"idempotency_key": request.idempotency_key}
            )
        if not session.url:
            raise refused("Stripe returned a Checkout Session without a URL (is ui_mode hosted?)")
        return CheckoutResult(
            provider_session_id=session.id,
            url=session.url,
            expires_at=datetime.fromtimestamp(session.expires_at, UTC),
            provider_customer_id=object_id(self._json(session).get("customer")),
        )

    def _checkout_expiry(self, wanted: datetime) -> datetime:
        """``wanted``, moved inside the window Stripe accepts (30 minutes to 24 hours from now).

        Too late an expiry becomes 23 hours after the start of the current hour, not "now plus
        24 hours": a call repeated with the same idempotency key within the hour then sends the
        same parameters, as Stripe requires (the library's default 24-hour lifetime becomes 22
        to 23 hours at Stripe; the local session takes Stripe's expiry).
        """
        now = self._clock()
        latest = now.replace(minute=0, second=0, microsecond=0) + _LATEST_CHECKOUT
        return max(min(wanted, latest), now + _SHORTEST_CHECKOUT)

    @staticmethod
    def _subscription_line(request: CheckoutRequest) -> SessionCreateParamsLineItem:
        plan = request.plan
        if plan is None:
            raise refused("a subscription checkout needs a plan", field="plan")
        if plan.provider_price_id is None:
            raise refused(
                f"plan {plan.id} has no Stripe price yet: run `fastapi-cashier catalog sync "
                "--provider stripe` (or POST /admin/catalog/sync) first",
                field="plan",
            )
        line: SessionCreateParamsLineItem = {"price": plan.provider_price_id}
        if plan.pricing_model is not PricingModel.METERED:
            # Stripe meters usage; a metered line item takes no quantity.
            line["quantity"] = request.quantity
        return line

    async def refund(self, request: RefundRequest) -> RefundResult:
        """Refund all or part of a PaymentIntent (or of a bare Charge, ``ch_...``).

        ``reason`` goes to Stripe when it is one of Stripe's reasons (``duplicate``,
        ``fraudulent``, ``requested_by_customer``), and to the refund's metadata otherwise.

        Raises:
            UnsupportedCapabilityError: Refunds, or partial ones, are switched off.
            InvalidProviderRequestError: A non-positive amount, or Stripe refused (more than is
                left, another currency, a payment not yet succeeded ...).
        """
        self._require(Capability.REFUNDS)
        if not request.amount.is_positive:
            raise refused("a refund needs a positive amount", field="amount")
        if Capability.PARTIAL_REFUNDS not in self.capabilities:
            await self._refuse_partial(request)
        metadata = {"refund_id": str(request.refund_id)}
        params: RefundCreateParams = {"amount": request.amount.amount}
        if request.provider_payment_id.startswith("ch_"):
            params["charge"] = request.provider_payment_id
        else:
            params["payment_intent"] = request.provider_payment_id
        if request.reason in STRIPE_REFUND_REASONS:
            params["reason"] = request.reason
        elif request.reason:
            metadata["reason"] = request.reason
        params["metadata"] = _metadata(metadata)
        with self._calling("create a refund"):
            refund = await self._client.v1.refunds.create_async(
                params, {"idempotency_key": request.idempotency_key}
            )
            status = refund_status(refund.status)
        return RefundResult(
            provider_refund_id=refund.id,
            status=status,
            failure_message=getattr(refund, "failure_reason", None),
        )

    async def _refuse_partial(self, request: RefundRequest) -> None:
        with self._calling("read the payment to refund"):
            if request.provider_payment_id.startswith("ch_"):
                paid = (await self._client.v1.charges.retrieve_async(request.provider_payment_id)).amount
            else:
                paid = (
                    await self._client.v1.payment_intents.retrieve_async(request.provider_payment_id)
                ).amount
        if request.amount.amount < paid:
            self._require(Capability.PARTIAL_REFUNDS)

    async def create_portal_session(self, request: PortalRequest) -> PortalResult:
        """A Billing Portal session for the customer; its URL.

        The portal's features (plan changes, cancellation, invoices) are those configured in the
        Stripe Dashboard; the changes it makes reach the library as subscription events.
        """
        self._require(Capability.PORTAL)
        customer = request.customer.provider_customer_id
        if not customer:
            raise refused("the customer has no Stripe customer id yet", field="customer")
        with self._calling("create a Billing Portal session"):
            session = await self._client.v1.billing_portal.sessions.create_async(
                {"customer": customer, "return_url": request.return_url}
            )
        return PortalResult(url=session.url)
