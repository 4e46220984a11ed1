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
    checkout_request,
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

    async def paid_payment(self, amount: Money) -> str:
        session = await self.provider.create_checkout(checkout_request(self.clock, amount=amount))
        self.stub.complete_checkout(session.provider_session_id)
        intent = self.stub.find("checkout.session", session.provider_session_id)["payment_intent"]
        assert isinstance(intent, str)
        return intent

    async def event_body(self) -> bytes:
        await self.paid_payment(Money(1000, "EUR"))
        event = next(e for e in reversed(self.stub.events) if e["type"] == "payment_intent.succeeded")
        return signed_delivery(event, SECRET, timestamp=self.clock.unix)[1]

    def sign(self, body: bytes, *, secret: str, timestamp: int) -> dict[str, str]:
        header = stripe.WebhookSignature.generate_signature_header(body.decode(), secret, timestamp=timestamp)
        return {SIGNATURE_HEADER: header}

    @property
    def signature_header(self) -> str:
        return SIGNATURE_HEADER


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
