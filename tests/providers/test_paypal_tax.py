"""The PayPal adapter and the library's VAT: the plan override on create and revise, the PATCH of a
tax-only change, sales billed with the tax added (the sandbox, as PayPal documents it)."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal
from typing import Any

import pytest

from fastapi_cashier.errors import InvalidProviderRequestError, WebhookError
from fastapi_cashier.money import Money
from fastapi_cashier.providers.base import PlanRef, SubscriptionChange, TaxRateRef
from fastapi_cashier.providers.paypal import PayPalClient
from fastapi_cashier.providers.paypal._catalog import sync_plans
from fastapi_cashier.providers.paypal._events import parse_event
from fastapi_cashier.providers.paypal._objects import sale_invoice_snapshot
from fastapi_cashier.providers.paypal._subscriptions import (
    create_subscription,
    revise_request,
    subscription_request,
    tax_patch,
    tax_percentage,
)
from fastapi_cashier.statuses import BillingInterval, PricingModel, ProrationBehavior, SubscriptionStatus

from .paypal_sandbox import PayPalSandbox
from .paypal_sandbox.fixtures import sandbox_provider
from .paypal_spec import assert_matches
from .test_paypal_operations import checkout
from .test_paypal_sandbox import click

pytestmark = pytest.mark.anyio

DE = TaxRateRef(rate=Decimal("19"), inclusive=False, country="DE")
REVERSE = TaxRateRef(rate=Decimal("0"), inclusive=False, country=None, treatment="reverse_charge")
SYNCED = PlanRef(uuid.uuid4(), "Solo", Money(2999, "EUR"), BillingInterval.MONTH, provider_price_id="P-1")


@pytest.mark.parametrize(
    ("rate", "text"),
    [("19", "19"), ("19.00", "19"), ("5.5", "5.5"), ("0", "0"), ("7.70", "7.7"), ("100", "100")],
)
def test_the_rate_is_paypals_fixed_point_percentage(rate: str, text: str) -> None:
    assert tax_percentage(TaxRateRef(rate=Decimal(rate), inclusive=False)) == text


def test_a_negative_rate_is_refused() -> None:
    with pytest.raises(InvalidProviderRequestError, match="negative"):
        tax_percentage(TaxRateRef(rate=Decimal("-1"), inclusive=False))


def test_a_subscription_checkout_carries_the_rate_as_a_plan_override() -> None:
    body = subscription_request(checkout(None, mode="subscription", plan=SYNCED, tax=DE))
    assert body["plan"] == {"taxes": {"percentage": "19", "inclusive": False}}
    assert_matches("billing_subscriptions_v1", "subscription_request_post", body)
    inclusive = TaxRateRef(rate=Decimal("5.5"), inclusive=True, country="FR")
    body = subscription_request(checkout(None, mode="subscription", plan=SYNCED, tax=inclusive))
    assert body["plan"] == {"taxes": {"percentage": "5.5", "inclusive": True}}
    # Tax off: no override at all.
    assert "plan" not in subscription_request(checkout(None, mode="subscription", plan=SYNCED))


def test_a_revise_carries_the_rate_and_a_tax_only_change_is_a_patch() -> None:
    body = revise_request(
        plan_id="P-2",
        quantity=None,
        return_url="https://shop.example/ok",
        cancel_url="https://shop.example/no",
        tax=DE,
    )
    assert body["plan"] == {"taxes": {"percentage": "19", "inclusive": False}}
    assert_matches("billing_subscriptions_v1", "subscription_revise_request", body)
    patch = tax_patch(REVERSE)
    assert patch == [
        {"op": "add", "path": "/plan/taxes/percentage", "value": "0"},
        {"op": "add", "path": "/plan/taxes/inclusive", "value": False},
    ]
    assert_matches("billing_subscriptions_v1", "patch_request", patch)


async def _active_subscription(
    sandbox: PayPalSandbox, client: PayPalClient, *, tax: TaxRateRef | None, amount: int = 2999
) -> dict[str, Any]:
    plan = PlanRef(
        uuid.uuid4(), "Pro", Money(amount, "EUR"), BillingInterval.MONTH, pricing_model=PricingModel.FLAT
    )
    synced = PlanRef(
        **{
            **{f: getattr(plan, f) for f in plan.__slots__},
            "provider_price_id": (await sync_plans(client, [plan]))[plan.id],
        }  # type: ignore[arg-type]
    )
    sub_id, url = await create_subscription(client, checkout(None, mode="subscription", plan=synced, tax=tax))
    await click(client, url, "approve")
    sub: dict[str, Any] = sandbox.state.subscriptions[sub_id]
    return sub


def _sales(sandbox: PayPalSandbox) -> list[dict[str, Any]]:
    return [
        json.loads(body)["resource"] for _, body in sandbox.sent_events if b"PAYMENT.SALE.COMPLETED" in body
    ]


async def test_the_sandbox_adds_exclusive_tax_to_every_sale(
    paypal_sandbox: PayPalSandbox, paypal_client: PayPalClient
) -> None:
    sub = await _active_subscription(paypal_sandbox, paypal_client, tax=DE)
    await paypal_sandbox.advance(32 * 24 * 3600)
    first, renewal = _sales(paypal_sandbox)
    for sale in (first, renewal):
        assert sale["amount"] == {
            "total": "35.69",
            "currency": "EUR",
            "details": {"subtotal": "29.99", "tax": "5.70"},
        }
        invoice, payment = sale_invoice_snapshot(sale)
        assert invoice.total == Money(3569, "EUR")
        assert payment.amount == Money(3569, "EUR")
        assert [line["amount"] for line in invoice.lines] == [2999]  # the price PayPal taxed
    assert sub["billing_info"]["last_payment"]["amount"]["value"] == "35.69"


async def test_inclusive_or_no_taxes_bill_the_price(
    paypal_sandbox: PayPalSandbox, paypal_client: PayPalClient
) -> None:
    await _active_subscription(
        paypal_sandbox, paypal_client, tax=TaxRateRef(rate=Decimal("19"), inclusive=True, country="DE")
    )
    await _active_subscription(paypal_sandbox, paypal_client, tax=None)
    inclusive, untaxed = _sales(paypal_sandbox)
    for sale in (inclusive, untaxed):
        assert sale["amount"] == {"total": "29.99", "currency": "EUR", "details": {"subtotal": "29.99"}}
        assert [line["amount"] for line in sale_invoice_snapshot(sale)[0].lines] == [2999]


async def test_the_sandbox_rounds_the_tax_half_up(
    paypal_sandbox: PayPalSandbox, paypal_client: PayPalClient
) -> None:
    await _active_subscription(paypal_sandbox, paypal_client, tax=DE, amount=2950)
    [sale] = _sales(paypal_sandbox)
    assert sale["amount"]["details"] == {"subtotal": "29.50", "tax": "5.61"}  # 5.605 up
    assert sale["amount"]["total"] == "35.11"


async def test_a_tax_only_change_patches_without_approval(paypal_sandbox: PayPalSandbox) -> None:
    provider = sandbox_provider(paypal_sandbox)
    try:
        sub = await _active_subscription(paypal_sandbox, provider.client, tax=DE)
        change = SubscriptionChange(
            subscription_id=uuid.uuid4(),
            idempotency_key="tax-1",
            provider_subscription_id=sub["id"],
            proration=ProrationBehavior.NONE,
            tax=REVERSE,
        )
        result = await provider.update_subscription(change)
        assert result.approval_url is None
        assert result.snapshot.status is SubscriptionStatus.ACTIVE
        assert sub["plan"]["taxes"] == {"percentage": "0", "inclusive": False}
        assert "_pending_revision" not in sub
        await paypal_sandbox.advance(32 * 24 * 3600)
        assert _sales(paypal_sandbox)[-1]["amount"]["total"] == "29.99"

        # Nothing to change: a read, no call that changes anything.
        calls = len(paypal_sandbox.state.calls)
        nothing = SubscriptionChange(
            subscription_id=uuid.uuid4(),
            idempotency_key="nothing-1",
            provider_subscription_id=sub["id"],
            proration=ProrationBehavior.NONE,
        )
        assert (await provider.update_subscription(nothing)).approval_url is None
        assert all(
            path.endswith("/token") or method == "GET"
            for method, path, _ in paypal_sandbox.state.calls[calls:]
        )

        # A cancelled subscription's taxes cannot change: PayPal's refusal is raised.
        await provider.cancel_subscription(sub["id"], at_period_end=False, idempotency_key="cancel-1")
        with pytest.raises(InvalidProviderRequestError):
            await provider.update_subscription(change)
    finally:
        await provider.aclose()


async def test_the_sandbox_refuses_a_malformed_percentage(
    paypal_sandbox: PayPalSandbox, paypal_client: PayPalClient
) -> None:
    plan = PlanRef(uuid.uuid4(), "Pro", Money(2999, "EUR"), BillingInterval.MONTH)
    price_id = (await sync_plans(paypal_client, [plan]))[plan.id]
    answer = await paypal_client.http.post(
        "/v1/billing/subscriptions",
        json={"plan_id": price_id, "plan": {"taxes": {"percentage": "19%", "inclusive": False}}},
        headers={
            "Authorization": f"Bearer {await paypal_client.access_token()}",
            "PayPal-Request-Id": "bad-percentage",
        },
    )
    assert answer.status_code == 400
    assert answer.json()["details"][0]["issue"] == "INVALID_PARAMETER_SYNTAX"


def _sale_event(amount: dict[str, Any]) -> bytes:
    return json.dumps(
        {
            "id": "WH-TAX-1",
            "event_type": "PAYMENT.SALE.COMPLETED",
            "resource_type": "sale",
            "create_time": "2026-01-01T10:00:00Z",
            "resource": {
                "id": "SALE-1",
                "state": "completed",
                "amount": amount,
                "billing_agreement_id": "I-ABC",
                "create_time": "2026-01-01T10:00:00Z",
            },
        }
    ).encode()


def test_a_sale_line_is_what_was_billed_before_the_tax_paypal_added() -> None:
    event = parse_event(
        _sale_event({"total": "35.69", "currency": "EUR", "details": {"subtotal": "29.99", "tax": "5.70"}})
    )
    assert event.snapshot is not None
    assert event.snapshot.total == Money(3569, "EUR")  # type: ignore[union-attr]
    assert [line["amount"] for line in event.snapshot.lines] == [2999]  # type: ignore[union-attr]
    with pytest.raises(WebhookError, match="does not fit"):
        parse_event(
            _sale_event({"total": "5.00", "currency": "EUR", "details": {"subtotal": "0", "tax": "6.00"}})
        )
    with pytest.raises(WebhookError):
        parse_event(_sale_event({"total": "5.00", "currency": "EUR", "details": {"tax": "1.001"}}))
