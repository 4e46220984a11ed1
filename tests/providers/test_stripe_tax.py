"""Tax with Stripe: the customer's VAT number, Stripe Tax on checkouts, the tax Stripe reports."""

from __future__ import annotations

import dataclasses

import httpx
import pytest

from fastapi_cashier.providers.base import computes_tax
from fastapi_cashier.providers.stripe import StripeProvider
from fastapi_cashier.providers.stripe._invoices import invoice_snapshot
from fastapi_cashier.settings import StripeSettings

from .contract import CUSTOMER, SECRET, Clock, checkout_request
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
