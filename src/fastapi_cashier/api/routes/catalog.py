"""Catalog routes: the public ``GET /plans``, and products, plans and the provider sync for admins."""

import dataclasses
import uuid
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse

from ...errors import NotFoundError, ValidationError
from ..auth import Principal
from ..problems import ProblemRoute, problem_responses
from ..schemas import dump
from ..schemas.catalog import (
    PlanCreate,
    PlanOut,
    PlanUpdate,
    PricePreviewOut,
    ProductCreate,
    ProductOut,
    ProductUpdate,
    SyncOut,
)
from ._common import idempotent

if TYPE_CHECKING:
    from ..router import PaymentsRouter

__all__ = ["build"]


def build(payments: "PaymentsRouter") -> APIRouter:
    """``GET /plans`` for everyone; ``/admin/products``, ``/admin/plans``, ``/admin/catalog/sync``."""
    router = APIRouter(route_class=ProblemRoute)
    admin = APIRouter(
        prefix="/admin",
        route_class=ProblemRoute,
        tags=["admin"],
        responses=problem_responses(401, 403, 404, 422),
    )
    Admin = Annotated[Principal, Depends(payments.current_admin)]

    @router.get("/plans", name="payments:plans", response_model=list[PlanOut], tags=["public"])
    async def list_plans() -> Any:
        """The active catalog: active plans of active products, cheapest first."""
        async with payments.read_service() as svc:
            return await svc.catalog.list_active()

    @router.get(
        "/plans/{plan_id}/preview",
        name="payments:plan_preview",
        response_model=PricePreviewOut,
        tags=["public"],
        responses=problem_responses(404, 422),
    )
    async def preview_plan(
        plan_id: uuid.UUID,
        quantity: Annotated[int, Query(ge=0, le=1_000_000)] = 1,
        usage: Annotated[int, Query(ge=0, le=10**12)] = 0,
        country: Annotated[str | None, Query(pattern="^[A-Za-z]{2}$")] = None,
    ) -> Any:
        """What one period of an active plan costs for ``quantity`` seats and ``usage`` units.

        With tax on, ``tax`` splits the amount for a consumer in ``country`` (ISO 3166-1).
        """
        async with payments.read_service() as svc:
            try:
                plan = await svc.subscriptions.active_plan(plan_id)
            except ValidationError:
                raise NotFoundError(f"plan {plan_id} is not in the active catalog") from None
            preview = await svc.pricing.preview(plan, quantity=quantity, usage=usage)
            quote = svc.tax.quote_for_consumer(preview.total.amount, country.upper() if country else None)
        return {
            "plan_id": plan_id,
            "amount": preview.total.amount,
            "currency": preview.total.currency,
            "lines": [dataclasses.asdict(line) for line in preview.lines],
            "tax": quote.as_dict() if quote is not None else None,
        }

    @admin.post(
        "/products",
        name="payments:admin_create_product",
        status_code=201,
        response_model=ProductOut,
        responses=problem_responses(409),
    )
    async def create_product(body: ProductCreate, request: Request, principal: Admin) -> JSONResponse:
        """Add a product; plans are added to it with ``POST /admin/plans``."""

        async def handler() -> tuple[int, Any]:
            async with payments.service() as svc:
                product = await svc.catalog.create_product(
                    body.name,
                    description=body.description,
                    active=body.active,
                    metadata=body.metadata,
                    tax_category=body.tax_category,
                )
                await svc.commit()
                return 201, dump(ProductOut, product)

        return await idempotent(payments, request, principal, handler)

    @admin.patch("/products/{product_id}", name="payments:admin_update_product", response_model=ProductOut)
    async def update_product(product_id: uuid.UUID, body: ProductUpdate, _admin: Admin) -> Any:
        """Change the fields sent; ``active: false`` takes the product's plans out of the catalog."""
        async with payments.service() as svc:
            product = await svc.catalog.update_product(product_id, **body.model_dump(exclude_unset=True))
            await svc.commit()
            return dump(ProductOut, product)

    @admin.post(
        "/plans",
        name="payments:admin_create_plan",
        status_code=201,
        response_model=PlanOut,
        responses=problem_responses(409),
    )
    async def create_plan(body: PlanCreate, request: Request, principal: Admin) -> JSONResponse:
        """Add a plan (a price) to a product."""

        async def handler() -> tuple[int, Any]:
            async with payments.service() as svc:
                plan = await svc.catalog.create_plan(
                    body.product_id,
                    body.name,
                    pricing_model=body.pricing_model,
                    unit_amount=body.unit_amount,
                    currency=body.currency,
                    interval=body.interval,
                    interval_count=body.interval_count,
                    trial_days=body.trial_days,
                    tiers=[tier.model_dump() for tier in body.tiers],
                    features=body.features,
                    active=body.active,
                )
                await svc.commit()
                return 201, dump(PlanOut, plan)

        return await idempotent(payments, request, principal, handler)

    @admin.patch(
        "/plans/{plan_id}",
        name="payments:admin_update_plan",
        response_model=PlanOut,
        responses=problem_responses(409),
    )
    async def update_plan(plan_id: uuid.UUID, body: PlanUpdate, _admin: Admin) -> Any:
        """Change the fields sent. A plan in use keeps its price (409): create a new plan instead."""
        changes = body.model_dump(exclude_unset=True)
        async with payments.service() as svc:
            plan = await svc.catalog.update_plan(plan_id, **changes)
            await svc.commit()
            return dump(PlanOut, plan)

    @admin.delete(
        "/plans/{plan_id}",
        name="payments:admin_delete_plan",
        status_code=204,
        response_class=Response,
        responses=problem_responses(409),
    )
    async def delete_plan(plan_id: uuid.UUID, _admin: Admin) -> Response:
        """Delete a plan nothing refers to; one in use answers 409 (deactivate it instead)."""
        async with payments.service() as svc:
            await svc.catalog.delete_plan(plan_id)
        return Response(status_code=204)

    @admin.post(
        "/catalog/sync",
        name="payments:admin_catalog_sync",
        response_model=SyncOut,
        responses=problem_responses(502, 503),
    )
    async def sync_catalog(
        _admin: Admin, provider: Annotated[str | None, Query(max_length=40)] = None
    ) -> Any:
        """Copy the active plans' prices to a provider (default: ``settings.default_provider``).

        Idempotent: plans whose price is already current there are left alone; a changed price
        becomes a new provider price and the old one is archived.
        """
        async with payments.service() as svc:
            report = await svc.catalog.sync(provider)
            name = svc.provider(provider).name
        return SyncOut(
            provider=name, created=report.created, unchanged=report.unchanged, archived=report.archived
        )

    router.include_router(admin)
    return router
