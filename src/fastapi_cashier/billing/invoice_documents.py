"""What an invoice document shows, and its HTML page.

:func:`invoice_document` gathers everything printed: the seller and the buyer (as kept on the
invoice when it was recorded, so a later change of address does not rewrite a past invoice), the
gap-free number, the lines, one tax line per rate and the legal mentions. Amounts are written in
the invoice's currency for ``tax.locale``. :mod:`.invoice_pdf` lays the same document out as a PDF.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from ..currencies import currency_exponent
from ..db.models import BillingProfile, Invoice
from ..settings import TaxSettings
from .tax import buyer_details

__all__ = ["DocumentLine", "InvoiceDocument", "format_amount", "invoice_document", "render_html"]

# (group separator, decimal separator, code after the number)
_LOCALES: dict[str, tuple[str, str, bool]] = {
    "en": (",", ".", False),
    "de": (".", ",", True),
    "fr": (" ", ",", True),
    "es": (".", ",", True),
    "it": (".", ",", True),
    "nl": (".", ",", False),
    "pl": (" ", ",", True),
    "sv": (" ", ",", True),
    "fi": (" ", ",", True),
    "da": (".", ",", True),
    "pt": (" ", ",", True),
    "ch": ("'", ".", False),
}

_LABELS: dict[str, dict[str, str]] = {
    "en": {
        "invoice": "Invoice",
        "draft": "Draft invoice",
        "date": "Date",
        "period": "Period",
        "seller": "From",
        "buyer": "Bill to",
        "vat": "VAT number",
        "description": "Description",
        "quantity": "Qty",
        "unit": "Unit price",
        "amount": "Amount",
        "net": "Net",
        "tax": "VAT",
        "total": "Total",
        "paid": "Paid",
        "due": "Amount due",
        "rate": "VAT {rate} % on {net}",
        "checked": "VAT number confirmed by VIES on {day}, consultation number {number}",
        "inclusive": "Prices include VAT.",
    },
}


def format_amount(amount: int, currency: str, locale: str = "en") -> str:
    """``123456`` EUR -> ``EUR 1,234.56`` (en), ``1.234,56 EUR`` (de), ``1 234,56 EUR`` (fr).

    Exact: the minor units are split by the currency's exponent, never through a float.
    """
    group, point, code_after = _LOCALES.get(locale.split("-")[0].lower(), _LOCALES["en"])
    exponent = currency_exponent(currency)
    sign = "-" if amount < 0 else ""
    whole, fraction = divmod(abs(amount), 10**exponent)
    digits = f"{whole:,}".replace(",", group)
    number = f"{sign}{digits}{point}{fraction:0{exponent}d}" if exponent else f"{sign}{digits}"
    return f"{number} {currency}" if code_after else f"{currency} {number}"


def _format_rate(rate: str) -> str:
    value = Decimal(rate).normalize()
    return format(value, "f")


@dataclass(frozen=True, slots=True)
class DocumentLine:
    """One printed line: the amounts already formatted."""

    description: str
    quantity: int
    unit_amount: str
    amount: str


@dataclass(frozen=True, slots=True)
class InvoiceDocument:
    """Everything an invoice document prints, as text."""

    title: str
    number: str | None
    issued_on: str
    period: str | None
    seller_lines: tuple[str, ...]
    buyer_lines: tuple[str, ...]
    lines: tuple[DocumentLine, ...]
    subtotal: str
    tax_lines: tuple[tuple[str, str], ...]
    total: str
    paid: str
    due: str
    mentions: tuple[str, ...]
    labels: dict[str, str]


def _party(details: dict[str, Any], vat_label: str, vat_key: str) -> tuple[str, ...]:
    lines = [details.get("legal_name") or ""]
    lines.extend(details.get("address_lines") or [])
    if details.get("country"):
        lines.append(str(details["country"]))
    if details.get(vat_key):
        lines.append(f"{vat_label}: {details[vat_key]}")
    if details.get("email"):
        lines.append(str(details["email"]))
    return tuple(line for line in lines if line)


def _day(moment: datetime | None) -> str:
    return moment.date().isoformat() if moment is not None else ""


def invoice_document(
    invoice: Invoice, settings: TaxSettings, *, profile: BillingProfile | None = None
) -> InvoiceDocument:
    """The document of ``invoice``; ``profile`` is the buyer when the invoice kept no details."""
    labels = _LABELS["en"]
    locale = settings.locale
    currency = invoice.currency
    details = invoice.tax_details or {}
    seller = details.get("seller") or {}
    if not seller and settings.seller is not None:
        seller = {
            "legal_name": settings.seller.legal_name,
            "address_lines": settings.seller.address_lines,
            "country": settings.seller.country,
            "vat_number": settings.seller.vat_number,
            "email": settings.seller.email,
        }
    buyer = details.get("buyer") or buyer_details(profile)

    def money(amount: int) -> str:
        return format_amount(amount, currency, locale)

    tax_lines = tuple(
        (
            labels["rate"].format(rate=_format_rate(line["rate"]), net=money(int(line["net"]))),
            money(int(line["tax"])),
        )
        for line in details.get("lines") or []
    )
    if not tax_lines and invoice.tax:
        tax_lines = ((labels["tax"], money(invoice.tax)),)
    mentions = list(details.get("mentions") or [])
    if buyer.get("tax_id_consultation_number") and details.get("treatment") == "reverse_charge":
        checked = str(buyer.get("tax_id_checked_at") or "")[:10]
        mentions.append(labels["checked"].format(day=checked, number=buyer["tax_id_consultation_number"]))
    if details.get("prices_include_tax") and invoice.tax:
        mentions.append(labels["inclusive"])
    period = None
    if invoice.period_start is not None and invoice.period_end is not None:
        period = f"{_day(invoice.period_start)} to {_day(invoice.period_end)}"
    return InvoiceDocument(
        title=labels["invoice"] if invoice.number else labels["draft"],
        number=invoice.number,
        issued_on=_day(invoice.finalized_at or invoice.created_at),
        period=period,
        seller_lines=_party(seller, labels["vat"], "vat_number"),
        buyer_lines=_party(buyer, labels["vat"], "tax_id"),
        lines=tuple(
            DocumentLine(line.description, line.quantity, money(line.unit_amount), money(line.amount))
            for line in invoice.lines
        ),
        subtotal=money(invoice.subtotal),
        tax_lines=tax_lines,
        total=money(invoice.total),
        paid=money(invoice.amount_paid),
        due=money(max(invoice.total - invoice.amount_paid, 0)),
        mentions=tuple(mentions),
        labels=labels,
    )


def render_html(document: InvoiceDocument) -> str:
    """A self-contained, printable HTML page of the document (every value escaped)."""
    e = html.escape
    labels = document.labels
    heading = f"{document.title} {document.number or ''}".strip()
    rows = "".join(
        f"<tr><td>{e(line.description)}</td><td class=n>{line.quantity}</td>"
        f"<td class=n>{e(line.unit_amount)}</td><td class=n>{e(line.amount)}</td></tr>"
        for line in document.lines
    )
    tax_rows = "".join(
        f"<tr><td>{e(label)}</td><td class=n>{e(value)}</td></tr>" for label, value in document.tax_lines
    )
    mentions = "".join(f"<p class=mention>{e(text)}</p>" for text in document.mentions)
    period = f"<p>{e(labels['period'])}: {e(document.period)}</p>" if document.period else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{e(heading)}</title>
<style>
body{{font-family:Helvetica,Arial,sans-serif;margin:2.5em;color:#222}}
table{{border-collapse:collapse;width:100%}}
td,th{{padding:.3em .5em;border-bottom:1px solid #ddd;text-align:left}}
.n{{text-align:right}}.parties{{display:flex;gap:4em}}.totals{{width:50%;margin-left:auto}}
.mention{{font-size:.9em;color:#444}}
</style></head><body>
<h1>{e(heading)}</h1>
<p>{e(labels["date"])}: {e(document.issued_on)}</p>{period}
<div class=parties>
<div><h2>{e(labels["seller"])}</h2>{"<br>".join(e(line) for line in document.seller_lines)}</div>
<div><h2>{e(labels["buyer"])}</h2>{"<br>".join(e(line) for line in document.buyer_lines)}</div>
</div>
<table><thead><tr><th>{e(labels["description"])}</th><th class=n>{e(labels["quantity"])}</th>
<th class=n>{e(labels["unit"])}</th><th class=n>{e(labels["amount"])}</th></tr></thead>
<tbody>{rows}</tbody></table>
<table class=totals><tr><td>{e(labels["net"])}</td><td class=n>{e(document.subtotal)}</td></tr>{tax_rows}
<tr><th>{e(labels["total"])}</th><th class=n>{e(document.total)}</th></tr>
<tr><td>{e(labels["paid"])}</td><td class=n>{e(document.paid)}</td></tr>
<tr><td>{e(labels["due"])}</td><td class=n>{e(document.due)}</td></tr></table>
{mentions}
</body></html>
"""
