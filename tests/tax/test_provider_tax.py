"""A provider that computes tax itself (a merchant of record): its figures are recorded as reported."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from fastapi_cashier.money import Money
from fastapi_cashier.providers.base import InvoiceSnapshot, ProviderEvent, computes_tax
from fastapi_cashier.providers.lemonsqueezy import LemonSqueezyProvider
from fastapi_cashier.providers.lemonsqueezy._objects import invoice_snapshot as lemonsqueezy_invoice
from fastapi_cashier.statuses import InvoiceStatus

from ..http.conftest import Harness

pytestmark = [pytest.mark.anyio, pytest.mark.db]


async def test_only_a_provider_that_says_so_computes_tax(tax_harness: Harness) -> None:
    assert computes_tax(tax_harness.fake) is False
    tax_harness.fake.computes_tax = True  # type: ignore[attr-defined]
    assert computes_tax(tax_harness.fake) is True


async def invoice_event(harness: Harness, snapshot: InvoiceSnapshot) -> dict[str, object]:
    me = await harness.client.get("/billing/me", headers=harness.auth("mor-buyer"))
    event = ProviderEvent(
        provider="fake",
        id=f"evt_{snapshot.provider_invoice_id}",
        type="invoice.paid",
        occurred_at=datetime(2026, 12, 6, tzinfo=UTC),
        object_kind="invoice",
        object_id=snapshot.provider_invoice_id,
        snapshot=snapshot,
        local_ids={"customer_id": me.json()["id"]},
    )
    async with harness.payments.service() as svc:
        assert await svc.invoices.apply_snapshot(event, snapshot) is None
    listing = await harness.client.get("/billing/invoices", headers=harness.auth("mor-buyer"))
    invoice: dict[str, object] = listing.json()["items"][0]
    return invoice


LINE = {"description": "Pro", "quantity": 1, "unit_amount": 2500, "amount": 2500}


async def test_the_reported_tax_is_recorded_not_computed(tax_harness: Harness) -> None:
    # The buyer is German (19 % if computed here); the merchant of record reported 20 % French VAT.
    await tax_harness.client.put(
        "/billing/me/billing-profile", json={"country": "DE"}, headers=tax_harness.auth("mor-buyer")
    )
    tax_harness.fake.computes_tax = True  # type: ignore[attr-defined]
    snapshot = InvoiceSnapshot(
        provider_invoice_id="in_mor_1",
        status=InvoiceStatus.PAID,
        total=Money(3000, "EUR"),
        amount_paid=3000,
        lines=({**LINE},),
        tax=500,
        tax_rate="20",
    )
    invoice = await invoice_event(tax_harness, snapshot)
    assert (invoice["subtotal"], invoice["tax"], invoice["total"]) == (2500, 500, 3000)
    details = invoice["tax_details"]
    assert isinstance(details, dict)
    assert details["source"] == "provider"
    assert details["lines"] == []


async def test_without_a_reported_figure_the_tax_is_the_rest_of_the_total(tax_harness: Harness) -> None:
    tax_harness.fake.computes_tax = True  # type: ignore[attr-defined]
    snapshot = InvoiceSnapshot(
        provider_invoice_id="in_mor_2",
        status=InvoiceStatus.PAID,
        total=Money(2975, "EUR"),
        amount_paid=2975,
        lines=({**LINE},),
    )
    invoice = await invoice_event(tax_harness, snapshot)
    assert (invoice["subtotal"], invoice["tax"], invoice["total"]) == (2500, 475, 2975)


async def test_a_merchant_of_record_gets_no_tax_of_ours_and_invoices_one_offs_itself(
    exclusive_harness: Harness,
) -> None:
    """Tax-exclusive prices, a German consumer: with the library computing tax the one-off would
    charge 11.90; a merchant of record is asked for the 10.00 price and adds its own VAT."""
    await exclusive_harness.client.put(
        "/billing/me/billing-profile", json={"country": "DE"}, headers=exclusive_harness.auth("mor-buyer")
    )
    exclusive_harness.fake.computes_tax = True  # type: ignore[attr-defined]
    paid = await exclusive_harness.pay_one_off("mor-buyer", amount=1000)
    assert paid["session"]["amount"] == 1000
    assert paid["session"]["tax"] is None
    listing = await exclusive_harness.client.get(
        "/billing/invoices", headers=exclusive_harness.auth("mor-buyer")
    )
    assert listing.json()["items"] == []


def test_lemon_squeezy_reports_its_tax_and_the_line_is_the_rest() -> None:
    attributes = {
        "status": "paid",
        "currency": "EUR",
        "subtotal": 1999,
        "discount_total": 0,
        "tax": 319,
        "tax_inclusive": True,
        "total": 1999,
        "subscription_id": 9,
    }
    snapshot = lemonsqueezy_invoice({"type": "subscription-invoices", "id": "77", "attributes": attributes})
    assert snapshot.tax == 319
    assert [line["amount"] for line in snapshot.lines] == [1680]
    assert snapshot.total == Money(1999, "EUR")
    assert LemonSqueezyProvider.computes_tax is True
