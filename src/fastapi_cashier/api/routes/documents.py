"""Invoice documents: ``GET /invoices/{id}.pdf`` and ``GET /invoices/{id}.html``.

Registered before ``GET /invoices/{id}``, whose path would otherwise take ``{id}.pdf``.
"""

import uuid
from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import HTMLResponse, Response

from ...billing.invoice_documents import InvoiceDocument, invoice_document, render_html
from ...billing.invoice_pdf import render_pdf
from ...db.model_repositories import InvoiceRepository
from ..auth import Principal
from ..dependencies import http_errors
from ..problems import ProblemRoute, problem_responses

if TYPE_CHECKING:
    from ..router import PaymentsRouter

__all__ = ["build"]


def build(payments: "PaymentsRouter") -> APIRouter:
    """The invoice document routes: the invoice's customer or an admin may read them."""
    router = APIRouter(
        route_class=ProblemRoute, tags=["customer"], responses=problem_responses(401, 404, 422)
    )
    CurrentPrincipal = Annotated[Principal, Depends(payments.current_principal)]

    async def document(invoice_id: uuid.UUID, principal: Principal) -> InvoiceDocument:
        with http_errors():
            async with payments.service() as svc:
                invoices = InvoiceRepository(session=svc.session)
                if principal.is_admin:
                    invoice = await invoices.get(invoice_id)
                else:
                    customer = await svc.customers.get_or_create(principal.subject, email=principal.email)
                    invoice = await invoices.get_for_customer(invoice_id, customer.id)
                profile = None
                if not invoice.tax_details:
                    profile = await svc.tax.profile(invoice.customer_id)
                return invoice_document(invoice, payments.settings.tax, profile=profile)

    def filename(doc: InvoiceDocument, invoice_id: uuid.UUID, suffix: str) -> str:
        stem = doc.number or f"draft-{invoice_id}"
        return "".join(char if char.isalnum() or char in "-_" else "-" for char in stem) + suffix

    @router.get(
        "/invoices/{invoice_id}.pdf",
        name="payments:invoice_pdf",
        response_class=Response,
        responses={200: {"content": {"application/pdf": {}}, "description": "The invoice as a PDF."}},
    )
    async def invoice_pdf(invoice_id: uuid.UUID, principal: CurrentPrincipal) -> Response:
        """The invoice as a PDF: seller, buyer, number, lines, tax per rate, mentions."""
        doc = await document(invoice_id, principal)
        return Response(
            render_pdf(doc),
            media_type="application/pdf",
            headers={"Content-Disposition": f'inline; filename="{filename(doc, invoice_id, ".pdf")}"'},
        )

    @router.get("/invoices/{invoice_id}.html", name="payments:invoice_html", response_class=HTMLResponse)
    async def invoice_html(invoice_id: uuid.UUID, principal: CurrentPrincipal) -> HTMLResponse:
        """The same invoice document as a printable HTML page."""
        return HTMLResponse(render_html(await document(invoice_id, principal)))

    return router
