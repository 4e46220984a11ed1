"""The provider contract: the one definition of a correct :class:`PaymentProvider` adapter.

A test module runs it against one adapter by subclassing :class:`ProviderContract` and giving it
a ``harness`` fixture: a :class:`ContractHarness` that knows how to pay a checkout of that adapter
(its hosted page, its test server), how a refund is made outside the library (the provider's
dashboard), and how that adapter's webhooks are signed: a valid delivery and each way an invalid
one can be wrong are the harness's to supply, so no signature scheme is assumed. Cases run only
when the adapter declares the capabilities they need (:func:`needs`); an adapter that ignores
idempotency keys is held to finding what it created by lookup instead, or, for refunds and usage
that its provider keeps no id of, to settling a resend from the provider's totals and the
library's ledger in the request. Variations between providers are declared by the harness
(:attr:`ContractHarness.customers_per_email`), never by overriding a shared case.
"""

from __future__ import annotations

import abc
import dataclasses
import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from fastapi_cashier.errors import (
    InvalidProviderRequestError,
    SignatureVerificationError,
    UnsupportedCapabilityError,
)
from fastapi_cashier.money import Money
from fastapi_cashier.providers.base import (
    Capability,
    CatalogProvider,
    CheckoutProvider,
    CheckoutRequest,
    CheckoutSnapshot,
    CustomerRef,
    ObjectLookup,
    PauseProvider,
    PaymentProvider,
    PaymentSnapshot,
    PlanRef,
    PortalProvider,
    PortalRequest,
    RefundProvider,
    RefundRequest,
    RefundSnapshot,
    SubscriptionChange,
    SubscriptionProvider,
    SubscriptionSnapshot,
    UsageProvider,
    UsageReport,
    UsageSnapshot,
    WebhookReceiver,
    check_adapter,
)
from fastapi_cashier.statuses import (
    BillingInterval,
    CheckoutSessionStatus,
    PaymentStatus,
    PricingModel,
    ProrationBehavior,
    RefundStatus,
    SubscriptionStatus,
)

SECRET = "whsec_contract_current"
ROTATED_SECRET = "whsec_contract_previous"
TOLERANCE = 300
START = datetime(2030, 3, 1, 9, 0, tzinfo=UTC)
#: Capabilities an adapter refuses by itself when they are switched off (the library checks
#: them first too); the others either have no method (webhooks) or are not offered at all.
SELF_REFUSED = frozenset(Capability) - {
    Capability.WEBHOOKS,
    Capability.CHECKOUT_COMPLETION,
    # The library acts on it (it cancels at the period end itself); the adapter has no call to refuse.
    Capability.CANCELS_AT_PERIOD_END_LOCALLY,
}
CUSTOMER = CustomerRef(id=uuid.UUID(int=7), external_id="user-7", email="grace@example.com", name="Grace")


class Clock:
    """A clock the tests move by hand; adapters and signatures read it."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now

    @property
    def unix(self) -> int:
        return int(self.now.timestamp())


class ContractHarness(abc.ABC):
    """One adapter, configured with :data:`SECRET` and :data:`ROTATED_SECRET`, and its test double."""

    provider: PaymentProvider
    clock: Clock
    #: The provider identifies customers by email address (Lemon Squeezy: one customer per
    #: email in a store): creating a customer answers the one with that email, whatever the key,
    #: and a customer without an email gets none.
    customers_per_email: bool = False

    @abc.abstractmethod
    async def pay_checkout(self, provider_session_id: str) -> None:
        """Pay an open checkout as the payer would on the provider's hosted page."""

    @abc.abstractmethod
    async def event_body(self) -> bytes:
        """The raw body of a webhook delivery the adapter's provider sent about a paid payment."""

    @abc.abstractmethod
    def valid_deliveries(self, body: bytes) -> dict[str, dict[str, str]]:
        """Headers of valid deliveries of ``body``, signed now, by name (``"current secret"``,
        ``"rotated secret"``, ...): every way the provider may sign that must be accepted."""

    @abc.abstractmethod
    def invalid_deliveries(self, body: bytes) -> dict[str, dict[str, str]]:
        """Headers of deliveries of ``body`` that must be refused, by what is wrong with them
        (missing, malformed, wrong secret, stale, ...)."""

    @abc.abstractmethod
    async def refund_outside(self, provider_payment_id: str, amount: Money) -> None:
        """Refund at the provider without the library (its dashboard)."""

    @abc.abstractmethod
    async def reported_usage(self, provider_subscription_id: str) -> int:
        """The usage the provider counts for the subscription's current period."""

    async def paid_payment(self, amount: Money) -> str:
        """The provider id of a payment of ``amount`` that has succeeded."""
        session = await self.provider_as(CheckoutProvider).create_checkout(
            checkout_request(self.clock, amount=amount)
        )
        await self.pay_checkout(session.provider_session_id)
        checkout = await self.provider_as(WebhookReceiver).fetch(
            "checkout_session", session.provider_session_id
        )
        assert isinstance(checkout, CheckoutSnapshot)
        assert checkout.provider_payment_id is not None
        return checkout.provider_payment_id

    async def active_subscription(self, plan_ref: PlanRef, quantity: int = 1) -> str:
        """The provider id of a subscription to ``plan_ref`` paid through a checkout."""
        session = await self.provider_as(CheckoutProvider).create_checkout(
            checkout_request(self.clock, mode="subscription", amount=None, plan=plan_ref, quantity=quantity)
        )
        await self.pay_checkout(session.provider_session_id)
        checkout = await self.provider_as(WebhookReceiver).fetch(
            "checkout_session", session.provider_session_id
        )
        assert isinstance(checkout, CheckoutSnapshot)
        assert checkout.provider_subscription_id is not None
        return checkout.provider_subscription_id

    def provider_as(self, part: Any) -> Any:
        """The adapter as one optional part of the protocol (it must implement it)."""
        assert isinstance(self.provider, part), f"{self.provider.name} does not implement {part.__name__}"
        return self.provider


def needs(harness: ContractHarness, *capabilities: Capability) -> None:
    """Skip the case unless the adapter declares every one of ``capabilities``."""
    missing = [c.value for c in capabilities if c not in harness.provider.capabilities]
    if missing:
        pytest.skip(f"{harness.provider.name} does not declare {', '.join(missing)}")


def tampered(body: bytes) -> bytes:
    """``body`` with one more member in its JSON object: another body, on any provider."""
    payload = json.loads(body)
    assert isinstance(payload, dict)
    return json.dumps({**payload, "tampered": True}, separators=(",", ":")).encode()


def checkout_request(clock: Clock, **overrides: Any) -> CheckoutRequest:
    session_id = overrides.pop("session_id", uuid.uuid4())
    values: dict[str, Any] = {
        "session_id": session_id,
        "idempotency_key": f"checkout-{session_id}",
        "mode": "payment",
        "customer": CUSTOMER,
        "success_url": "https://shop.example/thanks",
        "cancel_url": "https://shop.example/cart",
        "expires_at": clock() + timedelta(hours=2),
        "amount": Money(1000, "EUR"),
        "description": "Concert ticket",
        "return_base_url": "https://shop.example/billing",
        "metadata": {"checkout_session_id": str(session_id), "customer_id": str(CUSTOMER.id)},
    }
    values.update(overrides)
    return CheckoutRequest(**values)


def plan(unit_amount: int | Money = 1500, **overrides: Any) -> PlanRef:
    values: dict[str, Any] = {
        "id": uuid.UUID(int=42),
        "name": "Pro monthly",
        "unit_amount": unit_amount if isinstance(unit_amount, Money) else Money(unit_amount, "EUR"),
        "interval": BillingInterval.MONTH,
        "pricing_model": PricingModel.PER_UNIT,
        "product_name": "Pro",
    }
    values.update(overrides)
    return PlanRef(**values)


async def synced(provider: PaymentProvider, ref: PlanRef) -> PlanRef:
    assert isinstance(provider, CatalogProvider)
    price_ids = await provider.sync_catalog([ref])
    return dataclasses.replace(ref, provider_price_id=price_ids[ref.id])


def refund_request(payment_id: str, amount: int, *, key: str | None = None) -> RefundRequest:
    refund_id = uuid.uuid4()
    return RefundRequest(
        refund_id=refund_id,
        idempotency_key=key or f"refund-{refund_id}",
        provider_payment_id=payment_id,
        amount=Money(amount, "EUR"),
        reason="requested_by_customer",
    )


class ProviderContract:
    """The shared tests; a subclass provides the ``harness`` fixture."""

    pytestmark = pytest.mark.anyio

    # ------------------------------------------------------------------ the core

    async def test_implements_the_core_and_every_declared_part(self, harness: ContractHarness) -> None:
        provider = harness.provider
        assert isinstance(provider, PaymentProvider)
        assert provider.name
        assert provider.capabilities <= frozenset(Capability)
        assert isinstance(provider.idempotency_keys, bool)
        check_adapter(provider)

    async def test_customer_creation_is_idempotent_per_key(self, harness: ContractHarness) -> None:
        first = await harness.provider.create_customer(CUSTOMER, idempotency_key="customer-7-contract")
        again = await harness.provider.create_customer(CUSTOMER, idempotency_key="customer-7-contract")
        other = await harness.provider.create_customer(CUSTOMER, idempotency_key="customer-7-other")

        if first is None:  # a provider without customer objects
            assert (again, other) == (None, None)
            return
        if harness.provider.idempotency_keys or harness.customers_per_email:
            assert again == first
        if not harness.customers_per_email:
            assert other != first
            return
        assert other == first
        anonymous = await harness.provider.create_customer(
            dataclasses.replace(CUSTOMER, email=None), idempotency_key="customer-anonymous"
        )
        assert anonymous is None
        someone_else = await harness.provider.create_customer(
            dataclasses.replace(CUSTOMER, email="ada@example.com"), idempotency_key="customer-7-contract"
        )
        assert someone_else not in (None, first)

    # ------------------------------------------------------------------ checkout

    async def test_checkout_returns_a_url_and_a_session_id(self, harness: ContractHarness) -> None:
        needs(harness, Capability.CHECKOUT, Capability.ONE_OFF_PAYMENT)
        request = checkout_request(harness.clock)
        result = await harness.provider_as(CheckoutProvider).create_checkout(request)

        assert result.url.startswith("https://")
        assert result.provider_session_id
        assert result.expires_at is not None
        assert result.expires_at > harness.clock()
        snapshot = await harness.provider_as(WebhookReceiver).fetch(
            "checkout_session", result.provider_session_id
        )
        assert isinstance(snapshot, CheckoutSnapshot)
        assert snapshot.status is CheckoutSessionStatus.OPEN

    async def test_a_created_checkout_is_found_again_by_key_or_by_lookup(
        self, harness: ContractHarness
    ) -> None:
        needs(harness, Capability.CHECKOUT, Capability.ONE_OFF_PAYMENT)
        request = checkout_request(harness.clock)
        result = await harness.provider_as(CheckoutProvider).create_checkout(request)

        if harness.provider.idempotency_keys:
            repeated = await harness.provider_as(CheckoutProvider).create_checkout(request)
            assert repeated.provider_session_id == result.provider_session_id
        else:
            found = await harness.provider_as(ObjectLookup).lookup(
                "checkout_session", str(request.session_id)
            )
            assert isinstance(found, CheckoutSnapshot)
            assert (found.provider_session_id, found.url) == (result.provider_session_id, result.url)
            assert (
                await harness.provider_as(ObjectLookup).lookup("checkout_session", str(uuid.uuid4())) is None
            )

    async def test_a_paid_subscription_checkout_has_the_synced_plan_price_and_quantity(
        self, harness: ContractHarness
    ) -> None:
        needs(harness, Capability.CHECKOUT, Capability.SUBSCRIPTIONS, Capability.CATALOG_SYNC)
        synced_plan = await synced(harness.provider, plan())
        subscription_id = await harness.active_subscription(synced_plan, quantity=2)

        snapshot = await harness.provider_as(WebhookReceiver).fetch("subscription", subscription_id)

        assert isinstance(snapshot, SubscriptionSnapshot)
        assert snapshot.status is SubscriptionStatus.ACTIVE
        assert snapshot.provider_price_id == synced_plan.provider_price_id
        assert snapshot.quantity == 2

    async def test_sync_keeps_an_unchanged_price_and_replaces_a_changed_one(
        self, harness: ContractHarness
    ) -> None:
        needs(harness, Capability.CATALOG_SYNC)
        first = await synced(harness.provider, plan(1500))
        unchanged = await synced(harness.provider, first)
        changed = await synced(harness.provider, dataclasses.replace(first, unit_amount=Money(1900, "EUR")))

        assert unchanged.provider_price_id == first.provider_price_id
        assert changed.provider_price_id not in (None, first.provider_price_id)

    async def test_fetch_returns_the_payment(self, harness: ContractHarness) -> None:
        needs(harness, Capability.CHECKOUT, Capability.ONE_OFF_PAYMENT, Capability.WEBHOOKS)
        payment_id = await harness.paid_payment(Money(1000, "EUR"))
        snapshot = await harness.provider_as(WebhookReceiver).fetch("payment", payment_id)

        assert isinstance(snapshot, PaymentSnapshot)
        assert snapshot.provider_payment_id == payment_id
        assert snapshot.status is PaymentStatus.SUCCEEDED
        assert snapshot.amount == Money(1000, "EUR")
        assert snapshot.refunded_amount == 0

    # ------------------------------------------------------------------ refunds

    async def test_a_partial_then_a_full_refund(self, harness: ContractHarness) -> None:
        needs(harness, Capability.CHECKOUT, Capability.REFUNDS, Capability.PARTIAL_REFUNDS)
        payment_id = await harness.paid_payment(Money(1000, "EUR"))
        refunds = harness.provider_as(RefundProvider)
        fetch = harness.provider_as(WebhookReceiver).fetch

        partial = await refunds.refund(refund_request(payment_id, 300))
        after_partial = await fetch("payment", payment_id)
        rest = await refunds.refund(refund_request(payment_id, 700))
        after_rest = await fetch("payment", payment_id)

        assert partial.status is RefundStatus.SUCCEEDED
        assert rest.status is RefundStatus.SUCCEEDED
        assert isinstance(after_partial, PaymentSnapshot)
        assert (after_partial.status, after_partial.refunded_amount) == (
            PaymentStatus.PARTIALLY_REFUNDED,
            300,
        )
        assert isinstance(after_rest, PaymentSnapshot)
        assert (after_rest.status, after_rest.refunded_amount) == (PaymentStatus.REFUNDED, 1000)
        with pytest.raises(InvalidProviderRequestError):
            await refunds.refund(refund_request(payment_id, 1))
        if partial.provider_refund_id is None:  # a provider without refund objects
            assert rest.provider_refund_id is None
            return
        assert partial.provider_refund_id != rest.provider_refund_id
        refund = await fetch("refund", partial.provider_refund_id)
        assert isinstance(refund, RefundSnapshot)
        assert (refund.provider_payment_id, refund.amount) == (payment_id, Money(300, "EUR"))

    async def test_a_refund_is_made_once_per_key_or_found_by_lookup(self, harness: ContractHarness) -> None:
        needs(harness, Capability.CHECKOUT, Capability.REFUNDS, Capability.PARTIAL_REFUNDS)
        payment_id = await harness.paid_payment(Money(1000, "EUR"))
        request = refund_request(payment_id, 400, key="refund-once")
        first = await harness.provider_as(RefundProvider).refund(request)

        if harness.provider.idempotency_keys:
            again = await harness.provider_as(RefundProvider).refund(request)
            assert again.provider_refund_id == first.provider_refund_id
        else:
            found = await harness.provider_as(ObjectLookup).lookup("refund", str(request.refund_id))
            if found is None:
                # A provider that keeps no id of a refund settles the resend itself, from its
                # refunded total and the library's ledger of the payment (nothing else recorded).
                resent = dataclasses.replace(request, refunded_before=0, pending_before=0, resent=True)
                again = await harness.provider_as(RefundProvider).refund(resent)
                assert (again.status, again.provider_refund_id) == (first.status, first.provider_refund_id)
            else:
                assert isinstance(found, RefundSnapshot)
                assert (found.provider_refund_id, found.amount) == (
                    first.provider_refund_id,
                    Money(400, "EUR"),
                )
        after = await harness.provider_as(WebhookReceiver).fetch("payment", payment_id)
        assert isinstance(after, PaymentSnapshot)
        assert after.refunded_amount == 400

    async def test_a_refund_made_outside_the_library_shows_in_refunded_amount(
        self, harness: ContractHarness
    ) -> None:
        needs(harness, Capability.CHECKOUT, Capability.WEBHOOKS)
        payment_id = await harness.paid_payment(Money(1000, "EUR"))

        await harness.refund_outside(payment_id, Money(250, "EUR"))

        after = await harness.provider_as(WebhookReceiver).fetch("payment", payment_id)
        assert isinstance(after, PaymentSnapshot)
        assert (after.status, after.refunded_amount) == (PaymentStatus.PARTIALLY_REFUNDED, 250)

    # ------------------------------------------------------------------ subscriptions

    async def test_a_subscription_lifecycle_of_quantity_and_plan_changes(
        self, harness: ContractHarness
    ) -> None:
        needs(
            harness,
            Capability.CHECKOUT,
            Capability.SUBSCRIPTIONS,
            Capability.PLAN_CHANGE,
            Capability.CATALOG_SYNC,
        )
        basic = await synced(harness.provider, plan(1500))
        premium = await synced(harness.provider, plan(4000, id=uuid.UUID(int=43), name="Premium monthly"))
        subscription_id = await harness.active_subscription(basic)
        subscriptions = harness.provider_as(SubscriptionProvider)
        proration = sorted(harness.provider.proration_behaviors)[0]

        more = await subscriptions.update_subscription(
            change(subscription_id, quantity=3, proration=proration, key="change-quantity")
        )
        moved = await subscriptions.update_subscription(
            change(subscription_id, plan_ref=premium, proration=proration, key="change-plan")
        )

        if more.approval_url is not None or moved.approval_url is not None:
            assert (more.approval_url or moved.approval_url or "").startswith("https://")
            return  # applied once the subscriber approves, outside this suite
        assert (more.snapshot.quantity, more.snapshot.provider_price_id) == (3, basic.provider_price_id)
        assert (moved.snapshot.quantity, moved.snapshot.provider_price_id) == (3, premium.provider_price_id)
        fetched = await harness.provider_as(WebhookReceiver).fetch("subscription", subscription_id)
        assert isinstance(fetched, SubscriptionSnapshot)
        assert (fetched.status, fetched.quantity, fetched.provider_price_id) == (
            SubscriptionStatus.ACTIVE,
            3,
            premium.provider_price_id,
        )

    async def test_cancel_at_the_period_end_then_resume(self, harness: ContractHarness) -> None:
        needs(
            harness,
            Capability.CHECKOUT,
            Capability.SUBSCRIPTIONS,
            Capability.CANCEL_AT_PERIOD_END,
            Capability.CATALOG_SYNC,
        )
        subscription_id = await harness.active_subscription(await synced(harness.provider, plan()))
        subscriptions = harness.provider_as(SubscriptionProvider)

        ending = await subscriptions.cancel_subscription(
            subscription_id, at_period_end=True, idempotency_key="cancel-end"
        )
        resumed = await subscriptions.resume_subscription(subscription_id, idempotency_key="resume-end")

        assert (ending.snapshot.status, ending.snapshot.cancel_at_period_end) == (
            SubscriptionStatus.ACTIVE,
            True,
        )
        assert (resumed.snapshot.status, resumed.snapshot.cancel_at_period_end) == (
            SubscriptionStatus.ACTIVE,
            False,
        )

    async def test_cancel_now_ends_the_subscription(self, harness: ContractHarness) -> None:
        needs(
            harness,
            Capability.CHECKOUT,
            Capability.SUBSCRIPTIONS,
            Capability.CANCEL_NOW,
            Capability.CATALOG_SYNC,
        )
        subscription_id = await harness.active_subscription(await synced(harness.provider, plan()))

        ended = await harness.provider_as(SubscriptionProvider).cancel_subscription(
            subscription_id, at_period_end=False, idempotency_key="cancel-now"
        )

        assert ended.snapshot.status is SubscriptionStatus.CANCELED
        fetched = await harness.provider_as(WebhookReceiver).fetch("subscription", subscription_id)
        assert isinstance(fetched, SubscriptionSnapshot)
        assert fetched.status is SubscriptionStatus.CANCELED

    async def test_pause_then_resume(self, harness: ContractHarness) -> None:
        needs(
            harness, Capability.CHECKOUT, Capability.SUBSCRIPTIONS, Capability.PAUSE, Capability.CATALOG_SYNC
        )
        subscription_id = await harness.active_subscription(await synced(harness.provider, plan()))

        paused = await harness.provider_as(PauseProvider).pause_subscription(
            subscription_id, idempotency_key="pause-1"
        )
        resumed = await harness.provider_as(SubscriptionProvider).resume_subscription(
            subscription_id, idempotency_key="resume-1"
        )

        assert paused.snapshot.paused or paused.snapshot.status is SubscriptionStatus.PAUSED
        assert not resumed.snapshot.paused
        assert resumed.snapshot.status is SubscriptionStatus.ACTIVE

    async def test_usage_is_counted_once_per_key(self, harness: ContractHarness) -> None:
        needs(harness, Capability.CHECKOUT, Capability.METERED_USAGE, Capability.CATALOG_SYNC)
        metered = await synced(
            harness.provider,
            plan(3, id=uuid.UUID(int=44), name="API calls", pricing_model=PricingModel.METERED),
        )
        subscription_id = await harness.active_subscription(metered)
        usage = harness.provider_as(UsageProvider)

        def report(quantity: int, key: str) -> UsageReport:
            return UsageReport(
                subscription_id=uuid.UUID(int=99),
                provider_subscription_id=subscription_id,
                quantity=quantity,
                idempotency_key=key,
                recorded_at=harness.clock(),
            )

        await usage.report_usage(report(5, "usage-a"))
        if harness.provider.idempotency_keys:
            await usage.report_usage(report(5, "usage-a"))
        else:
            found = await harness.provider_as(ObjectLookup).lookup("usage_record", "usage-a")
            if found is None:
                # Settled by the resend, from the provider's records and the library's ledger.
                resent = dataclasses.replace(report(5, "usage-a"), reported_before=0, resent=True)
                await usage.report_usage(resent)
            else:
                assert isinstance(found, UsageSnapshot)
        await usage.report_usage(dataclasses.replace(report(2, "usage-b"), reported_before=5))

        assert await harness.reported_usage(subscription_id) == 7

    async def test_the_portal_opens_for_a_customer(self, harness: ContractHarness) -> None:
        needs(harness, Capability.PORTAL)
        customer_id = await harness.provider.create_customer(CUSTOMER, idempotency_key="customer-portal")

        result = await harness.provider_as(PortalProvider).create_portal_session(
            PortalRequest(
                customer=dataclasses.replace(CUSTOMER, provider_customer_id=customer_id),
                return_url="https://shop.example/account",
                return_base_url="https://shop.example/billing",
            )
        )

        assert result.url.startswith("https://")

    # ------------------------------------------------------------------ webhooks

    async def test_every_valid_delivery_verifies_and_parses_the_same(self, harness: ContractHarness) -> None:
        needs(harness, Capability.WEBHOOKS)
        body = await harness.event_body()
        receiver = harness.provider_as(WebhookReceiver)
        parsed = await receiver.parse_webhook(body)
        deliveries = harness.valid_deliveries(body)

        assert deliveries
        for name, headers in deliveries.items():
            assert await receiver.verify_webhook(headers, body) == parsed, name
        assert parsed.id
        assert parsed.snapshot is not None
        assert parsed.provider == harness.provider.name

    async def test_bad_deliveries_are_refused(self, harness: ContractHarness) -> None:
        needs(harness, Capability.WEBHOOKS)
        body = await harness.event_body()
        receiver = harness.provider_as(WebhookReceiver)
        [valid, *_] = harness.valid_deliveries(body).values()
        cases = {**harness.invalid_deliveries(body), "no headers": {}}

        assert {"wrong secret", "malformed"} <= set(cases)
        accepted: list[str] = []
        for name, headers in cases.items():
            try:
                await receiver.verify_webhook(headers, body)
            except SignatureVerificationError:
                continue
            accepted.append(name)
        assert accepted == []
        with pytest.raises(SignatureVerificationError):
            await receiver.verify_webhook(valid, tampered(body))

    # ------------------------------------------------------------------ declared capabilities

    @pytest.mark.parametrize("capability", sorted(SELF_REFUSED))
    async def test_a_capability_switched_off_is_refused(
        self, harness: ContractHarness, capability: Capability
    ) -> None:
        needs(harness, capability, Capability.CHECKOUT, Capability.CATALOG_SYNC, Capability.REFUNDS)
        provider: Any = harness.provider
        synced_plan = await synced(provider, plan())
        paid = await harness.paid_payment(Money(1000, "EUR"))
        provider.capabilities = provider.capabilities - {capability}
        calls: dict[Capability, Callable[[], Awaitable[object]]] = {
            Capability.CHECKOUT: lambda: provider.create_checkout(checkout_request(harness.clock)),
            Capability.ONE_OFF_PAYMENT: lambda: provider.create_checkout(checkout_request(harness.clock)),
            Capability.SUBSCRIPTIONS: lambda: provider.create_checkout(
                checkout_request(harness.clock, mode="subscription", amount=None, plan=synced_plan)
            ),
            Capability.REFUNDS: lambda: provider.refund(refund_request(paid, 1000)),
            Capability.PARTIAL_REFUNDS: lambda: provider.refund(refund_request(paid, 100)),
            Capability.PLAN_CHANGE: lambda: provider.update_subscription(
                change("sub_unknown", quantity=3, key="change-1")
            ),
            Capability.CANCEL_NOW: lambda: provider.cancel_subscription(
                "sub_unknown", at_period_end=False, idempotency_key="cancel-now-1"
            ),
            Capability.CANCEL_AT_PERIOD_END: lambda: provider.cancel_subscription(
                "sub_unknown", at_period_end=True, idempotency_key="cancel-end-1"
            ),
            Capability.PAUSE: lambda: provider.pause_subscription("sub_unknown", idempotency_key="pause-1"),
            Capability.METERED_USAGE: lambda: provider.report_usage(
                UsageReport(
                    subscription_id=uuid.uuid4(),
                    provider_subscription_id="sub_unknown",
                    quantity=5,
                    idempotency_key="usage-1",
                    recorded_at=harness.clock(),
                )
            ),
            Capability.PORTAL: lambda: provider.create_portal_session(
                PortalRequest(
                    customer=dataclasses.replace(CUSTOMER, provider_customer_id="cus_unknown"),
                    return_url="https://shop.example/account",
                    return_base_url="https://shop.example/billing",
                )
            ),
            Capability.CATALOG_SYNC: lambda: provider.sync_catalog([plan(2500)]),
        }

        with pytest.raises(UnsupportedCapabilityError) as raised:
            await calls[capability]()
        assert raised.value.details["capability"] == capability.value


def change(
    provider_subscription_id: str,
    *,
    key: str,
    quantity: int | None = None,
    plan_ref: PlanRef | None = None,
    proration: ProrationBehavior = ProrationBehavior.CREATE_PRORATIONS,
) -> SubscriptionChange:
    return SubscriptionChange(
        subscription_id=uuid.UUID(int=99),
        idempotency_key=key,
        provider_subscription_id=provider_subscription_id,
        plan=plan_ref,
        quantity=quantity,
        proration=proration,
    )
