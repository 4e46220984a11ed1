"""What the provider charges is the invoice's gross, to the minor unit, for every buyer of the
acceptance table, with tax-exclusive and tax-inclusive prices, for subscriptions (first invoice
and renewal) and one-off payments (which get a numbered invoice of their own).

Tax-exclusive prices (29.99 EUR net a month, 10.00 EUR net once), German seller:

=====================================  ======  ===================  ===================
Buyer                                  Rate    Subscription gross   One-off gross
=====================================  ======  ===================  ===================
German consumer                        19 %    35.69 (5.70 VAT)     11.90 (1.90 VAT)
French business, VAT number confirmed  0 %     29.99                10.00
French business, VIES cannot confirm   20 %    35.99 (6.00 VAT)     12.00 (2.00 VAT)
US customer                            0 %     29.99                10.00
Tax-exempt customer                    0 %     29.99                10.00
=====================================  ======  ===================  ===================

Tax-inclusive prices charge the price itself; the acceptance test has the splits of 29.99, and
10.00 splits into 8.40 + 1.60 (19 %) and 8.33 + 1.67 (20 %).
"""

from __future__ import annotations

import io
import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pypdf import PdfReader

from fastapi_cashier import PaymentsRouter
from fastapi_cashier.db.models import Invoice

from ..http.conftest import Harness, settings_for
from ..http.test_subscriptions import create_plan, subscribe
from .conftest import running
from .test_acceptance import EXPECTED, _set_up_buyer

pytestmark = [pytest.mark.anyio, pytest.mark.db]

PRICE = 2999
ONE_OFF = 1000

# buyer: (net, tax, gross) with tax-exclusive prices
SUBSCRIPTION_EXCLUSIVE: dict[str, tuple[int, int, int]] = {
    "de-consumer": (2999, 570, 3569),
    "fr-business": (2999, 0, 2999),
    "fr-unconfirmed": (2999, 600, 3599),
    "us-customer": (2999, 0, 2999),
    "exempt": (2999, 0, 2999),
}
ONE_OFF_EXCLUSIVE: dict[str, tuple[int, int, int]] = {
    "de-consumer": (1000, 190, 1190),
    "fr-business": (1000, 0, 1000),
    "fr-unconfirmed": (1000, 200, 1200),
    "us-customer": (1000, 0, 1000),
    "exempt": (1000, 0, 1000),
}
ONE_OFF_INCLUSIVE: dict[str, tuple[int, int, int]] = {
    "de-consumer": (840, 160, 1000),
    "fr-business": (1000, 0, 1000),
    "fr-unconfirmed": (833, 167, 1000),
    "us-customer": (1000, 0, 1000),
    "exempt": (1000, 0, 1000),
}


def _subscription_expected(inclusive: bool) -> dict[str, tuple[int, int, int]]:
    if not inclusive:
        return SUBSCRIPTION_EXCLUSIVE
    return {buyer: (net, tax, PRICE) for buyer, (_, _, net, tax, _) in EXPECTED.items()}


async def _invoices(harness: Harness, subject: str) -> list[dict[str, Any]]:
    listing = await harness.client.get("/billing/invoices", headers=harness.auth(subject))
    assert listing.status_code == 200, listing.text
    items: list[dict[str, Any]] = listing.json()["items"]
    return items


async def _charged_at_the_provider(harness: Harness, invoice_id: str) -> int:
    """What the fake provider charged for the local invoice ``invoice_id`` (its payment's amount)."""
    async with harness.payments.service() as svc:
        row = await svc.session.get(Invoice, uuid.UUID(invoice_id))
        assert row is not None
        assert row.provider_invoice_id is not None
        provider_invoice_id = row.provider_invoice_id
    provider_invoice = harness.fake.invoices[provider_invoice_id]
    assert provider_invoice.payment is not None
    charged = harness.fake.payments[provider_invoice.payment].amount.amount
    assert provider_invoice.total.amount == charged
    return charged


@pytest.mark.parametrize("inclusive", [False, True], ids=["tax-exclusive", "tax-inclusive"])
async def test_subscriptions_charge_the_invoice_gross(
    engine: Any, database_url: str, vies: tuple[Any, str], inclusive: bool
) -> None:
    expected = _subscription_expected(inclusive)
    async with running(database_url, vies[1], prices_include_tax=inclusive) as harness:
        plan = await create_plan(harness, name="Pro", pricing_model="flat", unit_amount=PRICE)
        for subject in expected:
            await _set_up_buyer(harness, subject)
            await subscribe(harness, plan["id"], subject=subject)
        await harness.fake.advance(days=32)  # every subscription renews once
        for subject, (net, tax, gross) in expected.items():
            invoices = await _invoices(harness, subject)
            assert len(invoices) == 2, (subject, invoices)
            for invoice in invoices:
                assert (invoice["subtotal"], invoice["tax"], invoice["total"]) == (net, tax, gross), subject
                assert invoice["amount_paid"] == gross
                assert await _charged_at_the_provider(harness, invoice["id"]) == gross, subject
                assert invoice["lines"][0]["amount"] == PRICE  # the price as configured
            payments = await harness.client.get("/billing/payments", headers=harness.auth(subject))
            assert [p["amount"] for p in payments.json()["items"]] == [gross, gross]


@pytest.mark.parametrize("inclusive", [False, True], ids=["tax-exclusive", "tax-inclusive"])
async def test_one_off_payments_get_numbered_invoices_of_what_was_charged(
    engine: Any, database_url: str, vies: tuple[Any, str], inclusive: bool
) -> None:
    expected = ONE_OFF_INCLUSIVE if inclusive else ONE_OFF_EXCLUSIVE
    async with running(database_url, vies[1], prices_include_tax=inclusive) as harness:
        numbers = []
        for subject, (net, tax, gross) in expected.items():
            await _set_up_buyer(harness, subject)
            paid = await harness.pay_one_off(subject, amount=ONE_OFF)
            session = paid["session"]
            assert session["amount"] == gross
            provider_payment = next(
                p
                for p in harness.fake.payments.values()
                if p.metadata.get("checkout_session_id") == session["id"]
            )
            assert provider_payment.amount.amount == gross
            [invoice] = await _invoices(harness, subject)
            assert invoice["status"] == "paid"
            assert invoice["subscription_id"] is None
            assert (invoice["subtotal"], invoice["tax"], invoice["total"], invoice["amount_paid"]) == (
                net,
                tax,
                gross,
                gross,
            ), subject
            [line] = invoice["lines"]
            assert (line["description"], line["quantity"], line["amount"]) == ("Concert ticket", 1, ONE_OFF)
            treatment, rate, *_ = EXPECTED[subject]
            details = invoice["tax_details"]
            assert details["treatment"] == treatment
            assert details["lines"] == [{"rate": rate, "net": net, "tax": tax, "gross": gross}]
            payment = await harness.client.get(
                f"/billing/payments/{session['payment_id']}", headers=harness.auth(subject)
            )
            assert payment.json()["amount"] == gross
            numbers.append(invoice["number"])
        assert numbers == [f"INV-{n:06d}" for n in range(1, 6)]


async def test_a_one_off_invoice_is_a_document_for_its_owner_and_admins(exclusive_harness: Harness) -> None:
    harness = exclusive_harness
    await _set_up_buyer(harness, "de-consumer")
    await harness.pay_one_off("de-consumer", amount=ONE_OFF)
    [invoice] = await _invoices(harness, "de-consumer")
    url = f"/billing/invoices/{invoice['id']}"
    pdf = await harness.client.get(f"{url}.pdf", headers=harness.auth("de-consumer"))
    assert pdf.status_code == 200, pdf.text
    assert f'filename="{invoice["number"]}.pdf"' in pdf.headers["content-disposition"]
    text = " ".join(
        " ".join((page.extract_text() or "").split()) for page in PdfReader(io.BytesIO(pdf.content)).pages
    )
    assert f"Invoice {invoice['number']}" in text
    assert "Concert ticket" in text
    assert "Net EUR 10.00" in text
    assert "VAT 19 % on EUR 10.00 EUR 1.90" in text
    assert "Total EUR 11.90" in text
    assert "Amount due EUR 0.00" in text
    page = await harness.client.get(f"{url}.html", headers=harness.auth("root", admin=True))
    assert page.status_code == 200
    assert f"<h1>Invoice {invoice['number']}</h1>" in page.text
    assert "EUR 1.90" in page.text
    other = await harness.client.get(f"{url}.pdf", headers=harness.auth("mallory"))
    assert other.status_code == 404


async def test_no_invoice_for_a_declined_one_off_payment(exclusive_harness: Harness) -> None:
    await _set_up_buyer(exclusive_harness, "de-consumer")
    await exclusive_harness.pay_one_off("de-consumer", amount=ONE_OFF, outcome="declined")
    assert await _invoices(exclusive_harness, "de-consumer") == []


async def test_without_a_seller_a_one_off_payment_gets_no_invoice(engine: Any, database_url: str) -> None:
    settings = settings_for(database_url, database={"url": database_url, "create_tables": False})
    payments = PaymentsRouter(settings)
    app = FastAPI()
    app.include_router(payments, prefix="/billing")
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            harness = Harness(app=app, payments=payments, client=client, settings=settings)
            paid = await harness.pay_one_off(amount=ONE_OFF)
            assert paid["session"]["amount"] == ONE_OFF
            assert paid["session"]["status"] == "complete"
            assert await _invoices(harness, "alice") == []


async def test_a_confirmed_manual_payment_gets_its_invoice_with_the_vat_inside(
    exclusive_harness: Harness,
) -> None:
    """An admin records 119.00 EUR received by bank transfer from a German consumer: the money
    received is the gross, so the invoice shows 100.00 net and 19.00 VAT, and a refund of it all
    returns exactly that VAT."""
    harness = exclusive_harness
    await _set_up_buyer(harness, "de-consumer")
    me = await harness.client.get("/billing/me", headers=harness.auth("de-consumer"))
    admin = harness.auth("clerk", admin=True)
    recorded = await harness.client.post(
        "/billing/admin/payments",
        json={
            "customer_id": me.json()["id"],
            "amount": 11_900,
            "currency": "EUR",
            "method": "bank_transfer",
            "description": "Workshop fee",
        },
        headers=admin,
    )
    assert recorded.status_code == 201, recorded.text
    assert await _invoices(harness, "de-consumer") == []  # not before it is confirmed
    confirmed = await harness.client.patch(
        f"/billing/admin/payments/{recorded.json()['id']}/status", json={"status": "succeeded"}, headers=admin
    )
    assert confirmed.status_code == 200, confirmed.text
    [invoice] = await _invoices(harness, "de-consumer")
    assert (invoice["number"], invoice["status"]) == ("INV-000001", "paid")
    assert (invoice["subtotal"], invoice["tax"], invoice["total"], invoice["amount_paid"]) == (
        10_000,
        1_900,
        11_900,
        11_900,
    )
    assert [line["description"] for line in invoice["lines"]] == ["Workshop fee"]
    refund = await harness.client.post(
        f"/billing/admin/payments/{recorded.json()['id']}/refunds", json={}, headers=admin
    )
    assert (refund.json()["net_amount"], refund.json()["tax_amount"]) == (10_000, 1_900)


async def test_when_vies_confirms_the_number_later_the_provider_charges_the_new_gross(
    engine: Any, database_url: str, vies: tuple[Any, str]
) -> None:
    """A French business subscribes while VIES cannot confirm its number (20 % French VAT: 35.99
    charged); VIES confirms it at the next check: the provider is told, and the renewal is a
    reverse charge of 29.99, charged and invoiced alike."""
    state, url = vies
    number = "FR44732829320"
    async with running(database_url, url, prices_include_tax=False) as harness:
        plan = await create_plan(harness, name="Pro", pricing_model="flat", unit_amount=PRICE)
        state.unavailable_numbers.add(number)
        try:
            saved = await harness.client.put(
                "/billing/me/billing-profile",
                json={"legal_name": "Tardive SARL", "country": "FR", "tax_id": number},
                headers=harness.auth("late"),
            )
            assert saved.json()["tax_id_status"] == "unverified"
            await subscribe(harness, plan["id"], subject="late")
            state.unavailable_numbers.discard(number)
            state.valid[number] = ("TARDIVE SARL", "1 RUE EXEMPLE 69001 LYON")
            me = await harness.client.get("/billing/me", headers=harness.auth("late"))
            checked = await harness.client.post(
                f"/billing/admin/customers/{me.json()['id']}/tax-id-check",
                headers=harness.auth("root", admin=True),
            )
            assert checked.json()["tax_id_status"] == "valid", checked.text
        finally:
            state.unavailable_numbers.discard(number)
            state.valid.pop(number, None)
        await harness.fake.advance(days=32)
        renewal, first = await _invoices(harness, "late")
        assert (first["tax"], first["total"]) == (600, 3599)
        assert await _charged_at_the_provider(harness, first["id"]) == 3599
        assert (renewal["tax"], renewal["total"], renewal["tax_details"]["treatment"]) == (
            0,
            2999,
            "reverse_charge",
        )
        assert await _charged_at_the_provider(harness, renewal["id"]) == 2999
        assert "provider_total" not in (await _invoice_metadata(harness, renewal["id"]))


async def _invoice_metadata(harness: Harness, invoice_id: str) -> dict[str, Any]:
    async with harness.payments.service() as svc:
        row = await svc.session.get(Invoice, uuid.UUID(invoice_id))
        assert row is not None
        return dict(row.metadata_ or {})


async def test_a_buyer_who_moves_abroad_is_charged_the_new_gross_from_the_next_invoice(
    exclusive_harness: Harness,
) -> None:
    harness = exclusive_harness
    plan = await create_plan(harness, name="Pro", pricing_model="flat", unit_amount=PRICE)
    await _set_up_buyer(harness, "de-consumer")
    await subscribe(harness, plan["id"], subject="de-consumer")
    events_before = len(harness.fake.sent_events)
    moved = await harness.client.put(
        "/billing/me/billing-profile",
        json={"legal_name": "Erika Mustermann", "city": "Boston", "country": "US"},
        headers=harness.auth("de-consumer"),
    )
    assert moved.status_code == 200, moved.text
    assert len(harness.fake.sent_events) == events_before + 1  # subscription.updated: the new VAT
    # Saving the same terms again tells the provider nothing.
    await harness.client.put(
        "/billing/me/billing-profile",
        json={"legal_name": "Erika M.", "city": "Boston", "country": "US"},
        headers=harness.auth("de-consumer"),
    )
    assert len(harness.fake.sent_events) == events_before + 1
    await harness.fake.advance(days=32)
    renewal, first = await _invoices(harness, "de-consumer")
    assert (first["total"], await _charged_at_the_provider(harness, first["id"])) == (3569, 3569)
    assert (renewal["total"], await _charged_at_the_provider(harness, renewal["id"])) == (2999, 2999)
    assert renewal["tax_details"]["treatment"] == "export"
