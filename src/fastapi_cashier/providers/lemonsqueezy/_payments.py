"""Customers, checkouts, refunds and the customer portal at Lemon Squeezy.

A checkout carries the library's local ids in ``checkout_data.custom``; Lemon Squeezy copies them
into ``meta.custom_data`` of every event about the order and the subscription it creates, which is
how those events find their intent rows. The same ids are how a checkout whose answer was lost is
found again instead of created twice.

Refunds are made on the order (``POST /v1/orders/{id}/refund``) or on the subscription invoice
(``POST /v1/subscription-invoices/{id}/refund``), which answer with the object and its new total
``refunded_amount``: Lemon Squeezy has no refund object and takes no idempotency key. A retry of a
refund whose answer was lost compares that total with the refunds the library has recorded for the
payment (the request's ledger, read from its database), so it refunds once, in this process or
after a restart.
"""

from __future__ import annotations

from typing import Any

from ...errors import CurrencyMismatchError, ProviderError
from ...statuses import CheckoutSessionStatus, RefundStatus
from ..base import (
    Capability,
    CheckoutRequest,
    CheckoutResult,
    CheckoutSnapshot,
    CustomerRef,
    PortalRequest,
    PortalResult,
    RefundRequest,
    RefundResult,
)
from ._base import (
    LemonSqueezyBase,
    SentCalls,
    UnsettledError,
    document,
    iso_time,
    path_id,
    refused,
    relationship,
    settled,
    unlinked_plan,
)
from ._client import Resource
from ._objects import attributes, integer, parse_time

__all__ = ["PaymentsMixin"]


class PaymentsMixin(LemonSqueezyBase):
    """Customers, checkouts, refunds and portal links."""

    one_off_variant_id: str | None
    _refunds_sent: SentCalls
    _store_currency: str | None

    async def create_customer(self, customer: CustomerRef, *, idempotency_key: str) -> str | None:
        """The store's customer with this email, created when there is none; ``None`` without an email.

        Lemon Squeezy also makes a customer at checkout, keyed by email within the store; looking
        one up first keeps it to one customer per email, and keeps retries from making two. A
        customer without an email gets no Lemon Squeezy customer until their first checkout.
        """
        if not customer.email:
            return None
        operation = "create a customer"
        email = customer.email

        async def lookup() -> Resource | None:
            return await self._client.find(
                "customers",
                operation=operation,
                filters={"store_id": self.store_id, "email": email},
                where=lambda found: attributes(found).get("email") == email,
            )

        existing = await lookup()
        if existing is not None:
            return str(existing["id"])
        created = await self._client.create(
            "customers",
            document(
                "customers",
                {"name": customer.name or email, "email": email},
                relationships={"store": relationship("stores", self.store_id)},
            ),
            operation=operation,
            lookup=lookup,
        )
        return str(created["id"])

    async def create_checkout(self, request: CheckoutRequest) -> CheckoutResult:
        """A hosted checkout on the plan's variant, or on the one-off variant at a custom price.

        Raises:
            CurrencyMismatchError: A price in another currency than the store's (a 422 problem
                naming the currency, raised before any checkout is created).
            InvalidProviderRequestError: A plan not linked to a variant (run catalog sync), no
                one-off variant.
        """
        self._require(Capability.CHECKOUT)
        custom = {**request.metadata, "checkout_session_id": str(request.session_id)}
        if request.reference:
            custom["reference"] = request.reference
        checkout_data: dict[str, Any] = {"custom": custom}
        if request.customer.email:
            checkout_data["email"] = request.customer.email
        if request.customer.name:
            checkout_data["name"] = request.customer.name
        product_options: dict[str, Any] = {"redirect_url": request.success_url}
        attrs: dict[str, Any] = {
            "checkout_data": checkout_data,
            "product_options": product_options,
            "expires_at": iso_time(request.expires_at),
        }
        price = request.plan.unit_amount if request.plan is not None else request.amount
        if price is not None:
            await self._check_currency(price.currency)
        if request.mode == "subscription":
            self._require(Capability.SUBSCRIPTIONS)
            plan = request.plan
            if plan is None or not plan.provider_price_id:
                raise unlinked_plan(plan)
            variant_id = path_id(plan.provider_price_id)
            checkout_data["variant_quantities"] = [
                {"variant_id": int(variant_id), "quantity": request.quantity}
            ]
            product_options["enabled_variants"] = [int(variant_id)]
        else:
            self._require(Capability.ONE_OFF_PAYMENT)
            if request.amount is None:
                raise refused("a one-off checkout needs an amount")
            variant_id = await self._one_off_variant()
            attrs["custom_price"] = request.amount.amount
            product_options["enabled_variants"] = [int(variant_id)]
            if request.description:
                product_options["name"] = request.description
        session = str(request.session_id)
        operation = "create a checkout"

        async def lookup() -> Resource | None:
            found = await self._checkout_by_session(session)
            if found is None:
                return None
            return {"type": "checkouts", "id": found.provider_session_id, "attributes": {"url": found.url}}

        created = await self._client.create(
            "checkouts",
            document(
                "checkouts",
                attrs,
                relationships={
                    "store": relationship("stores", self.store_id),
                    "variant": relationship("variants", variant_id),
                },
            ),
            operation=operation,
            lookup=lookup,
        )
        created_attrs = attributes(created)
        url = created_attrs.get("url")
        if not isinstance(url, str) or not url:
            raise refused("Lemon Squeezy answered the checkout without a url")
        return CheckoutResult(
            provider_session_id=str(created["id"]),
            url=url,
            expires_at=parse_time(created_attrs.get("expires_at")),
            provider_customer_id=request.customer.provider_customer_id,
        )

    async def _check_currency(self, currency: str) -> None:
        """Refuse a price in another currency than the store's: Lemon Squeezy would read its minor
        units in the store's currency."""
        if self._store_currency is None:
            store = await self._client.get(f"stores/{path_id(self.store_id)}", operation="read the store")
            self._store_currency = str(attributes(store).get("currency") or "").upper() or None
        if self._store_currency is not None and currency.upper() != self._store_currency:
            raise CurrencyMismatchError(
                f"the Lemon Squeezy store sells in {self._store_currency}; a checkout in {currency} "
                "cannot be made there",
                field="currency",
                details={"currency": currency, "store_currency": self._store_currency},
            )

    async def _one_off_variant(self) -> str:
        """The configured one-off variant, else the store's first published non-subscription variant."""
        if self.one_off_variant_id:
            return path_id(self.one_off_variant_id)
        found = await self._client.find(
            "variants",
            operation="find the one-off variant",
            filters={"store_id": self.store_id},
            where=lambda variant: (
                not attributes(variant).get("is_subscription")
                and attributes(variant).get("status") == "published"
            ),
        )
        if found is None:
            raise refused(
                "the Lemon Squeezy store has no published one-off variant: create a product with a "
                "single-payment variant, or set PAYMENTS_LEMONSQUEEZY__ONE_OFF_VARIANT_ID"
            )
        self.one_off_variant_id = str(found["id"])
        return self.one_off_variant_id

    async def refund(self, request: RefundRequest) -> RefundResult:
        """Refund part or all of an order or of a subscription invoice (it has no refund id).

        A retry of a refund whose answer was lost (one this instance sent, or one the caller
        marks ``resent``) is settled from the object's ``refunded_amount`` at Lemon Squeezy and
        the library's ledger in the request (:func:`~._base.settled`), and sent again only when
        it never arrived.

        Raises:
            InvalidProviderRequestError: Not a payment of this adapter; more than what is left;
                a retry without the library's ledger.
            UnsettledError: Other refunds of the payment are unconfirmed too, so Lemon
                Squeezy's total cannot tell yet (retriable: nothing was sent).
        """
        self._require(Capability.REFUNDS)
        type_, _, id_ = request.provider_payment_id.partition("/")
        if type_ not in ("orders", "subscription-invoices"):
            raise refused(
                f"{request.provider_payment_id!r} is not a Lemon Squeezy order or subscription invoice",
                provider_payment_id=request.provider_payment_id,
            )
        done = RefundResult(provider_refund_id=None, status=RefundStatus.SUCCEEDED)
        local_id = str(request.refund_id)
        path = f"{type_}/{path_id(id_)}"
        operation = f"refund {path}"
        current = attributes(await self._client.get(path, operation=operation))
        refunded = integer(current, "refunded_amount", default=0)
        amount = request.amount.amount
        if request.resent or local_id in self._refunds_sent:
            if request.refunded_before is None:
                raise refused(
                    f"refund {local_id} may have reached Lemon Squeezy already; settling it needs the "
                    "library's record of the payment's refunds (refunded_before)",
                    refund_id=local_id,
                )
            verdict = settled(refunded, request.refunded_before, request.pending_before, amount)
            if verdict is True:
                self._refunds_sent.discard(local_id)
                return done
            if verdict is None:
                raise UnsettledError(
                    f"Lemon Squeezy has refunded {refunded} of {path}; with other refunds of it "
                    f"unconfirmed, whether refund {local_id} of {amount} is among them cannot be told yet",
                    provider=self.name,
                    details={"refund_id": local_id, "refunded_amount": refunded},
                )
        if amount != integer(current, "total") - refunded or refunded:
            self._require(Capability.PARTIAL_REFUNDS)
        self._refunds_sent.add(local_id)
        try:
            await self._client.post(
                f"{path}/refund",
                document(type_, {"amount": amount}, id_=id_),
                operation=operation,
            )
        except ProviderError as exc:
            if not exc.retriable:
                self._refunds_sent.discard(local_id)
            raise
        self._refunds_sent.discard(local_id)
        return done

    async def _checkout_by_session(self, session_id: str) -> CheckoutSnapshot | None:
        """The checkout made for the local checkout session ``session_id``, from its custom data."""
        found = await self._client.find(
            "checkouts",
            operation=f"look up the checkout of session {session_id}",
            filters={"store_id": self.store_id},
            where=lambda checkout: _custom(checkout).get("checkout_session_id") == session_id,
        )
        if found is None:
            return None
        attrs = attributes(found)
        url = attrs.get("url")
        return CheckoutSnapshot(
            provider_session_id=str(found["id"]),
            status=CheckoutSessionStatus.OPEN,
            url=url if isinstance(url, str) else None,
            expires_at=parse_time(attrs.get("expires_at")),
        )

    async def create_portal_session(self, request: PortalRequest) -> PortalResult:
        """The customer portal link of the subscription (or of the customer), signed for 24 hours."""
        self._require(Capability.PORTAL)
        if request.provider_subscription_id:
            found = await self._subscription(request.provider_subscription_id, "open the customer portal")
        elif request.customer.provider_customer_id:
            found = await self._client.get(
                f"customers/{path_id(request.customer.provider_customer_id)}",
                operation="open the customer portal",
            )
        else:
            raise refused("the customer has no Lemon Squeezy subscription or customer yet")
        urls = attributes(found).get("urls")
        url = urls.get("customer_portal") if isinstance(urls, dict) else None
        if not isinstance(url, str) or not url:
            raise refused("Lemon Squeezy gave no customer portal link (is the portal enabled for the store?)")
        return PortalResult(url=url)

    async def update_payment_method_url(self, provider_subscription_id: str) -> str:
        """The subscription's signed link to update its payment method (valid 24 hours)."""
        found = await self._subscription(provider_subscription_id, "read the payment method link")
        urls = attributes(found).get("urls")
        url = urls.get("update_payment_method") if isinstance(urls, dict) else None
        if not isinstance(url, str) or not url:
            raise refused("Lemon Squeezy gave no update-payment-method link for this subscription")
        return url


def _custom(checkout: Resource) -> dict[str, Any]:
    data = attributes(checkout).get("checkout_data")
    custom = data.get("custom") if isinstance(data, dict) else None
    return custom if isinstance(custom, dict) else {}
