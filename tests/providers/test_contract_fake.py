"""The provider contract, run against the fake provider."""

from __future__ import annotations

import json

import pytest

from fastapi_cashier.money import Money
from fastapi_cashier.providers.fake import SIGNATURE_HEADER, FakeProvider
from fastapi_cashier.providers.fake_wire import sign_headers

from .contract import (
    ROTATED_SECRET,
    SECRET,
    TOLERANCE,
    Clock,
    ContractHarness,
    ProviderContract,
    checkout_request,
)


class FakeHarness(ContractHarness):
    def __init__(self) -> None:
        self.clock = Clock()
        self.fake = FakeProvider(
            webhook_secret=[SECRET, ROTATED_SECRET],
            auto_deliver=False,
            tolerance_seconds=TOLERANCE,
            clock=self.clock,
        )
        self.provider = self.fake

    async def paid_payment(self, amount: Money) -> str:
        session = await self.fake.create_checkout(checkout_request(self.clock, amount=amount))
        step = await self.fake.submit_checkout(session.provider_session_id, "succeeded")
        assert step.provider_payment_id is not None
        return step.provider_payment_id

    async def event_body(self) -> bytes:
        await self.paid_payment(Money(1000, "EUR"))
        return next(
            body
            for _, body in reversed(self.fake.sent_events)
            if json.loads(body)["type"] == "payment.succeeded"
        )

    def sign(self, body: bytes, *, secret: str, timestamp: int) -> dict[str, str]:
        return sign_headers(secret, body, timestamp)

    @property
    def signature_header(self) -> str:
        return SIGNATURE_HEADER


class TestFakeProviderContract(ProviderContract):
    @pytest.fixture
    def harness(self) -> FakeHarness:
        return FakeHarness()
