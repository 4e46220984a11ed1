"""The provider contract, run against the PayPal adapter on the in-process PayPal sandbox."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from fastapi_cashier.money import Money
from fastapi_cashier.providers.paypal._amounts import to_paypal_amount

from .contract import TOLERANCE, Clock, ContractHarness, ProviderContract
from .paypal_sandbox import PayPalSandbox
from .paypal_sandbox.fixtures import sandbox_provider


class PayPalHarness(ContractHarness):
    def __init__(self) -> None:
        self.sandbox = PayPalSandbox()
        self.clock = Clock()
        self.clock.now = self.sandbox.state.now
        self.paypal = sandbox_provider(self.sandbox, clock=self.clock, tolerance_seconds=TOLERANCE)
        self.provider = self.paypal

    async def _click(self, path: str) -> None:
        http = self.paypal.client.http
        page = await http.get(path)
        assert page.status_code == 200
        action = page.text.split('<form method="post" action="', 1)[1].split('"', 1)[0]
        answer = await http.post(action, data={"action": "approve"})
        assert answer.status_code == 303

    async def pay_checkout(self, provider_session_id: str) -> None:
        if provider_session_id.startswith("I-"):
            token = self.sandbox.state.subscriptions[provider_session_id]["_ba_token"]
            await self._click(f"/webapps/billing/subscriptions?ba_token={token}")
            return
        await self._click(f"/checkoutnow?token={provider_session_id}")
        # What the library does on the payer's return (or the approval webhook): capture.
        await self.paypal.complete_checkout(
            provider_session_id, idempotency_key=f"complete-{provider_session_id}"
        )

    async def event_body(self) -> bytes:
        await self.paid_payment(Money(1000, "EUR"))
        return next(
            body
            for _, body in reversed(self.sandbox.sent_events)
            if json.loads(body)["event_type"] == "PAYMENT.CAPTURE.COMPLETED"
        )

    def valid_deliveries(self, body: bytes) -> dict[str, dict[str, str]]:
        edge = self.sandbox.state.now.timestamp() - TOLERANCE
        return {
            "signed now": self.sandbox.sign(body),
            "edge of the tolerance": self.sandbox.sign(
                body, time=datetime.fromtimestamp(edge, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            ),
        }

    def invalid_deliveries(self, body: bytes) -> dict[str, dict[str, str]]:
        stale = datetime.fromtimestamp(self.sandbox.state.now.timestamp() - TOLERANCE - 1, UTC)
        good = self.sandbox.sign(body)
        other_host = {**good, "PAYPAL-CERT-URL": "https://attacker.example/v1/notifications/certs/CERT-1"}
        expired, unknown = self.sandbox.make_signer("expired"), self.sandbox.make_signer("unknown")
        current = self.sandbox.signer
        cases: dict[str, dict[str, str]] = {
            "malformed": {**good, "PAYPAL-TRANSMISSION-SIG": "not base64!"},
            "wrong secret": self.sandbox.sign(body, webhook_id="ANOTHER-LISTENER"),
            "stale": self.sandbox.sign(body, time=stale.strftime("%Y-%m-%dT%H:%M:%SZ")),
            "cert url on another host": other_host,
            "another algorithm": {**good, "PAYPAL-AUTH-ALGO": "SHA1withRSA"},
        }
        for name, signer in (("expired certificate", expired), ("unknown certificate", unknown)):
            self.sandbox.signer = signer
            cases[name] = self.sandbox.sign(body)
        self.sandbox.signer = current
        return cases

    async def refund_outside(self, provider_payment_id: str, amount: Money) -> None:
        await self.paypal.client.post(
            f"/v2/payments/captures/{provider_payment_id}/refund",
            operation="refund in the dashboard",
            request_id=f"dashboard-{provider_payment_id}",
            json={"amount": to_paypal_amount(amount)},
        )

    async def reported_usage(self, provider_subscription_id: str) -> int:
        raise AssertionError("PayPal declares no metered usage: the contract never asks")


class TestPayPalProviderContract(ProviderContract):
    @pytest.fixture
    async def harness(self) -> AsyncIterator[PayPalHarness]:
        harness = PayPalHarness()
        yield harness
        await harness.paypal.aclose()
