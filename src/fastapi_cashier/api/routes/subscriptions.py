"""The signed-in customer's subscriptions, invoices and provider portal."""

import uuid
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from ...billing.service import PaymentsService
from ...db.models import Customer
from ...errors import ValidationError
from ...providers.base import Capability, PortalRequest, require_capability
from ..auth import Principal
from ..problems import ProblemRoute, problem_responses
from ..schemas import Page, dump
from ..schemas.subscriptions import (
    CancelRequest,
    InvoiceOut,
    PortalRequestIn,
    PortalSessionOut,
    SubscriptionOut,
    SubscriptionUpdate,
    UsageIn,
    UsageOut,
)
from ._common import IDEMPOTENCY_HEADER, check_redirect, idempotent

if TYPE_CHECKING:
    from ..router import PaymentsRouter

__all__ = ["build"]


def build(payments: "PaymentsRouter") -> APIRouter:
    """Routes under ``/subscriptions``, ``/invoices`` and ``/portal-sessions``."""
    router = APIRouter(
        route_class=ProblemRoute, tags=["subscriptions"], responses=problem_responses(401, 404, 422)
    )
    CurrentCustomer = Annotated[Customer, Depends(payments.current_customer)]
    CurrentPrincipal = Annotated[Principal, Depends(payments.current_principal)]
    RequestService = Annotated[PaymentsService, Depends(payments.request_service)]
    Limit = Annotated[int, Query(ge=1, le=100)]
    Cursor = Annotated[str | None, Query(max_length=200)]

    @router.get("/subscriptions", name="payments:subscriptions", response_model=Page[SubscriptionOut])
    async def list_subscriptions(
        customer: CurrentCustomer, svc: RequestService, limit: Limit = 20, cursor: Cursor = None
    ) -> Any:
        """The customer's subscriptions, newest first."""
        page = await svc.subscriptions.list_for_customer(customer.id, limit=limit, cursor=cursor)
        return {"items": page.items, "next_cursor": page.next_cursor}

    @router.get(
        "/subscriptions/{subscription_id}", name="payments:subscription", response_model=SubscriptionOut
    )
    async def get_subscription(
        subscription_id: uuid.UUID, customer: CurrentCustomer, svc: RequestService
    ) -> Any:
        """One of the customer's subscriptions."""
        return await svc.subscriptions.get_for_customer(customer.id, subscription_id)

    @router.patch(
        "/subscriptions/{subscription_id}",
        name="payments:update_subscription",
        response_model=SubscriptionOut,
        responses=problem_responses(409, 502, 503),
    )
    async def update_subscription(
        subscription_id: uuid.UUID,
        body: SubscriptionUpdate,
        customer: CurrentCustomer,
        principal: CurrentPrincipal,
    ) -> Any:
        """Change plan and/or quantity, prorated per ``proration`` (``create_prorations`` by default)."""
        async with payments.service() as svc:
            subscription = await svc.subscriptions.get_for_customer(customer.id, subscription_id)
            return await svc.subscriptions.change(
                subscription,
                plan_id=body.plan_id,
                quantity=body.quantity,
                proration=body.proration,
                actor=principal.subject,
            )

    @router.post(
        "/subscriptions/{subscription_id}/cancel",
        name="payments:cancel_subscription",
        response_model=SubscriptionOut,
        responses=problem_responses(409, 502, 503),
    )
    async def cancel_subscription(
        subscription_id: uuid.UUID,
        customer: CurrentCustomer,
        principal: CurrentPrincipal,
        body: CancelRequest | None = None,
    ) -> Any:
        """Cancel at the end of the paid period (default) or now (``at_period_end: false``)."""
        at_period_end = body.at_period_end if body is not None else True
        async with payments.service() as svc:
            subscription = await svc.subscriptions.get_for_customer(customer.id, subscription_id)
            return await svc.subscriptions.cancel(
                subscription, at_period_end=at_period_end, actor=principal.subject
            )

    @router.post(
        "/subscriptions/{subscription_id}/resume",
        name="payments:resume_subscription",
        response_model=SubscriptionOut,
        responses=problem_responses(409, 502, 503),
    )
    async def resume_subscription(
        subscription_id: uuid.UUID, customer: CurrentCustomer, principal: CurrentPrincipal
    ) -> Any:
        """Undo a cancel-at-period-end, or resume a paused subscription."""
        async with payments.service() as svc:
            subscription = await svc.subscriptions.get_for_customer(customer.id, subscription_id)
            return await svc.subscriptions.resume(subscription, actor=principal.subject)

    @router.post(
        "/subscriptions/{subscription_id}/pause",
        name="payments:pause_subscription",
        response_model=SubscriptionOut,
        responses=problem_responses(409, 502, 503),
    )
    async def pause_subscription(
        subscription_id: uuid.UUID, customer: CurrentCustomer, principal: CurrentPrincipal
    ) -> Any:
        """Pause collection until resumed."""
        async with payments.service() as svc:
            subscription = await svc.subscriptions.get_for_customer(customer.id, subscription_id)
            return await svc.subscriptions.pause(subscription, actor=principal.subject)

    @router.get(
        "/subscriptions/{subscription_id}/update-payment-method",
        name="payments:update_payment_method",
        response_model=PortalSessionOut,
        responses=problem_responses(409, 502, 503),
    )
    async def update_payment_method(subscription_id: uuid.UUID, customer: CurrentCustomer) -> Any:
        """A short-lived provider link where the subscriber updates the subscription's payment
        method (Lemon Squeezy); 422 for a provider that gives none."""
        async with payments.service() as svc:
            subscription = await svc.subscriptions.get_for_customer(customer.id, subscription_id)
            return {"url": await svc.subscriptions.update_payment_method_url(subscription)}

    @router.post(
        "/subscriptions/{subscription_id}/usage",
        name="payments:report_usage",
        status_code=201,
        response_model=UsageOut,
        responses=problem_responses(409, 502, 503),
    )
    async def report_usage(
        subscription_id: uuid.UUID,
        body: UsageIn,
        request: Request,
        customer: CurrentCustomer,
        principal: CurrentPrincipal,
    ) -> JSONResponse:
        """Record metered usage; the same key counts once (201 first, 200 for a repeat)."""
        key = body.idempotency_key or request.headers.get(IDEMPOTENCY_HEADER)
        if not key:
            raise ValidationError(
                "usage needs an idempotency_key (or an Idempotency-Key header) so it counts once",
                field="idempotency_key",
            )

        async def handler() -> tuple[int, Any]:
            async with payments.service() as svc:
                subscription = await svc.subscriptions.get_for_customer(customer.id, subscription_id)
                record, created = await svc.subscriptions.report_usage(
                    subscription, quantity=body.quantity, idempotency_key=key, recorded_at=body.recorded_at
                )
                out = dump(UsageOut, record) | {"duplicate": not created}
                return (201 if created else 200), out

        return await idempotent(payments, request, principal, handler)

    @router.get("/invoices", name="payments:invoices", response_model=Page[InvoiceOut])
    async def list_invoices(
        customer: CurrentCustomer, svc: RequestService, limit: Limit = 20, cursor: Cursor = None
    ) -> Any:
        """The customer's invoices with their lines, newest first."""
        page = await svc.invoices.list_for_customer(customer.id, limit=limit, cursor=cursor)
        return {"items": page.items, "next_cursor": page.next_cursor}

    @router.get("/invoices/{invoice_id}", name="payments:invoice", response_model=InvoiceOut)
    async def get_invoice(invoice_id: uuid.UUID, customer: CurrentCustomer, svc: RequestService) -> Any:
        """One of the customer's invoices with its lines."""
        return await svc.invoices.get_for_customer(customer.id, invoice_id)

    @router.post(
        "/portal-sessions",
        name="payments:portal_session",
        status_code=201,
        response_model=PortalSessionOut,
        responses=problem_responses(502, 503),
    )
    async def create_portal_session(
        body: PortalRequestIn, request: Request, customer: CurrentCustomer
    ) -> Any:
        """A URL of the provider's self-service portal (422 when the provider has none)."""
        check_redirect(payments, request, body.return_url, "return_url")
        base_url = payments.base_url(request)
        async with payments.service(base_url=base_url) as svc:
            provider_name = body.provider
            provider_subscription_id = None
            if body.subscription_id is not None:
                subscription = await svc.subscriptions.get_for_customer(customer.id, body.subscription_id)
                provider_name = subscription.provider
                provider_subscription_id = subscription.provider_subscription_id
            provider = svc.provider(provider_name)
            require_capability(provider, Capability.PORTAL)
            provider_customer_id = await svc.customers.provider_customer_id(customer, provider)
            await svc.commit()  # no transaction stays open across the provider call
            result = await provider.create_portal_session(
                PortalRequest(
                    customer=svc.customers.reference(customer, provider_customer_id),
                    return_url=body.return_url,
                    return_base_url=base_url,
                    provider_subscription_id=provider_subscription_id,
                )
            )
        return {"url": result.url}

    return router
