"""Issue 15's acceptance: five buyers subscribe through the fake provider; their invoices are
taxed right to the cent, with the right mentions, on every database.

The seller is German, prices are tax-inclusive (29.99 EUR a month for everyone), so:

=====================================  ===========  ======  =====  =====  ===================
Buyer                                  Rule         Rate    Net    Tax    Mention
=====================================  ===========  ======  =====  =====  ===================
German consumer                        domestic     19 %    25.20  4.79   -
French business, VAT number confirmed  reverse      0 %     29.99  0.00   reverse charge
French business, VIES cannot confirm   consumer FR  20 %    24.99  5.00   -
US customer                            export       0 %     29.99  0.00   export
Tax-exempt customer (admin, reason)    exempt       0 %     29.99  0.00   the reason
=====================================  ===========  ======  =====  =====  ===================
"""

from __future__ import annotations

import html
import io
from fractions import Fraction
from typing import Any

import pytest
from pypdf import PdfReader

from fastapi_cashier.tax import EXPORT_MENTION, REVERSE_CHARGE_MENTION

from ..http.conftest import Harness
from ..http.test_subscriptions import URLS, create_plan, subscribe
from .conftest import UNCONFIRMED_FR, VALID_FR, running

pytestmark = [pytest.mark.anyio, pytest.mark.db]

PRICE = 2999
EXEMPTION = "Diplomatic mission, Art. 151(1)(a) Directive 2006/112/EC"

BUYERS: dict[str, dict[str, Any]] = {
    "de-consumer": {
        "legal_name": "Erika Mustermann",
        "city": "Köln",
        "postal_code": "50667",
        "country": "DE",
    },
    "fr-business": {
        "legal_name": "Exemple SAS",
        "city": "Paris",
        "postal_code": "75002",
        "country": "FR",
        "tax_id": VALID_FR,
    },
    "fr-unconfirmed": {
        "legal_name": "Société Incertaine SARL",
        "city": "Lyon",
        "country": "FR",
        "tax_id": UNCONFIRMED_FR,
    },
    "us-customer": {"legal_name": "Acme Inc.", "city": "Springfield", "state": "IL", "country": "US"},
    "exempt": {"legal_name": "Embassy of Example", "city": "Berlin", "country": "DE"},
}

# buyer: (treatment, rate, net, tax, mentions)
EXPECTED: dict[str, tuple[str, str, int, int, list[str]]] = {
    "de-consumer": ("domestic", "19", 2520, 479, []),
    "fr-business": ("reverse_charge", "0", 2999, 0, [REVERSE_CHARGE_MENTION]),
    "fr-unconfirmed": ("eu_consumer", "20", 2499, 500, []),
    "us-customer": ("export", "0", 2999, 0, [EXPORT_MENTION]),
    "exempt": ("exempt", "0", 2999, 0, [EXEMPTION]),
}


async def _set_up_buyer(harness: Harness, subject: str) -> None:
    saved = await harness.client.put(
        "/billing/me/billing-profile", json=BUYERS[subject], headers=harness.auth(subject)
    )
    assert saved.status_code == 200, saved.text
    if subject == "exempt":
        me = await harness.client.get("/billing/me", headers=harness.auth(subject))
        exempted = await harness.client.put(
            f"/billing/admin/customers/{me.json()['id']}/tax-exemption",
            json={"tax_exempt": True, "reason": EXEMPTION},
            headers=harness.auth("root", admin=True),
        )
        assert exempted.status_code == 200, exempted.text


async def _only_invoice(harness: Harness, subject: str) -> dict[str, Any]:
    listing = await harness.client.get("/billing/invoices", headers=harness.auth(subject))
    items = listing.json()["items"]
    assert len(items) == 1, items
    invoice: dict[str, Any] = items[0]
    return invoice


async def test_five_buyers_get_invoices_taxed_to_the_cent(tax_harness: Harness) -> None:
    plan = await create_plan(tax_harness, name="Pro", pricing_model="flat", unit_amount=PRICE)
    numbers = []
    for subject, (treatment, rate, net, tax, mentions) in EXPECTED.items():
        await _set_up_buyer(tax_harness, subject)
        subscription = await subscribe(tax_harness, plan["id"], subject=subject)
        assert subscription["status"] == "active"
        invoice = await _only_invoice(tax_harness, subject)
        assert invoice["status"] == "paid"
        assert (invoice["subtotal"], invoice["tax"], invoice["total"]) == (net, tax, PRICE), subject
        assert invoice["amount_paid"] == PRICE
        details = invoice["tax_details"]
        assert details["source"] == "computed"
        assert details["treatment"] == treatment, subject
        assert details["mentions"] == mentions, subject
        assert details["lines"] == [{"rate": rate, "net": net, "tax": tax, "gross": PRICE}]
        assert details["seller"]["vat_number"] == "DE136695976"
        assert details["buyer"]["legal_name"] == BUYERS[subject]["legal_name"]
        numbers.append(invoice["number"])
        await _check_documents(tax_harness, subject, invoice)
    assert numbers == [f"INV-{n:06d}" for n in range(1, 6)]

    fr_business = (await _only_invoice(tax_harness, "fr-business"))["tax_details"]["buyer"]
    assert fr_business["tax_id"] == VALID_FR
    assert fr_business["tax_id_status"] == "valid"
    assert fr_business["tax_id_consultation_number"].startswith("WAPIAAAAZ")
    unconfirmed = (await _only_invoice(tax_harness, "fr-unconfirmed"))["tax_details"]["buyer"]
    assert unconfirmed["tax_id_status"] == "unverified"
    assert unconfirmed["tax_id_consultation_number"] is None


def _euros(amount: int) -> str:
    return f"EUR {amount // 100:,}.{amount % 100:02d}"


async def _check_documents(harness: Harness, subject: str, invoice: dict[str, Any]) -> None:
    """The PDF, read back, and the HTML page show the figures, parties and mentions."""
    response = await harness.client.get(
        f"/billing/invoices/{invoice['id']}.pdf", headers=harness.auth(subject)
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/pdf"
    assert f'filename="{invoice["number"]}.pdf"' in response.headers["content-disposition"]
    reader = PdfReader(io.BytesIO(response.content))
    text = " ".join(" ".join((page.extract_text() or "").split()) for page in reader.pages)
    treatment, rate, net, tax, mentions = EXPECTED[subject]
    assert f"Invoice {invoice['number']}" in text
    assert "Muster Software GmbH" in text
    assert "VAT number: DE136695976" in text
    assert BUYERS[subject]["legal_name"] in text
    assert f"Net {_euros(net)}" in text, text
    assert f"VAT {rate} % on {_euros(net)} {_euros(tax)}" in text, text
    assert f"Total {_euros(PRICE)}" in text
    assert f"Amount due {_euros(0)}" in text
    for mention in mentions:
        assert " ".join(mention.split()) in text, text
    if treatment == "reverse_charge":
        assert f"VAT number: {VALID_FR}" in text
        assert "confirmed by VIES on 2026-12-06, consultation number WAPIAAAAZ" in text
    page = await harness.client.get(f"/billing/invoices/{invoice['id']}.html", headers=harness.auth(subject))
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert f"<h1>Invoice {invoice['number']}</h1>" in page.text
    assert html.escape(BUYERS[subject]["legal_name"]) in page.text
    assert _euros(tax) in page.text


async def test_only_the_owner_or_an_admin_reads_the_documents(tax_harness: Harness) -> None:
    plan = await create_plan(tax_harness, name="Pro", pricing_model="flat", unit_amount=PRICE)
    await _set_up_buyer(tax_harness, "de-consumer")
    await subscribe(tax_harness, plan["id"], subject="de-consumer")
    invoice = await _only_invoice(tax_harness, "de-consumer")
    for suffix in (".pdf", ".html"):
        url = f"/billing/invoices/{invoice['id']}{suffix}"
        other = await tax_harness.client.get(url, headers=tax_harness.auth("mallory"))
        assert other.status_code == 404
        assert other.headers["content-type"] == "application/problem+json"
        anonymous = await tax_harness.client.get(url)
        assert anonymous.status_code == 401
        admin = await tax_harness.client.get(url, headers=tax_harness.auth("root", admin=True))
        assert admin.status_code == 200
    missing = await tax_harness.client.get(
        "/billing/invoices/00000000-0000-0000-0000-000000000000.pdf", headers=tax_harness.auth("de-consumer")
    )
    assert missing.status_code == 404
    # The JSON route is still there beside the documents.
    plain = await tax_harness.client.get(
        f"/billing/invoices/{invoice['id']}", headers=tax_harness.auth("de-consumer")
    )
    assert plain.json()["number"] == invoice["number"]


async def test_checkout_sessions_and_previews_carry_net_tax_and_gross(tax_harness: Harness) -> None:
    plan = await create_plan(tax_harness, name="Pro", pricing_model="flat", unit_amount=PRICE)
    await _set_up_buyer(tax_harness, "fr-unconfirmed")
    created = await tax_harness.client.post(
        "/billing/checkout-sessions",
        json={"plan_id": plan["id"], **URLS},
        headers=tax_harness.auth("fr-unconfirmed"),
    )
    assert created.status_code == 201, created.text
    assert created.json()["tax"] == {
        "net": 2499,
        "tax": 500,
        "gross": 2999,
        "rate": "20",
        "treatment": "eu_consumer",
        "country": "FR",
        "mention": None,
    }
    preview = await tax_harness.client.get(f"/billing/plans/{plan['id']}/preview", params={"country": "fi"})
    assert preview.status_code == 200, preview.text
    # 29.99 / 1.255 = 23.896... -> 23.90 net, 6.09 tax
    assert preview.json()["tax"]["net"] == 2390
    assert preview.json()["tax"]["tax"] == 609
    assert preview.json()["tax"]["rate"] == "25.5"
    home = await tax_harness.client.get(f"/billing/plans/{plan['id']}/preview")
    assert (home.json()["tax"]["net"], home.json()["tax"]["tax"], home.json()["tax"]["country"]) == (
        2520,
        479,
        "DE",
    )


async def test_tax_exclusive_one_off_payment_charges_the_gross(exclusive_harness: Harness) -> None:
    await _set_up_buyer(exclusive_harness, "de-consumer")
    result = await exclusive_harness.pay_one_off("de-consumer", amount=1000)
    session = result["session"]
    assert session["amount"] == 1190
    assert (session["tax"]["net"], session["tax"]["tax"], session["tax"]["gross"]) == (1000, 190, 1190)
    payments = await exclusive_harness.client.get(
        "/billing/payments", headers=exclusive_harness.auth("de-consumer")
    )
    assert [payment["amount"] for payment in payments.json()["items"]] == [1190]


async def test_proration_lines_are_taxed_with_the_invoice(tax_harness: Harness) -> None:
    """A quantity change invoiced at once: the credit and the charge are taxed on their sum."""
    plan = await create_plan(tax_harness, unit_amount=3000)
    await _set_up_buyer(tax_harness, "fr-unconfirmed")
    subscription = await subscribe(tax_harness, plan["id"], subject="fr-unconfirmed")
    await tax_harness.fake.advance(days=10)
    changed = await tax_harness.client.patch(
        f"/billing/subscriptions/{subscription['id']}",
        json={"quantity": 3, "proration": "always_invoice"},
        headers=tax_harness.auth("fr-unconfirmed"),
    )
    assert changed.status_code == 200, changed.text
    listing = await tax_harness.client.get("/billing/invoices", headers=tax_harness.auth("fr-unconfirmed"))
    newest = listing.json()["items"][0]
    prorated = [line["amount"] for line in newest["lines"] if line["proration"]]
    assert len(prorated) == 2
    assert min(prorated) < 0 < max(prorated)
    gross = sum(line["amount"] for line in newest["lines"])
    net = round(Fraction(gross * 100, 120))  # half to even, like the library
    assert (newest["subtotal"], newest["tax"], newest["total"]) == (net, gross - net, gross)
    assert newest["amount_paid"] == gross
    assert newest["tax_details"]["lines"] == [{"rate": "20", "net": net, "tax": gross - net, "gross": gross}]


async def test_the_invoice_number_follows_the_configured_format(
    engine: Any, database_url: str, vies: tuple[Any, str]
) -> None:
    async with running(
        database_url, vies[1], prices_include_tax=True, invoice_number_format="{year}/{number:04d}"
    ) as harness:
        plan = await create_plan(harness, name="Pro", pricing_model="flat", unit_amount=PRICE)
        await _set_up_buyer(harness, "de-consumer")
        await subscribe(harness, plan["id"], subject="de-consumer")
        invoice = await _only_invoice(harness, "de-consumer")
        year = invoice["paid_at"][:4]
        assert invoice["number"] == f"{year}/0001"
        document = await harness.client.get(
            f"/billing/invoices/{invoice['id']}.pdf", headers=harness.auth("de-consumer")
        )
        # The number's slash never reaches the file name.
        assert f'filename="{year}-0001.pdf"' in document.headers["content-disposition"]
