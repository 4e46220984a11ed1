"""A provider that computes tax itself (a merchant of record): its figures are recorded as reported."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from fastapi_cashier.money import Money
from fastapi_cashier.providers.base import InvoiceSnapshot, ProviderEvent, computes_tax
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
