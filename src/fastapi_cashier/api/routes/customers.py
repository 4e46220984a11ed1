"""The signed-in customer's own data: profile, checkout sessions, payments."""

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from ...billing.payments import PaymentFilters
from ...billing.service import PaymentsService
from ...db.models import Customer
from ...errors import NotFoundError
from ...statuses import PaymentStatus
from ..auth import Principal
from ..problems import ProblemRoute, problem_responses
from ..schemas import Page, dump
from ..schemas.payments import (
    BillingProfileIn,
    BillingProfileOut,
    CheckoutSessionCreate,
    CheckoutSessionOut,
    CustomerOut,
    CustomerUpdate,
    PaymentOut,
    StatusChangeOut,
)
from ._common import (
    PAYMENT_LIST_COLUMNS,
    PAYMENT_PAGE,
    check_redirect,
    idempotent,
    page_response,
    require_aware,
)

if TYPE_CHECKING:
    from ..router import PaymentsRouter

__all__ = ["build"]


def build(payments: "PaymentsRouter") -> APIRouter:
    """Routes under ``/me``, ``/checkout-sessions`` and ``/payments``."""
    router = APIRouter(
        route_class=ProblemRoute, tags=["customer"], responses=problem_responses(401, 404, 422)
    )
    CurrentCustomer = Annotated[Customer, Depends(payments.current_customer)]
    CurrentPrincipal = Annotated[Principal, Depends(payments.current_principal)]
    RequestService = Annotated[PaymentsService, Depends(payments.request_service)]

    @router.get("/me", name="payments:me", response_model=CustomerOut)
    async def get_me(customer: CurrentCustomer) -> Customer:
        """The signed-in customer, created on first use from the token's subject."""
        return customer

    @router.patch("/me", name="payments:update_me", response_model=CustomerOut)
    async def update_me(body: CustomerUpdate, customer: CurrentCustomer) -> Customer:
        """Change the customer's email or name."""
        async with payments.service() as svc:
            fresh = await svc.customers.get(customer.id)
            return await svc.customers.update(fresh, email=body.email, name=body.name)

    @router.get("/me/billing-profile", name="payments:billing_profile", response_model=BillingProfileOut)
    async def get_billing_profile(customer: CurrentCustomer, svc: RequestService) -> Any:
        """Who and where is billed; 404 until one is saved."""
        profile = await svc.customers.billing_profile(customer)
        if profile is None:
            raise NotFoundError("no billing profile has been saved yet")
        return profile

    @router.put("/me/billing-profile", name="payments:save_billing_profile", response_model=BillingProfileOut)
    async def put_billing_profile(body: BillingProfileIn, customer: CurrentCustomer) -> Any:
        """Create or replace the billing profile (EU VAT ids are checked for their format)."""
        async with payments.service() as svc:
            return await svc.customers.save_billing_profile(customer, body.model_dump())

    @router.post(
        "/checkout-sessions",
        name="payments:create_checkout_session",
        status_code=201,
        response_model=CheckoutSessionOut,
        responses=problem_responses(409, 502),
    )
    async def create_checkout_session(
        body: CheckoutSessionCreate, request: Request, principal: CurrentPrincipal, customer: CurrentCustomer
    ) -> JSONResponse:
        """Start a hosted checkout; send the payer to ``url``. Honours ``Idempotency-Key``."""
        check_redirect(payments, request, body.success_url, "success_url")
        check_redirect(payments, request, body.cancel_url, "cancel_url")
        base_url = payments.base_url(request)

        async def handler() -> tuple[int, Any]:
            async with payments.service(base_url=base_url) as svc:
                session = await svc.checkout.create(
                    customer,
                    provider=body.provider,
                    amount=body.amount,
                    currency=body.currency,
                    description=body.description,
                    plan_id=body.plan_id,
                    quantity=body.quantity,
                    success_url=body.success_url,
                    cancel_url=body.cancel_url,
                    reference=body.reference,
                )
                return 201, dump(CheckoutSessionOut, session)

        return await idempotent(payments, request, principal, handler)

    @router.get(
        "/checkout-sessions/{session_id}", name="payments:checkout_session", response_model=CheckoutSessionOut
    )
    async def get_checkout_session(
        session_id: uuid.UUID, customer: CurrentCustomer, svc: RequestService
    ) -> Any:
        """One of the customer's checkout sessions."""
        return await svc.checkout.get_for_customer(customer.id, session_id)

    @router.get("/payments", name="payments:list", response_model=Page[PaymentOut])
    async def list_payments(
        customer: CurrentCustomer,
        svc: RequestService,
        status: PaymentStatus | None = None,
        provider: Annotated[str | None, Query(max_length=40)] = None,
        reference: Annotated[str | None, Query(max_length=255)] = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        limit: Annotated[int, Query(ge=1, le=100)] = 20,
        cursor: Annotated[str | None, Query(max_length=200)] = None,
    ) -> Any:
        """The customer's payments, newest first; continue with ``cursor=next_cursor``."""
        filters = PaymentFilters(
            status=status,
            provider=provider,
            reference=reference,
            created_after=require_aware(created_after, "created_after"),
            created_before=require_aware(created_before, "created_before"),
            customer_id=customer.id,
        )
        page = await svc.payments.list_columns(filters, PAYMENT_LIST_COLUMNS, limit=limit, cursor=cursor)
        return page_response(PAYMENT_PAGE, page)

    @router.get("/payments/{payment_id}", name="payments:detail", response_model=PaymentOut)
    async def get_payment(payment_id: uuid.UUID, customer: CurrentCustomer, svc: RequestService) -> Any:
        """One of the customer's payments."""
        return await svc.payments.get_for_customer(customer.id, payment_id)

    @router.get("/payments/{payment_id}/events", name="payments:events", response_model=list[StatusChangeOut])
    async def get_payment_events(
        payment_id: uuid.UUID, customer: CurrentCustomer, svc: RequestService
    ) -> Any:
        """The audit trail: every status change of the payment and its refunds."""
        payment = await svc.payments.get_for_customer(customer.id, payment_id)
        return list(await svc.payments.audit_trail(payment))

    return router
