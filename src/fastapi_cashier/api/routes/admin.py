"""Admin routes: customers, every payment, manual payments, refunds, the summary, webhook events."""

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from ...billing.payments import PaymentFilters
from ...db.model_repositories import CustomerRepository, WebhookEventRepository
from ...db.models import Customer, WebhookEvent
from ...errors import NotFoundError
from ...statuses import PaymentStatus, WebhookEventStatus
from ..auth import Principal
from ..problems import ProblemRoute, problem_responses
from ..schemas import Page, dump
from ..schemas.payments import (
    AdminCustomerOut,
    BillingProfileOut,
    ManualPaymentCreate,
    PaymentOut,
    PaymentStatusUpdate,
    RefundCreate,
    RefundOut,
    SummaryOut,
    TaxExemptionIn,
)
from ..schemas.webhooks import WebhookAttemptOut, WebhookEventOut
from ._common import PAYMENT_LIST_COLUMNS, PAYMENT_PAGE, idempotent, page_response, require_aware

if TYPE_CHECKING:
    from ..router import PaymentsRouter

__all__ = ["build"]


def build(payments: "PaymentsRouter") -> APIRouter:
    """Routes under ``/admin``; every one needs the admin role."""
    router = APIRouter(
        prefix="/admin",
        route_class=ProblemRoute,
        tags=["admin"],
        responses=problem_responses(401, 403, 404, 422),
    )
    Admin = Annotated[Principal, Depends(payments.current_admin)]

    @router.get("/customers", name="payments:admin_customers", response_model=Page[AdminCustomerOut])
    async def list_customers(
        _admin: Admin,
        email: Annotated[str | None, Query(max_length=320)] = None,
        limit: Annotated[int, Query(ge=1, le=100)] = 20,
        cursor: Annotated[str | None, Query(max_length=200)] = None,
    ) -> Any:
        """Every customer, newest first; ``email`` filters exactly."""
        conditions = [Customer.email == email] if email is not None else []
        async with payments.read_service() as svc:
            page = await CustomerRepository(session=svc.session).paginate(
                *conditions, limit=limit, cursor=cursor
            )
        return {"items": page.items, "next_cursor": page.next_cursor}

    @router.put(
        "/customers/{customer_id}/tax-exemption",
        name="payments:admin_tax_exemption",
        response_model=BillingProfileOut,
    )
    async def set_tax_exemption(customer_id: uuid.UUID, body: TaxExemptionIn, _admin: Admin) -> Any:
        """Exempt a customer from VAT (the reason is printed on its invoices) or lift the exemption."""
        async with payments.service() as svc:
            return await svc.customers.set_tax_exemption(
                customer_id, exempt=body.tax_exempt, reason=body.reason
            )

    @router.post(
        "/customers/{customer_id}/tax-id-check",
        name="payments:admin_tax_id_check",
        response_model=BillingProfileOut,
    )
    async def check_tax_id(customer_id: uuid.UUID, _admin: Admin) -> Any:
        """Ask VIES about the customer's VAT number now (it is also re-checked on a schedule)."""
        async with payments.service() as svc:
            profile = await svc.customers.billing_profile(await svc.customers.get(customer_id))
            if profile is None:
                raise NotFoundError("this customer has no billing profile")
            return await svc.tax_ids.check_now(profile.id)

    @router.get("/payments", name="payments:admin_list", response_model=Page[PaymentOut])
    async def list_all_payments(
        _admin: Admin,
        status: PaymentStatus | None = None,
        provider: Annotated[str | None, Query(max_length=40)] = None,
        reference: Annotated[str | None, Query(max_length=255)] = None,
        customer_id: uuid.UUID | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        limit: Annotated[int, Query(ge=1, le=100)] = 20,
        cursor: Annotated[str | None, Query(max_length=200)] = None,
    ) -> Any:
        """Every payment, newest first, with the same filters as ``GET /payments``."""
        filters = PaymentFilters(
            status=status,
            provider=provider,
            reference=reference,
            customer_id=customer_id,
            created_after=require_aware(created_after, "created_after"),
            created_before=require_aware(created_before, "created_before"),
        )
        async with payments.read_service() as svc:
            page = await svc.payments.list_columns(filters, PAYMENT_LIST_COLUMNS, limit=limit, cursor=cursor)
        return page_response(PAYMENT_PAGE, page)

    @router.post(
        "/payments",
        name="payments:admin_record_manual",
        status_code=201,
        response_model=PaymentOut,
        responses=problem_responses(409),
    )
    async def record_manual_payment(
        body: ManualPaymentCreate, request: Request, admin: Admin
    ) -> JSONResponse:
        """Record a cash, check or bank-transfer payment (pending until confirmed)."""

        async def handler() -> tuple[int, Any]:
            async with payments.service() as svc:
                payment = await svc.manual.record(
                    customer_id=body.customer_id,
                    amount=body.amount,
                    currency=body.currency,
                    method=body.method,
                    reference=body.reference,
                    description=body.description,
                    actor=admin.subject,
                )
                await svc.commit()
                return 201, dump(PaymentOut, payment)

        return await idempotent(payments, request, admin, handler)

    @router.patch(
        "/payments/{payment_id}/status",
        name="payments:admin_set_status",
        response_model=PaymentOut,
        responses=problem_responses(409),
    )
    async def set_manual_status(payment_id: uuid.UUID, body: PaymentStatusUpdate, admin: Admin) -> Any:
        """Confirm, fail or cancel a manual payment through the status machine."""
        async with payments.service() as svc:
            return await svc.manual.set_status(
                payment_id, body.status, reason=body.reason, actor=admin.subject
            )

    @router.post(
        "/payments/{payment_id}/refunds",
        name="payments:admin_refund",
        status_code=201,
        response_model=RefundOut,
        responses=problem_responses(402, 409, 502, 503),
    )
    async def refund_payment(
        payment_id: uuid.UUID, body: RefundCreate, request: Request, admin: Admin
    ) -> JSONResponse:
        """Refund all (``amount`` omitted) or part of a payment. Never more than what is left."""

        async def handler() -> tuple[int, Any]:
            async with payments.service() as svc:
                refund = await svc.refunds.create(
                    payment_id, amount=body.amount, reason=body.reason, actor=admin.subject
                )
                return 201, dump(RefundOut, refund)

        return await idempotent(payments, request, admin, handler)

    @router.get("/summary", name="payments:admin_summary", response_model=SummaryOut)
    async def summary(_admin: Admin) -> Any:
        """Totals by status, provider and currency; MRR per currency; active subscriptions."""
        async with payments.read_service() as svc:
            return await svc.reports.summary()

    @router.get("/webhook-events", name="payments:admin_webhook_events", response_model=Page[WebhookEventOut])
    async def list_webhook_events(
        _admin: Admin,
        status: WebhookEventStatus | None = None,
        provider: Annotated[str | None, Query(max_length=40)] = None,
        type: Annotated[str | None, Query(max_length=100)] = None,
        limit: Annotated[int, Query(ge=1, le=100)] = 20,
        cursor: Annotated[str | None, Query(max_length=200)] = None,
    ) -> Any:
        """Stored webhook deliveries, newest first; filter by ``status``, ``provider`` and ``type``.

        ``status=failed`` lists what needs attention: events that failed to apply, with the
        error, the attempts made and when the next one is due (``null``: no more automatic ones).
        """
        conditions = []
        if status is not None:
            conditions.append(WebhookEvent.status == status)
        if provider is not None:
            conditions.append(WebhookEvent.provider == provider)
        if type is not None:
            conditions.append(WebhookEvent.type == type)
        async with payments.read_service() as svc:
            page = await WebhookEventRepository(session=svc.session).paginate(
                *conditions, limit=limit, cursor=cursor
            )
        return {"items": page.items, "next_cursor": page.next_cursor}

    @router.get(
        "/webhook-events/{event_row_id}",
        name="payments:admin_webhook_event",
        response_model=WebhookEventOut,
    )
    async def get_webhook_event(event_row_id: uuid.UUID, _admin: Admin) -> Any:
        """One stored webhook delivery, by the id the listing gives."""
        async with payments.read_service() as svc:
            return await WebhookEventRepository(session=svc.session).get(event_row_id)

    @router.post(
        "/webhook-events/{event_row_id}/retry",
        name="payments:admin_webhook_retry",
        response_model=WebhookAttemptOut,
        responses=problem_responses(409),
    )
    async def retry_webhook_event(event_row_id: uuid.UUID, _admin: Admin) -> Any:
        """Apply a pending or failed event now, whatever its attempts so far.

        Answers 200 with the outcome (a failure is recorded on the event, as in the retry loop);
        409 when the event was processed or ignored already.
        """
        result = await payments.inbox.retry(event_row_id)
        async with payments.service() as svc:
            row = await WebhookEventRepository(session=svc.session).get(event_row_id)
        return {"outcome": result.status, "detail": result.detail, "event": row}

    return router
