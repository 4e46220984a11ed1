"""Invoice documents without a database: amounts per locale, the HTML page, the PDF."""

from __future__ import annotations

import io
import sys
import uuid
from datetime import UTC, datetime

import pytest
from pypdf import PdfReader

from fastapi_cashier.billing.invoice_documents import format_amount, invoice_document, render_html
from fastapi_cashier.billing.invoice_pdf import render_pdf
from fastapi_cashier.db.models import Invoice, InvoiceLine
from fastapi_cashier.errors import MissingDependencyError
from fastapi_cashier.settings import TaxSettings
from fastapi_cashier.statuses import InvoiceStatus


@pytest.mark.parametrize(
    ("amount", "currency", "locale", "text"),
    [
        (123456, "EUR", "en", "EUR 1,234.56"),
        (123456, "EUR", "de", "1.234,56 EUR"),
        (123456, "EUR", "fr", "1 234,56 EUR"),
        (123456, "EUR", "de-AT", "1.234,56 EUR"),
        (5, "EUR", "en", "EUR 0.05"),
        (-2520, "EUR", "en", "EUR -25.20"),
        (1234567, "JPY", "en", "JPY 1,234,567"),
        (1234567, "KWD", "de", "1.234,567 KWD"),
        (100, "USD", "xx", "USD 1.00"),
    ],
)
def test_amounts_are_written_exactly_for_the_locale(
    amount: int, currency: str, locale: str, text: str
) -> None:
    assert format_amount(amount, currency, locale) == text


def invoice(**tax_details: object) -> Invoice:
    return Invoice(
        id=uuid.uuid4(),
        customer_id=uuid.uuid4(),
        number="INV-000042",
        status=InvoiceStatus.PAID,
        currency="EUR",
        subtotal=2000,
        tax=380,
        total=2380,
        amount_paid=2380,
        created_at=datetime(2026, 12, 1, tzinfo=UTC),
        finalized_at=datetime(2026, 12, 2, tzinfo=UTC),
        period_start=datetime(2026, 12, 1, tzinfo=UTC),
        period_end=datetime(2027, 1, 1, tzinfo=UTC),
        lines=[
            InvoiceLine(
                position=0,
                description="Seats <Pro>",
                quantity=2,
                unit_amount=1000,
                amount=2000,
                currency="EUR",
            )
        ],
        tax_details={
            "source": "computed",
            "treatment": "domestic",
            "prices_include_tax": False,
            "mentions": [],
            "lines": [{"rate": "19", "net": 2000, "tax": 380, "gross": 2380}],
            "seller": {
                "legal_name": "Muster GmbH",
                "address_lines": ["Hauptstr. 1"],
                "country": "DE",
                "vat_number": "DE136695976",
            },
            "buyer": {"legal_name": "Łukasz & <Sons>", "address_lines": ["ul. Długa 5"], "country": "PL"},
            **tax_details,
        },
    )


def test_the_html_page_escapes_every_value() -> None:
    page = render_html(invoice_document(invoice(), TaxSettings(locale="de")))
    assert "<h1>Invoice INV-000042</h1>" in page
    assert "Seats &lt;Pro&gt;" in page
    assert "Łukasz &amp; &lt;Sons&gt;" in page
    assert "VAT 19 % on 20,00 EUR" in page
    assert "23,80 EUR" in page
    assert "2026-12-01 to 2027-01-01" in page


def test_the_pdf_reads_back_and_writes_what_latin_1_lacks_without_accents() -> None:
    content = render_pdf(invoice_document(invoice(), TaxSettings()))
    assert content.startswith(b"%PDF-")
    text = " ".join((PdfReader(io.BytesIO(content)).pages[0].extract_text() or "").split())
    assert "Invoice INV-000042" in text
    assert "Lukasz & <Sons>" in text
    assert "ul. Dluga 5" in text
    assert "Seats <Pro> 2 EUR 10.00 EUR 20.00" in text
    assert "VAT 19 % on EUR 20.00 EUR 3.80" in text
    assert "Total EUR 23.80" in text


def test_a_draft_has_no_number_and_says_so() -> None:
    draft = invoice()
    draft.number = None
    draft.status = InvoiceStatus.DRAFT
    document = invoice_document(draft, TaxSettings())
    assert document.title == "Draft invoice"
    assert "<h1>Draft invoice</h1>" in render_html(document)


def test_a_rate_with_decimals_and_the_inclusive_mention() -> None:
    taxed = invoice(lines=[{"rate": "25.5", "net": 2000, "tax": 510, "gross": 2510}], prices_include_tax=True)
    document = invoice_document(taxed, TaxSettings())
    assert document.tax_lines == (("VAT 25.5 % on EUR 20.00", "EUR 5.10"),)
    assert document.mentions == ("Prices include VAT.",)


def test_without_fpdf2_the_pdf_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "fpdf", None)
    with pytest.raises(MissingDependencyError) as raised:
        render_pdf(invoice_document(invoice(), TaxSettings()))
    assert raised.value.details == {"package": "fpdf2", "extra": "pdf"}
    assert "fastapi-cashier[pdf]" in raised.value.message


def test_a_long_description_is_shortened_to_its_column() -> None:
    long = invoice()
    long.lines[0].description = "Enterprise workspace with every feature " * 5
    content = render_pdf(invoice_document(long, TaxSettings()))
    text = " ".join((PdfReader(io.BytesIO(content)).pages[0].extract_text() or "").split())
    assert "Enterprise workspace with every feature Enterprise" in text
    assert "... 2 EUR 10.00 EUR 20.00" in text
    assert ("every feature " * 5).strip() not in text
