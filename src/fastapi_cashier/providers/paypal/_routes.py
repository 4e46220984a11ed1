"""The payer's return from PayPal: ``GET {prefix}/paypal/return/{session_id}``.

PayPal sends the payer there (with ``?token=<order id>&PayerID=...``) after approving an order.
The route completes the checkout through the library, which captures the order exactly once
whichever comes first, this return or the ``CHECKOUT.ORDER.APPROVED`` webhook, and redirects to
the host's ``success_url``. A capture PayPal declines (a refused funding source) records the
payment ``failed``, captures nothing and redirects to the host's ``cancel_url`` with
``checkout=declined`` added to its query; the checkout stays open, so the payer may approve it
again (at the checkout's ``url``) with another funding source.
"""

from __future__ import annotations

import uuid

from fastapi import APIRouter
from fastapi.responses import RedirectResponse

from ..base import ProviderHost

__all__ = ["build_routes"]


def build_routes(host: ProviderHost) -> APIRouter:
    """The return route, named ``payments:paypal_return``."""
    router = APIRouter(route_class=host.route_class, tags=["paypal"])

    @router.get(
        "/return/{session_id}",
        name="payments:paypal_return",
        status_code=303,
        response_class=RedirectResponse,
        responses=host.problem_responses(404, 409, 422, 502),
    )
    async def paypal_return(session_id: uuid.UUID) -> RedirectResponse:
        """Capture the approved order, then 303 to the checkout's success URL (declined: to its
        cancel URL with ``checkout=declined``)."""
        return RedirectResponse(await host.finish_checkout(session_id), status_code=303)

    return router
