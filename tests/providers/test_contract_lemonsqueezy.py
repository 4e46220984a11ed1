"""The provider contract, run against the Lemon Squeezy adapter and the in-process Lemon Squeezy server."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator

import httpx
import pytest

from fastapi_cashier.money import Money
from fastapi_cashier.providers.base import PlanRef
from fastapi_cashier.providers.lemonsqueezy import SIGNATURE_HEADER, LemonSqueezyProvider

from .contract import (
    ROTATED_SECRET,
    SECRET,
    Clock,
    ContractHarness,
    ProviderContract,
    checkout_request,
)
from .lemonsqueezy_server import LemonSqueezyServer, Variant


class LemonSqueezyHarness(ContractHarness):
    """The adapter on a store that sells the contract's plans: a variant per plan and price."""

    customers_per_email = True

    def __init__(self, server: LemonSqueezyServer, http_client: httpx.AsyncClient) -> None:
        self.clock = Clock()
        self.server = server
        self.provider = LemonSqueezyProvider(
            api_key=server.api_key,
            store_id=str(server.store_id),
            webhook_secrets=[SECRET, ROTATED_SECRET],
            api_base="https://ls.test/v1",
            http_client=http_client,
        )
        self.orders: dict[str, int] = {}

    async def pay_checkout(self, provider_session_id: str) -> None:
        self.orders[provider_session_id] = await self.server.complete_checkout(int(provider_session_id))

    # A Lemon Squeezy checkout never names the order it became (its order_created does, through
    # the custom data): the harness reads it from the store, as the webhook would tell.
    async def paid_payment(self, amount: Money) -> str:
        session = await self.provider.create_checkout(checkout_request(self.clock, amount=amount))
        await self.pay_checkout(session.provider_session_id)
        return f"orders/{self.orders[session.provider_session_id]}"

    async def active_subscription(self, plan_ref: PlanRef, quantity: int = 1) -> str:
        session = await self.provider.create_checkout(
            checkout_request(self.clock, mode="subscription", amount=None, plan=plan_ref, quantity=quantity)
        )
        await self.pay_checkout(session.provider_session_id)
        order_id = self.orders[session.provider_session_id]
        (subscription_id,) = [
            id_ for id_, sub in self.server.subscriptions.items() if sub["order_id"] == order_id
        ]
        return str(subscription_id)

    async def event_body(self) -> bytes:
        await self.paid_payment(Money(1000, "EUR"))
        return next(
            body
            for _, body in reversed(self.server.sent)
            if json.loads(body)["meta"]["event_name"] == "order_created"
        )

    @staticmethod
    def _signed(body: bytes, secret: str) -> dict[str, str]:
        return {SIGNATURE_HEADER: hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()}

    def valid_deliveries(self, body: bytes) -> dict[str, dict[str, str]]:
        return {
            "current secret": self._signed(body, SECRET),
            "rotated secret": self._signed(body, ROTATED_SECRET),
        }

    def invalid_deliveries(self, body: bytes) -> dict[str, dict[str, str]]:
        good = self._signed(body, SECRET)[SIGNATURE_HEADER]
        return {
            "malformed": {SIGNATURE_HEADER: "sha256=" + good},
            "wrong secret": self._signed(body, "someone-elses-secret"),
            "empty": {SIGNATURE_HEADER: ""},
            "truncated": {SIGNATURE_HEADER: good[:-2]},
            "another body": self._signed(body + b" ", SECRET),
        }

    async def refund_outside(self, provider_payment_id: str, amount: Money) -> None:
        order_id = int(provider_payment_id.removeprefix("orders/"))
        order = self.server.orders[order_id]
        order["refunded_amount"] += amount.amount
        order["status"] = "refunded" if order["refunded_amount"] == order["total"] else "partial_refund"

    async def reported_usage(self, provider_subscription_id: str) -> int:
        item = self.server.subscriptions[int(provider_subscription_id)]["first_subscription_item"]["id"]
        return sum(
            record["quantity"]
            for record in self.server.usage_records.values()
            if record["subscription_item_id"] == item
        )


class TestLemonSqueezyProviderContract(ProviderContract):
    @pytest.fixture
    async def harness(self) -> AsyncIterator[LemonSqueezyHarness]:
        server = LemonSqueezyServer(currency="EUR", webhook_secret=SECRET)
        server.add_product(
            "Pro",
            [
                Variant(11, 0, "Pro monthly", 1500),
                Variant(13, 0, "Pro monthly", 1900),
                Variant(14, 0, "Premium monthly", 4000),
                Variant(15, 0, "API calls", 3, usage_based=True),
            ],
        )
        server.add_product("Payment", [Variant(21, 0, "Default", 100, is_subscription=False, interval=None)])
        async with httpx.AsyncClient(transport=server.transport()) as http_client:
            yield LemonSqueezyHarness(server, http_client)
