"""The PDF of an invoice document, laid out with fpdf2 (``pip install 'fastapi-cashier[pdf]'``).

The page uses the PDF core font Helvetica, which every reader has, so the file embeds no font.
That font covers Latin-1: characters outside it are written without their accents where they
have one (``ł`` -> ``l``) and as ``?`` otherwise; the HTML version shows every character.
"""

from __future__ import annotations

import unicodedata

from ..errors import MissingDependencyError
from .invoice_documents import InvoiceDocument

__all__ = ["render_pdf"]

_WIDTHS = (95.0, 15.0, 35.0, 35.0)
# Latin letters that have no decomposition into a base letter and an accent.
_UNDECOMPOSED = str.maketrans(
    {"Ł": "L", "ł": "l", "Đ": "D", "đ": "d", "Ħ": "H", "ħ": "h", "\u0131": "i", "Œ": "OE", "œ": "oe"}
)


def _latin1(text: str) -> str:
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        decomposed = unicodedata.normalize("NFKD", text.translate(_UNDECOMPOSED))
        stripped = "".join(char for char in decomposed if not unicodedata.combining(char))
        return stripped.encode("latin-1", "replace").decode("latin-1")
    return text


def render_pdf(document: InvoiceDocument) -> bytes:
    """The document as a one-or-more-page A4 PDF.

    Raises:
        MissingDependencyError: fpdf2 is not installed (the ``pdf`` extra).
    """
    try:
        from fpdf import FPDF
    except ImportError:
        raise MissingDependencyError("fpdf2", "pdf") from None

    labels = document.labels
    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.set_title(_latin1(f"{document.title} {document.number or ''}".strip()))
    pdf.set_creator("fastapi-cashier")
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 18)
    pdf.cell(
        0, 10, _latin1(f"{document.title} {document.number or ''}".strip()), new_x="LMARGIN", new_y="NEXT"
    )
    pdf.set_font("Helvetica", "", 10)
    pdf.cell(0, 6, _latin1(f"{labels['date']}: {document.issued_on}"), new_x="LMARGIN", new_y="NEXT")
    if document.period:
        pdf.cell(0, 6, _latin1(f"{labels['period']}: {document.period}"), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)

    top = pdf.get_y()
    for x, title, lines in (
        (pdf.l_margin, labels["seller"], document.seller_lines),
        (110.0, labels["buyer"], document.buyer_lines),
    ):
        pdf.set_xy(x, top)
        pdf.set_font("Helvetica", "B", 11)
        pdf.cell(85, 6, _latin1(title), new_x="LEFT", new_y="NEXT")
        pdf.set_font("Helvetica", "", 10)
        for text in lines:
            pdf.cell(85, 5, _latin1(text), new_x="LEFT", new_y="NEXT")
    bottom = top + 6 + 5 * max(len(document.seller_lines), len(document.buyer_lines))
    pdf.set_xy(pdf.l_margin, bottom + 6)

    pdf.set_font("Helvetica", "B", 10)
    headers = (labels["description"], labels["quantity"], labels["unit"], labels["amount"])
    for width, header, align in zip(_WIDTHS, headers, ("L", "R", "R", "R"), strict=True):
        pdf.cell(width, 7, _latin1(header), border="B", align=align)
    pdf.ln()
    pdf.set_font("Helvetica", "", 10)
    for line in document.lines:
        description = _latin1(line.description)
        while len(description) > 1 and pdf.get_string_width(description + "...") > _WIDTHS[0] - 2:
            description = description[:-1]
        if description != _latin1(line.description):
            description = description.rstrip() + "..."
        values = (description, str(line.quantity), line.unit_amount, line.amount)
        for width, value, align in zip(_WIDTHS, values, ("L", "R", "R", "R"), strict=True):
            pdf.cell(width, 6, _latin1(value), align=align)
        pdf.ln()
    pdf.ln(3)

    def total_row(label: str, value: str, *, bold: bool = False) -> None:
        pdf.set_font("Helvetica", "B" if bold else "", 10)
        pdf.set_x(pdf.l_margin + 70)
        pdf.cell(75, 6, _latin1(label))
        pdf.cell(35, 6, _latin1(value), align="R", new_x="LMARGIN", new_y="NEXT")

    total_row(labels["net"], document.subtotal)
    for label, value in document.tax_lines:
        total_row(label, value)
    total_row(labels["total"], document.total, bold=True)
    total_row(labels["paid"], document.paid)
    total_row(labels["due"], document.due)
    pdf.ln(6)
    pdf.set_font("Helvetica", "", 9)
    for mention in document.mentions:
        pdf.multi_cell(0, 5, _latin1(mention), new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())
