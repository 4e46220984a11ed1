"""The provider contract, run against the Stripe adapter and the recorded-shape Stripe stub."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import pytest
import stripe

from fastapi_cashier.money import Money
from fastapi_cashier.providers.stripe import SIGNATURE_HEADER, StripeProvider

from .contract import (
    ROTATED_SECRET,
    SECRET,
    TOLERANCE,
    Clock,
    ContractHarness,
    ProviderContract,
)
from .stripe_stub import StripeStub, signed_delivery


class StripeHarness(ContractHarness):
    def __init__(self, http_client: httpx.AsyncClient, stub: StripeStub, clock: Clock) -> None:
        self.clock = clock
        self.stub = stub
        self.provider = StripeProvider(
            api_key="sk_test_contract",
            webhook_secrets=[SECRET, ROTATED_SECRET],
            tolerance_seconds=TOLERANCE,
            http_client=http_client,
            max_network_retries=0,
            clock=clock,
        )

    async def pay_checkout(self, provider_session_id: str) -> None:
        events = self.stub.complete_checkout(provider_session_id)
        assert events

    async def event_body(self) -> bytes:
        await self.paid_payment(Money(1000, "EUR"))
        event = next(e for e in reversed(self.stub.events) if e["type"] == "payment_intent.succeeded")
        return signed_delivery(event, SECRET, timestamp=self.clock.unix)[1]

    def _signed(self, body: bytes, secret: str, timestamp: int) -> dict[str, str]:
        header = stripe.WebhookSignature.generate_signature_header(body.decode(), secret, timestamp=timestamp)
        return {SIGNATURE_HEADER: header}

    def valid_deliveries(self, body: bytes) -> dict[str, dict[str, str]]:
        now = self.clock.unix
        return {
            "current secret": self._signed(body, SECRET, now),
            "rotated secret": self._signed(body, ROTATED_SECRET, now),
            "edge of the tolerance": self._signed(body, SECRET, now - TOLERANCE),
        }

    def invalid_deliveries(self, body: bytes) -> dict[str, dict[str, str]]:
        now = self.clock.unix
        return {
            "malformed": {SIGNATURE_HEADER: "t=soon,v1"},
            "wrong secret": self._signed(body, "whsec_someone_else", now),
            "stale": self._signed(body, SECRET, now - TOLERANCE - 1),
            "future": self._signed(body, SECRET, now + TOLERANCE + 1),
            "not signed": {SIGNATURE_HEADER: f"t={now}"},
        }

    async def refund_outside(self, provider_payment_id: str, amount: Money) -> None:
        self.stub.handle(
            httpx.Request(
                "POST",
                "https://api.stripe.com/v1/refunds",
                data={"payment_intent": provider_payment_id, "amount": str(amount.amount)},
            )
        )

    async def reported_usage(self, provider_subscription_id: str) -> int:
        customer = self.stub.find("subscription", provider_subscription_id)["customer"]
        # Stripe counts one meter event per identifier.
        counted = {
            event["identifier"]: int(event["payload"]["value"])
            for event in self.stub.meter_events
            if event["payload"]["stripe_customer_id"] == customer
        }
        return sum(counted.values())


class TestStripeProviderContract(ProviderContract):
    @pytest.fixture
    async def harness(self) -> AsyncIterator[StripeHarness]:
        clock = Clock()
        stub = StripeStub(clock=lambda: clock.unix)
        async with httpx.AsyncClient(transport=stub.transport) as http_client:
            yield StripeHarness(http_client, stub, clock)


def test_the_stub_speaks_json() -> None:
    # The stub's events are what the SDK's signing helper signs: plain JSON text.
    stub = StripeStub()
    event = stub.event("customer.created", {"id": "cus_1", "object": "customer"})
    headers, body = signed_delivery(event, SECRET, timestamp=1)
    assert json.loads(body)["data"]["object"]["id"] == "cus_1"
    assert headers[SIGNATURE_HEADER].startswith("t=1,v1=")
