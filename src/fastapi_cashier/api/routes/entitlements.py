"""Entitlements and credits: the customer's own view, and the admin's credit changes."""

import uuid
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from ...billing.service import PaymentsService
from ...db.models import Customer
from ..auth import Principal
from ..problems import ProblemRoute, problem_responses
from ..schemas import Page, dump
from ..schemas.entitlements import (
    AdminCreditChange,
    CreditBalanceOut,
    CreditTransactionOut,
    EntitlementsOut,
)
from ._common import idempotent

if TYPE_CHECKING:
    from ..router import PaymentsRouter

__all__ = ["build"]


def build(payments: "PaymentsRouter") -> APIRouter:
    """``/entitlements``, ``/credits``, ``/credits/transactions`` and ``/admin/customers/{id}/credits``."""
    router = APIRouter(route_class=ProblemRoute)
    router.include_router(_customer_routes(payments))
    router.include_router(_admin_routes(payments))
    return router


def _customer_routes(payments: "PaymentsRouter") -> APIRouter:
    router = APIRouter(route_class=ProblemRoute, tags=["customer"], responses=problem_responses(401, 422))
    CurrentCustomer = Annotated[Customer, Depends(payments.current_customer)]
    RequestService = Annotated[PaymentsService, Depends(payments.request_service)]

    @router.get("/entitlements", name="payments:entitlements", response_model=EntitlementsOut)
    async def get_entitlements(customer: CurrentCustomer, svc: RequestService) -> Any:
        """Entitling subscriptions (trialing, active, past_due), their plans and merged features."""
        entitlements = await svc.entitlements.for_customer(customer.id)
        return {
            "subscriptions": entitlements.subscriptions,
            "plan_ids": sorted(entitlements.plan_ids, key=str),
            "features": entitlements.features,
        }

    @router.get("/credits", name="payments:credits", response_model=CreditBalanceOut)
    async def get_credits(customer: CurrentCustomer, svc: RequestService) -> Any:
        """The customer's credit balance."""
        return {"balance": await svc.credits.balance(customer.id)}

    @router.get(
        "/credits/transactions",
        name="payments:credit_transactions",
        response_model=Page[CreditTransactionOut],
    )
    async def list_credit_transactions(
        customer: CurrentCustomer,
        svc: RequestService,
        limit: Annotated[int, Query(ge=1, le=100)] = 20,
        cursor: Annotated[str | None, Query(max_length=200)] = None,
    ) -> Any:
        """The customer's credit ledger, newest first."""
        page = await svc.credits.transactions(customer.id, limit=limit, cursor=cursor)
        return {"items": page.items, "next_cursor": page.next_cursor}

    return router


def _admin_routes(payments: "PaymentsRouter") -> APIRouter:
    router = APIRouter(
        prefix="/admin",
        route_class=ProblemRoute,
        tags=["admin"],
        responses=problem_responses(401, 403, 404, 422),
    )
    Admin = Annotated[Principal, Depends(payments.current_admin)]

    @router.post(
        "/customers/{customer_id}/credits",
        name="payments:admin_change_credits",
        status_code=201,
        response_model=CreditTransactionOut,
        responses=problem_responses(409),
    )
    async def change_credits(
        customer_id: uuid.UUID, body: AdminCreditChange, request: Request, admin: Admin
    ) -> JSONResponse:
        """Grant credits (positive ``amount``) or take them away (negative; never below zero).

        Honours ``Idempotency-Key``. The ledger line's ``reference`` is ``admin:<subject>``.
        """

        async def handler() -> tuple[int, Any]:
            async with payments.service() as svc:
                await svc.customers.get(customer_id)
                if body.amount > 0:
                    transaction = await svc.credits.grant(
                        customer_id,
                        body.amount,
                        reason=body.reason,
                        reference=f"admin:{admin.subject}"[:255],
                        expires_at=body.expires_at,
                    )
                else:
                    transaction = await svc.credits.adjust(
                        customer_id, body.amount, reason=body.reason, actor=admin.subject
                    )
                return 201, dump(CreditTransactionOut, transaction)

        return await idempotent(payments, request, admin, handler)

    return router
