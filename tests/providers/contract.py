"""The provider contract: behaviour every :class:`PaymentProvider` adapter shares.

A test module runs it against one adapter by subclassing :class:`ProviderContract` and giving it
a ``harness`` fixture: a :class:`ContractHarness` that knows how to get a paid payment out of that
adapter (its hosted page, its test server) and how that adapter's webhooks are signed.
"""

from __future__ import annotations

import abc
import dataclasses
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
    CheckoutRequest,
    CheckoutSnapshot,
    CustomerRef,
    PaymentProvider,
    PaymentSnapshot,
    PlanRef,
    PortalRequest,
    RefundRequest,
    RefundSnapshot,
    SubscriptionChange,
    UsageReport,
)
from fastapi_cashier.statuses import (
    BillingInterval,
    CheckoutSessionStatus,
    PaymentStatus,
    PricingModel,
    RefundStatus,
)

SECRET = "whsec_contract_current"
ROTATED_SECRET = "whsec_contract_previous"
TOLERANCE = 300
START = datetime(2030, 3, 1, 9, 0, tzinfo=UTC)
#: Capabilities an adapter refuses by itself when they are switched off (the library checks
#: them first too); the others either have no method (webhooks) or are not offered at all.
SELF_REFUSED = frozenset(Capability) - {Capability.WEBHOOKS, Capability.CHECKOUT_COMPLETION}
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

    @abc.abstractmethod
    async def paid_payment(self, amount: Money) -> str:
        """The provider id of a payment of ``amount`` that has succeeded."""

    @abc.abstractmethod
    async def event_body(self) -> bytes:
        """The raw body of a webhook delivery the adapter's provider sent about a paid payment."""

    @abc.abstractmethod
    def sign(self, body: bytes, *, secret: str, timestamp: int) -> dict[str, str]:
        """Headers of a delivery of ``body`` signed the provider's way."""

    @property
    @abc.abstractmethod
    def signature_header(self) -> str:
        """The name of the header carrying the signature."""


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

    async def test_implements_the_protocol(self, harness: ContractHarness) -> None:
        assert isinstance(harness.provider, PaymentProvider)
        assert harness.provider.name
        assert harness.provider.capabilities <= frozenset(Capability)

    async def test_customer_creation_is_idempotent_per_key(self, harness: ContractHarness) -> None:
        first = await harness.provider.create_customer(CUSTOMER, idempotency_key="customer-7-contract")
        again = await harness.provider.create_customer(CUSTOMER, idempotency_key="customer-7-contract")
        other = await harness.provider.create_customer(CUSTOMER, idempotency_key="customer-7-other")

        assert first
        assert again == first
        assert other != first

    async def test_checkout_returns_a_url_and_a_session_id(self, harness: ContractHarness) -> None:
        request = checkout_request(harness.clock)
        result = await harness.provider.create_checkout(request)
        repeated = await harness.provider.create_checkout(request)

        assert result.url.startswith("https://")
        assert result.provider_session_id
        assert repeated.provider_session_id == result.provider_session_id
        assert result.expires_at is not None
        assert result.expires_at > harness.clock()
        snapshot = await harness.provider.fetch("checkout_session", result.provider_session_id)
        assert isinstance(snapshot, CheckoutSnapshot)
        assert snapshot.status is CheckoutSessionStatus.OPEN

    async def test_a_subscription_checkout_uses_the_synced_plan(self, harness: ContractHarness) -> None:
        synced_plan = await synced(harness.provider, plan())
        request = checkout_request(
            harness.clock, mode="subscription", amount=None, plan=synced_plan, quantity=2
        )
        result = await harness.provider.create_checkout(request)

        assert result.url.startswith("https://")
        assert result.provider_session_id

    async def test_sync_keeps_an_unchanged_price_and_replaces_a_changed_one(
        self, harness: ContractHarness
    ) -> None:
        first = await synced(harness.provider, plan(1500))
        unchanged = await synced(harness.provider, first)
        changed = await synced(harness.provider, dataclasses.replace(first, unit_amount=Money(1900, "EUR")))

        assert unchanged.provider_price_id == first.provider_price_id
        assert changed.provider_price_id not in (None, first.provider_price_id)

    async def test_fetch_returns_the_payment(self, harness: ContractHarness) -> None:
        payment_id = await harness.paid_payment(Money(1000, "EUR"))
        snapshot = await harness.provider.fetch("payment", payment_id)

        assert isinstance(snapshot, PaymentSnapshot)
        assert snapshot.provider_payment_id == payment_id
        assert snapshot.status is PaymentStatus.SUCCEEDED
        assert snapshot.amount == Money(1000, "EUR")
        assert snapshot.refunded_amount == 0

    async def test_a_partial_then_a_full_refund(self, harness: ContractHarness) -> None:
        payment_id = await harness.paid_payment(Money(1000, "EUR"))

        partial = await harness.provider.refund(refund_request(payment_id, 300))
        after_partial = await harness.provider.fetch("payment", payment_id)
        rest = await harness.provider.refund(refund_request(payment_id, 700))
        after_rest = await harness.provider.fetch("payment", payment_id)

        assert partial.status is RefundStatus.SUCCEEDED
        assert rest.status is RefundStatus.SUCCEEDED
        assert partial.provider_refund_id != rest.provider_refund_id
        assert isinstance(after_partial, PaymentSnapshot)
        assert (after_partial.status, after_partial.refunded_amount) == (
            PaymentStatus.PARTIALLY_REFUNDED,
            300,
        )
        assert isinstance(after_rest, PaymentSnapshot)
        assert (after_rest.status, after_rest.refunded_amount) == (PaymentStatus.REFUNDED, 1000)
        refund = await harness.provider.fetch("refund", partial.provider_refund_id)
        assert isinstance(refund, RefundSnapshot)
        assert (refund.provider_payment_id, refund.amount) == (payment_id, Money(300, "EUR"))
        with pytest.raises(InvalidProviderRequestError):
            await harness.provider.refund(refund_request(payment_id, 1))

    async def test_a_refund_is_idempotent_per_key(self, harness: ContractHarness) -> None:
        payment_id = await harness.paid_payment(Money(1000, "EUR"))
        request = refund_request(payment_id, 400, key="refund-once")
        first = await harness.provider.refund(request)
        again = await harness.provider.refund(request)
        after = await harness.provider.fetch("payment", payment_id)

        assert again.provider_refund_id == first.provider_refund_id
        assert isinstance(after, PaymentSnapshot)
        assert after.refunded_amount == 400

    async def test_a_good_delivery_verifies_and_parses_the_same(self, harness: ContractHarness) -> None:
        body = await harness.event_body()
        headers = harness.sign(body, secret=SECRET, timestamp=harness.clock.unix)

        verified = await harness.provider.verify_webhook(headers, body)
        parsed = await harness.provider.parse_webhook(body)

        assert verified == parsed
        assert verified.id
        assert verified.snapshot is not None

    async def test_the_rotated_secret_is_accepted(self, harness: ContractHarness) -> None:
        body = await harness.event_body()
        headers = harness.sign(body, secret=ROTATED_SECRET, timestamp=harness.clock.unix)

        assert (await harness.provider.verify_webhook(headers, body)).id == (
            await harness.provider.parse_webhook(body)
        ).id

    @pytest.mark.parametrize(
        "case", ["missing", "malformed", "wrong secret", "tampered body", "stale", "future", "not signed"]
    )
    async def test_bad_deliveries_are_refused(self, harness: ContractHarness, case: str) -> None:
        body = await harness.event_body()
        now = harness.clock.unix
        headers = harness.sign(body, secret=SECRET, timestamp=now)
        if case == "missing":
            headers = {}
        elif case == "malformed":
            headers = {harness.signature_header: "t=soon,v1"}
        elif case == "wrong secret":
            headers = harness.sign(body, secret="whsec_someone_else", timestamp=now)
        elif case == "tampered body":
            body = body.replace(b"1000", b"9000", 1)
            assert b"9000" in body
        elif case == "stale":
            headers = harness.sign(body, secret=SECRET, timestamp=now - TOLERANCE - 1)
        elif case == "future":
            headers = harness.sign(body, secret=SECRET, timestamp=now + TOLERANCE + 1)
        elif case == "not signed":
            headers = {harness.signature_header: f"t={now}"}

        with pytest.raises(SignatureVerificationError):
            await harness.provider.verify_webhook(headers, body)

    @pytest.mark.parametrize("capability", sorted(SELF_REFUSED))
    async def test_a_capability_switched_off_is_refused(
        self, harness: ContractHarness, capability: Capability
    ) -> None:
        provider = harness.provider
        if capability not in provider.capabilities:
            pytest.skip(f"{provider.name} does not declare {capability.value}")
        synced_plan = await synced(provider, plan())
        paid = await harness.paid_payment(Money(1000, "EUR"))
        provider.capabilities = frozenset(Capability) - {capability}
        calls: dict[Capability, Callable[[], Awaitable[object]]] = {
            Capability.CHECKOUT: lambda: provider.create_checkout(checkout_request(harness.clock)),
            Capability.ONE_OFF_PAYMENT: lambda: provider.create_checkout(checkout_request(harness.clock)),
            Capability.SUBSCRIPTIONS: lambda: provider.create_checkout(
                checkout_request(harness.clock, mode="subscription", amount=None, plan=synced_plan)
            ),
            Capability.REFUNDS: lambda: provider.refund(refund_request(paid, 1000)),
            Capability.PARTIAL_REFUNDS: lambda: provider.refund(refund_request(paid, 100)),
            Capability.PLAN_CHANGE: lambda: provider.update_subscription(
                SubscriptionChange(
                    subscription_id=uuid.uuid4(),
                    idempotency_key="change-1",
                    provider_subscription_id="sub_unknown",
                    quantity=3,
                )
            ),
            Capability.PAUSE: lambda: provider.pause_subscription("sub_unknown", idempotency_key="pause-1"),
            Capability.CANCEL_NOW: lambda: provider.cancel_subscription(
                "sub_unknown", at_period_end=False, idempotency_key="cancel-now-1"
            ),
            Capability.CANCEL_AT_PERIOD_END: lambda: provider.cancel_subscription(
                "sub_unknown", at_period_end=True, idempotency_key="cancel-end-1"
            ),
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
