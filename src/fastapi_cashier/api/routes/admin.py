"""Admin routes: customers, every payment, manual payments, refunds, the summary."""

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from ...billing.payments import PaymentFilters
from ...db.models import Customer
from ...db.repositories import CustomerRepository
from ...statuses import PaymentStatus
from ..auth import Principal
from ..problems import ProblemRoute, problem_responses
from ..schemas import (
    AdminCustomerOut,
    ManualPaymentCreate,
    Page,
    PaymentOut,
    PaymentStatusUpdate,
    RefundCreate,
    RefundOut,
    SummaryOut,
    dump,
)
from ._common import idempotent, require_aware

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
        async with payments.service() as svc:
            page = await CustomerRepository(session=svc.session).paginate(
                *conditions, limit=limit, cursor=cursor
            )
        return {"items": page.items, "next_cursor": page.next_cursor}

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
        async with payments.service() as svc:
            page = await svc.payments.list(filters, limit=limit, cursor=cursor)
        return {"items": page.items, "next_cursor": page.next_cursor}

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
        async with payments.service() as svc:
            return await svc.reports.summary()

    return router
