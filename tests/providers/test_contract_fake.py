"""The provider contract, run against the fake provider."""

from __future__ import annotations

import json
import uuid

import pytest

from fastapi_cashier.money import Money
from fastapi_cashier.providers.base import RefundRequest
from fastapi_cashier.providers.fake import SIGNATURE_HEADER, FakeProvider
from fastapi_cashier.providers.fake.wire import sign_headers

from .contract import (
    ROTATED_SECRET,
    SECRET,
    TOLERANCE,
    Clock,
    ContractHarness,
    ProviderContract,
)


class FakeHarness(ContractHarness):
    def __init__(self, *, idempotency_keys: bool = True) -> None:
        self.clock = Clock()
        self.fake = FakeProvider(
            webhook_secret=[SECRET, ROTATED_SECRET],
            auto_deliver=False,
            tolerance_seconds=TOLERANCE,
            clock=self.clock,
            idempotency_keys=idempotency_keys,
        )
        self.provider = self.fake

    async def pay_checkout(self, provider_session_id: str) -> None:
        step = await self.fake.submit_checkout(provider_session_id, "succeeded")
        assert step.redirect_url is not None

    async def event_body(self) -> bytes:
        await self.paid_payment(Money(1000, "EUR"))
        return next(
            body
            for _, body in reversed(self.fake.sent_events)
            if json.loads(body)["type"] == "payment.succeeded"
        )

    def valid_deliveries(self, body: bytes) -> dict[str, dict[str, str]]:
        now = self.clock.unix
        return {
            "current secret": sign_headers(SECRET, body, now),
            "rotated secret": sign_headers(ROTATED_SECRET, body, now),
            "edge of the tolerance": sign_headers(SECRET, body, now - TOLERANCE),
        }

    def invalid_deliveries(self, body: bytes) -> dict[str, dict[str, str]]:
        now = self.clock.unix
        return {
            "malformed": {SIGNATURE_HEADER: "t=soon,v1"},
            "wrong secret": sign_headers("whsec_someone_else", body, now),
            "stale": sign_headers(SECRET, body, now - TOLERANCE - 1),
            "future": sign_headers(SECRET, body, now + TOLERANCE + 1),
            "not signed": {SIGNATURE_HEADER: f"t={now}"},
        }

    async def refund_outside(self, provider_payment_id: str, amount: Money) -> None:
        await self.fake.refund(
            RefundRequest(
                refund_id=uuid.uuid4(),
                idempotency_key=f"dashboard-{uuid.uuid4()}",
                provider_payment_id=provider_payment_id,
                amount=amount,
            )
        )

    async def reported_usage(self, provider_subscription_id: str) -> int:
        subscription = self.fake.subscriptions[provider_subscription_id]
        return sum(usage.quantity for usage in subscription.usage.values())


class TestFakeProviderContract(ProviderContract):
    @pytest.fixture
    def harness(self) -> FakeHarness:
        return FakeHarness()


class TestKeylessFakeProviderContract(ProviderContract):
    """The fake as a provider that ignores idempotency keys (Lemon Squeezy, much of PayPal)."""

    @pytest.fixture
    def harness(self) -> FakeHarness:
        return FakeHarness(idempotency_keys=False)
