"""The fake provider's pages: checkout, the 3-D Secure challenge, the customer portal; and its clock.

Contributed to the router through the adapter route hook
(:meth:`~fastapi_cashier.providers.fake.provider.FakeProvider.routes`), which serves them under
``{prefix}/fake``. Demos and tests only: the fake exists when ``PaymentsSettings(fake=...)`` is
set, which is refused in production.
"""

import uuid
from collections.abc import Awaitable
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import BaseModel, ConfigDict, Field, StrictInt

from ...errors import ConflictError, InvalidProviderRequestError, NotFoundError
from ...statuses import ProrationBehavior
from ..base import ProviderHost, SubscriptionChange
from .state import FakeSubscription, HostedStep

if TYPE_CHECKING:
    from .provider import FakeProvider

__all__ = ["ClockAdvance", "ClockOut", "build"]

#: Ten years: far enough for any demo, near enough that the clock cannot overflow.
_MAX_DAYS = 3660


class ClockAdvance(BaseModel):
    """How far to move the fake provider's clock forward."""

    model_config = ConfigDict(extra="forbid")

    days: Annotated[StrictInt, Field(ge=0, le=_MAX_DAYS)] = 0
    hours: Annotated[StrictInt, Field(ge=0, le=_MAX_DAYS * 24)] = 0


class ClockOut(BaseModel):
    """The fake provider's time after the move."""

    now: datetime


def build(provider: "FakeProvider", host: ProviderHost) -> APIRouter:
    """``/checkout/{session_id}`` and its authentication page, ``/portal/...``, ``/clock``."""
    router = APIRouter(route_class=host.route_class, tags=["fake provider"], include_in_schema=True)
    Admin = Annotated[Any, Depends(host.admin)]
    problem_responses = host.problem_responses

    def fake() -> "FakeProvider":
        return provider

    def with_session(session_id: str) -> "FakeProvider":
        found = fake()
        if session_id not in found.checkout_sessions:
            raise NotFoundError(f"checkout session {session_id} was not found")
        return found

    async def hosted_step(session_id: str, action: Awaitable[HostedStep]) -> HostedStep:
        # A session that is complete, expired or has nothing to authenticate refuses the form:
        # the payer's request conflicts with the session's state (the provider is not at fault).
        try:
            return await action
        except InvalidProviderRequestError as exc:
            raise ConflictError(exc.message, details={"session": session_id}) from exc

    def follow(step: HostedStep, request: Request, session_id: str) -> RedirectResponse:
        if step.needs_authentication:
            target = str(request.url_for("payments:fake_authentication_page", session_id=session_id))
        else:
            assert step.redirect_url is not None
            target = step.redirect_url
        return RedirectResponse(target, status_code=303)

    @router.get(
        "/checkout/{session_id}",
        name="payments:fake_checkout_page",
        response_class=HTMLResponse,
        responses=problem_responses(404),
    )
    async def checkout_page(session_id: str, request: Request) -> HTMLResponse:
        """The hosted checkout page with Pay, Decline and 3-D Secure buttons."""
        action = str(request.url_for("payments:fake_checkout_submit", session_id=session_id))
        return HTMLResponse(with_session(session_id).render_checkout_page(session_id, action_url=action))

    @router.post(
        "/checkout/{session_id}",
        name="payments:fake_checkout_submit",
        status_code=303,
        response_class=RedirectResponse,
        responses=problem_responses(404, 409, 422),
    )
    async def checkout_submit(
        session_id: str,
        request: Request,
        outcome: Annotated[Literal["succeeded", "declined", "requires_action"], Form()],
    ) -> RedirectResponse:
        """Apply the payer's choice; 303 to the success or cancel URL (or the 3-D Secure page)."""
        step = await hosted_step(session_id, with_session(session_id).submit_checkout(session_id, outcome))
        return follow(step, request, session_id)

    @router.get(
        "/checkout/{session_id}/authenticate",
        name="payments:fake_authentication_page",
        response_class=HTMLResponse,
        responses=problem_responses(404),
    )
    async def authentication_page(session_id: str, request: Request) -> HTMLResponse:
        """The 3-D Secure challenge."""
        action = str(request.url_for("payments:fake_authentication_submit", session_id=session_id))
        return HTMLResponse(
            with_session(session_id).render_authentication_page(session_id, action_url=action)
        )

    @router.post(
        "/checkout/{session_id}/authenticate",
        name="payments:fake_authentication_submit",
        status_code=303,
        response_class=RedirectResponse,
        responses=problem_responses(404, 409, 422),
    )
    async def authentication_submit(
        session_id: str, request: Request, result: Annotated[Literal["succeeded", "failed"], Form()]
    ) -> RedirectResponse:
        """Pass or fail the challenge; 303 to the success or cancel URL."""
        step = await hosted_step(
            session_id, with_session(session_id).authenticate(session_id, result == "succeeded")
        )
        return follow(step, request, session_id)

    # ------------------------------------------------------------------ the customer portal

    def portal_customer(customer_id: str) -> "FakeProvider":
        found = fake()
        if customer_id not in found.customers:
            raise NotFoundError(f"customer {customer_id} was not found")
        return found

    def portal_subscription(customer_id: str, sub_id: str) -> tuple["FakeProvider", FakeSubscription]:
        found = portal_customer(customer_id)
        subscription = found.subscriptions.get(sub_id)
        if subscription is None or subscription.customer != customer_id:
            raise NotFoundError(f"subscription {sub_id} of customer {customer_id} was not found")
        return found, subscription

    def back_to_portal(request: Request, customer_id: str) -> RedirectResponse:
        target = str(request.url_for("payments:fake_portal_page", customer_id=customer_id))
        return RedirectResponse(target, status_code=303)

    @router.get(
        "/portal/{customer_id}",
        name="payments:fake_portal_page",
        response_class=HTMLResponse,
        responses=problem_responses(404),
    )
    async def portal_page(customer_id: str, request: Request) -> HTMLResponse:
        """The customer portal: the customer's subscriptions, with quantity and cancel forms."""

        def action_url(sub_id: str, action: str) -> str:
            name = "payments:fake_portal_quantity" if action == "quantity" else "payments:fake_portal_cancel"
            return str(request.url_for(name, customer_id=customer_id, sub_id=sub_id))

        return HTMLResponse(
            portal_customer(customer_id).render_portal_page(customer_id, action_url=action_url)
        )

    @router.post(
        "/portal/{customer_id}/subscriptions/{sub_id}/quantity",
        name="payments:fake_portal_quantity",
        status_code=303,
        response_class=RedirectResponse,
        responses=problem_responses(404, 409, 422),
    )
    async def portal_quantity(
        customer_id: str,
        sub_id: str,
        request: Request,
        quantity: Annotated[int, Form(ge=1, le=1_000_000)],
    ) -> RedirectResponse:
        """Change the quantity (prorated on the next invoice); 303 back to the portal."""
        found, subscription = portal_subscription(customer_id, sub_id)
        change = SubscriptionChange(
            # The library's id when the fake has been told it; the nil UUID otherwise.
            subscription_id=subscription.local_id or uuid.UUID(int=0),
            idempotency_key=f"portal-{uuid.uuid4()}",
            provider_subscription_id=sub_id,
            quantity=quantity,
            proration=ProrationBehavior.CREATE_PRORATIONS,
        )
        try:
            await found.update_subscription(change)
        except InvalidProviderRequestError as exc:
            raise ConflictError(exc.message, details={"subscription": sub_id}) from exc
        return back_to_portal(request, customer_id)

    @router.post(
        "/portal/{customer_id}/subscriptions/{sub_id}/cancel",
        name="payments:fake_portal_cancel",
        status_code=303,
        response_class=RedirectResponse,
        responses=problem_responses(404, 409),
    )
    async def portal_cancel(customer_id: str, sub_id: str, request: Request) -> RedirectResponse:
        """Cancel at the end of the period; 303 back to the portal."""
        found, _ = portal_subscription(customer_id, sub_id)
        try:
            await found.cancel_subscription(
                sub_id, at_period_end=True, idempotency_key=f"portal-{uuid.uuid4()}"
            )
        except InvalidProviderRequestError as exc:
            raise ConflictError(exc.message, details={"subscription": sub_id}) from exc
        return back_to_portal(request, customer_id)

    # ------------------------------------------------------------------ the clock

    @router.post(
        "/clock/advance",
        name="payments:fake_clock_advance",
        response_model=ClockOut,
        responses=problem_responses(401, 403, 422),
    )
    async def clock_advance(body: ClockAdvance, _admin: Admin) -> ClockOut:
        """Move the fake provider's clock forward; renewals, trial ends and expiries that fall due happen."""
        return ClockOut(now=await fake().advance(days=body.days, hours=body.hours))

    return router
