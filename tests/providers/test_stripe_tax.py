"""Tax with Stripe: the customer's VAT number, Stripe Tax on checkouts, the tax Stripe reports."""

from __future__ import annotations

import dataclasses
import uuid
from decimal import Decimal

import httpx
import pytest

from fastapi_cashier.providers.base import CheckoutResult, SubscriptionChange, TaxRateRef, computes_tax
from fastapi_cashier.providers.stripe import StripeProvider
from fastapi_cashier.providers.stripe._invoices import invoice_snapshot
from fastapi_cashier.providers.stripe._tax_rates import tax_rate_key
from fastapi_cashier.settings import StripeSettings
from fastapi_cashier.statuses import PricingModel, ProrationBehavior

from .conftest import localstripe_provider
from .contract import CUSTOMER, SECRET, Clock, checkout_request, plan, synced
from .stripe_stub import StripeStub

pytestmark = pytest.mark.anyio


async def test_an_eu_vat_number_goes_to_the_customer(
    stripe_provider: StripeProvider, stub: StripeStub
) -> None:
    await stripe_provider.create_customer(
        dataclasses.replace(CUSTOMER, tax_id="FR40303265045"), idempotency_key="customer-fr"
    )
    await stripe_provider.create_customer(
        dataclasses.replace(CUSTOMER, tax_id="12-3456789"), idempotency_key="us"
    )
    first, second = stub.requests_to("POST", "/v1/customers")
    assert first.params["tax_id_data"] == [{"type": "eu_vat", "value": "FR40303265045"}]
    assert "tax_id_data" not in second.params


async def test_stripe_tax_is_off_unless_asked(
    stripe_provider: StripeProvider, stub: StripeStub, clock: Clock
) -> None:
    assert computes_tax(stripe_provider) is False
    await stripe_provider.create_checkout(checkout_request(clock))
    [sent] = stub.requests_to("POST", "/v1/checkout/sessions")
    assert "automatic_tax" not in sent.params


async def test_automatic_tax_turns_on_stripe_tax(stub: StripeStub, clock: Clock) -> None:
    settings = StripeSettings(api_key="sk_test_stub", webhook_secrets=[SECRET], automatic_tax=True)
    assert computes_tax(StripeProvider.from_settings(settings, tolerance_seconds=300)) is True
    async with httpx.AsyncClient(transport=stub.transport) as http_client:
        provider = StripeProvider(
            api_key="sk_test_stub",
            webhook_secrets=[SECRET],
            http_client=http_client,
            max_network_retries=0,
            clock=clock,
            automatic_tax=True,
        )
        await provider.create_checkout(checkout_request(clock))
    [sent] = stub.requests_to("POST", "/v1/checkout/sessions")
    assert sent.params["automatic_tax"] == {"enabled": "true"}


def _invoice(**fields: object) -> dict[str, object]:
    return {"id": "in_1", "status": "paid", "total": 1190, "currency": "eur", "amount_paid": 1190, **fields}


def test_the_tax_an_invoice_reports() -> None:
    current = _invoice(total_taxes=[{"amount": 150, "tax_behavior": "exclusive"}, {"amount": 40}])
    assert invoice_snapshot(current).tax == 190
    assert invoice_snapshot(_invoice(tax=190)).tax == 190
    assert invoice_snapshot(_invoice()).tax is None


# ---------------------------------------------------------------------- the library's VAT as Tax Rates

DE_19 = TaxRateRef(rate=Decimal(19), inclusive=False, country="DE", treatment="domestic")


async def _subscription_checkout(
    provider: StripeProvider, stub: StripeStub, clock: Clock, tax: TaxRateRef | None
) -> CheckoutResult:
    ref = await synced(provider, plan(2999))
    return await provider.create_checkout(
        checkout_request(clock, mode="subscription", amount=None, plan=ref, quantity=1, tax=tax)
    )


async def test_the_vat_goes_on_the_line_item_as_a_tax_rate_and_the_invoice_charges_the_gross(
    stripe_provider: StripeProvider, stub: StripeStub, clock: Clock
) -> None:
    result = await _subscription_checkout(stripe_provider, stub, clock, DE_19)
    [created] = stub.requests_to("POST", "/v1/tax_rates")
    assert created.params["percentage"] == "19.0"
    assert created.params["inclusive"] == "false"
    assert created.params["jurisdiction"] == "DE"
    assert created.params["metadata"] == {"cashier_key": tax_rate_key(DE_19)}
    assert created.headers["Idempotency-Key"] == f"tax-rate-{tax_rate_key(DE_19)}"
    [sent] = stub.requests_to("POST", "/v1/checkout/sessions")
    assert sent.params["line_items"][0]["tax_rates"] == [_only_rate(stub)]
    events = stub.complete_checkout(result.provider_session_id)
    invoice = next(e for e in events if e["type"] == "invoice.paid")["data"]["object"]
    snapshot = invoice_snapshot(invoice)
    # 29.99 net + 19 % = 35.69, as the library computes it (split_tax: 569.81 -> 570).
    library = DE_19.split(2999)
    assert (snapshot.total.amount, snapshot.tax, snapshot.amount_paid) == (
        library.gross,
        library.tax,
        library.gross,
    )
    paid_by = next(e for e in events if e["type"] == "payment_intent.succeeded")["data"]["object"]
    assert paid_by["amount"] == library.gross


def _only_rate(stub: StripeStub) -> str:
    [rate] = [obj["id"] for obj in stub.objects.values() if obj["object"] == "tax_rate"]
    return rate


async def test_a_tax_rate_is_reused_not_created_again(
    stripe_provider: StripeProvider, stub: StripeStub, clock: Clock
) -> None:
    await _subscription_checkout(stripe_provider, stub, clock, DE_19)
    await _subscription_checkout(stripe_provider, stub, clock, DE_19)
    assert len(stub.requests_to("POST", "/v1/tax_rates")) == 1
    # A new process (an empty cache) finds it by its key among the active Tax Rates.
    async with httpx.AsyncClient(transport=stub.transport) as http_client:
        fresh = StripeProvider(
            api_key="sk_test_stub",
            webhook_secrets=[SECRET],
            http_client=http_client,
            max_network_retries=0,
            clock=clock,
        )
        await _subscription_checkout(fresh, stub, clock, DE_19)
    assert len(stub.requests_to("POST", "/v1/tax_rates")) == 1
    # One look-up per process: the first before creating it, the second finding it.
    assert len(stub.requests_to("GET", "/v1/tax_rates")) == 2
    # Another rate, country or kind is another Tax Rate.
    fr_inclusive = TaxRateRef(rate=Decimal("5.5"), inclusive=True, country="FR", treatment="eu_consumer")
    await _subscription_checkout(stripe_provider, stub, clock, fr_inclusive)
    assert len(stub.requests_to("POST", "/v1/tax_rates")) == 2


async def test_no_tax_rate_with_stripe_tax_or_without_tax(stub: StripeStub, clock: Clock) -> None:
    async with httpx.AsyncClient(transport=stub.transport) as http_client:
        automatic = StripeProvider(
            api_key="sk_test_stub",
            webhook_secrets=[SECRET],
            http_client=http_client,
            max_network_retries=0,
            clock=clock,
            automatic_tax=True,
        )
        await _subscription_checkout(automatic, stub, clock, DE_19)
        plain = StripeProvider(
            api_key="sk_test_stub",
            webhook_secrets=[SECRET],
            http_client=http_client,
            max_network_retries=0,
            clock=clock,
        )
        await _subscription_checkout(plain, stub, clock, None)
    assert stub.requests_to("POST", "/v1/tax_rates") == []
    for sent in stub.requests_to("POST", "/v1/checkout/sessions"):
        assert "tax_rates" not in sent.params["line_items"][0]


async def test_a_plan_change_carries_the_new_plans_rate(
    stripe_provider: StripeProvider, stub: StripeStub, clock: Clock
) -> None:
    ref = await synced(stripe_provider, plan(999, pricing_model=PricingModel.FLAT))
    customer = stub._create_customer({"email": "reader@example.com"})["id"]
    subscription, _, _ = stub.add_subscription(
        customer, stub.find("price", ref.provider_price_id or ""), 1, metadata={}
    )
    reduced = TaxRateRef(rate=Decimal(7), inclusive=False, country="DE", treatment="domestic")
    await stripe_provider.update_subscription(
        SubscriptionChange(
            subscription_id=uuid.UUID(int=7),
            idempotency_key="change-to-ebooks",
            provider_subscription_id=subscription["id"],
            plan=ref,
            proration=ProrationBehavior.NONE,
            tax=reduced,
        )
    )
    [sent] = stub.requests_to("POST", f"/v1/subscriptions/{subscription['id']}")
    [rate] = [obj for obj in stub.objects.values() if obj["object"] == "tax_rate"]
    assert rate["percentage"] == 7.0
    assert sent.params["items"][0]["tax_rates"] == [rate["id"]]


async def test_tax_rates_are_created_and_found_again_at_localstripe(localstripe_url: str) -> None:
    # A treatment of its own: the shared localstripe keeps the Tax Rates of other tests.
    ref = TaxRateRef(
        rate=Decimal("5.5"), inclusive=False, country="FR", treatment=f"test-{uuid.uuid4().hex[:8]}"
    )
    async with httpx.AsyncClient() as http_client:
        first = await localstripe_provider(localstripe_url, http_client)._tax_rate_id(ref)
        again = await localstripe_provider(localstripe_url, http_client)._tax_rate_id(ref)
        assert again == first
        rate = await localstripe_provider(localstripe_url, http_client).client.v1.tax_rates.retrieve_async(
            first
        )
    assert (rate.percentage, rate.inclusive, rate.jurisdiction) == (5.5, False, "FR")
    assert rate.metadata["cashier_key"] == tax_rate_key(ref)


async def test_new_terms_alone_change_the_items_tax_rate(
    stripe_provider: StripeProvider, stub: StripeStub
) -> None:
    ref = await synced(stripe_provider, plan(2999))
    customer = stub._create_customer({"email": "b2b@example.com"})["id"]
    subscription, _, _ = stub.add_subscription(
        customer, stub.find("price", ref.provider_price_id or ""), 1, metadata={}
    )
    reverse = TaxRateRef(rate=Decimal(0), inclusive=False, country="FR", treatment="reverse_charge")
    await stripe_provider.update_subscription(
        SubscriptionChange(
            subscription_id=uuid.UUID(int=8),
            idempotency_key="tax-terms",
            provider_subscription_id=subscription["id"],
            proration=ProrationBehavior.NONE,
            tax=reverse,
        )
    )
    [sent] = stub.requests_to("POST", f"/v1/subscriptions/{subscription['id']}")
    item = sent.params["items"][0]
    assert set(item) == {"id", "tax_rates"}
    assert item["tax_rates"] == [_only_rate(stub)]
    assert sent.params["proration_behavior"] == "none"
